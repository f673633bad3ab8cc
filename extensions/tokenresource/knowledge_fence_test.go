package tokenresource_test

import (
	"context"
	"errors"
	"testing"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/resource"
)

// TestKnowledgeFenceFails: a token known as good is answered from memory
// only once the feed's fence succeeds. When it fails (the subscription is
// down or stalled), the token is read from the database instead — counted
// as a lookup and as a fence failure — so that a revocation the store
// never heard of (written behind its back) is seen; IsRevoked and Session
// alike. A token known as revoked needs no fence.
func TestKnowledgeFenceFails(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			s, f, reg := knowing(t, db, tokenresource.Token{})
			if err := s.d.Attach(f); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			s.put(t, "a", "user?id=1", tokenresource.PurposeUser, hour())
			s.put(t, "b", "user?id=1", tokenresource.PurposeUser, hour())
			s.put(t, "c", "user?id=1", tokenresource.PurposeUser, hour())
			isRevoked := func(jti string, want bool) {
				t.Helper()
				if revoked, err := s.s.IsRevoked(ctx, jti); err != nil || revoked != want {
					t.Fatalf("IsRevoked(%s) = %v, %v; want %v", jti, revoked, err, want)
				}
			}
			session := func(jti string, present bool) {
				t.Helper()
				row, err := s.s.Session(ctx, jti)
				if present && (err != nil || row.JTI != jti) {
					t.Fatalf("Session(%s) = %+v, %v; want its row", jti, row, err)
				}
				if !present && !errors.Is(err, resource.ErrNotFound) {
					t.Fatalf("Session(%s) = %+v, %v; want ErrNotFound", jti, row, err)
				}
			}
			isRevoked("a", false)
			session("b", true)
			isRevoked("c", false)

			// Revoked behind the store's back: no feed hears of it.
			if _, err := s.layer.DB().NewUpdate().Table("tokens").Set("purpose = ?", tokenresource.PurposeRevocation).
				Where("jti IN (?, ?)", "a", "b").Exec(ctx); err != nil {
				t.Fatal(err)
			}
			isRevoked("a", false) // from memory: the fence succeeds
			session("b", true)
			expectMetrics(t, "known good", reg, map[string]float64{
				`kiln_tokens_lookups_total{lookup="is_revoked"}`:         2,
				`kiln_tokens_lookups_total{lookup="get"}`:                1,
				`kiln_tokens_knowledge_misses_total`:                     3,
				`kiln_tokens_knowledge_hits_total{known="good"}`:         2,
				`kiln_tokens_knowledge_resets_total{cause="subscribed"}`: 0,
				`kiln_tokens_knowledge_entries{kind="good"}`:             3,
				`kiln_tokens_knowledge_trusted`:                          1,
			})

			f.fenceErr = errors.New("kiln/live: the pub/sub subscription is down")
			isRevoked("a", true)
			session("b", false)
			isRevoked("c", false) // good, read each time
			isRevoked("c", false)
			expectMetrics(t, "fence failed", reg, map[string]float64{
				`kiln_tokens_lookups_total{lookup="is_revoked"}`:         5,
				`kiln_tokens_lookups_total{lookup="get"}`:                2,
				`kiln_tokens_knowledge_misses_total`:                     7,
				`kiln_tokens_knowledge_hits_total{known="good"}`:         2,
				`kiln_tokens_knowledge_fence_failures_total`:             4,
				`kiln_tokens_knowledge_resets_total{cause="subscribed"}`: 0,
				`kiln_tokens_knowledge_entries{kind="good"}`:             1,
				`kiln_tokens_knowledge_entries{kind="revoked"}`:          2,
				`kiln_tokens_knowledge_trusted`:                          1,
			})

			// Read as revoked, a and b are known so: no fence, no read.
			isRevoked("a", true)
			session("a", false)
			isRevoked("b", true)
			session("b", false)
			f.fenceErr = nil
			isRevoked("c", false)
			expectMetrics(t, "known revoked", reg, map[string]float64{
				`kiln_tokens_lookups_total{lookup="is_revoked"}`:         5,
				`kiln_tokens_lookups_total{lookup="get"}`:                2,
				`kiln_tokens_knowledge_misses_total`:                     7,
				`kiln_tokens_knowledge_hits_total{known="good"}`:         3,
				`kiln_tokens_knowledge_hits_total{known="revoked"}`:      4,
				`kiln_tokens_knowledge_fence_failures_total`:             4,
				`kiln_tokens_knowledge_resets_total{cause="subscribed"}`: 0,
				`kiln_tokens_knowledge_entries{kind="good"}`:             1,
				`kiln_tokens_knowledge_entries{kind="revoked"}`:          2,
				`kiln_tokens_knowledge_trusted`:                          1,
			})
		})
	}
}
