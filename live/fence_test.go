package live_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/revocation"
)

// tap is the PubSub of one endpoint around a shared one (a
// livetest.PromptInProcess, or a live.InProcess): it says it is prompt when
// prompt is set, and lets the test see and hold what the endpoint
// publishes and hears. Its hooks are set while the endpoint publishes
// and hears nothing.
type tap struct {
	inner  live.PubSub
	prompt bool
	// publish, when set, is called with each message the endpoint
	// publishes, before it is; the message is dropped when it returns
	// false. Set it with hook once the endpoint may publish.
	publish func(live.Message) bool
	// deliver, when set, is called with each message before the endpoint
	// hears it; the endpoint does not when it returns false.
	deliver func(live.Message) bool

	mu        sync.Mutex
	published []live.Message
	fn        func(live.Message) // the endpoint's subscriber
}

var _ live.Prompter = (*tap)(nil)

func (p *tap) Prompt() bool { return p.prompt }

func (p *tap) Publish(ctx context.Context, msg live.Message) error {
	p.mu.Lock()
	p.published = append(p.published, msg)
	publish := p.publish
	p.mu.Unlock()
	if publish != nil && !publish(msg) {
		return nil
	}
	return p.inner.Publish(ctx, msg)
}

func (p *tap) Subscribe(ctx context.Context, fn func(live.Message)) error {
	p.mu.Lock()
	p.fn = fn
	p.mu.Unlock()
	return p.inner.Subscribe(ctx, func(msg live.Message) {
		p.mu.Lock()
		deliver := p.deliver
		p.mu.Unlock()
		if deliver == nil || deliver(msg) {
			fn(msg)
		}
	})
}

func (p *tap) Close() error { return nil }

// hook sets the publish and deliver hooks while the endpoint may be
// publishing and hearing (a member's alives).
func (p *tap) hook(publish, deliver func(live.Message) bool) {
	p.mu.Lock()
	p.publish, p.deliver = publish, deliver
	p.mu.Unlock()
}

// hand gives msg to this endpoint alone, as a transport gives its own
// subscriber KindSubscribed and KindLost.
func (p *tap) hand(msg live.Message) {
	p.mu.Lock()
	fn := p.fn
	p.mu.Unlock()
	fn(msg)
}

// sent returns the messages of kind the endpoint published; all of
// them for "".
func (p *tap) sent(kind string) []live.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []live.Message
	for _, m := range p.published {
		if kind == "" || m.Kind == kind {
			out = append(out, m)
		}
	}
	return out
}

// heard is a revocation.Watcher that hands what it hears on a channel,
// for a test to wait for.
type heard chan string

func (h heard) Revoked(ds []revocation.Disconnect) {
	jtis := make([]string, len(ds))
	for i, d := range ds {
		jtis[i] = d.JTI
	}
	h <- "revoked " + strings.Join(jtis, ",")
}

func (h heard) Revoking(ds []revocation.Disconnect) {
	jtis := make([]string, len(ds))
	for i, d := range ds {
		jtis[i] = d.JTI
	}
	h <- "revoking " + strings.Join(jtis, ",")
}

func (h heard) State(up bool) {
	if up {
		h <- "up"
	} else {
		h <- "down"
	}
}

// follow makes a heard that follows e, and takes the state it is told
// first.
func follow(t *testing.T, e *live.Endpoint) heard {
	t.Helper()
	h := make(heard, 1000)
	e.Follow(h)
	if got := <-h; got != "up" {
		t.Fatalf("a new follower heard %q; want up", got)
	}
	return h
}

// next waits for what h hears next.
func (h heard) next(t *testing.T, ctx context.Context) string {
	t.Helper()
	select {
	case s := <-h:
		return s
	case <-ctx.Done():
		t.Fatalf("heard nothing: %v", ctx.Err())
		return ""
	}
}

