package tokenresource_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
)

// TestStoreToken stores rows through the action and through the Go API and
// reads them back with get_token and Store.Get.
func TestStoreToken(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			s := newStore(t, db, tokenresource.Token{})
			ctx := context.Background()
			exp := hour()

			res, err := s.d.Run(ctx, s.tokens, "store_token", resource.Input{
				"jti": "a", "subject": "user?id=1", "expires_at": exp, "purpose": tokenresource.PurposeUser,
				"extra_data": map[string]any{"user_agent": "curl"},
			})
			if err != nil {
				t.Fatalf("store_token: %v", err)
			}
			got := res.Record.(*Token)
			if got.JTI != "a" || got.Subject != "user?id=1" || !got.ExpiresAt.Equal(exp) || got.Purpose != "user" || got.CreatedAt.IsZero() || got.UpdatedAt.IsZero() {
				t.Errorf("stored %+v", got.Fields)
			}
			if err := s.s.StoreToken(ctx, tokenresource.Fields{JTI: "b", Subject: "user?id=1", ExpiresAt: exp, Purpose: tokenresource.PurposeSignIn}); err != nil {
				t.Fatalf("StoreToken: %v", err)
			}

			row, err := s.tokens.Get(ctx, s.d, "get_token", resource.Input{"jti": "a"})
			if err != nil {
				t.Fatalf("get_token: %v", err)
			}
			if row.Subject != "user?id=1" || row.ExtraData["user_agent"] != "curl" || row.ExpiresAt.Location() != time.UTC {
				t.Errorf("get_token read %+v", row.Fields)
			}
			f, err := s.s.Get(ctx, "b", "")
			if err != nil {
				t.Fatalf("Get(b): %v", err)
			}
			if f.JTI != "b" || f.Purpose != tokenresource.PurposeSignIn || f.ExtraData != nil {
				t.Errorf("Get(b) = %+v", f)
			}
			// The purpose narrows the read.
			if _, err := s.s.Get(ctx, "b", tokenresource.PurposeSignIn); err != nil {
				t.Errorf("Get(b, sign_in): %v", err)
			}
			if _, err := s.s.Get(ctx, "b", tokenresource.PurposeUser); !errors.Is(err, resource.ErrNotFound) {
				t.Errorf("Get(b, user) = %v, want ErrNotFound", err)
			}
			if _, err := s.s.Get(ctx, "nope", ""); !errors.Is(err, resource.ErrNotFound) {
				t.Errorf("Get(nope) = %v, want ErrNotFound", err)
			}
			// An expired row is not returned.
			s.put(t, "old", "user?id=1", tokenresource.PurposeUser, past())
			if _, err := s.s.Get(ctx, "old", ""); !errors.Is(err, resource.ErrNotFound) {
				t.Errorf("Get(expired) = %v, want ErrNotFound", err)
			}
			if s.row(t, "old") == nil {
				t.Error("the expired row is not in the table")
			}
			// Storing is not a revocation: no notification carries a reason.
			if r := s.rec.revocations(t); len(r) != 0 {
				t.Errorf("storing notified revocations %+v", r)
			}
			if n := len(s.rec.All()); n != 3 {
				t.Errorf("%d notifications for 3 stores", n)
			}
		})
	}
}

// TestStoreTokenTwiceConflicts: a jti is stored once.
func TestStoreTokenTwiceConflicts(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			s := newStore(t, db, tokenresource.Token{})
			s.put(t, "a", "user?id=1", "user", hour())
			err := s.s.StoreToken(context.Background(), tokenresource.Fields{JTI: "a", Subject: "user?id=2", Purpose: "user", ExpiresAt: hour()})
			if !errors.Is(err, resource.ErrConflict) {
				t.Fatalf("second store = %v, want ErrConflict", err)
			}
			if got := s.row(t, "a").Subject; got != "user?id=1" {
				t.Errorf("subject became %q", got)
			}
		})
	}
}

// TestIsRevoked runs revoked? through the action and the Go API.
func TestIsRevoked(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			s := newStore(t, db, tokenresource.Token{})
			ctx := context.Background()
			s.put(t, "a", "user?id=1", "user", hour())
			for _, jti := range []string{"a", "unknown"} {
				revoked, err := resource.Call[bool](ctx, s.d, s.tokens, "revoked?", resource.Input{"jti": jti})
				if err != nil || revoked {
					t.Errorf("revoked?(%s) = %v, %v; want false", jti, revoked, err)
				}
				revoked, err = s.s.IsRevoked(ctx, jti)
				if err != nil || revoked {
					t.Errorf("IsRevoked(%s) = %v, %v; want false", jti, revoked, err)
				}
			}
			if err := s.s.RevokeJTI(ctx, "a", "user?id=1", revocation.SignedOut); err != nil {
				t.Fatal(err)
			}
			if err := s.s.RevokeJTI(ctx, "unknown", "user?id=1", revocation.Revoked); err != nil {
				t.Fatal(err)
			}
			for _, jti := range []string{"a", "unknown"} {
				revoked, err := resource.Call[bool](ctx, s.d, s.tokens, "revoked?", resource.Input{"jti": jti})
				if err != nil || !revoked {
					t.Errorf("revoked?(%s) = %v, %v; want true", jti, revoked, err)
				}
				revoked, err = s.s.IsRevoked(ctx, jti)
				if err != nil || !revoked {
					t.Errorf("IsRevoked(%s) = %v, %v; want true", jti, revoked, err)
				}
			}
			// The jti is required.
			if _, err := s.s.IsRevoked(ctx, ""); !errors.Is(err, resource.ErrInvalid) {
				t.Errorf("IsRevoked(\"\") = %v, want ErrInvalid", err)
			}
		})
	}
}

