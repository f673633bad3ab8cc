package live

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Leases let a node's token store answer from memory without a fence.
//
// Every endpoint that is followed (Follow) on a prompt transport is a
// member, unless made with WithLeases(false): it publishes an alive
// message every AliveInterval, each one once it heard the one before
// back. Each member it hears back renews its lease, until the alive's
// sending plus LeaseTerm. Every node keeps a view of the members it
// hears, each until LeaseTerm (and a margin) after it heard its last
// alive: by then the member's own lease has ended, since it was sent
// before it was heard.
//
// A member that hears a revoking message from another node tells its
// followers (Watcher.Revoking), then acknowledges it with an ack message.
// Announce returns only once every member in its view has acknowledged
// its messages, or left its view. So while a member's lease runs, every
// revocation committed on any node was acknowledged by it first: it
// knows of it, and Fence returns at once, with nothing published. On a
// transport that orders every message of every node (PostgreSQL, a Redis
// server), the member either heard the announcement before the alive its
// lease rests on, or the announcing node heard that alive before its own
// announcement came back, and waited for the member. Without a lease —
// the first AliveInterval after a subscription is made, or after a lease
// lapsed — Fence publishes a fence message and waits for it.
const (
	// LeaseTerm is how long a member answers from memory without a fence
	// after sending an alive it then heard back; an announcement waits
	// about this long (plus 10 %) for a member that went silent.
	LeaseTerm = time.Second
	// AliveInterval is how often a member publishes an alive message.
	AliveInterval = 250 * time.Millisecond
	// leaseMargin is how much longer than LeaseTerm a member stays in
	// another node's view after its last alive was heard there: clocks
	// of different machines run at about the same rate, not the same.
	leaseMargin = LeaseTerm / 10
	// viewTerm is how long a member stays in another node's view after
	// its last alive was heard there, and how long a fresh subscription
	// listens before its first announcement (see hearMembers).
	viewTerm = LeaseTerm + leaseMargin
	// reannounceInterval is how often Announce publishes its messages
	// again while a member has not acknowledged them: a member whose
	// subscription was made again since missed them.
	reannounceInterval = 100 * time.Millisecond
	// maxPendingAcks bounds the Fence ids waiting to be acknowledged; one
	// more is dropped, and the announcement published again asks for it
	// again (see reannounceInterval).
	maxPendingAcks = 4096
)

// The kinds of Message of the leases.
const (
	// KindAlive renews the lease of the member Node; its Fence id is
	// heard back by the member itself.
	KindAlive = "alive"
	// KindAck acknowledges, from the member Node, the revoking messages
	// whose Fence ids it carries (Acks).
	KindAck = "ack"
	// KindLeave says that the member Node shut down: no node waits for
	// its acknowledgements any more.
	KindLeave = "leave"
)

// lease is this endpoint's own lease, as a member.
type lease struct {
	base time.Time // the monotonic clock's origin for until

	mu     sync.Mutex
	streak int       // alives heard back in a row since the lease began
	term   time.Time // the end of the last alive heard back's term
	// until is when the lease ends, in nanoseconds since base; 0 while
	// there is none. It is set from the second alive heard back in a row
	// on: a subscription made again waits one AliveInterval first.
	until atomic.Int64
}

// valid reports whether the lease runs now.
func (l *lease) valid() bool {
	until := l.until.Load()
	return until != 0 && int64(time.Since(l.base)) < until
}

// renew extends the lease by an alive sent at sent and heard back now.
func (l *lease) renew(sent time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.streak > 0 && time.Now().After(l.term) {
		l.streak = 0 // it lapsed: start again
	}
	l.streak++
	l.term = sent.Add(LeaseTerm)
	if l.streak >= 2 {
		l.until.Store(int64(l.term.Sub(l.base)))
	}
}

// end ends the lease at once: messages may have been lost.
func (l *lease) end() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.streak = 0
	l.until.Store(0)
}

// members is this endpoint's view of the members, and the announcements
// it waits to have acknowledged.
type members struct {
	mu   sync.Mutex
	seen map[string]time.Time // by member: when its last alive was heard
	acks map[string]*awaited  // by Fence id of this endpoint's revoking messages
}

// awaited is what one announcement's messages were acknowledged by.
type awaited struct {
	by      map[string]map[string]bool // by member: the Fence ids it acknowledged
	changed chan struct{}              // signalled (not closed) when by changes
}

// alive records that member was heard now.
func (m *members) alive(member string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pruneLocked()
	if m.seen == nil {
		m.seen = map[string]time.Time{}
	}
	m.seen[member] = time.Now()
}