// expectQuiet fails when h heard anything not taken yet.
func (h heard) expectQuiet(t *testing.T, who string) {
	t.Helper()
	select {
	case s := <-h:
		t.Fatalf("%s heard %q; want nothing", who, s)
	default:
	}
}

// The errors of Fence and Announce.
var (
	wantDown         = "kiln/live: the pub/sub subscription is down"
	wantNotPrompt    = "kiln/live: the pub/sub transport is not prompt"
	wantNotHeardBack = "kiln/live: not heard back from the pub/sub within " + live.EchoTimeout.String()
)

func expectErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil || err.Error() != want {
		t.Fatalf("%s: %v; want %q", what, err, want)
	}
}

// TestAnnounce: on a prompt transport, Announce publishes the jtis of the
// revocations it is given, those without one left out, in one revoking
// message with a fence id; on one that hands each message to every node
// as it is published, every endpoint's followers have heard them
// (Revoking) by the time it returns — the announcing endpoint's own
// included. Nothing is announced without a jti.
func TestAnnounce(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	bus := &livetest.PromptInProcess{}
	at := &tap{inner: bus, prompt: true}
	a := newEndpoint(t, live.WithPubSub(at))
	b := newEndpoint(t, live.WithPubSub(bus))
	c := newEndpoint(t, live.WithPubSub(bus))
	log := &events{}
	for name, e := range map[string]*live.Endpoint{"a": a, "b": b, "c": c} {
		if !e.Follow(named{log, name}) {
			t.Fatalf("%s is not prompt", name)
		}
	}
	log.take()

	exp := time.Now().Add(time.Hour)
	if err := a.Announce(ctx, []revocation.Disconnect{
		{SocketID: "s:1", Reason: revocation.Revoked, JTI: "j1", ExpiresAt: exp},
		{SocketID: "s:old", Reason: revocation.Revoked},
		{Reason: revocation.LogOutEverywhere, JTI: "j2"},
	}); err != nil {
		t.Fatal(err)
	}
	got := log.take()
	slices.Sort(got)
	if want := []string{"a revoking j1,j2", "b revoking j1,j2", "c revoking j1,j2"}; !slices.Equal(got, want) {
		t.Fatalf("heard %q once Announce returned; want %q", got, want)
	}
	sent := at.sent(live.KindRevoking)
	if len(sent) != 1 || !slices.Equal(sent[0].JTIs, []string{"j1", "j2"}) || sent[0].Fence == "" {
		t.Fatalf("published %+v; want one revoking message of j1 and j2 with a fence id", sent)
	}
	if all := at.sent(""); slices.ContainsFunc(all, func(m live.Message) bool { return m.Kind != live.KindRevoking && m.Kind != live.KindAlive }) {
		t.Fatalf("published %+v; want the revoking message alone, besides alives", all)
	}

	for _, ds := range [][]revocation.Disconnect{nil, {{SocketID: "s:old", Reason: revocation.Revoked}}} {
		if err := a.Announce(ctx, ds); err != nil {
			t.Fatalf("Announce(%v): %v", ds, err)
		}
	}
	if got := log.take(); len(got) != 0 {
		t.Fatalf("heard %q from an announcement without jtis", got)
	}
	if n := len(at.sent(live.KindRevoking)); n != 1 {
		t.Fatalf("%d revoking messages; an announcement without jtis published one", n)
	}
}

// queued is a prompt PubSub that hands each subscriber its messages in
// order on a goroutine of its own, as a network transport does: a node
// hears a message when its turn comes, not when it is published. A
// subscriber's queue can be held. published, when set before the
// endpoints are made, is told of each message published.
type queued struct {
	published func(live.Message)

	mu   sync.Mutex
	subs []*queue // in the order the endpoints subscribed
}

type queue struct {
	mu   sync.Mutex
	cond *sync.Cond
	msgs []live.Message
	held bool
	done bool
}

var _ live.Prompter = (*queued)(nil)

func (q *queued) Prompt() bool { return true }
func (q *queued) Close() error { return nil }

