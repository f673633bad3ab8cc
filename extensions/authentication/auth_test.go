package authentication_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
)

// TestIssue signs the documented claims and stores the row with store-all.
func TestIssue(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			e := newEnv(t, db, authentication.Authentication{Tokens: presenceTokens(authentication.SecretString(secret))})
			ctx := context.Background()
			u := e.user(t, "ada@example.com")
			before := time.Now().UTC().Truncate(time.Second)
			tok, c := e.issue(t, u, authentication.IssueOptions{Extra: map[string]any{"tenant": "acme", "sub": "forged"}, ExtraData: map[string]any{"ua": "curl"}})

			// The claims, as signed.
			m := jwt.MapClaims{}
			if _, err := jwt.ParseWithClaims(tok, m, func(*jwt.Token) (any, error) { return []byte(secret), nil }, jwt.WithValidMethods([]string{"HS256"})); err != nil {
				t.Fatalf("the token does not verify with the secret and HS256: %v", err)
			}
			wantSub := "user?id=" + u.ID.String()
			if m["sub"] != wantSub || m["jti"] != c.JTI || m["iss"] != "kiln" || m["aud"] != "kiln/1" || m["purpose"] != "user" || m["tenant"] != "acme" {
				t.Errorf("claims %v", m)
			}
			if _, ok := m["act"]; ok {
				t.Error("a session token has an act claim")
			}
			iat, _ := m.GetIssuedAt()
			nbf, _ := m.GetNotBefore()
			exp, _ := m.GetExpirationTime()
			if iat.Before(before) || !nbf.Equal(iat.Time) || exp.Sub(iat.Time) != 14*24*time.Hour {
				t.Errorf("iat %v nbf %v exp %v", iat, nbf, exp)
			}
			if len(c.JTI) < 22 {
				t.Errorf("jti %q is short", c.JTI)
			}
			if c.Subject != wantSub || c.Purpose != "user" || !c.ExpiresAt.Equal(exp.Time) || c.Extra["tenant"] != "acme" {
				t.Errorf("returned claims %+v", c)
			}

			// Stored, with its expiry and the extra data.
			row, err := e.auth.Tokens().Get(ctx, c.JTI, "user")
			if err != nil {
				t.Fatalf("the token is not stored: %v", err)
			}
			if row.Subject != wantSub || !row.ExpiresAt.Equal(c.ExpiresAt) || row.ExtraData["ua"] != "curl" {
				t.Errorf("stored %+v", row)
			}

			// Two tokens never share a jti.
			_, c2 := e.issue(t, u, authentication.IssueOptions{})
			if c2.JTI == c.JTI {
				t.Error("two tokens with one jti")
			}

			// Options: purpose, lifetime, act.
			_, c3 := e.issue(t, u, authentication.IssueOptions{Purpose: "sign_in", Lifetime: time.Minute, Act: "x"})
			if c3.Purpose != "sign_in" || c3.ExpiresAt.Sub(c3.IssuedAt) != time.Minute || c3.Act != "x" {
				t.Errorf("claims with options %+v", c3)
			}
		})
	}
}

// TestIssueWithoutStoreAll stores only when asked to.
func TestIssueWithoutStoreAll(t *testing.T) {
	e := newEnv(t, "sqlite", authentication.Authentication{Tokens: sessionTokens(authentication.SecretString(secret))})
	ctx := context.Background()
	u := e.user(t, "ada@example.com")
	_, c := e.issue(t, u, authentication.IssueOptions{})
	if _, err := e.auth.Tokens().Get(ctx, c.JTI, ""); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("stored without StoreAllTokens: %v", err)
	}
	_, c = e.issue(t, u, authentication.IssueOptions{Store: true})
	if _, err := e.auth.Tokens().Get(ctx, c.JTI, ""); err != nil {
		t.Errorf("not stored with Store: %v", err)
	}
	// A record of another type has no subject.
	if _, _, err := e.auth.Issue(ctx, &struct{}{}, authentication.IssueOptions{}); err == nil {
		t.Error("issued for a record of another type")
	}
}

