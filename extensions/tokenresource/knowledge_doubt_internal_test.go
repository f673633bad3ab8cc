package tokenresource

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kiln-go/kiln/revocation"
)

// announce tells the knowledge's feed that jtis are about to be revoked
// (Watcher.Revoking), as a node's endpoint does when it hears another
// node's announcement.
func (f *feed) announce(jtis ...string) {
	ds := make([]revocation.Disconnect, len(jtis))
	for i, jti := range jtis {
		ds[i] = revocation.Disconnect{JTI: jti}
	}
	f.w.Revoking(ds)
}

// evictedResets is kiln_tokens_knowledge_resets_total{cause="evicted"}.
func evictedResets(k *knowledge) float64 {
	return testutil.ToFloat64(k.metrics.knowledgeResets.WithLabelValues(resetEvicted))
}

// TestKnowledgeDoubt: a token announced as being revoked loses its good
// entry, and no read of it is recorded as good for max_age after the
// announcement — neither one that began before it (it may have read the
// database before the revocation committed) nor one that began since
// (the revoking transaction may not have committed yet) — while one that
// begins once max_age has passed is. A doubt resets nothing: other
// tokens stay known. Its revocation, once heard, clears the doubt, and
// the token is known revoked.
func TestKnowledgeDoubt(t *testing.T) {
	const maxAge = time.Minute
	k, f := newKnowledgeFor(t, KnowledgeOptions{MaxAge: maxAge})
	now := time.Now()
	learnGoodNow(k, "a")
	row := &Fields{JTI: "b", Subject: "user?id=1", Purpose: PurposeUser, ExpiresAt: now.Add(time.Hour)}
	k.learnGood("b", k.begin(), now, row)
	learnGoodNow(k, "other")
	expectKnown(t, k, "a", now, false, knownGood)
	expectKnown(t, k, "b", now, true, knownGood)

	state := k.begin()
	before := time.Now() // reads of a and b begin
	f.announce("a", "b")
	after := time.Now()
	expectKnown(t, k, "a", now, false, unknown)
	expectKnown(t, k, "b", now, false, unknown)
	if n := k.entries(knownGoodLabel); n != 1 {
		t.Fatalf("%v good entries after the announcement; want other's alone", n)
	}
	if k.begin() != state {
		t.Fatal("an announcement changed the knowledge's state")
	}
	expectKnown(t, k, "other", now, false, knownGood)

	k.learnGood("a", state, before, nil) // the reads that began before end
	k.learnGood("b", state, before, row)
	expectKnown(t, k, "a", after, false, unknown)
	expectKnown(t, k, "b", after, true, unknown)
	k.learnGood("a", k.begin(), after, nil) // one that began since
	expectKnown(t, k, "a", after, false, unknown)

	later := after.Add(maxAge) // the doubt is over
	k.learnGood("a", k.begin(), later, nil)
	expectKnown(t, k, "a", later, false, knownGood)

	// A revocation heard clears the doubt; the token is known revoked.
	f.announce("c")
	f.revoke("c")
	expectKnown(t, k, "c", now, false, knownRevoked)
	gs := &k.good[k.shard("c")]
	gs.mu.RLock()
	_, doubted := gs.doubts["c"]
	gs.mu.RUnlock()
	if doubted {
		t.Fatal("c is still in doubt once its revocation was heard")
	}
	learnGoodNow(k, "c")
	expectKnown(t, k, "c", now, false, knownRevoked)

	// An announcement without a jti changes nothing.
	state = k.begin()
	f.w.Revoking([]revocation.Disconnect{{SocketID: "s:old"}})
	if k.begin() != state {
		t.Fatal("an announcement without a jti changed the knowledge's state")
	}
	expectKnown(t, k, "other", now, false, knownGood)
	if n := evictedResets(k); n != 0 {
		t.Fatalf("%v resets for evicted entries; want none", n)
	}
}

// TestKnowledgeDoubtsEvicted: the doubts are bounded, as the entries
// are. A doubt added to a full shard resets the knowledge first, so that
// a read that began before a doubt it evicts was announced cannot record
// its token as good; the doubt added holds.
func TestKnowledgeDoubtsEvicted(t *testing.T) {
	const perShard = 2
	k, f := newKnowledgeFor(t, KnowledgeOptions{MaxEntries: perShard * knowledgeShards})
	now := time.Now()
	var same []string // jtis of one shard
	for i := 0; len(same) < perShard+1; i++ {
		if jti := fmt.Sprint("doubted-", i); k.shard(jti) == 0 {
			same = append(same, jti)
		}
	}
	learnGoodNow(k, "good")

	state := k.begin()
	readAt := time.Now() // reads of same begin
	f.announce(same[:perShard]...)
	if k.begin() != state || evictedResets(k) != 0 {
		t.Fatal("doubts that fit their shard reset the knowledge")
	}
	expectKnown(t, k, "good", now, false, knownGood)

	f.announce(same[perShard]) // the shard is full
	if k.begin() == state {
		t.Fatal("a doubt added to a full shard did not change the knowledge's state")
	}
	if n := evictedResets(k); n != 1 {
		t.Fatalf("%v resets for evicted entries; want 1", n)
	}
	expectKnown(t, k, "good", now, false, unknown)
	gs := &k.good[0]
	gs.mu.RLock()
	n := len(gs.doubts)
	_, held := gs.doubts[same[perShard]]
	gs.mu.RUnlock()
	if n > perShard || !held {
		t.Fatalf("%d doubts in the shard, the one added held: %v; want at most %d, and it held", n, held, perShard)
	}
	for _, jti := range same {
		k.learnGood(jti, state, readAt, nil) // the reads end
		expectKnown(t, k, jti, readAt, false, unknown)
	}
	learnGoodNow(k, same[perShard])
	expectKnown(t, k, same[perShard], time.Now(), false, unknown)
}
