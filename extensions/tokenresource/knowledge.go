package tokenresource

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-go/kiln/revocation"
)

// Defaults of the knowledge section.
const (
	// DefaultKnowledgeMaxAge is how long a node trusts, at most, that a
	// token it read as good still is, when KnowledgeOptions.MaxAge is
	// zero.
	DefaultKnowledgeMaxAge = time.Minute
	// DefaultKnowledgeMaxEntries is how many tokens of each kind (good,
	// revoked) a node remembers when KnowledgeOptions.MaxEntries is zero.
	DefaultKnowledgeMaxEntries = 100_000
)

// knowledgeShards is how many parts each of the knowledge's maps is split
// into, each with its own lock, so that checks on many goroutines seldom
// wait for one another.
const knowledgeShards = 64

// knowledge is what this node knows of tokens, so that checking a session
// token needs no read of the database (Store.IsRevoked, Store.Session).
// It is the built resource's, shared by its Stores, and in use only while
// it follows at least one feed (Store.Follow) and every feed it follows is
// prompt; otherwise every check reads the database.
//
// It knows two things of a jti:
//
//   - revoked: the token is revoked. A revocation is never undone, so this
//     is always true; it is learnt from the feeds (this node's own
//     revocations, and every other node's through the pub/sub) and from
//     reads of the database, and kept until the token expires.
//   - good: a read of the database found the token not revoked (and,
//     for a session row, present with purpose user). This stays true only
//     until the token is revoked, and is trusted only while no revocation
//     can have been missed since the read began: the entry holds the
//     knowledge's state read before the read began, and is trusted while
//     the state is the same and says that every feed is up, for at most
//     maxAge after the read began, and never once its row has expired.
//
// The state is a generation and a bit: the generation changes each time a
// feed goes down or up (a lost subscription may have lost a message), a
// revocation that names no token is heard, or remembered revocations are
// evicted; the bit is set while the knowledge is in use and every feed is
// up. A revocation heard of wins over every good entry of its jti, the
// one a read under way is about to write included: known looks for a
// revocation first, and revocations are forgotten (evicted) only after
// the state has changed.
type knowledge struct {
	maxAge   time.Duration
	perShard int // entries of each kind per shard
	disabled bool
	metrics  *metrics

	// state is generation<<1 | trusted (see above); written under mu.
	state atomic.Uint64
	// inUse is set while the knowledge follows feeds, all prompt.
	inUse atomic.Bool
	// attached is set once the domain's Attach is seen to have succeeded
	// (Store.knows).
	attached atomic.Bool

	mu        sync.Mutex // followers, and every change of state
	followers []*follower
	// feeds are the followers' feeds, for fence: read on every good
	// answer, without mu; replaced (never changed) under mu.
	feeds atomic.Pointer[[]revocation.Feed]

	seed    maphash.Seed
	good    [knowledgeShards]goodShard
	revoked [knowledgeShards]revokedShard
}

type goodShard struct {
	mu sync.RWMutex
	m  map[string]goodEntry
	// doubts are the jtis announced as being revoked (Watcher.Revoking):
	// jti → until when no read of it is recorded as good.
	doubts map[string]time.Time
}

type revokedShard struct {
	mu sync.RWMutex
	m  map[string]time.Time // jti → the token's expiry
}

// goodEntry is a token read as good.
type goodEntry struct {
	state   uint64    // the knowledge's state before the read began
	readAt  time.Time // when the read began
	expires time.Time // the row's expiry; zero when the read was of no row
	row     *Fields   // the session row, for a presence check; nil when only not revoked
}

// The causes of kiln_tokens_knowledge_resets_total.
const (
	resetLost       = "lost"
	resetSubscribed = "subscribed"
	resetUnnamed    = "unnamed"
	resetEvicted    = "evicted"
)

func newKnowledge(o KnowledgeOptions, m *metrics) *knowledge {
	k := &knowledge{maxAge: o.MaxAge, perShard: max(o.MaxEntries/knowledgeShards, 1), disabled: o.Disabled, metrics: m, seed: maphash.MakeSeed()}
	for i := range k.good {
		k.good[i].m = map[string]goodEntry{}
		k.good[i].doubts = map[string]time.Time{}
		k.revoked[i].m = map[string]time.Time{}
	}
	m.knowledgeEntries(k.entries)
	return k
}

// follower is the knowledge's Watcher of one feed.
type follower struct {
	k  *knowledge
	up bool // under k.mu
	// told is set once follow has made the knowledge follow the feed:
	// the state the feed tells from within Follow is where the knowledge
	// starts, not a reset (under k.mu).
	told bool
}

var _ revocation.Watcher = (*follower)(nil)

