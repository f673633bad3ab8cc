package tokenresource

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-go/kiln/revocation"
)

// feed drives a knowledge as a live endpoint does: it hands its watcher
// the state of its subscription and the revocations it hears of.
type feed struct {
	prompt bool
	up     bool
	w      revocation.Watcher
}

func (f *feed) Follow(w revocation.Watcher) bool {
	f.w = w
	w.State(f.up)
	return f.prompt
}

// Fence implements revocation.Feed: the test tells the watcher of every
// revocation before it checks, so there is never one on its way.
func (f *feed) Fence(context.Context) error { return nil }

func (f *feed) revoke(jtis ...string) {
	ds := make([]revocation.Disconnect, len(jtis))
	for i, jti := range jtis {
		ds[i] = revocation.Disconnect{SocketID: "s:" + jti, Reason: revocation.Revoked, JTI: jti, ExpiresAt: time.Now().Add(time.Hour)}
	}
	f.w.Revoked(ds)
}

// newKnowledgeFor makes a knowledge with the options (defaults applied)
// that follows an up, prompt feed.
func newKnowledgeFor(t *testing.T, o KnowledgeOptions) (*knowledge, *feed) {
	t.Helper()
	Schema.Sub("knowledge").Defaults(&o)
	k := newKnowledge(o, newMetrics())
	f := &feed{prompt: true, up: true}
	k.follow(f)
	if !k.inUse.Load() {
		t.Fatal("a knowledge that follows an up, prompt feed is not in use")
	}
	return k, f
}

// learnGoodNow records jti as read good by a read that begins and ends
// now, as Store.IsRevoked does.
func learnGoodNow(k *knowledge, jti string) {
	k.learnGood(jti, k.begin(), time.Now(), nil)
}

func expectKnown(t *testing.T, k *knowledge, jti string, at time.Time, needRow bool, want answer) {
	t.Helper()
	if got, _ := k.known(jti, at, needRow); got != want {
		t.Fatalf("%s: known %v, want %v", jti, got, want)
	}
}

func (a answer) String() string {
	return [...]string{"unknown", "good", "revoked"}[a]
}

// TestKnowledgeGeneration: a token read as good is trusted while the
// feed stays up; a loss, a resubscription and a revocation that names no
// token each end that trust, and only a new read gives it back. A read
// that began before such a change records nothing.
func TestKnowledgeGeneration(t *testing.T) {
	k, f := newKnowledgeFor(t, KnowledgeOptions{})
	now := time.Now()
	learnGoodNow(k, "a")
	expectKnown(t, k, "a", now, false, knownGood)

	for _, change := range []struct {
		name string
		do   func()
	}{
		{"lost and subscribed again", func() { f.w.State(false); f.w.State(true) }},
		{"subscribed again without a loss seen", func() { f.w.State(true) }},
		{"a revocation without a jti", func() { f.w.Revoked([]revocation.Disconnect{{SocketID: "s:old", Reason: revocation.Revoked}}) }},
	} {
		learnGoodNow(k, "a")
		expectKnown(t, k, "a", now, false, knownGood)
		change.do()
		expectKnown(t, k, "a", now, false, unknown)

		state := k.begin() // a read begins
		change.do()
		k.learnGood("b", state, now, nil) // and ends after the change
		expectKnown(t, k, "b", now, false, unknown)
	}

	f.w.State(false)
	learnGoodNow(k, "c") // read while down: not trusted, then or later
	expectKnown(t, k, "c", now, false, unknown)
	f.w.State(true)
	expectKnown(t, k, "c", now, false, unknown)
	learnGoodNow(k, "c")
	expectKnown(t, k, "c", now, false, knownGood)
}