// TestIsRevokedFailsClosed: when the store cannot answer, the token counts
// as revoked.
func TestIsRevokedFailsClosed(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			s := newStore(t, db, tokenresource.Token{})
			ctx := context.Background()
			s.put(t, "a", "user?id=1", "user", hour())
			if revoked, err := s.s.IsRevoked(ctx, "a"); err != nil || revoked {
				t.Fatalf("before closing: %v, %v", revoked, err)
			}
			if err := s.layer.Close(); err != nil {
				t.Fatal(err)
			}
			revoked, err := s.s.IsRevoked(ctx, "a")
			if !revoked || err == nil {
				t.Errorf("IsRevoked on a closed database = %v, %v; want true and an error", revoked, err)
			}
			// A cancelled context fails closed too.
			s2 := newStore(t, db, tokenresource.Token{})
			s2.put(t, "a", "user?id=1", "user", hour())
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			revoked, err = s2.s.IsRevoked(cctx, "a")
			if !revoked || err == nil {
				t.Errorf("IsRevoked with a cancelled context = %v, %v; want true and an error", revoked, err)
			}
		})
	}
}

// TestReadExpired returns the expired rows only.
func TestReadExpired(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			s := newStore(t, db, tokenresource.Token{})
			ctx := context.Background()
			s.put(t, "live", "user?id=1", "user", hour())
			s.put(t, "old-user", "user?id=1", "user", past())
			s.put(t, "old-sign-in", "user?id=2", "sign_in", past())
			rows, err := s.tokens.Read(ctx, s.d, "read_expired", nil, resource.SortBy(resource.Asc("jti")))
			if err != nil {
				t.Fatal(err)
			}
			var jtis []string
			for _, r := range rows {
				jtis = append(jtis, r.JTI)
			}
			if want := []string{"old-sign-in", "old-user"}; !reflect.DeepEqual(jtis, want) {
				t.Errorf("read_expired = %v, want %v", jtis, want)
			}
		})
	}
}

