package tokenresource_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/metricstest"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
)

// expectMetrics checks the metrics of want, and that every other counter
// of the token store is 0.
func expectMetrics(t *testing.T, what string, reg prometheus.Gatherer, want map[string]float64) {
	t.Helper()
	got := metricstest.Values(t, reg)
	all := maps.Clone(want)
	for name := range got {
		if _, ok := want[name]; !ok && strings.HasSuffix(strings.SplitN(name, "{", 2)[0], "_total") {
			all[name] = 0
		}
	}
	if diff := metricstest.Diff(got, all); len(diff) > 0 {
		t.Fatalf("%s:\n%s", what, strings.Join(diff, "\n"))
	}
}

// The revocation counter counts each revoked token once, after commit,
// by reason, whichever way it was revoked (the Store, a revoke-all, an
// action run by name); a rolled-back revocation and a second revoke of a
// token count nothing. Lookups count per call, and a token not found is an
// answer, not an error.
func TestMetricsCountRevocationsAfterCommit(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			s := newStore(t, db, tokenresource.Token{})
			reg := prometheus.NewRegistry()
			if err := reg.Register(s.s); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for _, jti := range []string{"a", "b", "c", "d"} {
				s.put(t, jti, "user?id=1", tokenresource.PurposeUser, hour())
			}
			s.put(t, "e", "user?id=2", tokenresource.PurposeUser, hour())
			expectMetrics(t, "after storing", reg, map[string]float64{
				`kiln_tokens_revoked_total{reason="signed_out"}`:         0,
				`kiln_tokens_revoked_total{reason="log_out_everywhere"}`: 0,
				`kiln_tokens_revoked_total{reason="password_changed"}`:   0,
				`kiln_tokens_revoked_total{reason="revoked"}`:            0,
				`kiln_tokens_lookups_total{lookup="get"}`:                0,
				`kiln_tokens_errors_total{operation="store_token"}`:      0,
				"kiln_tokens_expunge_last_success_timestamp_seconds":     0,
			})

			if err := s.s.Revoke(ctx, signed(t, "a", "user?id=1", hour()), revocation.SignedOut); err != nil {
				t.Fatal(err)
			}
			if err := s.s.RevokeJTI(ctx, "b", "user?id=1", revocation.Revoked); err != nil {
				t.Fatal(err)
			}
			if err := s.s.RevokeJTI(ctx, "b", "user?id=1", revocation.Revoked); !errors.Is(err, tokenresource.ErrAlreadyRevoked) {
				t.Fatalf("second revoke: %v, want ErrAlreadyRevoked", err)
			}
			// Not stored: a revocation row of its own.
			if err := s.s.RevokeJTI(ctx, "unstored", "user?id=3", "custom"); err != nil {
				t.Fatal(err)
			}
			rollback := errors.New("rolled back")
			err := s.d.InTransaction(ctx, func(ctx context.Context) error {
				if err := s.s.RevokeJTI(ctx, "e", "user?id=2", revocation.SignedOut); err != nil {
					return err
				}
				return rollback
			})
			if !errors.Is(err, rollback) {
				t.Fatalf("transaction: %v", err)
			}
			if _, err := s.d.Run(ctx, s.tokens, "revoke_jti", resource.Input{"jti": "e", "subject": "user?id=2", "reason": "password_changed"}); err != nil {
				t.Fatal(err)
			}
			// c and d: a and b are revoked already.
			if n, err := s.s.RevokeAllForSubject(ctx, "user?id=1", revocation.LogOutEverywhere, tokenresource.RevokeAllOptions{}); err != nil || n != 2 {
				t.Fatalf("RevokeAllForSubject = %d, %v; want 2", n, err)
			}

			if revoked, err := s.s.IsRevoked(ctx, "a"); err != nil || !revoked {
				t.Fatalf("IsRevoked(a) = %v, %v", revoked, err)
			}
			if revoked, err := s.s.IsRevoked(ctx, "never"); err != nil || revoked {
				t.Fatalf("IsRevoked(never) = %v, %v", revoked, err)
			}
			if _, err := s.s.Get(ctx, "a", tokenresource.PurposeUser); !errors.Is(err, resource.ErrNotFound) {
				t.Fatalf("Get of a revoked token: %v, want ErrNotFound", err)
			}
			if _, err := s.s.Check(ctx, []string{"a", "b", "c"}, true); err != nil {
				t.Fatal(err)
			}
			expectMetrics(t, "after the revocations", reg, map[string]float64{
				`kiln_tokens_revoked_total{reason="signed_out"}`:         1,
				`kiln_tokens_revoked_total{reason="revoked"}`:            1,
				`kiln_tokens_revoked_total{reason="other"}`:              1,
				`kiln_tokens_revoked_total{reason="password_changed"}`:   1,
				`kiln_tokens_revoked_total{reason="log_out_everywhere"}`: 2,
				`kiln_tokens_lookups_total{lookup="is_revoked"}`:         2,
				`kiln_tokens_lookups_total{lookup="get"}`:                1,
				`kiln_tokens_lookups_total{lookup="check"}`:              1,
			})
		})
	}
}