// pruneLocked forgets the members that left the view (nodes that stopped
// without saying so); m.mu is held.
func (m *members) pruneLocked() {
	for member, at := range m.seen {
		if time.Since(at) > viewTerm {
			delete(m.seen, member)
		}
	}
}

// leave forgets member, and wakes the announcements that wait for it.
func (m *members) leave(member string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.seen, member)
	for _, a := range m.acks {
		signal(a.changed)
	}
}

// expect makes the acknowledgements of the messages with these Fence ids
// counted, until forget.
func (m *members) expect(ids []string) *awaited {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.acks == nil {
		m.acks = map[string]*awaited{}
	}
	a := &awaited{by: map[string]map[string]bool{}, changed: make(chan struct{}, 1)}
	for _, id := range ids {
		m.acks[id] = a
	}
	return a
}

func (m *members) forget(ids []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		delete(m.acks, id)
	}
}

// acked records member's acknowledgement of the message id, if this
// endpoint waits for it. A member acknowledges a message again each time
// it is published again.
func (m *members) acked(id, member string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.acks[id]
	if !ok {
		return
	}
	if a.by[member] == nil {
		a.by[member] = map[string]bool{}
	}
	a.by[member][id] = true
	signal(a.changed)
}

// missing is how many members in view now have not acknowledged every
// one of n messages.
func (m *members) missing(a *awaited, n int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pruneLocked()
	out := 0
	for member := range m.seen {
		if len(a.by[member]) < n {
			out++
		}
	}
	return out
}

// count is how many members are in view now.
func (m *members) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pruneLocked()
	return len(m.seen)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// WithLeases sets whether the endpoint becomes a member once it is
// followed on a prompt transport (see LeaseTerm). Default true; the live
// section's disable_leases turns them off too. A node that is not a
// member fences every check it answers from memory through the pub/sub (a
// round trip, shared by the checks waiting at the same time). Other
// nodes' revocations do not wait for its acknowledgement; its own still
// wait for the members'.
func WithLeases(on bool) Option { return func(e *Endpoint) { e.noLeases = !on } }

// Leased reports whether this node holds a lease now: its token store
// answers checks from memory without a fence.
func (e *Endpoint) Leased() bool { return e.lease.valid() }

// member starts this endpoint's membership, once: the alives, and the
// acknowledgements of the announcements it hears. The first Follow on a
// prompt transport calls it.
func (e *Endpoint) member() {
	if e.noLeases {
		return
	}
	e.memberOnce.Do(func() {
		e.pendingAcks = map[string]bool{}
		e.ackNow = make(chan struct{}, 1)
		e.isMember.Store(true)
		go e.keepAlive()
		go e.acknowledge()
	})
}

// keepAlive publishes an alive message every AliveInterval while the
// subscription is up, each once the one before was heard back, and renews
// the lease with each one heard back.
func (e *Endpoint) keepAlive() {
	for {
		select {
		case <-e.feed.whenUp():
		case <-e.ctx.Done():
			return
		}
		sent := time.Now()
		if err := e.echo(e.ctx, []Message{{Kind: KindAlive, Node: e.echoes.node}}); err != nil {
			e.lease.end()
		} else {
			e.lease.renew(sent)
		}
		t := time.NewTimer(time.Until(sent.Add(AliveInterval)))
		select {
		case <-t.C:
		case <-e.ctx.Done():
			t.Stop()
			return
		}
	}
}

// acknowledge publishes the acknowledgements receive asks for: every
// Fence id waiting when it wakes, in as few ack messages as the
// transport's size limit allows. However many times an announcement is
// published again meanwhile, its id is acknowledged once per message, so
// that a slow transport does not pile acknowledgements up.
func (e *Endpoint) acknowledge() {
	for {
		select {
		case <-e.ackNow:
		case <-e.ctx.Done():
			return
		}
		e.ackMu.Lock()
		ids := make([]string, 0, len(e.pendingAcks))
		for id := range e.pendingAcks {
			ids = append(ids, id)
		}
		clear(e.pendingAcks)
		e.ackMu.Unlock()
		if len(ids) == 0 {
			continue // woken for ids an earlier pass took
		}
		slices.Sort(ids)
		ctx, cancel := context.WithTimeout(e.ctx, EchoTimeout)
		for _, chunk := range chunkJSON(ids, ackOverhead, e.payloadLimit()) {
			if err := e.pubsub.Publish(ctx, Message{Kind: KindAck, Acks: chunk, Node: e.echoes.node}); err != nil && e.ctx.Err() == nil {
				// The announcing node publishes its message again, and
				// waits for the acknowledgement of that one.
				e.logger.Debug("kiln/live: acknowledgement not published", "err", err)
			}
		}
		cancel()
	}
}

