package password_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
	"github.com/kiln-go/kiln/revocation"
)

// TestSignIn: the right password signs in; a wrong password and an
// unknown email fail with the same error.
func TestSignIn(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			a, _ := accounts(t, db)
			ctx := context.Background()
			reg := a.Register(t, "ada@example.com")
			s, err := a.Password.SignIn(ctx, a.Domain, password.SignInInput{
				Identity: "ada@example.com", Password: pw, ExtraData: map[string]any{"user_agent": "test"}})
			if err != nil {
				t.Fatal(err)
			}
			if s.Record.(*accountstest.User).ID != reg.Record.(*accountstest.User).ID || s.Claims.JTI == reg.Claims.JTI {
				t.Errorf("signed in %+v", s)
			}
			if !valid(a, s.Token) || !valid(a, reg.Token) {
				t.Error("a session does not verify")
			}
			row, err := a.Auth.Tokens().Get(ctx, s.Claims.JTI, "user")
			if err != nil || row.ExtraData["user_agent"] != "test" {
				t.Errorf("stored row %+v, %v", row, err)
			}

			_, wrong := signIn(a, "ada@example.com", "wrong-password")
			_, unknown := signIn(a, "nobody@example.com", pw)
			for name, err := range map[string]error{"wrong password": wrong, "unknown email": unknown} {
				if !errors.Is(err, authentication.ErrAuthenticationFailed) {
					t.Errorf("%s: %v, want ErrAuthenticationFailed", name, err)
				}
			}
			if wrong == nil || unknown == nil || wrong.Error() != unknown.Error() {
				t.Errorf("the errors tell the cases apart: %q vs %q", wrong, unknown)
			}
			if wrong.Error() != "kiln/authentication: authentication failed" {
				t.Errorf("error text %q", wrong)
			}
			if _, err := signIn(a, "ada@example.com", ""); !errors.Is(err, resource.ErrInvalid) {
				t.Errorf("sign in without password = %v, want ErrInvalid", err)
			}
		})
	}
}

// countingHash is bcrypt (cost 4) that counts its calls.
type countingHash struct {
	password.Bcrypt
	hash, valid, simulate atomic.Int64
}

func (h *countingHash) Hash(p string) (string, error) { h.hash.Add(1); return h.Bcrypt.Hash(p) }
func (h *countingHash) Valid(p, hash string) bool     { h.valid.Add(1); return h.Bcrypt.Valid(p, hash) }
func (h *countingHash) SimulateValid()                { h.simulate.Add(1); h.Bcrypt.SimulateValid() }

var _ password.HashProvider = (*countingHash)(nil)

// customAccounts builds the accounts' resources with another password
// strategy, on SQLite, and returns the strategy as built.
func customAccounts(t *testing.T, strategy password.Password, parts ...any) (*resource.Domain, *resource.Resource[accountstest.User], *authentication.Auth, password.Password) {
	t.Helper()
	return accountsOn(t, testdb.SQLite(t), strategy, parts...)
}

// accountsOn builds the accounts' resources with the password strategy on
// layer l, migrated, with parts given to Build, and returns the strategy
// as built.
func accountsOn(t *testing.T, l *bunlayer.Layer, strategy password.Password, parts ...any) (*resource.Domain, *resource.Resource[accountstest.User], *authentication.Auth, password.Password) {
	t.Helper()
	tokens := resource.New[accountstest.Token]("token", resource.Table("tokens"), tokenresource.Token{})
	users := resource.New[accountstest.User]("user", resource.Table("users"), authentication.Authentication{
		Tokens: authentication.Tokens{Enabled: true, TokenResource: tokens, SigningSecret: authentication.SecretString(accountstest.Secret),
			StoreAllTokens: true, RequireTokenPresenceForAuthentication: true},
		Strategies: []authentication.Strategy{strategy},
	})
	ctx := context.Background()
	d, err := resource.NewDomain("accounts", users, tokens).Build(ctx, l, resource.With(parts...))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	auth, err := authentication.For(d, users)
	if err != nil {
		t.Fatal(err)
	}
	built, err := password.For(auth)
	if err != nil {
		t.Fatal(err)
	}
	return d, users, auth, built
}