// follow makes the knowledge follow feed, unless it is off: disabled by
// the configuration, or following a feed that is not prompt already.
func (k *knowledge) follow(feed revocation.Feed) {
	k.mu.Lock()
	if k.disabled {
		k.mu.Unlock()
		return
	}
	f := &follower{k: k}
	k.followers = append(k.followers, f)
	var feeds []revocation.Feed
	if old := k.feeds.Load(); old != nil {
		feeds = append(feeds, *old...)
	}
	feeds = append(feeds, feed)
	k.feeds.Store(&feeds)
	k.mu.Unlock()
	prompt := feed.Follow(f) // tells f the feed's state
	k.mu.Lock()
	defer k.mu.Unlock()
	if !prompt {
		// Not every revocation reaches this node at once: nothing read as
		// good may be trusted, ever, and the database is read anyway.
		k.disabled = true
	}
	f.told = true
	k.inUse.Store(!k.disabled)
	k.bumpLocked("")
}

// State implements revocation.Watcher.
func (f *follower) State(up bool) {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	f.up = up
	cause := resetLost
	switch {
	case !f.told:
		cause = "" // the feed's state as the knowledge starts to follow it
	case up:
		cause = resetSubscribed
	}
	f.k.bumpLocked(cause)
}

// Revoking implements revocation.Watcher: the announced tokens are in
// doubt until their revocation is heard of, or for maxAge (a transaction
// that failed after announcing them revoked nothing).
func (f *follower) Revoking(ds []revocation.Disconnect) {
	if !f.k.inUse.Load() {
		return
	}
	now := time.Now()
	for _, d := range ds {
		if d.JTI != "" {
			f.k.doubt(d.JTI, now)
		}
	}
}

// Revoked implements revocation.Watcher. Tokens removed for being expired
// are no revocation: their expiry refuses them already.
func (f *follower) Revoked(ds []revocation.Disconnect) {
	if !f.k.inUse.Load() {
		return
	}
	now := time.Now()
	for _, d := range ds {
		switch {
		case d.Reason == revocation.Expired:
		case d.JTI == "":
			f.k.reset(resetUnnamed)
		default:
			f.k.learnRevoked(d.JTI, d.ExpiresAt, now)
		}
	}
}

// reset makes every good entry untrusted.
func (k *knowledge) reset(cause string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.bumpLocked(cause)
}

// bumpLocked moves to the next generation, trusted while in use with
// every feed up, and counts a reset of cause unless it is empty; k.mu is
// held.
func (k *knowledge) bumpLocked(cause string) {
	trusted := k.inUse.Load() && len(k.followers) > 0
	for _, f := range k.followers {
		trusted = trusted && f.up
	}
	next := (k.state.Load()>>1 + 1) << 1
	if trusted {
		next |= 1
		k.metrics.knowledgeTrusted.Set(1)
	} else {
		k.metrics.knowledgeTrusted.Set(0)
	}
	k.state.Store(next)
	if cause != "" {
		k.metrics.knowledgeResets.WithLabelValues(cause).Inc()
	}
}

// errNoFeed is fence's error when the knowledge follows no feed.
var errNoFeed = errors.New("kiln/tokenresource: the knowledge follows no feed")

// fence returns once every feed the knowledge follows has told it of
// every revocation announced or published before the call
// (revocation.Feed.Fence): a good entry still trusted after it may answer
// a check that began before the call.
func (k *knowledge) fence(ctx context.Context) error {
	feeds := k.feeds.Load()
	if feeds == nil {
		return errNoFeed
	}
	for _, feed := range *feeds {
		if err := feed.Fence(ctx); err != nil {
			return err
		}
	}
	return nil
}

// answer is what the knowledge knows of a jti.
type answer int

const (
	unknown answer = iota // read the database
	knownGood
	knownRevoked
)

func (k *knowledge) shard(jti string) uint64 {
	return maphash.String(k.seed, jti) % knowledgeShards
}

// known says what the knowledge knows of jti at now: revoked, good (with
// the session row when needRow: a good entry without one is unknown), or
// unknown. A revoked answer is also given out of use: it is always true.
func (k *knowledge) known(jti string, now time.Time, needRow bool) (answer, *Fields) {
	i := k.shard(jti)
	rs := &k.revoked[i]
	rs.mu.RLock()
	_, revoked := rs.m[jti]
	rs.mu.RUnlock()
	if revoked {
		return knownRevoked, nil
	}
	state := k.state.Load()
	if state&1 == 0 {
		return unknown, nil
	}
	gs := &k.good[i]
	gs.mu.RLock()
	e, ok := gs.m[jti]
	gs.mu.RUnlock()
	if !ok || !k.trusted(e, state, now) || needRow && e.row == nil {
		return unknown, nil
	}
	return knownGood, e.row
}

// trusted reports whether good entry e may be trusted at now, the
// knowledge's state being state.
func (k *knowledge) trusted(e goodEntry, state uint64, now time.Time) bool {
	return e.state == state && now.Sub(e.readAt) < k.maxAge && (e.expires.IsZero() || now.Before(e.expires))
}

// begin is the state to give learnGood, read before the database is.
func (k *knowledge) begin() uint64 { return k.state.Load() }