// ackOverhead is the JSON of an ack Message with an empty list of ids and
// the longest node id.
var ackOverhead = len(`{"kind":"ack","acks":[],"node":"0123456789abcdef."}`)

// heardRevoking asks for a revoking message of another node to be
// acknowledged, once its followers heard of it.
func (e *Endpoint) heardRevoking(msg Message) {
	if !e.isMember.Load() || msg.Fence == "" || nodeOf(msg.Fence) == e.echoes.node {
		return
	}
	e.ackMu.Lock()
	if len(e.pendingAcks) < maxPendingAcks {
		e.pendingAcks[msg.Fence] = true
	}
	e.ackMu.Unlock()
	signal(e.ackNow)
}

// nodeOf is the node prefix of a Fence id, its dot included.
func nodeOf(id string) string {
	if i := strings.IndexByte(id, '.'); i >= 0 {
		return id[:i+1]
	}
	return ""
}

// hearMembers returns once this endpoint's subscription has been up for
// LeaseTerm and its margin without a break: every member that holds a
// lease now has sent an alive since, which this endpoint heard, or else
// will hear whatever this endpoint announces before its next lease. A
// process that just started (a command line's tokens revoke) waits so
// long before its first announcement, and a node after each subscription.
// It fails at deadline, or when the subscription is down then.
func (e *Endpoint) hearMembers(ctx context.Context, deadline <-chan time.Time) error {
	for {
		upFor := e.feed.upFor()
		if upFor >= viewTerm {
			return nil
		}
		var up <-chan struct{}
		var heard <-chan time.Time
		var timer *time.Timer
		if upFor == 0 {
			up = e.feed.whenUp()
		} else {
			timer = time.NewTimer(viewTerm - upFor)
			heard = timer.C
		}
		var err error
		select {
		case <-up:
		case <-heard:
		case <-deadline:
			err = errJustSubscribed
			if e.feed.upFor() == 0 {
				err = errNotSubscribed
			}
		case <-ctx.Done():
			err = ctx.Err()
		case <-e.ctx.Done():
			err = errShutDown
		}
		if timer != nil {
			timer.Stop()
		}
		if err != nil {
			return err
		}
	}
}

// errJustSubscribed is Announce's error when the subscription was not up
// long enough to have heard every member (see hearMembers) within
// EchoTimeout: it was made again meanwhile.
var errJustSubscribed = fmt.Errorf("kiln/live: the pub/sub subscription was not up for %s, to hear every node, within %s", viewTerm, EchoTimeout)

// errNotAcknowledged is Announce's error when a member in view neither
// acknowledged its messages nor left the view within EchoTimeout.
var errNotAcknowledged = fmt.Errorf("kiln/live: a node did not acknowledge the announcement within %s", EchoTimeout)

// awaitAcks returns once every member in view has acknowledged msgs,
// heard back already (a), or left the view; meanwhile it publishes msgs
// again every reannounceInterval, for the members that missed them. It
// fails at deadline.
func (e *Endpoint) awaitAcks(ctx context.Context, msgs []Message, a *awaited, deadline <-chan time.Time) error {
	missing := e.members.missing(a, len(msgs))
	if missing == 0 {
		return nil
	}
	tick := time.NewTicker(reannounceInterval)
	defer tick.Stop()
	for missing > 0 {
		select {
		case <-a.changed:
		case <-tick.C:
			e.republish(ctx, msgs)
		case <-deadline:
			e.logger.Warn("kiln/live: nodes did not acknowledge a revocation's announcement", "nodes", missing, "timeout", EchoTimeout)
			return errNotAcknowledged
		case <-ctx.Done():
			return ctx.Err()
		case <-e.ctx.Done():
			return errShutDown
		}
		missing = e.members.missing(a, len(msgs))
	}
	return nil
}

// republish publishes msgs again, for members that missed them; a failure
// waits for the next time.
func (e *Endpoint) republish(ctx context.Context, msgs []Message) {
	ctx, cancel := context.WithTimeout(ctx, reannounceInterval)
	defer cancel()
	for _, msg := range msgs {
		if err := e.pubsub.Publish(ctx, msg); err != nil {
			return
		}
	}
}

// leave tells the other nodes this member shut down, within ctx, so that
// none waits for its acknowledgements.
func (e *Endpoint) leave(ctx context.Context) {
	if !e.isMember.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, EchoTimeout)
	defer cancel()
	if err := e.pubsub.Publish(ctx, Message{Kind: KindLeave, Node: e.echoes.node}); err != nil && !errors.Is(err, context.Canceled) {
		e.logger.Debug("kiln/live: leave not published", "err", err)
	}
}
