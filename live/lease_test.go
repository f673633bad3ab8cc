package live_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/internal/metricstest"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/revocation"
)

// leased waits until e's Fence returns without publishing a fence (p is
// e's tap): e holds a lease.
func leased(t *testing.T, ctx context.Context, e *live.Endpoint, p *tap) {
	t.Helper()
	for {
		n := len(p.sent(live.KindFence))
		if err := e.Fence(ctx); err == nil && len(p.sent(live.KindFence)) == n {
			return
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("%v: no lease; alives published: %d", ctx.Err(), len(p.sent(live.KindAlive)))
		}
	}
}

// members makes n followed endpoints on one prompt bus, each with its
// tap and a log of what its follower hears, and waits for their leases.
func members(t *testing.T, ctx context.Context, names ...string) ([]*live.Endpoint, []*tap, *events) {
	t.Helper()
	bus := &livetest.PromptInProcess{}
	log := &events{}
	var es []*live.Endpoint
	var taps []*tap
	for _, name := range names {
		p := &tap{inner: bus, prompt: true}
		e := newEndpoint(t, live.WithPubSub(p))
		if !e.Follow(named{log, name}) {
			t.Fatalf("%s is not prompt", name)
		}
		es, taps = append(es, e), append(taps, p)
	}
	for i, e := range es {
		leased(t, ctx, e, taps[i])
	}
	log.take()
	return es, taps, log
}

// missRevoking makes the endpoint of p miss every revoking message, until
// the returned function is called: it hands the first one over, and lets
// the next ones through.
func missRevoking(p *tap) (handOver func()) {
	var mu sync.Mutex
	var missed []live.Message
	p.hook(nil, func(msg live.Message) bool {
		if msg.Kind != live.KindRevoking {
			return true
		}
		mu.Lock()
		missed = append(missed, msg)
		mu.Unlock()
		return false
	})
	return func() {
		p.hook(nil, nil)
		mu.Lock()
		msg := missed[0]
		mu.Unlock()
		p.hand(msg)
	}
}

// published returns a channel closed once the endpoint of p has
// published n messages of kind.
func published(p *tap, kind string, n int) <-chan struct{} {
	ch := make(chan struct{})
	var once sync.Once
	p.hook(func(msg live.Message) bool {
		if msg.Kind == kind && len(p.sent(kind)) >= n {
			once.Do(func() { close(ch) })
		}
		return true
	}, nil)
	return ch
}

// announceUntil announces j1 on e, and fails t when Announce returns
// before until is closed; it returns Announce's outcome, to come.
func announceUntil(t *testing.T, ctx context.Context, e *live.Endpoint, until <-chan struct{}) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- e.Announce(ctx, []revocation.Disconnect{{SocketID: "s:1", JTI: "j1"}}) }()
	select {
	case err := <-done:
		t.Fatalf("Announce returned (%v) before b heard the announcement", err)
	case <-until:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	return done
}