func (q *queued) Publish(_ context.Context, msg live.Message) error {
	if q.published != nil {
		q.published(msg)
	}
	q.mu.Lock()
	subs := slices.Clone(q.subs)
	q.mu.Unlock()
	for _, s := range subs {
		s.mu.Lock()
		s.msgs = append(s.msgs, msg)
		s.cond.Signal()
		s.mu.Unlock()
	}
	return nil
}

func (q *queued) Subscribe(ctx context.Context, fn func(live.Message)) error {
	s := &queue{}
	s.cond = sync.NewCond(&s.mu)
	q.mu.Lock()
	q.subs = append(q.subs, s)
	q.mu.Unlock()
	fn(live.Message{Kind: live.KindSubscribed})
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.done = true
		s.cond.Signal()
		s.mu.Unlock()
	})
	go func() {
		for {
			s.mu.Lock()
			for !s.done && (s.held || len(s.msgs) == 0) {
				s.cond.Wait()
			}
			if s.done {
				s.mu.Unlock()
				return
			}
			msg := s.msgs[0]
			s.msgs = s.msgs[1:]
			s.mu.Unlock()
			fn(msg)
		}
	}()
	return nil
}

// hold holds the queue of the i-th subscriber, or lets it go on.
func (q *queued) hold(i int, held bool) {
	q.mu.Lock()
	s := q.subs[i]
	q.mu.Unlock()
	s.mu.Lock()
	s.held = held
	s.cond.Signal()
	s.mu.Unlock()
}

// TestAnnounceThenFence: on a transport that hands each node its
// messages in its own time, a node may not have heard an announcement
// when Announce returns on another; but a Fence it begins after that
// returns only once its followers have heard the announcement.
func TestAnnounceThenFence(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	fencing := make(chan struct{}, 10)
	bus := &queued{published: func(msg live.Message) {
		if msg.Kind == live.KindFence {
			fencing <- struct{}{}
		}
	}}
	a := newEndpoint(t, live.WithPubSub(bus), live.WithLeases(false))
	b := newEndpoint(t, live.WithPubSub(bus), live.WithLeases(false))
	ha, hb := follow(t, a), follow(t, b)

	bus.hold(1, true) // b hears nothing for now
	if err := a.Announce(ctx, []revocation.Disconnect{{SocketID: "s:1", Reason: revocation.Revoked, JTI: "j1"}}); err != nil {
		t.Fatalf("Announce: %v", err)
	}
	if got := ha.next(t, ctx); got != "revoking j1" {
		t.Fatalf("a heard %q; want revoking j1 before its Announce returned", got)
	}
	hb.expectQuiet(t, "b, held")

	type fenced struct {
		err   error
		heard []string // by b's follower when Fence returned
	}
	done := make(chan fenced, 1)
	go func() {
		err := b.Fence(ctx)
		var got []string
		for len(hb) > 0 {
			got = append(got, <-hb)
		}
		done <- fenced{err, got}
	}()
	select {
	case f := <-done:
		t.Fatalf("b's Fence returned (%v) while b had heard nothing", f.err)
	case <-fencing: // b's fence message is published, behind the announcement
	case <-ctx.Done():
		t.Fatal("b's Fence published nothing")
	}
	bus.hold(1, false)
	select {
	case f := <-done:
		if f.err != nil || !slices.Equal(f.heard, []string{"revoking j1"}) {
			t.Fatalf("b's Fence returned %v, its follower having heard %q; want nil, after revoking j1", f.err, f.heard)
		}
	case <-ctx.Done():
		t.Fatal("b's Fence did not return")
	}
}

// sizeLimited is a prompt PubSub with a small size limit, which it enforces
// as the transports do: it refuses a message of more bytes of JSON.
type sizeLimited struct {
	*livetest.PromptInProcess
	limit int

	mu    sync.Mutex
	msgs  []live.Message // published
	sizes []int          // of each, in bytes of JSON
}