// TestIssueInTransaction: the row is stored in the caller's transaction,
// and goes with its rollback.
func TestIssueInTransaction(t *testing.T) {
	e := newEnv(t, "sqlite", authentication.Authentication{Tokens: presenceTokens(authentication.SecretString(secret))})
	ctx := context.Background()
	u := e.user(t, "ada@example.com")
	var tok string
	boom := errors.New("boom")
	err := e.d.InTransaction(ctx, func(ctx context.Context) error {
		var err error
		if tok, _, err = e.auth.Issue(ctx, u, authentication.IssueOptions{}); err != nil {
			return err
		}
		if _, err := e.auth.Verify(ctx, tok); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, err := e.auth.Verify(ctx, tok); !errors.Is(err, authentication.ErrInvalidToken) {
		t.Errorf("a token stored in a rolled-back transaction verifies: %v", err)
	}
}

// TestVerifyAndAuthenticate: a fresh session token parses, verifies and
// authenticates its user.
func TestVerifyAndAuthenticate(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			a := accountstest.Build(t, db, accountstest.Options{})
			ctx := context.Background()
			s := a.Register(t, "ada@example.com")
			c, err := a.Auth.Parse(ctx, s.Token)
			if err != nil || c.JTI != s.Claims.JTI {
				t.Fatalf("Parse = %+v, %v", c, err)
			}
			c, err = a.Auth.Verify(ctx, s.Token)
			if err != nil || c.JTI != s.Claims.JTI || c.Subject != s.Claims.Subject {
				t.Fatalf("Verify = %+v, %v", c, err)
			}
			rec, c, err := a.Auth.Authenticate(ctx, s.Token)
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			u := rec.(*accountstest.User)
			if u.Email != "ada@example.com" || u.ID != s.Record.(*accountstest.User).ID || c.JTI != s.Claims.JTI {
				t.Errorf("Authenticate = %+v, %+v", u, c)
			}
			// The socket id is made from the same typed value at both ends.
			row, err := a.Auth.Tokens().Get(ctx, c.JTI, "user")
			if err != nil {
				t.Fatal(err)
			}
			if c.SocketID() != tokenresource.SocketIDOf(row) {
				t.Errorf("SocketID from claims %+v, from the row %+v", c.SocketID(), tokenresource.SocketIDOf(row))
			}
		})
	}
}

// TestAuthenticateUserGone: a valid token of a deleted user does not
// authenticate.
func TestAuthenticateUserGone(t *testing.T) {
	e := newEnv(t, "sqlite", authentication.Authentication{Tokens: presenceTokens(authentication.SecretString(secret))})
	ctx := context.Background()
	u := e.user(t, "ada@example.com")
	tok, _ := e.issue(t, u, authentication.IssueOptions{})
	if _, _, err := e.auth.Authenticate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := e.layer.DB().NewDelete().TableExpr("users").Where("id = ?", u.ID).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.auth.Verify(ctx, tok); err != nil {
		t.Errorf("Verify checks the token only: %v", err)
	}
	if _, _, err := e.auth.Authenticate(ctx, tok); !errors.Is(err, authentication.ErrInvalidToken) {
		t.Errorf("Authenticate of a deleted user = %v, want ErrInvalidToken", err)
	}
}

// TestSubjectRoundTrip: Subject names a record, RecordFor loads it back.
func TestSubjectRoundTrip(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			e := newEnv(t, db, authentication.Authentication{Tokens: sessionTokens(authentication.SecretString(secret))})
			ctx := context.Background()
			u := e.user(t, "ada@example.com")
			sub, err := e.auth.Subject(u)
			if err != nil {
				t.Fatal(err)
			}
			if want := "user?id=" + u.ID.String(); sub != want {
				t.Errorf("Subject = %q, want %q", sub, want)
			}
			rec, err := e.auth.RecordFor(ctx, sub)
			if err != nil {
				t.Fatal(err)
			}
			if got := rec.(*User); got.ID != u.ID || got.Email != u.Email {
				t.Errorf("RecordFor = %+v", got)
			}
			bad := map[string]error{
				"admin?id=" + u.ID.String():            nil,
				"user":                                 nil,
				"user?email=ada@example.com":           nil,
				"user?id=" + u.ID.String() + "&role=x": nil,
				"user?id=" + u.ID.String() + "&id=" + u.ID.String(): nil,
				"user?id=not-a-uuid":          resource.ErrInvalid,
				"user?id=" + uuid.NewString(): resource.ErrNotFound,
				"user?id=%zz":                 nil,
			}
			for s, want := range bad {
				_, err := e.auth.RecordFor(ctx, s)
				if err == nil || (want != nil && !errors.Is(err, want)) {
					t.Errorf("RecordFor(%q) = %v, want an error (%v)", s, err, want)
				}
			}
			for _, rec := range []any{nil, *u, &Token{}, (*User)(nil)} {
				if _, err := e.auth.Subject(rec); err == nil {
					t.Errorf("Subject(%T) succeeded", rec)
				}
			}
		})
	}
}

