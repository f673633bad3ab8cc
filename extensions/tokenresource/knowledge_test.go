package tokenresource_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/metricstest"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
)

// feed is a revocation.Feed driven by the test, as a live endpoint on a
// transport is driven by its subscription and its messages.
type feed struct {
	prompt bool
	w      revocation.Watcher
	// fenceErr is what Fence returns: nil while the test has told the
	// watcher of every revocation it made.
	fenceErr error
}

func (f *feed) Follow(w revocation.Watcher) bool {
	f.w = w
	w.State(true)
	return f.prompt
}

// Fence implements revocation.Feed.
func (f *feed) Fence(context.Context) error { return f.fenceErr }

// knowing is a store whose knowledge follows a prompt feed, attached to its
// domain, with its metrics on a registry.
func knowing(t *testing.T, db string, section tokenresource.Token) (*store, *feed, *prometheus.Registry) {
	t.Helper()
	s := newStore(t, db, section)
	f := &feed{prompt: true}
	s.s.Follow(f)
	reg := prometheus.NewRegistry()
	if err := reg.Register(s.s); err != nil {
		t.Fatal(err)
	}
	return s, f, reg
}

// TestKnowledgeStore: a store that follows a prompt feed reads a token
// once and answers again from memory, IsRevoked and Session alike (a
// revocation check's read does not answer a presence check), only once
// its domain's Attach has succeeded. A revocation it never hears of (one
// written behind its back) stays unseen while the feed stays up, and is
// read as soon as the feed goes down; a revoked token is then refused from
// memory, as is one whose revocation it hears of.
func TestKnowledgeStore(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			s, f, reg := knowing(t, db, tokenresource.Token{})
			ctx := context.Background()
			s.put(t, "a", "user?id=1", tokenresource.PurposeUser, hour())
			s.put(t, "b", "user?id=1", tokenresource.PurposeUser, hour())

			for range 2 {
				if revoked, err := s.s.IsRevoked(ctx, "a"); err != nil || revoked {
					t.Fatalf("IsRevoked(a) = %v, %v", revoked, err)
				}
			}
			// The feed's state when the store began to follow it is no
			// reset.
			expectMetrics(t, "before Attach", reg, map[string]float64{
				`kiln_tokens_lookups_total{lookup="is_revoked"}`:         2,
				`kiln_tokens_knowledge_resets_total{cause="subscribed"}`: 0,
				`kiln_tokens_knowledge_hits_total{known="good"}`:         0,
				`kiln_tokens_knowledge_misses_total`:                     0,
				`kiln_tokens_knowledge_trusted`:                          1,
			})
			if err := s.d.Attach(f); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if revoked, err := s.s.IsRevoked(ctx, "a"); err != nil || revoked {
					t.Fatalf("IsRevoked(a) = %v, %v", revoked, err)
				}
				row, err := s.s.Session(ctx, "a")
				if err != nil || row.JTI != "a" || row.Subject != "user?id=1" || row.Purpose != tokenresource.PurposeUser || !row.ExpiresAt.After(time.Now()) {
					t.Fatalf("Session(a) = %+v, %v", row, err)
				}
				row.Subject = "changed by the caller" // its own copy
			}
			expectMetrics(t, "attached", reg, map[string]float64{
				`kiln_tokens_lookups_total{lookup="is_revoked"}`:         3,
				`kiln_tokens_lookups_total{lookup="get"}`:                1,
				`kiln_tokens_knowledge_hits_total{known="good"}`:         4,
				`kiln_tokens_knowledge_misses_total`:                     2,
				`kiln_tokens_knowledge_entries{kind="good"}`:             1,
				`kiln_tokens_knowledge_resets_total{cause="subscribed"}`: 0,
				`kiln_tokens_knowledge_hits_total{known="revoked"}`:      0,
			})

			// Revoked behind the feed's back.
			if _, err := s.layer.DB().NewUpdate().Table("tokens").Set("purpose = ?", tokenresource.PurposeRevocation).
				Where("jti = ?", "a").Exec(ctx); err != nil {
				t.Fatal(err)
			}
			if row, err := s.s.Session(ctx, "a"); err != nil || row.Subject != "user?id=1" {
				t.Fatalf("Session(a) = %+v, %v; want the row known, as it was", row, err)
			}
			f.w.State(false)
			if _, err := s.s.Session(ctx, "a"); !errors.Is(err, resource.ErrNotFound) {
				t.Fatalf("Session(a) with the feed down = %v, want ErrNotFound", err)
			}
			f.w.State(true)
			for range 2 {
				if revoked, err := s.s.IsRevoked(ctx, "a"); err != nil || !revoked {
					t.Fatalf("IsRevoked(a) = %v, %v", revoked, err)
				}
				if _, err := s.s.Session(ctx, "a"); !errors.Is(err, resource.ErrNotFound) {
					t.Fatalf("Session(a) = %v, want ErrNotFound", err)
				}
			}

			// Heard of.
			if _, err := s.s.Session(ctx, "b"); err != nil {
				t.Fatal(err)
			}
			f.w.Revoked([]revocation.Disconnect{{SocketID: "s:b", Reason: revocation.SignedOut, JTI: "b", ExpiresAt: hour()}})
			if revoked, err := s.s.IsRevoked(ctx, "b"); err != nil || !revoked {
				t.Fatalf("IsRevoked(b) = %v, %v", revoked, err)
			}
			expectMetrics(t, "revoked", reg, map[string]float64{
				`kiln_tokens_lookups_total{lookup="is_revoked"}`:         3,
				`kiln_tokens_lookups_total{lookup="get"}`:                3,
				`kiln_tokens_knowledge_hits_total{known="good"}`:         5,
				`kiln_tokens_knowledge_hits_total{known="revoked"}`:      5,
				`kiln_tokens_knowledge_misses_total`:                     4,
				`kiln_tokens_knowledge_resets_total{cause="lost"}`:       1,
				`kiln_tokens_knowledge_resets_total{cause="subscribed"}`: 1,
				`kiln_tokens_knowledge_entries{kind="revoked"}`:          2,
			})
		})
	}
}