// The expunger's metrics: each run counts, the rows it removed count after
// commit, and the time of the last success moves with each success only.
// A store that fails counts an error per failed call, by operation; a
// cancelled call is not the store's failure.
func TestMetricsExpungeAndErrors(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			s := newStore(t, db, tokenresource.Token{})
			reg := prometheus.NewRegistry()
			if err := reg.Register(s.s); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			s.put(t, "old", "user?id=1", tokenresource.PurposeUser, past())
			s.put(t, "old-sign-in", "user?id=1", tokenresource.PurposeSignIn, past())
			s.put(t, "live", "user?id=1", tokenresource.PurposeUser, hour())
			before := time.Now()
			if n, err := s.s.ExpungeExpired(ctx); err != nil || n != 2 {
				t.Fatalf("ExpungeExpired = %d, %v; want 2", n, err)
			}
			got := metricstest.Values(t, reg)
			last := got["kiln_tokens_expunge_last_success_timestamp_seconds"]
			if last < float64(before.Unix()) || last > float64(time.Now().Unix()+1) {
				t.Fatalf("last success at %v, want between %v and now", last, before.Unix())
			}
			expectMetrics(t, "after an expunge", reg, map[string]float64{
				"kiln_tokens_expunged_total":                         2,
				"kiln_tokens_expunge_runs_total":                     1,
				"kiln_tokens_expunge_last_success_timestamp_seconds": last,
			})

			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := s.s.IsRevoked(cancelled, "live"); !errors.Is(err, context.Canceled) {
				t.Fatalf("IsRevoked with a cancelled ctx: %v", err)
			}

			// The database goes away: every call fails.
			if err := s.layer.Close(); err != nil {
				t.Fatal(err)
			}
			if revoked, err := s.s.IsRevoked(ctx, "live"); err == nil || !revoked {
				t.Fatalf("IsRevoked with the database closed = %v, %v; want true and an error", revoked, err)
			}
			if _, err := s.s.Get(ctx, "live", ""); err == nil {
				t.Fatal("Get with the database closed succeeded")
			}
			if _, err := s.s.Check(ctx, []string{"live"}, false); err == nil {
				t.Fatal("Check with the database closed succeeded")
			}
			if err := s.s.RevokeJTI(ctx, "live", "user?id=1", revocation.Revoked); err == nil {
				t.Fatal("RevokeJTI with the database closed succeeded")
			}
			if err := s.s.StoreToken(ctx, tokenresource.Fields{JTI: "new", Subject: "user?id=1", Purpose: tokenresource.PurposeUser, ExpiresAt: hour()}); err == nil {
				t.Fatal("StoreToken with the database closed succeeded")
			}
			if _, err := s.s.ExpungeExpired(ctx); err == nil {
				t.Fatal("ExpungeExpired with the database closed succeeded")
			}
			expectMetrics(t, "with the database closed", reg, map[string]float64{
				"kiln_tokens_expunged_total":                         2,
				"kiln_tokens_expunge_runs_total":                     2,
				"kiln_tokens_expunge_last_success_timestamp_seconds": last,
				`kiln_tokens_lookups_total{lookup="is_revoked"}`:     2,
				`kiln_tokens_lookups_total{lookup="get"}`:            1,
				`kiln_tokens_lookups_total{lookup="check"}`:          1,
				`kiln_tokens_errors_total{operation="is_revoked"}`:   1,
				`kiln_tokens_errors_total{operation="get"}`:          1,
				`kiln_tokens_errors_total{operation="check"}`:        1,
				`kiln_tokens_errors_total{operation="revoke"}`:       1,
				`kiln_tokens_errors_total{operation="store_token"}`:  1,
				`kiln_tokens_errors_total{operation="expunge"}`:      1,
			})
		})
	}
}

// Every Store of a built domain reports the same metrics: a second one on
// the registry is refused; another build of the same declaration counts
// apart.
func TestMetricsOnePerBuild(t *testing.T) {
	s := newStore(t, "sqlite", tokenresource.Token{})
	reg := prometheus.NewRegistry()
	if err := reg.Register(s.s); err != nil {
		t.Fatal(err)
	}
	again, err := tokenresource.For(s.d, s.tokens)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(again); !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
		t.Fatalf("a second Store on one registry: %v, want AlreadyRegisteredError", err)
	}
	ctx := context.Background()
	s.put(t, "a", "user?id=1", tokenresource.PurposeUser, hour())
	if err := again.RevokeJTI(ctx, "a", "user?id=1", revocation.SignedOut); err != nil {
		t.Fatal(err)
	}
	if _, err := again.IsRevoked(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	expectMetrics(t, "counted through the second Store", reg, map[string]float64{
		`kiln_tokens_revoked_total{reason="signed_out"}`: 1,
		`kiln_tokens_lookups_total{lookup="is_revoked"}`: 1,
	})

	other, err := resource.NewDomain("tokens", s.tokens).Build(ctx, open(t, "sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	otherStore, err := tokenresource.For(other, s.tokens)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := otherStore.IsRevoked(ctx, "a"); err == nil {
		t.Fatal("IsRevoked on an unmigrated database succeeded")
	}
	expectMetrics(t, "after another build's lookup", reg, map[string]float64{
		`kiln_tokens_revoked_total{reason="signed_out"}`: 1,
		`kiln_tokens_lookups_total{lookup="is_revoked"}`: 1,
	})
}