// TestKnowledgeRevokedWins: a revocation heard of is known whatever the
// state, outlives every generation change, and wins over a read that
// found the token good, even one that began before it was heard.
func TestKnowledgeRevokedWins(t *testing.T) {
	k, f := newKnowledgeFor(t, KnowledgeOptions{})
	now := time.Now()
	learnGoodNow(k, "a")
	f.revoke("a")
	expectKnown(t, k, "a", now, false, knownRevoked)

	state := k.begin() // a read of b begins, and finds it good
	f.revoke("b")      // b's revocation is heard before the read ends
	k.learnGood("b", state, now, nil)
	expectKnown(t, k, "b", now, false, knownRevoked)
	learnGoodNow(k, "b")
	expectKnown(t, k, "b", now, false, knownRevoked)

	f.w.State(false)
	expectKnown(t, k, "a", now, false, knownRevoked)
	f.w.State(true)
	f.w.Revoked([]revocation.Disconnect{{SocketID: "s:old"}})
	expectKnown(t, k, "a", now, false, knownRevoked)

	// A token removed for being expired is no revocation.
	learnGoodNow(k, "c")
	f.w.Revoked([]revocation.Disconnect{{SocketID: "s:c", Reason: revocation.Expired, JTI: "c", ExpiresAt: now.Add(-time.Second)}})
	expectKnown(t, k, "c", now, false, knownGood)
}

// TestKnowledgeMaxAgeAndExpiry: a token read as good is trusted for less
// than max_age after its read began, and never at or past its row's
// expiry; an entry without a row does not answer a presence check.
func TestKnowledgeMaxAgeAndExpiry(t *testing.T) {
	k, _ := newKnowledgeFor(t, KnowledgeOptions{MaxAge: time.Minute})
	now := time.Now()
	k.learnGood("a", k.begin(), now, nil)
	expectKnown(t, k, "a", now.Add(time.Minute-time.Nanosecond), false, knownGood)
	expectKnown(t, k, "a", now.Add(time.Minute), false, unknown)
	expectKnown(t, k, "a", now, true, unknown) // no row

	row := &Fields{JTI: "b", Subject: "user?id=1", Purpose: PurposeUser, ExpiresAt: now.Add(time.Second)}
	k.learnGood("b", k.begin(), now, row)
	expectKnown(t, k, "b", now, true, knownGood)
	if _, got := k.known("b", now, true); got != row {
		t.Errorf("known gave row %+v, want %+v", got, row)
	}
	expectKnown(t, k, "b", now.Add(time.Second), true, unknown)
	expectKnown(t, k, "b", now.Add(time.Second), false, unknown)

	// A read of the revocation row alone does not forget the session row.
	k.learnGood("b", k.begin(), now, nil)
	expectKnown(t, k, "b", now, true, knownGood)
}

// TestKnowledgeEntriesUnder64: a max_entries under 64 still keeps one
// entry in each of the 64 parts, as documented: up to 64.
func TestKnowledgeEntriesUnder64(t *testing.T) {
	k, _ := newKnowledgeFor(t, KnowledgeOptions{MaxEntries: 2})
	for i := range 20 * knowledgeShards {
		learnGoodNow(k, fmt.Sprint("good-", i))
	}
	if n := k.entries(knownGoodLabel); n > knowledgeShards || n < 2 {
		t.Errorf("%v good entries with max_entries 2; want 2 to %d", n, knowledgeShards)
	}
}

// TestKnowledgeEviction: both kinds are bounded. Good tokens are
// forgotten past the bound; revocations too, but first every good token
// stops being trusted, so that a read that began before a forgotten
// revocation was heard cannot record its token as good.
func TestKnowledgeEviction(t *testing.T) {
	const perShard = 4
	k, f := newKnowledgeFor(t, KnowledgeOptions{MaxEntries: perShard * knowledgeShards})
	now := time.Now()
	for i := range 10 * perShard * knowledgeShards {
		learnGoodNow(k, fmt.Sprint("good-", i))
	}
	if n := k.entries(knownGoodLabel); n > perShard*knowledgeShards {
		t.Errorf("%v good entries, bound %d", n, perShard*knowledgeShards)
	}

	// Fill one shard with revocations, and read a token of it as good.
	var same []string
	for i := 0; len(same) < perShard+1; i++ {
		if jti := fmt.Sprint("revoked-", i); k.shard(jti) == 0 {
			same = append(same, jti)
		}
	}
	f.revoke(same[:perShard]...)
	learnGoodNow(k, "good-0")
	expectKnown(t, k, "good-0", now, false, knownGood)
	state := k.begin() // a read of same[0] begins; its revocation was heard
	f.revoke(same[perShard])
	if n := k.entries(knownRevokedLabel); n > perShard {
		t.Fatalf("%v revocations kept, bound %d", n, perShard)
	}
	expectKnown(t, k, "good-0", now, false, unknown)
	k.learnGood(same[0], state, now, nil) // the read ends: same[0] may be forgotten
	if got, _ := k.known(same[0], now, false); got == knownGood {
		t.Fatal("a token whose revocation was forgotten is known good from a read that began before")
	}
	expectKnown(t, k, same[perShard], now, false, knownRevoked)

	// Expired revocations go first.
	k2, f2 := newKnowledgeFor(t, KnowledgeOptions{MaxEntries: knowledgeShards})
	var two []string
	for i := 0; len(two) < 2; i++ {
		if jti := fmt.Sprint("r-", i); k2.shard(jti) == 0 {
			two = append(two, jti)
		}
	}
	f2.w.Revoked([]revocation.Disconnect{{SocketID: "s", Reason: revocation.Revoked, JTI: two[0], ExpiresAt: now.Add(-time.Second)}})
	f2.revoke(two[1])
	expectKnown(t, k2, two[0], now, false, unknown)
	expectKnown(t, k2, two[1], now, false, knownRevoked)
}