// TestLease: a followed endpoint on a prompt transport publishes alives,
// and once it heard two back its Fence returns at once, publishing
// nothing; one that is not a member always publishes a fence. A lost
// subscription ends the lease at once, and a subscription made again
// brings it back.
func TestLease(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	es, taps, _ := members(t, ctx, "a")
	a, at := es[0], taps[0]
	if alives := at.sent(live.KindAlive); len(alives) < 2 || alives[0].Node == "" || alives[0].Fence == "" {
		t.Fatalf("alives %+v; want at least two, with a node and a fence id", alives)
	}

	bus := at.inner
	for name, off := range map[string]live.Option{
		"WithLeases(false)":      live.WithLeases(false),
		"Settings.DisableLeases": live.WithSettings(live.Settings{DisableLeases: true}),
	} {
		ct := &tap{inner: bus, prompt: true}
		c := newEndpoint(t, live.WithPubSub(ct), off)
		follow(t, c)
		for range 3 {
			if err := c.Fence(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(ct.sent(live.KindFence)); n != 3 {
			t.Fatalf("%s: a node that is not a member published %d fences for 3 calls; want 3", name, n)
		}
		if n := len(ct.sent(live.KindAlive)); n != 0 || c.Leased() {
			t.Fatalf("%s: a node that is not a member published %d alives (leased: %v)", name, n, c.Leased())
		}
	}

	at.hand(live.Message{Kind: live.KindLost})
	expectErr(t, "Fence once the subscription was lost", a.Fence(ctx), wantDown)
	at.hand(live.Message{Kind: live.KindSubscribed})
	leased(t, ctx, a, at)
}

// TestAnnounceWaitsForAcknowledgement: Announce returns only once every
// member has told its followers of the announcement and acknowledged it.
// A member that missed the message (its subscription made again, say)
// gets it again: Announce publishes it again until acknowledged.
func TestAnnounceWaitsForAcknowledgement(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	es, taps, log := members(t, ctx, "a", "b")
	a, at, bt := es[0], taps[0], taps[1]

	// b misses the announcement, and every time it is published again,
	// until the test hands it over.
	handOver := missRevoking(bt)
	republished := published(at, live.KindRevoking, 3)

	done := announceUntil(t, ctx, a, republished)
	sent := at.sent(live.KindRevoking)
	if sent[0].Fence != sent[1].Fence {
		t.Fatalf("published again with another fence id: %q, %q", sent[0].Fence, sent[1].Fence)
	}
	if got := log.take(); !slices.Equal(got, []string{"a revoking j1"}) {
		t.Fatalf("heard %q before b got the announcement; want a's own", got)
	}

	handOver()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := log.take(); !slices.Contains(got, "b revoking j1") {
		t.Fatalf("Announce returned when b had heard %q", got)
	}
	acks := bt.sent(live.KindAck)
	if len(acks) == 0 || !slices.Contains(acks[0].Acks, sent[0].Fence) || acks[0].Node == "" {
		t.Fatalf("b's acknowledgements %+v; want one of %q", acks, sent[0].Fence)
	}
}

// TestAnnounceOutlivesASilentMember: a member that stops answering
// altogether leaves the view of the others LeaseTerm after they last
// heard it, and the announcement no longer waits for it: it succeeds,
// within EchoTimeout. The silent member's own lease has ended by then.
func TestAnnounceOutlivesASilentMember(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	es, taps, log := members(t, ctx, "a", "b")
	a, at, bt := es[0], taps[0], taps[1]
	drop := func(live.Message) bool { return false }
	bt.hook(drop, drop)

	if err := a.Announce(ctx, []revocation.Disconnect{{SocketID: "s:1", JTI: "j1"}}); err != nil {
		t.Fatalf("Announce with a silent member: %v", err)
	}
	if n := len(at.sent(live.KindRevoking)); n < 2 {
		t.Fatalf("published the announcement %d times; want it published again while b was in view", n)
	}
	if got := log.take(); !slices.Equal(got, []string{"a revoking j1"}) {
		t.Fatalf("heard %q; want a's own", got)
	}
}

// TestLeave: a member that shuts down says so, and an announcement made
// after does not wait for it, even though its last alive is recent.
func TestLeave(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	es, taps, _ := members(t, ctx, "a", "b")
	a, at, b := es[0], taps[0], es[1]
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Announce(ctx, []revocation.Disconnect{{SocketID: "s:1", JTI: "j1"}}); err != nil {
		t.Fatal(err)
	}
	if n := len(at.sent(live.KindRevoking)); n != 1 {
		t.Fatalf("published the announcement %d times; want once: b left", n)
	}
}

// TestLeaseMetrics: kiln_live_lease is 1 while the node holds a lease,
// and kiln_live_members counts the other members it hears.
func TestLeaseMetrics(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	bus := &livetest.PromptInProcess{}
	reg := prometheus.NewRegistry()
	at := &tap{inner: bus, prompt: true}
	a := newEndpoint(t, live.WithPubSub(at), live.WithMetrics(reg))
	values := func() (lease, members float64) {
		v := metricstest.Values(t, reg)
		return v["kiln_live_lease"], v["kiln_live_members"]
	}
	if lease, members := values(); lease != 0 || members != 0 {
		t.Fatalf("before anything follows the endpoint: lease %v, members %v; want 0, 0", lease, members)
	}
	follow(t, a)
	bt := &tap{inner: bus, prompt: true}
	b := newEndpoint(t, live.WithPubSub(bt))
	follow(t, b)
	leased(t, ctx, a, at)
	leased(t, ctx, b, bt)
	if lease, members := values(); lease != 1 || members != 1 {
		t.Fatalf("leased, with one other member: lease %v, members %v; want 1, 1", lease, members)
	}
	at.hand(live.Message{Kind: live.KindLost})
	if lease, _ := values(); lease != 0 {
		t.Fatalf("subscription lost: lease %v; want 0", lease)
	}
}

// TestNewAnnouncerHearsTheMembers: an endpoint that has just subscribed
// (a command line's tokens revoke) does not know the members yet; its
// first announcement waits until it has heard them all (LeaseTerm), and
// then for their acknowledgement.
func TestNewAnnouncerHearsTheMembers(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	_, taps, log := members(t, ctx, "a", "b")
	bt := taps[1]
	handOver := missRevoking(bt)

	ct := &tap{inner: bt.inner, prompt: true}
	republished := published(ct, live.KindRevoking, 2)
	c := newEndpoint(t, live.WithPubSub(ct))
	done := announceUntil(t, ctx, c, republished)
	handOver()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := log.take(); !slices.Contains(got, "b revoking j1") {
		t.Fatalf("Announce returned when b had heard %q", got)
	}
}

// TestAcknowledgementsCoalesce: a member whose publishing is slow does not
// pile acknowledgements up while the announcing node publishes its
// announcement again and again: once its publish is free, one ack message
// carries every Fence id waiting, each once.
func TestAcknowledgementsCoalesce(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	es, taps, _ := members(t, ctx, "a", "b")
	a, at, bt := es[0], taps[0], taps[1]

	// b's first acknowledgement is held until b has heard a's
	// announcement six times, the sixth in full; each ack b publishes is
	// noted with how many copies a had published by then.
	gate := make(chan struct{})
	var held sync.Once
	var mu sync.Mutex
	var copies []int
	heard := 0 // by b's subscriber, which hears one message at a time
	bt.hook(func(msg live.Message) bool {
		if msg.Kind == live.KindAck {
			held.Do(func() { <-gate })
			mu.Lock()
			copies = append(copies, len(at.sent(live.KindRevoking)))
			mu.Unlock()
		}
		return true
	}, func(msg live.Message) bool {
		if msg.Kind != live.KindRevoking {
			return true
		}
		if heard++; heard != 6 {
			return true
		}
		// b hears the sixth copy here, before its first ack is let go:
		// every copy but the first was heard while that ack was held.
		bt.mu.Lock()
		fn := bt.fn
		bt.mu.Unlock()
		fn(msg)
		close(gate)
		return false
	})
	republished := published(at, live.KindRevoking, 6)
	done := announceUntil(t, ctx, a, republished)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	id := at.sent(live.KindRevoking)[0].Fence
	for _, ack := range bt.sent(live.KindAck) {
		if !slices.Equal(ack.Acks, []string{id}) {
			t.Fatalf("ack %+v; want the id %q once", ack, id)
		}
	}
	// The copies heard while the first ack was held make one ack more,
	// published before a publishes another copy (one per copy would be
	// five).
	mu.Lock()
	defer mu.Unlock()
	early := 0
	for _, n := range copies {
		if n <= 6 {
			early++
		}
	}
	if early > 2 {
		t.Fatalf("b published %d ack messages before a's seventh copy (copies by then: %v); want the held one and one for the copies heard meanwhile", early, copies)
	}
}