// TestGetBySubjectAction: RecordFor runs the action GetBySubjectAction
// names: the one the section adds under that name, or the resource's own
// of that name when it declares one.
func TestGetBySubjectAction(t *testing.T) {
	ctx := context.Background()
	t.Run("renamed", func(t *testing.T) {
		e := newEnv(t, "sqlite", authentication.Authentication{GetBySubjectAction: "by_subject", Tokens: sessionTokens(authentication.SecretString(secret))})
		decl := e.d.Declaration(e.users)
		if decl.Action("by_subject") == nil || decl.Action("get_by_subject") != nil {
			t.Fatalf("actions %v", decl.Actions)
		}
		u := e.user(t, "ada@example.com")
		sub, _ := e.auth.Subject(u)
		if rec, err := e.auth.RecordFor(ctx, sub); err != nil || rec.(*User).ID != u.ID {
			t.Fatalf("RecordFor = %v, %v", rec, err)
		}
	})
	t.Run("declared", func(t *testing.T) {
		tokens := resource.New[Token]("token", resource.Table("tokens"), tokenresource.Token{})
		users := resource.New[User]("user", resource.Table("users"),
			resource.Actions{
				resource.Create{Name: "create", Accept: []string{"email"}},
				// Banned users have no session.
				resource.Read{Name: "get_by_subject", GetBy: []string{"id"}, Filter: resource.Ne("email", "banned@example.com")},
			},
			authentication.Authentication{Tokens: authentication.Tokens{Enabled: true, TokenResource: tokens,
				SigningSecret: authentication.SecretString(secret), SessionIdentifier: authentication.SessionUnsafe}},
		)
		layer := testdb.SQLite(t)
		d, err := resource.NewDomain("accounts", users, tokens).Build(ctx, layer)
		if err != nil {
			t.Fatal(err)
		}
		if err := layer.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		auth, err := authentication.For(d, users)
		if err != nil {
			t.Fatal(err)
		}
		for email, found := range map[string]bool{"ada@example.com": true, "banned@example.com": false} {
			u, err := users.Create(ctx, d, "create", resource.Input{"email": email})
			if err != nil {
				t.Fatal(err)
			}
			sub, _ := auth.Subject(u)
			_, err = auth.RecordFor(ctx, sub)
			if found && err != nil || !found && !errors.Is(err, resource.ErrNotFound) {
				t.Errorf("RecordFor(%s) = %v; found: %v", email, err, found)
			}
		}
	})
}

// Member has a text key that needs escaping in a subject.
type Member struct {
	Handle string `bun:",pk"`
}