// learnGood records that a read of the database that began at readAt, in
// state, found jti good: not revoked, and present as row (with its expiry)
// when row is not nil. Nothing is recorded when the state was not trusted
// or has changed since: such an entry would never be trusted.
func (k *knowledge) learnGood(jti string, state uint64, readAt time.Time, row *Fields) {
	if state&1 == 0 || k.state.Load() != state {
		return
	}
	e := goodEntry{state: state, readAt: readAt, row: row}
	if row != nil {
		e.expires = row.ExpiresAt
	}
	i := k.shard(jti)
	gs := &k.good[i]
	gs.mu.Lock()
	if until, ok := gs.doubts[jti]; ok && readAt.Before(until) {
		// Announced as being revoked: the read may have begun before
		// the revocation committed.
		gs.mu.Unlock()
		return
	}
	if old, ok := gs.m[jti]; ok && row == nil && old.row != nil && old.state == state {
		e = old // a presence read knows more
	} else if !ok && len(gs.m) >= k.perShard {
		k.evictGood(gs, readAt)
	}
	gs.m[jti] = e
	gs.mu.Unlock()
	// A revocation heard since the read began wins anyway (known looks
	// for revocations first, and none is forgotten without a new state);
	// a revoked token's good entry would only hold room.
	rs := &k.revoked[i]
	rs.mu.RLock()
	_, revoked := rs.m[jti]
	rs.mu.RUnlock()
	if revoked {
		gs.mu.Lock()
		delete(gs.m, jti)
		gs.mu.Unlock()
	}
}

// evictGood makes room in a full shard (its lock held): the entries that
// can no longer be trusted go, or else an eighth of them. Forgetting a
// good token costs only a read.
func (k *knowledge) evictGood(gs *goodShard, now time.Time) {
	state := k.state.Load()
	evict(gs.m, k.perShard, func(e goodEntry) bool { return !k.trusted(e, state, now) })
}

// doubt records that jti was announced as being revoked at now: its good
// entry goes, and no read is recorded as good for maxAge.
func (k *knowledge) doubt(jti string, now time.Time) {
	gs := &k.good[k.shard(jti)]
	gs.mu.Lock()
	defer gs.mu.Unlock()
	delete(gs.m, jti)
	if _, ok := gs.doubts[jti]; !ok && len(gs.doubts) >= k.perShard {
		// A doubt forgotten lets a read that began before it be
		// recorded as good: untrust every such read first.
		k.reset(resetEvicted)
		evict(gs.doubts, k.perShard, func(until time.Time) bool { return !now.Before(until) })
	}
	gs.doubts[jti] = now.Add(k.maxAge)
}

// learnRevoked records that jti is revoked until expires (zero: unknown,
// kept until evicted), and forgets it as good.
func (k *knowledge) learnRevoked(jti string, expires, now time.Time) {
	if expires.IsZero() {
		expires = farFuture
	}
	i := k.shard(jti)
	rs := &k.revoked[i]
	rs.mu.Lock()
	if _, ok := rs.m[jti]; !ok && len(rs.m) >= k.perShard {
		k.evictRevoked(rs, now)
	}
	rs.m[jti] = expires
	rs.mu.Unlock()
	gs := &k.good[i]
	gs.mu.Lock()
	delete(gs.m, jti)
	delete(gs.doubts, jti) // the revocation, known now, wins anyway
	gs.mu.Unlock()
}

// evictRevoked makes room in a full shard (its lock held): the expired
// revocations go, or else an eighth of them. Either way every good entry
// is untrusted first: a read that began before the revocation of a jti
// was heard must not record that jti as good once the revocation is
// forgotten.
func (k *knowledge) evictRevoked(rs *revokedShard, now time.Time) {
	k.reset(resetEvicted)
	evict(rs.m, k.perShard, func(exp time.Time) bool { return !now.Before(exp) })
}

// evict makes room in m, full at limit entries: the stale entries go, or
// else, when that is not enough, an eighth of them.
func evict[V any](m map[string]V, limit int, stale func(V) bool) {
	for key, v := range m {
		if stale(v) {
			delete(m, key)
		}
	}
	if len(m) < limit {
		return
	}
	n := max(len(m)/8, 1)
	for key := range m {
		if n == 0 {
			break
		}
		delete(m, key)
		n--
	}
}

// entries counts the entries of a kind (knownGoodLabel or
// knownRevokedLabel), for the kiln_tokens_knowledge_entries gauge.
func (k *knowledge) entries(kind string) float64 {
	n := 0
	for i := range knowledgeShards {
		if kind == knownGoodLabel {
			k.good[i].mu.RLock()
			n += len(k.good[i].m)
			k.good[i].mu.RUnlock()
		} else {
			k.revoked[i].mu.RLock()
			n += len(k.revoked[i].m)
			k.revoked[i].mu.RUnlock()
		}
	}
	return float64(n)
}