// TestSignInUnknownSpendsHashTime: when no user matches, the strategy
// still spends a hash check (SimulateValid), and checks no hash.
func TestSignInUnknownSpendsHashTime(t *testing.T) {
	h := &countingHash{Bcrypt: password.Bcrypt{Cost: 4}}
	d, _, _, p := customAccounts(t, password.Password{IdentityField: "email", HashProvider: h})
	ctx := context.Background()
	in := func(email, pass string) password.SignInInput {
		return password.SignInInput{Identity: email, Password: pass}
	}
	if _, err := p.Register(ctx, d, password.RegisterInput{Identity: "ada@example.com", Password: pw, PasswordConfirmation: pw}); err != nil {
		t.Fatal(err)
	}
	if h.hash.Load() != 1 {
		t.Errorf("register hashed %d times", h.hash.Load())
	}
	_, err := p.SignIn(ctx, d, in("nobody@example.com", pw))
	if !errors.Is(err, authentication.ErrAuthenticationFailed) {
		t.Fatal(err)
	}
	if h.simulate.Load() != 1 || h.valid.Load() != 0 {
		t.Errorf("unknown email: %d simulated, %d checked; want 1, 0", h.simulate.Load(), h.valid.Load())
	}
	if _, err := p.SignIn(ctx, d, in("ada@example.com", "wrong-password")); !errors.Is(err, authentication.ErrAuthenticationFailed) {
		t.Fatal(err)
	}
	if _, err := p.SignIn(ctx, d, in("ada@example.com", pw)); err != nil {
		t.Fatal(err)
	}
	if h.simulate.Load() != 1 || h.valid.Load() != 2 {
		t.Errorf("known email: %d simulated, %d checked; want 1, 2", h.simulate.Load(), h.valid.Load())
	}
}

// TestArgon2idStrategy registers and signs in with argon2id, which takes
// passwords longer than 72 bytes.
func TestArgon2idStrategy(t *testing.T) {
	d, _, auth, p := customAccounts(t, password.Password{IdentityField: "email", HashProvider: password.Argon2id{Memory: 8 * 1024, Time: 1}})
	ctx := context.Background()
	long := "a passphrase well past the seventy-two bytes that bcrypt would hash, all of it counts"
	s, err := p.Register(ctx, d, password.RegisterInput{Identity: "ada@example.com", Password: long, PasswordConfirmation: long})
	if err != nil {
		t.Fatal(err)
	}
	if h := s.Record.(*accountstest.User).HashedPassword; !strings.HasPrefix(h, "$argon2id$v=19$m=8192,t=1,p=2$") {
		t.Errorf("hash %q", h)
	}
	if _, err := auth.Verify(ctx, s.Token); err != nil {
		t.Error(err)
	}
	if _, err := p.SignIn(ctx, d, password.SignInInput{Identity: "ada@example.com", Password: long}); err != nil {
		t.Errorf("sign in: %v", err)
	}
	if _, err := p.SignIn(ctx, d, password.SignInInput{Identity: "ada@example.com", Password: long[:len(long)-1] + "!"}); !errors.Is(err, authentication.ErrAuthenticationFailed) {
		t.Errorf("sign in with the last byte changed = %v", err)
	}
}