// TestSubjectEscapesKey: the key is url-encoded, and a custom subject name
// is used.
func TestSubjectEscapesKey(t *testing.T) {
	tokens := resource.New[Token]("token", tokenresource.Token{})
	members := resource.New[Member]("member",
		resource.Actions{resource.Create{Name: "create", Accept: []string{"handle"}}},
		authentication.Authentication{SubjectName: "person", Tokens: authentication.Tokens{
			Enabled: true, TokenResource: tokens, SigningSecret: authentication.SecretString(secret), SessionIdentifier: authentication.SessionUnsafe}},
	)
	layer := testdb.SQLite(t)
	ctx := context.Background()
	d, err := resource.NewDomain("club", members, tokens).Build(ctx, layer)
	if err != nil {
		t.Fatal(err)
	}
	if err := layer.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	auth, err := authentication.For(d, members)
	if err != nil {
		t.Fatal(err)
	}
	handle := "a b&c=d?é/%"
	m, err := members.Create(ctx, d, "create", resource.Input{"handle": handle})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := auth.Subject(m)
	if err != nil {
		t.Fatal(err)
	}
	if want := "person?handle=" + url.QueryEscape(handle); sub != want {
		t.Errorf("Subject = %q, want %q", sub, want)
	}
	tok, _, err := auth.Issue(ctx, m, authentication.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec, c, err := auth.Authenticate(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if rec.(*Member).Handle != handle || c.Subject != sub {
		t.Errorf("Authenticate = %+v, %q", rec, c.Subject)
	}
	if _, err := auth.RecordFor(ctx, "member?handle=x"); err == nil {
		t.Error("RecordFor accepted the resource name instead of the subject name")
	}
}

// TestVerifyRefuses: every token that must not authenticate is refused by
// Verify with ErrInvalidToken, and by Authenticate.
func TestVerifyRefuses(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			a := accountstest.Build(t, db, accountstest.Options{})
			ctx := context.Background()
			s := a.Register(t, "ada@example.com")
			sub := s.Claims.Subject
			key := []byte(accountstest.Secret)
			rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			// stored stores a crafted token's row, so that only the claim
			// under test is wrong.
			stored := func(c jwt.MapClaims) jwt.MapClaims {
				exp, _ := c.GetExpirationTime()
				if exp == nil {
					exp = jwt.NewNumericDate(time.Now().Add(time.Hour))
				}
				if err := a.Auth.Tokens().StoreToken(ctx, tokenresource.Fields{JTI: c["jti"].(string), Subject: sub, Purpose: "user", ExpiresAt: exp.UTC()}); err != nil {
					t.Fatal(err)
				}
				return c
			}
			now := time.Now().Unix()
			revoked := a.SignIn(t, "ada@example.com").Token
			if err := a.Auth.Tokens().Revoke(ctx, revoked, revocation.SignedOut); err != nil {
				t.Fatal(err)
			}
			issued := func(opts authentication.IssueOptions) string {
				tok, _, err := a.Auth.Issue(ctx, s.Record, opts)
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}
			none, err := jwt.NewWithClaims(jwt.SigningMethodNone, stored(claims(sub))).SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			cases := []struct {
				name       string
				token      string
				parseFails bool // the signature-level check refuses it already
			}{
				{"wrong signature", sign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdefghij"), stored(claims(sub))), true},
				{"alg none", none, true},
				{"HS512 when HS256 is configured", sign(t, jwt.SigningMethodHS512, key, stored(claims(sub))), true},
				{"HS384 when HS256 is configured", sign(t, jwt.SigningMethodHS384, key, stored(claims(sub))), true},
				{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey, stored(claims(sub))), true},
				{"expired", sign(t, jwt.SigningMethodHS256, key, stored(with(claims(sub), map[string]any{"exp": now - 1}))), true},
				{"issued expired", issued(authentication.IssueOptions{Lifetime: -time.Minute}), true},
				{"no exp", sign(t, jwt.SigningMethodHS256, key, stored(with(claims(sub), map[string]any{"exp": nil}))), true},
				{"not yet valid", sign(t, jwt.SigningMethodHS256, key, stored(with(claims(sub), map[string]any{"nbf": now + 600}))), true},
				{"issued in the future", sign(t, jwt.SigningMethodHS256, key, stored(with(claims(sub), map[string]any{"iat": now + 600}))), true},
				{"wrong issuer", sign(t, jwt.SigningMethodHS256, key, stored(with(claims(sub), map[string]any{"iss": "evil"}))), true},
				{"no issuer", sign(t, jwt.SigningMethodHS256, key, stored(with(claims(sub), map[string]any{"iss": nil}))), true},
				{"wrong audience", sign(t, jwt.SigningMethodHS256, key, stored(with(claims(sub), map[string]any{"aud": "kiln/2"}))), true},
				{"no audience", sign(t, jwt.SigningMethodHS256, key, stored(with(claims(sub), map[string]any{"aud": nil}))), true},
				{"no jti", sign(t, jwt.SigningMethodHS256, key, with(claims(sub), map[string]any{"jti": nil})), true},
				{"no subject", sign(t, jwt.SigningMethodHS256, key, stored(with(claims(sub), map[string]any{"sub": nil}))), true},
				{"no purpose", sign(t, jwt.SigningMethodHS256, key, stored(with(claims(sub), map[string]any{"purpose": nil}))), true},
				{"revoked", revoked, false},
				{"not stored, presence required", sign(t, jwt.SigningMethodHS256, key, claims(sub)), false},
				{"sign-in purpose", issued(authentication.IssueOptions{Purpose: tokenresource.PurposeSignIn}), false},
				{"reset: act claim", issued(authentication.IssueOptions{Act: "reset_with_password"}), false},
				{"act claim that is not a string", sign(t, jwt.SigningMethodHS256, key, stored(with(claims(sub), map[string]any{"act": map[string]any{"sub": "admin"}}))), true},
				{"empty act claim", sign(t, jwt.SigningMethodHS256, key, stored(with(claims(sub), map[string]any{"act": ""}))), true},
				{"empty", "", true},
				{"two segments", "a.b", true},
				{"garbage", "garbage", true},
				{"three garbage segments", "a.b.c", true},
				{"trailing dot", s.Token + ".", true},
				{"signature cut", s.Token[:len(s.Token)-2], true},
				// One token verifies under one string only.
				{"padding bits set in the signature", setPaddingBits(t, s.Token), true},
				{"newline in the signature", s.Token[:len(s.Token)-4] + "\n" + s.Token[len(s.Token)-4:], true},
				{"CRLF after the token", s.Token + "\r\n", true},
				{"space before the token", " " + s.Token, true},
				{"padded signature", s.Token + "=", true},
				{"payload of another token", swapPayload(t, s.Token, sign(t, jwt.SigningMethodHS256, []byte("x-0123456789abcdefghij0123456789"), claims("user?id="+uuid.NewString()))), true},
			}
			for _, c := range cases {
				_, perr := a.Auth.Parse(ctx, c.token)
				if c.parseFails && !errors.Is(perr, authentication.ErrInvalidToken) {
					t.Errorf("%s: Parse = %v, want ErrInvalidToken", c.name, perr)
				}
				if !c.parseFails && perr != nil {
					t.Errorf("%s: Parse = %v, want the signature accepted", c.name, perr)
				}
				if got, err := a.Auth.Verify(ctx, c.token); !errors.Is(err, authentication.ErrInvalidToken) {
					t.Errorf("%s: Verify = %+v, %v; want ErrInvalidToken", c.name, got, err)
				}
				if _, _, err := a.Auth.Authenticate(ctx, c.token); !errors.Is(err, authentication.ErrInvalidToken) {
					t.Errorf("%s: Authenticate = %v, want ErrInvalidToken", c.name, err)
				}
			}
			// The control: the same crafting, nothing wrong, verifies.
			good := sign(t, jwt.SigningMethodHS256, key, stored(claims(sub)))
			if _, err := a.Auth.Verify(ctx, good); err != nil {
				t.Errorf("a well-crafted token is refused: %v", err)
			}
			if _, err := a.Auth.Verify(ctx, s.Token); err != nil {
				t.Errorf("the registration token is refused: %v", err)
			}
		})
	}
}