var _ live.PayloadLimiter = (*sizeLimited)(nil)

func (l *sizeLimited) PayloadLimit() int { return l.limit }

func (l *sizeLimited) Publish(ctx context.Context, msg live.Message) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.msgs = append(l.msgs, msg)
	l.sizes = append(l.sizes, len(b))
	l.mu.Unlock()
	if len(b) > l.limit {
		return fmt.Errorf("%w: %d bytes", live.ErrPayloadTooLarge, len(b))
	}
	return l.PromptInProcess.Publish(ctx, msg)
}

// TestAnnounceChunks: Announce splits many jtis into revoking messages
// under the transport's size limit, counting each jti as JSON encodes it
// (escapes included), each as full as the longest fence id lets it be;
// every jti reaches the other nodes, in order.
func TestAnnounceChunks(t *testing.T) {
	const limit = 200
	ctx := testCtx(t, 10*time.Second)
	bus := &sizeLimited{PromptInProcess: &livetest.PromptInProcess{}, limit: limit}
	a := newEndpoint(t, live.WithPubSub(bus), live.WithLeases(false))
	b := newEndpoint(t, live.WithPubSub(bus), live.WithLeases(false))
	var (
		mu    sync.Mutex
		atB   []string
		calls int
	)
	b.Follow(watcherFunc(func(ds []revocation.Disconnect) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		for _, d := range ds {
			atB = append(atB, d.JTI)
		}
	}))

	var jtis []string
	var ds []revocation.Disconnect
	for i := range 60 {
		jti := fmt.Sprintf("<%d&%d>", i, i) // JSON writes \u003c, \u0026, \u003e
		if i%3 == 0 {
			jti = fmt.Sprintf("%08x-4a1b-4c2d-8e3f-%012d", i, i)
		}
		jtis = append(jtis, jti)
		ds = append(ds, revocation.Disconnect{SocketID: "s:" + jti, Reason: revocation.Revoked, JTI: jti})
	}
	if err := a.Announce(ctx, ds); err != nil {
		t.Fatalf("Announce: %v", err)
	}

	bus.mu.Lock()
	defer bus.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	for i, n := range bus.sizes {
		if n > limit {
			t.Errorf("message %d is %d bytes; the limit is %d", i, n, limit)
		}
	}
	if !slices.Equal(atB, jtis) {
		t.Fatalf("b heard %q; want %q", atB, jtis)
	}
	if calls != len(bus.msgs) || calls < 2 {
		t.Fatalf("b heard %d announcements, %d messages published; want one each, and more than one", calls, len(bus.msgs))
	}
	// Each message but the last is full: with the next jti and the
	// longest fence id, it would be over the limit.
	const longestFence = "0123456789abcdef.3w5e11264sgsf"
	for i, m := range bus.msgs[:len(bus.msgs)-1] {
		if m.Kind != live.KindRevoking || m.Fence == "" {
			t.Fatalf("message %d is %+v; want a revoking message with a fence id", i, m)
		}
		more := live.Message{Kind: live.KindRevoking, JTIs: append(slices.Clone(m.JTIs), bus.msgs[i+1].JTIs[0]), Fence: longestFence}
		if b, _ := json.Marshal(more); len(b) <= limit {
			t.Errorf("message %d holds %d jtis in %d bytes; one more fits the limit of %d (%d bytes)", i, len(m.JTIs), bus.sizes[i], limit, len(b))
		}
	}
}

// watcherFunc is a revocation.Watcher that hands each announcement to
// its func and ignores the rest.
type watcherFunc func(ds []revocation.Disconnect)

func (f watcherFunc) Revoking(ds []revocation.Disconnect) { f(ds) }
func (watcherFunc) Revoked([]revocation.Disconnect)       {}
func (watcherFunc) State(bool)                            {}