// TestKnowledgeFeeds: with two feeds, good tokens are trusted only while
// both are up; a feed that is not prompt turns the knowledge off for good,
// and so does the configuration.
func TestKnowledgeFeeds(t *testing.T) {
	k, _ := newKnowledgeFor(t, KnowledgeOptions{})
	second := &feed{prompt: true, up: false}
	k.follow(second)
	now := time.Now()
	learnGoodNow(k, "a")
	expectKnown(t, k, "a", now, false, unknown)
	second.w.State(true)
	learnGoodNow(k, "a")
	expectKnown(t, k, "a", now, false, knownGood)

	k.follow(&feed{prompt: false, up: true})
	if k.inUse.Load() {
		t.Fatal("in use while following a feed that is not prompt")
	}
	expectKnown(t, k, "a", now, false, unknown)
	k.follow(&feed{prompt: true, up: true})
	if k.inUse.Load() {
		t.Fatal("in use again after a feed that is not prompt")
	}

	off := newKnowledge(KnowledgeOptions{Disabled: true, MaxAge: time.Minute, MaxEntries: 10}, newMetrics())
	f := &feed{prompt: true, up: true}
	off.follow(f)
	if off.inUse.Load() || f.w != nil {
		t.Fatal("a disabled knowledge follows its feed")
	}
}

// TestKnowledgeRace: readers check and learn tokens while a feed revokes
// them, flaps and, the bound being small, evicts. Once a token's
// revocation has been heard, no check that begins answers it good. Run
// with -race.
func TestKnowledgeRace(t *testing.T) {
	k, f := newKnowledgeFor(t, KnowledgeOptions{MaxEntries: 256})
	const tokens = 200
	// committed is the database: set before the revocation is published.
	// heard is set once the feed has told the knowledge.
	var committed, heard, seenGood [tokens]atomic.Bool
	var wrong, good atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := (i*7 + r) % tokens
				jti := fmt.Sprint("t-", n)
				wasHeard := heard[n].Load()
				a, _ := k.known(jti, time.Now(), false)
				if a == unknown {
					state := k.begin()
					if committed[n].Load() {
						k.learnRevoked(jti, time.Now().Add(time.Hour), time.Now())
					} else {
						k.learnGood(jti, state, time.Now(), nil)
					}
				}
				if a == knownGood {
					seenGood[n].Store(true)
					good.Add(1)
					if wasHeard {
						wrong.Add(1)
					}
				}
			}
		})
	}
	wg.Go(func() {
		for n := range tokens {
			for !seenGood[n].Load() { // known good first, then revoked
				runtime.Gosched()
			}
			committed[n].Store(true)
			f.revoke(fmt.Sprint("t-", n))
			heard[n].Store(true)
			if n%20 == 0 {
				f.w.State(false)
				f.w.State(true)
			}
		}
		close(stop)
	})
	wg.Wait()
	if n := wrong.Load(); n > 0 {
		t.Fatalf("%d checks answered good after the revocation was heard", n)
	}
}