// setPaddingBits returns tok with the unused low bits of its signature's
// last base64url character set: the same signature bytes, another string.
func setPaddingBits(t testing.TB, tok string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	var unused int
	switch len(sig) % 4 {
	case 2:
		unused = 4
	case 3:
		unused = 2
	default:
		t.Fatalf("a signature of %d characters has no unused bits", len(sig))
	}
	last := strings.IndexByte(alphabet, sig[len(sig)-1])
	mutated := tok[:len(tok)-1] + string(alphabet[last|(1<<unused-1)])
	if mutated == tok {
		t.Fatal("the padding bits were set already")
	}
	return mutated
}

// swapPayload returns tok with the payload of other.
func swapPayload(t *testing.T, tok, other string) string {
	t.Helper()
	a, b := strings.Split(tok, "."), strings.Split(other, ".")
	return a[0] + "." + b[1] + "." + a[2]
}

// TestVerifyPurposeAndAct: VerifyPurpose accepts what Verify refuses when
// purpose and act are the expected ones.
func TestVerifyPurposeAndAct(t *testing.T) {
	a := accountstest.Build(t, "sqlite", accountstest.Options{})
	ctx := context.Background()
	s := a.Register(t, "ada@example.com")
	reset, _, err := a.Auth.Issue(ctx, s.Record, authentication.IssueOptions{Purpose: "password_reset", Act: "reset_with_password", Store: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Auth.VerifyPurpose(ctx, reset, "password_reset", "reset_with_password"); err != nil {
		t.Errorf("VerifyPurpose(reset) = %v", err)
	}
	if _, err := a.Auth.VerifyPurpose(ctx, reset, "password_reset", "other"); !errors.Is(err, authentication.ErrInvalidToken) {
		t.Errorf("VerifyPurpose with another act = %v", err)
	}
	if _, err := a.Auth.VerifyPurpose(ctx, s.Token, "password_reset", "reset_with_password"); !errors.Is(err, authentication.ErrInvalidToken) {
		t.Errorf("VerifyPurpose of a session as a reset = %v", err)
	}
	if err := a.Auth.Tokens().Revoke(ctx, reset, revocation.Revoked); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Auth.VerifyPurpose(ctx, reset, "password_reset", "reset_with_password"); !errors.Is(err, authentication.ErrInvalidToken) {
		t.Errorf("VerifyPurpose of a revoked reset token = %v", err)
	}
}

// TestPresenceControl: a token that was never stored verifies where
// presence is not required, and is refused where it is.
func TestPresenceControl(t *testing.T) {
	plain := newEnv(t, "sqlite", authentication.Authentication{Tokens: sessionTokens(authentication.SecretString(secret))})
	presence := newEnv(t, "sqlite", authentication.Authentication{Tokens: presenceTokens(authentication.SecretString(secret))})
	ctx := context.Background()
	u := plain.user(t, "ada@example.com")
	tok, _ := plain.issue(t, u, authentication.IssueOptions{})
	if _, err := plain.auth.Verify(ctx, tok); err != nil {
		t.Errorf("without presence: %v", err)
	}
	if _, err := presence.auth.Verify(ctx, tok); !errors.Is(err, authentication.ErrInvalidToken) {
		t.Errorf("with presence: %v, want ErrInvalidToken", err)
	}
	// Without presence, a revocation still refuses the token.
	if err := plain.auth.Tokens().Revoke(ctx, tok, revocation.SignedOut); err != nil {
		t.Fatal(err)
	}
	if _, err := plain.auth.Verify(ctx, tok); !errors.Is(err, authentication.ErrInvalidToken) || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("revoked without presence: %v", err)
	}
	// With presence, an expired row refuses the token although the JWT
	// is still valid.
	u2 := presence.user(t, "bob@example.com")
	tok2, c2 := presence.issue(t, u2, authentication.IssueOptions{})
	if _, err := presence.layer.DB().NewUpdate().TableExpr("tokens").Set("expires_at = ?", time.Now().UTC().Add(-time.Minute)).Where("jti = ?", c2.JTI).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := presence.auth.Verify(ctx, tok2); !errors.Is(err, authentication.ErrInvalidToken) {
		t.Errorf("expired row with presence: %v", err)
	}
}

// TestStoreErrorCountsAsRevoked: when the token store cannot answer, the
// token is refused.
func TestStoreErrorCountsAsRevoked(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			for _, c := range []struct {
				name   string
				tokens authentication.Tokens
				msg    string
			}{
				{"presence", presenceTokens(authentication.SecretString(secret)), "not stored or revoked"},
				{"revocation check", sessionTokens(authentication.SecretString(secret)), "revocation check failed (counted as revoked)"},
			} {
				e := newEnv(t, db, authentication.Authentication{Tokens: c.tokens})
				ctx := context.Background()
				tok, _ := e.issue(t, e.user(t, "ada@example.com"), authentication.IssueOptions{})
				if _, err := e.auth.Verify(ctx, tok); err != nil {
					t.Fatalf("%s: before: %v", c.name, err)
				}
				if err := e.layer.Close(); err != nil {
					t.Fatal(err)
				}
				_, err := e.auth.Verify(ctx, tok)
				if !errors.Is(err, authentication.ErrInvalidToken) || !strings.Contains(err.Error(), c.msg) {
					t.Errorf("%s: Verify on a closed store = %v; want ErrInvalidToken saying %q", c.name, err, c.msg)
				}
				// Parse does not consult the store.
				if _, err := e.auth.Parse(ctx, tok); err != nil {
					t.Errorf("%s: Parse = %v", c.name, err)
				}
			}
		})
	}
}