// TestFenceNotPrompt: on a transport that is not prompt (live.InProcess),
// where no node answers from memory, Announce does nothing and Fence
// fails.
func TestFenceNotPrompt(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	p := &tap{inner: &live.InProcess{}}
	e := newEndpoint(t, live.WithPubSub(p), live.WithLeases(false))
	h := make(heard, 10)
	if e.Follow(h) {
		t.Fatal("an endpoint on an InProcess says it is prompt")
	}
	<-h // its state
	if err := e.Announce(ctx, []revocation.Disconnect{{SocketID: "s:1", Reason: revocation.Revoked, JTI: "j1"}}); err != nil {
		t.Fatalf("Announce: %v; want nil", err)
	}
	expectErr(t, "Fence", e.Fence(ctx), wantNotPrompt)
	if all := p.sent(""); len(all) != 0 {
		t.Fatalf("published %+v; want nothing", all)
	}
	h.expectQuiet(t, "the follower")
	expectErr(t, "Fence on the default InProcess", newEndpoint(t).Fence(ctx), wantNotPrompt)
}

// TestFence: on a prompt transport, Fence publishes a fence message and
// returns once it is heard back. Other nodes ignore it: their followers
// hear nothing.
func TestFence(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	bus := &livetest.PromptInProcess{}
	at := &tap{inner: bus, prompt: true}
	var heardBack atomic.Int64
	at.deliver = func(msg live.Message) bool {
		if msg.Kind == live.KindFence {
			heardBack.Add(1)
		}
		return true
	}
	a := newEndpoint(t, live.WithPubSub(at), live.WithLeases(false))
	b := newEndpoint(t, live.WithPubSub(bus), live.WithLeases(false))
	ha, hb := follow(t, a), follow(t, b)
	for i := range 3 {
		if err := a.Fence(ctx); err != nil {
			t.Fatalf("Fence: %v", err)
		}
		if sent, back := len(at.sent(live.KindFence)), heardBack.Load(); sent != i+1 || back != int64(i+1) || at.sent(live.KindFence)[i].Fence == "" {
			t.Fatalf("after %d fences: %d fence messages published, %d heard back; want each published with an id and heard back", i+1, sent, back)
		}
	}
	ha.expectQuiet(t, "a")
	hb.expectQuiet(t, "b")
}

// TestFenceShared: callers of Fence at the same time share fence
// messages — 200 of them are served by two — and each returns only once
// a fence message published after its call is heard back. The first
// fence's publish is held until the 199 others have called, which then
// wait for the next.
func TestFenceShared(t *testing.T) {
	const callers = 200
	ctx := testCtx(t, 20*time.Second)
	var (
		mu      sync.Mutex
		index   = map[string]int{} // fence id → its rank among the fences published
		started int                // fence publishes begun
		handed  int                // the rank of the last fence handed to the endpoint
	)
	publishing, release := make(chan struct{}), make(chan struct{})
	p := &tap{inner: &livetest.PromptInProcess{}, prompt: true}
	p.publish = func(msg live.Message) bool {
		if msg.Kind != live.KindFence {
			return true
		}
		mu.Lock()
		started++
		index[msg.Fence] = started
		first := started == 1
		mu.Unlock()
		if first {
			close(publishing)
			<-release
		}
		return true
	}
	p.deliver = func(msg live.Message) bool {
		if msg.Kind == live.KindFence {
			mu.Lock()
			handed = max(handed, index[msg.Fence])
			mu.Unlock()
		}
		return true
	}
	e := newEndpoint(t, live.WithPubSub(p), live.WithLeases(false))

	type call struct {
		before, after int // fences begun before the call; handed when it returned
		err           error
	}
	calls := make([]call, callers)
	fence := func(i int) {
		mu.Lock()
		calls[i].before = started
		mu.Unlock()
		calls[i].err = e.Fence(ctx)
		mu.Lock()
		calls[i].after = handed
		mu.Unlock()
	}
	var wg, called sync.WaitGroup
	wg.Go(func() { fence(0) })
	select {
	case <-publishing:
	case <-ctx.Done():
		t.Fatal("the first Fence published nothing")
	}
	for i := 1; i < callers; i++ {
		called.Add(1)
		wg.Go(func() {
			called.Done()
			fence(i)
		})
	}
	called.Wait()
	close(release)
	wg.Wait()

	for i, c := range calls {
		if c.err != nil {
			t.Fatalf("caller %d: %v", i, c.err)
		}
		if c.after <= c.before {
			t.Fatalf("caller %d returned once fence %d was heard back, of the %d published before it called; want one published after", i, c.after, c.before)
		}
	}
	// Two unless a caller was held up between its call and Fence's lock
	// (a busy machine) long enough to miss the second fence's flight.
	if n := len(p.sent(live.KindFence)); n < 2 || n > callers/10 {
		t.Fatalf("%d fence messages for %d callers; want 2, a few more at worst", n, callers)
	}
	t.Logf("%d callers served by %d fence messages", callers, len(p.sent(live.KindFence)))
}