// TestKnowledgeOff: with the knowledge disabled, or following a feed that
// is not prompt, every check reads the database.
func TestKnowledgeOff(t *testing.T) {
	for name, setUp := range map[string]func(t *testing.T) (*store, *prometheus.Registry){
		"disabled": func(t *testing.T) (*store, *prometheus.Registry) {
			s, f, reg := knowing(t, "sqlite", tokenresource.Token{Knowledge: tokenresource.KnowledgeOptions{Disabled: true}})
			if err := s.d.Attach(f); err != nil {
				t.Fatal(err)
			}
			return s, reg
		},
		"not prompt": func(t *testing.T) (*store, *prometheus.Registry) {
			s, f, reg := knowing(t, "sqlite", tokenresource.Token{})
			polled := &feed{}
			s.s.Follow(polled)
			if err := s.d.Attach(f, polled); err != nil {
				t.Fatal(err)
			}
			return s, reg
		},
	} {
		t.Run(name, func(t *testing.T) {
			s, reg := setUp(t)
			ctx := context.Background()
			s.put(t, "a", "user?id=1", tokenresource.PurposeUser, hour())
			for range 3 {
				if revoked, err := s.s.IsRevoked(ctx, "a"); err != nil || revoked {
					t.Fatalf("IsRevoked(a) = %v, %v", revoked, err)
				}
				if _, err := s.s.Session(ctx, "a"); err != nil {
					t.Fatal(err)
				}
			}
			got := metricstest.Values(t, reg)
			if diff := metricstest.Diff(got, map[string]float64{
				`kiln_tokens_lookups_total{lookup="is_revoked"}`: 3,
				`kiln_tokens_lookups_total{lookup="get"}`:        3,
				`kiln_tokens_knowledge_hits_total{known="good"}`: 0,
				`kiln_tokens_knowledge_misses_total`:             0,
				`kiln_tokens_knowledge_trusted`:                  0,
			}); len(diff) > 0 {
				t.Fatal(diff)
			}
		})
	}
}

// TestKnowledgeMaxAge: a revocation written behind the feed's back is
// seen once what the store read of the token is max_age old, the feed up
// all along.
func TestKnowledgeMaxAge(t *testing.T) {
	const maxAge = 300 * time.Millisecond
	s, f, _ := knowing(t, "sqlite", tokenresource.Token{Knowledge: tokenresource.KnowledgeOptions{MaxAge: maxAge}})
	if err := s.d.Attach(f); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s.put(t, "a", "user?id=1", tokenresource.PurposeUser, hour())
	read := time.Now()
	if revoked, err := s.s.IsRevoked(ctx, "a"); err != nil || revoked {
		t.Fatalf("IsRevoked(a) = %v, %v", revoked, err)
	}
	if _, err := s.layer.DB().NewUpdate().Table("tokens").Set("purpose = ?", tokenresource.PurposeRevocation).
		Where("jti = ?", "a").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond) // polled: time passing is the event
	defer tick.Stop()
	for ; ; <-tick.C {
		revoked, err := s.s.IsRevoked(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if revoked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the revocation is not seen %v after the read; max_age is %v", time.Since(read), maxAge)
		}
	}
	if took := time.Since(read); took < maxAge {
		t.Fatalf("seen %v after the read, before max_age (%v): the knowledge was not used", took, maxAge)
	}
}