// TestPreviousSecrets: after a rotation, tokens signed with a previous
// secret still verify, new ones are signed with the new secret only.
func TestPreviousSecrets(t *testing.T) {
	const (
		oldSecret   = "the-old-signing-secret-0123456789abcdef"
		newSecret   = "the-new-signing-secret-0123456789abcdef"
		otherSecret = "an-unknown-signing-secret-0123456789abc"
	)
	before := newEnv(t, "sqlite", authentication.Authentication{Tokens: sessionTokens(authentication.SecretString(oldSecret))})
	afterTokens := sessionTokens(authentication.SecretString(newSecret))
	afterTokens.PreviousSecrets = []authentication.Secret{authentication.SecretString(otherSecret + "x"), authentication.SecretString(oldSecret)}
	after := newEnv(t, "sqlite", authentication.Authentication{Tokens: afterTokens})
	ctx := context.Background()

	oldTok, _ := before.issue(t, before.user(t, "ada@example.com"), authentication.IssueOptions{})
	if _, err := after.auth.Verify(ctx, oldTok); err != nil {
		t.Errorf("a token signed with a previous secret is refused: %v", err)
	}
	newTok, _ := after.issue(t, after.user(t, "bob@example.com"), authentication.IssueOptions{})
	if _, err := after.auth.Verify(ctx, newTok); err != nil {
		t.Fatalf("a new token is refused: %v", err)
	}
	for secret, want := range map[string]bool{newSecret: true, oldSecret: false} {
		_, err := jwt.Parse(newTok, func(*jwt.Token) (any, error) { return []byte(secret), nil }, jwt.WithValidMethods([]string{"HS256"}))
		if (err == nil) != want {
			t.Errorf("the new token verifies with %q: %v, want %v", secret, err == nil, want)
		}
	}
	if _, err := before.auth.Verify(ctx, newTok); !errors.Is(err, authentication.ErrInvalidToken) {
		t.Errorf("the old configuration accepts a token of the new secret: %v", err)
	}
	u := after.user(t, "eve@example.com")
	sub, _ := after.auth.Subject(u)
	if _, err := after.auth.Verify(ctx, sign(t, jwt.SigningMethodHS256, []byte(otherSecret), claims(sub))); !errors.Is(err, authentication.ErrInvalidToken) {
		t.Errorf("a token of an unknown secret verifies: %v", err)
	}
	// An expired token signed with a previous secret is still expired.
	expired := sign(t, jwt.SigningMethodHS256, []byte(oldSecret), with(claims(sub), map[string]any{"exp": time.Now().Unix() - 10}))
	if _, err := after.auth.Verify(ctx, expired); !errors.Is(err, authentication.ErrInvalidToken) {
		t.Errorf("an expired token of a previous secret verifies: %v", err)
	}
}