// TestFenceWhileDown: while the subscription is down, Fence fails at once
// and Announce once EchoTimeout has passed (it waits for the subscription
// to be made again), publishing nothing; a fence in flight when the
// subscription is lost fails then too. Once subscribed again, Fence works.
func TestFenceWhileDown(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	bus := &livetest.PromptInProcess{}
	p := &tap{inner: bus, prompt: true}
	e := newEndpoint(t, live.WithPubSub(p), live.WithLeases(false))
	h := follow(t, e)

	p.hand(live.Message{Kind: live.KindLost})
	if got := h.next(t, ctx); got != "down" {
		t.Fatalf("heard %q; want down", got)
	}
	expectErr(t, "Fence while down", e.Fence(ctx), wantDown)
	expectErr(t, "Announce while down", e.Announce(ctx, []revocation.Disconnect{{JTI: "j1"}}), wantDown)
	if all := p.sent(""); len(all) != 0 {
		t.Fatalf("published %+v while down; want nothing", all)
	}

	p.hand(live.Message{Kind: live.KindSubscribed})
	if got := h.next(t, ctx); got != "up" {
		t.Fatalf("heard %q; want up", got)
	}
	if err := e.Fence(ctx); err != nil {
		t.Fatalf("Fence once subscribed again: %v", err)
	}

	// A fence in flight: its publish is held, the subscription lost
	// meanwhile, and the message never arrives.
	publishing, release := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	p.publish = func(msg live.Message) bool {
		if msg.Kind != live.KindFence || !held.CompareAndSwap(false, true) {
			return true
		}
		close(publishing)
		<-release
		return false // lost
	}
	done := make(chan error, 1)
	go func() { done <- e.Fence(ctx) }()
	select {
	case <-publishing:
	case <-ctx.Done():
		t.Fatal("Fence published nothing")
	}
	p.hand(live.Message{Kind: live.KindLost})
	close(release)
	select {
	case err := <-done:
		expectErr(t, "Fence in flight when the subscription was lost", err, wantDown)
	case <-ctx.Done():
		t.Fatal("Fence did not return")
	}
	p.hand(live.Message{Kind: live.KindSubscribed})
	if err := e.Fence(ctx); err != nil {
		t.Fatalf("Fence once subscribed again: %v", err)
	}
	if got := []string{h.next(t, ctx), h.next(t, ctx)}; !slices.Equal(got, []string{"down", "up"}) {
		t.Fatalf("heard %q; want down, up", got)
	}
	h.expectQuiet(t, "the follower")
}