// TestSignInToken: sign_in_with_password with sign_in_token issues a
// one-shot 60-second token; sign_in_with_token exchanges it once for a
// session and revokes it.
func TestSignInToken(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			a, rec := accounts(t, db)
			ctx := context.Background()
			a.Register(t, "ada@example.com")
			one, err := a.Password.SignIn(ctx, a.Domain, password.SignInInput{Identity: "ada@example.com", Password: pw, SignInToken: true})
			if err != nil {
				t.Fatal(err)
			}
			if one.Claims.Purpose != tokenresource.PurposeSignIn || one.Claims.ExpiresAt.Sub(one.Claims.IssuedAt) != 60*time.Second {
				t.Errorf("sign-in token claims %+v", one.Claims)
			}
			if _, err := a.Auth.Tokens().Get(ctx, one.Claims.JTI, tokenresource.PurposeSignIn); err != nil {
				t.Errorf("the sign-in token is not stored: %v", err)
			}
			// It is not a session.
			if valid(a, one.Token) {
				t.Error("the sign-in token verifies as a session")
			}
			rec.Reset()
			s, err := a.Password.SignInWithToken(ctx, a.Domain, password.SignInWithTokenInput{Token: one.Token})
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			if s.Claims.Purpose != "user" || !valid(a, s.Token) || s.Record.(*accountstest.User).Email != "ada@example.com" {
				t.Errorf("exchanged for %+v", s)
			}
			if got := rec.revocations(); len(got) != 1 || got[0].JTI != one.Claims.JTI || got[0].Reason != revocation.Revoked {
				t.Errorf("notifications %+v", got)
			}
			// Once.
			_, err = a.Password.SignInWithToken(ctx, a.Domain, password.SignInWithTokenInput{Token: one.Token})
			if !errors.Is(err, authentication.ErrAuthenticationFailed) {
				t.Errorf("second exchange = %v, want ErrAuthenticationFailed", err)
			}
			// A session token, an expired sign-in token and garbage are
			// refused.
			expired, _, err := a.Auth.Issue(ctx, s.Record, authentication.IssueOptions{Purpose: tokenresource.PurposeSignIn, Lifetime: -time.Second, Store: true})
			if err != nil {
				t.Fatal(err)
			}
			for name, tok := range map[string]string{"session": s.Token, "expired": expired, "garbage": "x.y.z"} {
				if _, err := a.Password.SignInWithToken(ctx, a.Domain, password.SignInWithTokenInput{Token: tok}); !errors.Is(err, authentication.ErrAuthenticationFailed) {
					t.Errorf("%s exchanged: %v", name, err)
				}
			}
			if !valid(a, s.Token) {
				t.Error("a refused exchange of the session token signed it out")
			}
			// A wrong password issues no sign-in token.
			if _, err := a.Password.SignIn(ctx, a.Domain, password.SignInInput{Identity: "ada@example.com", Password: "wrong-password", SignInToken: true}); !errors.Is(err, authentication.ErrAuthenticationFailed) {
				t.Errorf("sign-in token with a wrong password: %v", err)
			}
		})
	}
}

// TestSignInTokenConcurrentExchange: of N goroutines exchanging one
// sign-in token at once, exactly one gets a session.
func TestSignInTokenConcurrentExchange(t *testing.T) {
	const goroutines = 6
	for _, db := range concurrentDatabases {
		t.Run(db, func(t *testing.T) {
			a, _ := accounts(t, db)
			ctx := context.Background()
			a.Register(t, "ada@example.com")
			for round := range 8 {
				one, err := a.Password.SignIn(ctx, a.Domain, password.SignInInput{Identity: "ada@example.com", Password: pw, SignInToken: true})
				if err != nil {
					t.Fatal(err)
				}
				sessions := make([]*authentication.Session, goroutines)
				errs := make([]error, goroutines)
				var start, wg sync.WaitGroup
				start.Add(1)
				for i := range goroutines {
					wg.Add(1)
					go func() {
						defer wg.Done()
						start.Wait()
						sessions[i], errs[i] = a.Password.SignInWithToken(ctx, a.Domain, password.SignInWithTokenInput{Token: one.Token})
					}()
				}
				start.Done()
				wg.Wait()
				won := 0
				for i, err := range errs {
					switch {
					case err == nil:
						won++
						if !valid(a, sessions[i].Token) {
							t.Errorf("round %d: the winner's session does not verify", round)
						}
					case !errors.Is(err, authentication.ErrAuthenticationFailed):
						t.Errorf("round %d: %v", round, err)
					}
				}
				if won != 1 {
					t.Errorf("round %d: %d exchanges won, want exactly 1: %v", round, won, fmt.Sprint(errs))
				}
			}
		})
	}
}