// TestSecretFunc: the secret is read at run time, on every use.
func TestSecretFunc(t *testing.T) {
	var current atomic.Value
	current.Store("first-secret-read-at-run-time-0123456789")
	var reads atomic.Int64
	fail := atomic.Bool{}
	fn := authentication.SecretFunc(func(context.Context) (string, error) {
		reads.Add(1)
		if fail.Load() {
			return "", errors.New("vault unreachable")
		}
		return current.Load().(string), nil
	})
	e := newEnv(t, "sqlite", authentication.Authentication{Tokens: sessionTokens(fn)})
	ctx := context.Background()
	u := e.user(t, "ada@example.com")
	if reads.Load() != 0 {
		t.Errorf("the secret was read %d times before any use", reads.Load())
	}
	first, _ := e.issue(t, u, authentication.IssueOptions{})
	if _, err := e.auth.Verify(ctx, first); err != nil {
		t.Fatal(err)
	}
	if n := reads.Load(); n != 2 {
		t.Errorf("the secret was read %d times for one issue and one verify, want 2", n)
	}
	current.Store("second-secret-read-at-run-time-012345678")
	if _, err := e.auth.Verify(ctx, first); !errors.Is(err, authentication.ErrInvalidToken) {
		t.Errorf("a token of the replaced secret verifies: %v", err)
	}
	second, _ := e.issue(t, u, authentication.IssueOptions{})
	if _, err := jwt.Parse(second, func(*jwt.Token) (any, error) { return []byte("second-secret-read-at-run-time-012345678"), nil }); err != nil {
		t.Errorf("the new token is not signed with the new secret: %v", err)
	}
	fail.Store(true)
	if _, _, err := e.auth.Issue(ctx, u, authentication.IssueOptions{}); err == nil || !strings.Contains(err.Error(), "signing secret: vault unreachable") {
		t.Errorf("Issue with a failing secret = %v", err)
	}
	if _, err := e.auth.Verify(ctx, second); !errors.Is(err, authentication.ErrInvalidToken) {
		t.Errorf("Verify with a failing secret = %v", err)
	}
}