// TestFenceStall: a transport that stops handing back fence messages
// without saying so stalls the endpoints that wait for one: Fence fails
// after EchoTimeout, their followers are told they are down, and Fence
// then fails at once (Announce once it has waited EchoTimeout for the
// subscription). A probe brings one back up once the
// transport hands fences back again; a subscription made again brings
// the other back up at once.
func TestFenceStall(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	bus := &livetest.PromptInProcess{}
	var dropA, dropB atomic.Bool
	dropping := func(drop *atomic.Bool) func(live.Message) bool {
		return func(msg live.Message) bool { return msg.Kind != live.KindFence || !drop.Load() }
	}
	pa := &tap{inner: bus, prompt: true, deliver: dropping(&dropA)}
	pb := &tap{inner: bus, prompt: true, deliver: dropping(&dropB)}
	a := newEndpoint(t, live.WithPubSub(pa), live.WithLeases(false))
	b := newEndpoint(t, live.WithPubSub(pb), live.WithLeases(false))
	ha, hb := follow(t, a), follow(t, b)
	if err := a.Fence(ctx); err != nil {
		t.Fatal(err)
	}

	dropA.Store(true)
	dropB.Store(true)
	start := time.Now()
	errB := make(chan error, 1)
	go func() { errB <- b.Fence(ctx) }()
	expectErr(t, "a's Fence, stalled", a.Fence(ctx), wantNotHeardBack)
	expectErr(t, "b's Fence, stalled", <-errB, wantNotHeardBack)
	if took := time.Since(start); took < live.EchoTimeout {
		t.Fatalf("Fence failed after %v, before EchoTimeout", took)
	}
	if got := ha.next(t, ctx); got != "down" {
		t.Fatalf("a's follower heard %q; want down", got)
	}
	if got := hb.next(t, ctx); got != "down" {
		t.Fatalf("b's follower heard %q; want down", got)
	}
	expectErr(t, "Fence once stalled", a.Fence(ctx), wantDown)
	expectErr(t, "Announce once stalled", a.Announce(ctx, []revocation.Disconnect{{JTI: "j1"}}), wantDown)

	// b is subscribed again (its transport still drops fences): up at once.
	pb.hand(live.Message{Kind: live.KindSubscribed})
	if got := hb.next(t, ctx); got != "up" {
		t.Fatalf("b's follower heard %q once subscribed again; want up", got)
	}
	dropB.Store(false)
	if err := b.Fence(ctx); err != nil {
		t.Fatalf("b's Fence once subscribed again: %v", err)
	}

	// a's transport hands fences back again: its probe brings it up.
	dropA.Store(false)
	if got := ha.next(t, ctx); got != "up" {
		t.Fatalf("a's follower heard %q; want up once a probe is heard back", got)
	}
	if err := a.Fence(ctx); err != nil {
		t.Fatalf("a's Fence once its probe was heard back: %v", err)
	}
	ha.expectQuiet(t, "a's follower")
	hb.expectQuiet(t, "b's follower")
}

// TestAnnounceWaitsForTheSubscription: an announcement whose subscription
// is lost while it is published waits for the subscription to be made
// again, then announces again; one whose subscription stays down fails,
// no sooner than EchoTimeout.
func TestAnnounceWaitsForTheSubscription(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	bus := &livetest.PromptInProcess{}
	p := &tap{inner: bus, prompt: true}
	e := newEndpoint(t, live.WithPubSub(p), live.WithLeases(false))
	h := follow(t, e)
	// A first announcement, once subscribed long enough to have heard
	// every member (live.LeaseTerm).
	if err := e.Announce(ctx, []revocation.Disconnect{{JTI: "j0"}}); err != nil {
		t.Fatal(err)
	}
	if got := h.next(t, ctx); got != "revoking j0" {
		t.Fatalf("heard %q; want the first announcement", got)
	}

	// The next revoking message is held, the subscription lost
	// meanwhile, and the message lost with it.
	publishing, release := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	p.publish = func(msg live.Message) bool {
		if msg.Kind != live.KindRevoking || !held.CompareAndSwap(false, true) {
			return true
		}
		close(publishing)
		<-release
		return false
	}
	done := make(chan error, 1)
	go func() { done <- e.Announce(ctx, []revocation.Disconnect{{JTI: "j1"}}) }()
	select {
	case <-publishing:
	case <-ctx.Done():
		t.Fatal("Announce published nothing")
	}
	p.hand(live.Message{Kind: live.KindLost})
	close(release)
	if got := h.next(t, ctx); got != "down" {
		t.Fatalf("heard %q; want down", got)
	}
	p.hand(live.Message{Kind: live.KindSubscribed})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Announce once subscribed again: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Announce did not return once subscribed again")
	}
	if got := []string{h.next(t, ctx), h.next(t, ctx)}; !slices.Equal(got, []string{"up", "revoking j1"}) {
		t.Fatalf("heard %q; want up, then the announcement", got)
	}
	if n := len(p.sent(live.KindRevoking)); n != 3 {
		t.Fatalf("published %d revoking messages; want the first, the lost one and the one heard", n)
	}

	// Down for good: it fails once EchoTimeout has passed.
	p.hand(live.Message{Kind: live.KindLost})
	start := time.Now()
	expectErr(t, "Announce, the subscription down", e.Announce(ctx, []revocation.Disconnect{{JTI: "j2"}}), wantDown)
	if took := time.Since(start); took < live.EchoTimeout {
		t.Fatalf("Announce gave up after %v, before EchoTimeout", took)
	}
}