// TestConfigurableActionNames: the actions take the configured names, and
// the Go API, and the actions that run others, run them under those names.
func TestConfigurableActionNames(t *testing.T) {
	names := tokenresource.ActionNames{
		StoreToken: "save", GetToken: "fetch", RevokeToken: "kill", RevokeJTI: "kill_jti",
		RevokeAllStoredForSubject: "kill_all", IsRevoked: "dead?", ReadExpired: "stale",
		ExpungeExpired: "sweep", RevokeStored: "mark_dead", StoreRevocation: "record_dead", ReadTokens: "rows",
		LockEpoch: "hold_epoch", BumpEpoch: "new_epoch",
	}
	s := newStore(t, "sqlite", tokenresource.Token{Actions: names})
	ctx := context.Background()
	decl := s.d.Declaration(s.tokens)
	for _, name := range []string{"save", "fetch", "kill", "kill_jti", "kill_all", "dead?", "stale", "sweep", "mark_dead", "record_dead", "rows", "hold_epoch", "new_epoch"} {
		if decl.Action(name) == nil {
			t.Errorf("no action %q", name)
		}
	}
	for _, name := range []string{"store_token", "get_token", "revoke_token", "revoke_jti", "revoke_all_stored_for_subject", "revoked?", "read_expired", "expunge_expired", "revoke_stored", "store_revocation", "read_tokens", "lock_epoch", "bump_epoch"} {
		if decl.Action(name) != nil {
			t.Errorf("the default action %q is there too", name)
		}
	}
	if got := s.s.Config().Actions; got != names {
		t.Errorf("Config().Actions = %+v", got)
	}
	s.put(t, "a", "user?id=1", "user", hour())
	s.put(t, "b", "user?id=1", "user", hour())
	s.put(t, "c", "user?id=2", "user", past())
	if _, err := s.s.Get(ctx, "a", ""); err != nil {
		t.Error(err)
	}
	if err := s.s.Revoke(ctx, signed(t, "a", "user?id=1", hour()), revocation.SignedOut); err != nil {
		t.Error(err)
	}
	if err := s.s.RevokeJTI(ctx, "x", "user?id=1", revocation.Revoked); err != nil {
		t.Error(err)
	}
	if n, err := s.s.RevokeAllForSubject(ctx, "user?id=1", revocation.LogOutEverywhere, tokenresource.RevokeAllOptions{}); err != nil || n != 1 {
		t.Errorf("RevokeAllForSubject = %d, %v; want 1", n, err)
	}
	if revoked, err := s.s.IsRevoked(ctx, "b"); err != nil || !revoked {
		t.Errorf("IsRevoked(b) = %v, %v", revoked, err)
	}
	if got, err := s.s.Check(ctx, []string{"a", "b", "c", "x", "zz"}, true); err != nil || len(got) != 5 {
		t.Errorf("Check = %v, %v", got, err)
	}
	epoch, err := s.s.Epoch(ctx, "user?id=1")
	if err != nil || epoch == "" {
		t.Errorf("Epoch after a revoke-all = %q, %v; want one", epoch, err)
	}
	if err := s.s.LockEpoch(ctx, "user?id=1", epoch, time.Now().Add(time.Second)); err != nil {
		t.Errorf("LockEpoch = %v", err)
	}
	s.put(t, "d", "user?id=2", "user", past())
	now := time.Now().UTC()
	if jtis, err := s.s.ExpiredJTIs(ctx, now); err != nil || !slices.Equal(slices.Sorted(slices.Values(jtis)), []string{"c", "d"}) {
		t.Errorf("ExpiredJTIs = %v, %v; want c, d", jtis, err)
	}
	if n, err := s.s.ExpungeJTIs(ctx, []string{"d"}, now); err != nil || n != 1 {
		t.Errorf("ExpungeJTIs(d) = %d, %v; want 1", n, err)
	}
	if n, err := s.s.ExpungeExpired(ctx); err != nil || n != 1 {
		t.Errorf("ExpungeExpired = %d, %v; want 1", n, err)
	}
	want := []revoked{
		{"mark_dead", "a", "user?id=1", "revocation", revocation.SignedOut},
		{"record_dead", "x", "user?id=1", "revocation", revocation.Revoked},
		{"mark_dead", "b", "user?id=1", "revocation", revocation.LogOutEverywhere},
		{"sweep", "d", "user?id=2", "user", revocation.Expired},
		{"sweep", "c", "user?id=2", "user", revocation.Expired},
	}
	if got := s.rec.revocations(t); !reflect.DeepEqual(got, want) {
		t.Errorf("notifications\n%+v\nwant\n%+v", got, want)
	}
}

// TestFor refuses resources that are not token stores of the domain.
func TestFor(t *testing.T) {
	s := newStore(t, "sqlite", tokenresource.Token{})
	type Other struct {
		ID int64 `bun:",pk,autoincrement"`
	}
	other := resource.New[Other]("other")
	if _, err := tokenresource.For(s.d, other); !errors.Is(err, resource.ErrUnknownResource) {
		t.Errorf("For(not in domain) = %v, want ErrUnknownResource", err)
	}
	d, err := resource.NewDomain("others", other).Build(context.Background(), open(t, "sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tokenresource.For(d, other); !errors.Is(err, tokenresource.ErrNotTokenResource) {
		t.Errorf("For(no token section) = %v, want ErrNotTokenResource", err)
	}
	if got := s.s.Config().ExpungeInterval; got != 12*time.Hour {
		t.Errorf("default ExpungeInterval = %s, want 12h", got)
	}
	if got := s.s.Config().Knowledge; got != (tokenresource.KnowledgeOptions{MaxAge: time.Minute, MaxEntries: 100_000}) {
		t.Errorf("default Knowledge = %+v, want a minute and 100000 entries, enabled", got)
	}
	if s.s.Domain() != s.d || s.s.Resource().Name() != "token" {
		t.Error("Domain or Resource is not the store's")
	}
}

// TestStoreCheck tells which jtis may no longer hold a session, many at
// once.
func TestStoreCheck(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			s := newStore(t, db, tokenresource.Token{})
			ctx := context.Background()
			s.put(t, "live", "user?id=1", "user", hour())
			s.put(t, "old", "user?id=1", "user", past())
			s.put(t, "gone", "user?id=1", "user", hour())
			if err := s.s.RevokeJTI(ctx, "gone", "user?id=1", revocation.SignedOut); err != nil {
				t.Fatal(err)
			}
			jtis := []string{"live", "old", "gone", "unknown"}
			// More than one batch.
			for i := range tokenresource.CheckBatch + 5 {
				jtis = append(jtis, fmt.Sprintf("filler-%d", i))
			}
			got, err := s.s.Check(ctx, jtis, false)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]revocation.Reason{"old": revocation.Expired, "gone": revocation.Revoked}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Check without presence = %v, want %v", got, want)
			}
			got, err = s.s.Check(ctx, jtis, true)
			if err != nil {
				t.Fatal(err)
			}
			if _, live := got["live"]; live || got["unknown"] != revocation.Revoked || got["filler-502"] != revocation.Revoked || len(got) != len(jtis)-1 {
				t.Errorf("Check with presence: %d entries, live %v, unknown %q", len(got), got["live"], got["unknown"])
			}
		})
	}
}