// TestSecretFromEnv reads the variable at each use.
func TestSecretFromEnv(t *testing.T) {
	const name = "KILN_AUTH_TEST_SECRET"
	s := authentication.SecretFromEnv(name)
	t.Setenv(name, "")
	if _, err := s.Secret(context.Background()); err == nil || err.Error() != "kiln/authentication: KILN_AUTH_TEST_SECRET is not set" {
		t.Errorf("unset: %v", err)
	}
	t.Setenv(name, "from-the-environment")
	if v, err := s.Secret(context.Background()); err != nil || v != "from-the-environment" {
		t.Errorf("set: %q, %v", v, err)
	}
}

// TestTokensDisabled: a resource without tokens issues and verifies none.
func TestTokensDisabled(t *testing.T) {
	e := newEnv(t, "sqlite", authentication.Authentication{})
	ctx := context.Background()
	if e.auth.Tokens() != nil {
		t.Error("a token store without tokens")
	}
	if _, _, err := e.auth.Issue(ctx, e.user(t, "ada@example.com"), authentication.IssueOptions{}); !errors.Is(err, authentication.ErrTokensDisabled) {
		t.Errorf("Issue = %v", err)
	}
	if _, err := e.auth.Verify(ctx, "a.b.c"); !errors.Is(err, authentication.ErrTokensDisabled) {
		t.Errorf("Verify = %v", err)
	}
	if _, err := authentication.For(e.d, e.tokens); !errors.Is(err, authentication.ErrNotAuthenticatable) {
		t.Errorf("For(tokens) = %v", err)
	}
}

// TestAlgorithms: HS384 and HS512 are configurable, and then HS256 is
// refused.
func TestAlgorithms(t *testing.T) {
	for _, alg := range []string{"HS256", "HS384", "HS512"} {
		t.Run(alg, func(t *testing.T) {
			tokens := sessionTokens(authentication.SecretString(secret))
			tokens.SigningAlgorithm = alg
			e := newEnv(t, "sqlite", authentication.Authentication{Tokens: tokens})
			ctx := context.Background()
			u := e.user(t, "ada@example.com")
			tok, _ := e.issue(t, u, authentication.IssueOptions{})
			parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
			if err != nil || parsed.Method.Alg() != alg {
				t.Fatalf("signed with %v, want %s (%v)", parsed.Method, alg, err)
			}
			if _, err := e.auth.Verify(ctx, tok); err != nil {
				t.Fatal(err)
			}
			sub, _ := e.auth.Subject(u)
			for _, other := range []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodHS384, jwt.SigningMethodHS512} {
				_, err := e.auth.Verify(ctx, sign(t, other, []byte(secret), claims(sub)))
				if (err == nil) != (other.Alg() == alg) {
					t.Errorf("a %s token with %s configured: %v", other.Alg(), alg, err)
				}
			}
		})
	}
}

// TestSessionOf returns the record and token of a token-issuing action run
// through a view, and fails for an action that issued none.
func TestSessionOf(t *testing.T) {
	a := accountstest.Build(t, "sqlite", accountstest.Options{})
	ctx := context.Background()
	s, err := a.Password.Register(ctx, a.Domain, password.RegisterInput{Identity: "ada@example.com", Password: "password123", PasswordConfirmation: "password123"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Token == "" || s.Claims == nil || s.Record.(*accountstest.User).Email != "ada@example.com" {
		t.Errorf("session %+v", s)
	}
	// A generic action's value is the record.
	s, err = a.Password.SignIn(ctx, a.Domain, password.SignInInput{Identity: "ada@example.com", Password: "password123"})
	if err != nil || s.Record.(*accountstest.User).Email != "ada@example.com" {
		t.Fatalf("sign in: %+v, %v", s, err)
	}
	_, err = authentication.SessionOf(&resource.ViewResult[any]{Value: s.Record, Metadata: map[string]any{}})
	if !errors.Is(err, authentication.ErrNoToken) || err.Error() != "kiln/authentication: the action issued no token" {
		t.Errorf("SessionOf a result without a token = %v", err)
	}
}