// TestFenceBlockedPublish: a transport whose publish blocks until its ctx
// is done (a server that stopped answering) stalls the endpoint as one
// that drops fences does: Fence fails once EchoTimeout has passed, and its
// followers are told it is down.
func TestFenceBlockedPublish(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	bus := &livetest.PromptInProcess{}
	p := &blockingPublish{PromptInProcess: bus}
	e := newEndpoint(t, live.WithPubSub(p), live.WithLeases(false))
	h := follow(t, e)
	blocking := &p.blocking
	blocking.Store(true)
	start := time.Now()
	expectErr(t, "Fence, its publish blocked", e.Fence(ctx), wantNotHeardBack)
	if took := time.Since(start); took < live.EchoTimeout {
		t.Fatalf("Fence failed after %v, before EchoTimeout", took)
	}
	if got := h.next(t, ctx); got != "down" {
		t.Fatalf("heard %q; want down", got)
	}
	expectErr(t, "Fence once stalled", e.Fence(ctx), wantDown)
}

// blockingPublish is a prompt bus whose Publish, while blocking is set,
// blocks until its ctx is done.
type blockingPublish struct {
	*livetest.PromptInProcess
	blocking atomic.Bool
}

func (p *blockingPublish) Publish(ctx context.Context, msg live.Message) error {
	if p.blocking.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	return p.PromptInProcess.Publish(ctx, msg)
}

// TestAnnounceRetriesAFailedPublish: a publish that fails (a pool that
// has not yet seen its server back) is tried again within EchoTimeout.
func TestAnnounceRetriesAFailedPublish(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	p := &failingOnce{PromptInProcess: &livetest.PromptInProcess{}}
	e := newEndpoint(t, live.WithPubSub(p), live.WithLeases(false))
	h := follow(t, e)
	if err := e.Announce(ctx, []revocation.Disconnect{{JTI: "j1"}}); err != nil {
		t.Fatalf("Announce after a failed publish: %v", err)
	}
	if got := h.next(t, ctx); got != "revoking j1" {
		t.Fatalf("heard %q; want the announcement", got)
	}
	if n := p.tries.Load(); n != 2 {
		t.Fatalf("%d revoking publishes; want the failed one and one more", n)
	}
}

// failingOnce is a prompt bus whose first revoking publish fails.
type failingOnce struct {
	*livetest.PromptInProcess
	tries atomic.Int64
}

func (p *failingOnce) Publish(ctx context.Context, msg live.Message) error {
	if msg.Kind == live.KindRevoking && p.tries.Add(1) == 1 {
		return fmt.Errorf("dial tcp: connection refused")
	}
	return p.PromptInProcess.Publish(ctx, msg)
}
