package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/internal/metricstest"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
)

// hearing follows a node's endpoint after the node's token store does
// (Domain.Attach made the store follow it first), so that when it hears
// of a revocation, the store knows of it already.
type hearing struct {
	mu    sync.Mutex
	heard map[string]chan struct{}
}

func hear(n *node) *hearing {
	h := &hearing{heard: map[string]chan struct{}{}}
	n.Endpoint.Follow(h)
	return h
}

func (h *hearing) ch(jti string) chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := h.heard[jti]
	if ch == nil {
		ch = make(chan struct{})
		h.heard[jti] = ch
	}
	return ch
}

// Revoked implements revocation.Watcher.
func (h *hearing) Revoked(ds []revocation.Disconnect) {
	for _, d := range ds {
		ch := h.ch(d.JTI)
		select {
		case <-ch:
		default:
			close(ch)
		}
	}
}

// Revoking implements revocation.Watcher.
func (h *hearing) Revoking([]revocation.Disconnect) {}

// State implements revocation.Watcher.
func (h *hearing) State(bool) {}

// wait waits until the revocation of jti is heard.
func (h *hearing) wait(t testing.TB, ctx context.Context, jti string) {
	t.Helper()
	select {
	case <-h.ch(jti):
	case <-ctx.Done():
		t.Fatalf("the revocation of %s was never heard", jti)
	}
}

// done reports whether the revocation of jti was heard.
func (h *hearing) done(jti string) bool {
	select {
	case <-h.ch(jti):
		return true
	default:
		return false
	}
}

// knowledgeOf reads a node's kiln_tokens_knowledge_* counters.
type knowledgeOf struct {
	reg *prometheus.Registry
}

func knowledgeMetrics(t testing.TB, n *node) knowledgeOf {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(n.Auth.Tokens()); err != nil {
		t.Fatal(err)
	}
	return knowledgeOf{reg}
}

func (k knowledgeOf) hits(t testing.TB, known string) float64 {
	t.Helper()
	return metricstest.Values(t, k.reg)[`kiln_tokens_knowledge_hits_total{known="`+known+`"}`]
}

// verifiedFromMemory verifies token on n twice and wants the second
// answered from n's knowledge.
func verifiedFromMemory(t *testing.T, ctx context.Context, n *node, k knowledgeOf, token string) {
	t.Helper()
	for range 2 {
		if _, err := n.Auth.Verify(ctx, token); err != nil {
			t.Fatalf("%s refuses a good token: %v", n.name, err)
		}
	}
	before := k.hits(t, "good")
	if _, err := n.Auth.Verify(ctx, token); err != nil {
		t.Fatalf("%s refuses a good token: %v", n.name, err)
	}
	if k.hits(t, "good")-before != 1 {
		t.Fatalf("%s read a token it had just read again: its knowledge is not in use", n.name)
	}
}

func expectInvalid(t *testing.T, ctx context.Context, n *node, token, when string) {
	t.Helper()
	if _, err := n.Auth.Verify(ctx, token); !errors.Is(err, authentication.ErrInvalidToken) {
		t.Fatalf("%s: %s verifies a revoked token: %v", when, n.name, err)
	}
}

// leaseMode is how the nodes of a knowledge test check from memory: with
// leases (live.LeaseTerm), which the test waits for, every check is
// answered without a fence, and every revocation waits for the other
// node's acknowledgement; without, every check fences.
type leaseMode struct {
	name    string
	options []live.Option
	leased  bool
}

var leaseModes = []leaseMode{{name: "leased", leased: true}, {name: "fenced", options: []live.Option{live.WithLeases(false)}}}

func forEachLeaseMode(t *testing.T, fn func(t *testing.T, tr transport, m leaseMode)) {
	forEachTransport(t, false, func(t *testing.T, tr transport) {
		for _, m := range leaseModes {
			t.Run(m.name, func(t *testing.T) { fn(t, tr, m) })
		}
	})
}

// wait waits until the nodes hold leases, in the leased mode.
func (m leaseMode) wait(t *testing.T, ctx context.Context, nodes ...*node) {
	t.Helper()
	for _, n := range nodes {
		for m.leased && !n.Endpoint.Leased() {
			select {
			case <-time.After(10 * time.Millisecond):
			case <-ctx.Done():
				t.Fatalf("%s holds no lease: %v", n.name, ctx.Err())
			}
		}
	}
}

// still fails when a node holds a lease in the fenced mode: its checks
// were not fenced. (A lease may lapse on a loaded machine, and the checks
// fence then: it is not checked in the leased mode.)
func (m leaseMode) still(t *testing.T, nodes ...*node) {
	t.Helper()
	for _, n := range nodes {
		if !m.leased && n.Endpoint.Leased() {
			t.Fatalf("%s holds a lease in the fenced mode", n.name)
		}
	}
}

// TestKnowledgeExact: node B checks tokens from memory once it has read
// them, and node A revokes them. A refuses the token, from memory, as soon
// as its revocation has returned, and so does B, at once, whether the
// revocation's message has reached it yet or not; once B has heard of it,
// B refuses it from memory. When B's
// subscription is lost from the server's side and A revokes meanwhile —
// before or after B notices, its message lost or not — B refuses the
// token once it has noticed the loss, from the database, and again once
// subscribed anew; and messages teach it revocations again after that.
func TestKnowledgeExact(t *testing.T) {
	forEachTransport(t, false, func(t *testing.T, tr transport) {
		c := newCluster(t, tr)
		a := c.node(livetest.NodeOptions{})
		b := c.node(livetest.NodeOptions{})
		aKnows := knowledgeMetrics(t, a)
		bHears, bKnows := hear(b), knowledgeMetrics(t, b)
		email := "knowledge@example.com"
		a.Register(t, email)
		ctx, cancel := context.WithTimeout(context.Background(), 3*short)
		defer cancel()
		a.ps.wait(t, ctx, live.KindSubscribed)
		b.ps.wait(t, ctx, live.KindSubscribed)

		// A message: refused from memory. On A, which revoked, at once.
		s1 := a.SignIn(t, email)
		verifiedFromMemory(t, ctx, a, aKnows, s1.Token)
		verifiedFromMemory(t, ctx, b, bKnows, s1.Token)
		if err := a.Auth.Tokens().Revoke(ctx, s1.Token, revocation.SignedOut); err != nil {
			t.Fatal(err)
		}
		expectInvalid(t, ctx, a, s1.Token, "revoked on this node")
		if aKnows.hits(t, "revoked") != 1 {
			t.Error("A read the database for a token it had just revoked")
		}
		// On B at once, whether its message has arrived yet or not.
		expectInvalid(t, ctx, b, s1.Token, "revoked on another node")
		bHears.wait(t, ctx, s1.Claims.JTI)
		revokedHits := bKnows.hits(t, "revoked")
		expectInvalid(t, ctx, b, s1.Token, "the revocation heard")
		if bKnows.hits(t, "revoked") != revokedHits+1 {
			t.Error("B read the database for a revocation it had heard of")
		}

		// Lost, then revoked: the message is lost for good.
		s2 := a.SignIn(t, email)
		verifiedFromMemory(t, ctx, b, bKnows, s2.Token)
		tr.kill(t, c.channel, b.name, b.ps.PubSub)
		b.ps.wait(t, ctx, live.KindLost)
		if err := a.Auth.Tokens().Revoke(ctx, s2.Token, revocation.SignedOut); err != nil {
			t.Fatal(err)
		}
		expectInvalid(t, ctx, b, s2.Token, "revoked while B was down")
		b.ps.wait(t, ctx, live.KindSubscribed)
		expectInvalid(t, ctx, b, s2.Token, "revoked while B was down, B back")

		// Revoked at once after the kill, before B may have noticed: the
		// message is lost, or comes if B was quick to get back.
		s3 := a.SignIn(t, email)
		verifiedFromMemory(t, ctx, b, bKnows, s3.Token)
		tr.kill(t, c.channel, b.name, b.ps.PubSub)
		if err := a.Auth.Tokens().Revoke(ctx, s3.Token, revocation.SignedOut); err != nil {
			t.Fatal(err)
		}
		b.ps.wait(t, ctx, live.KindLost)
		expectInvalid(t, ctx, b, s3.Token, "revoked as B's subscription was killed, B noticed")
		b.ps.wait(t, ctx, live.KindSubscribed)
		expectInvalid(t, ctx, b, s3.Token, "revoked as B's subscription was killed, B back")

		// Subscribed anew: messages teach B again, and what it read before
		// the loss is read again.
		s4 := a.SignIn(t, email)
		verifiedFromMemory(t, ctx, b, bKnows, s4.Token)
		if err := a.Auth.Tokens().Revoke(ctx, s4.Token, revocation.SignedOut); err != nil {
			t.Fatal(err)
		}
		bHears.wait(t, ctx, s4.Claims.JTI)
		expectInvalid(t, ctx, b, s4.Token, "the revocation heard after B got back")
	})
}

// TestKnowledgeAtOnce: node B knows a token as good, node A revokes it,
// and B checks it twice before the revocation's message can have reached
// it: from a notifier of A's that runs once the revocation has committed,
// before it is published, and the moment A's revocation returns. B
// refuses it every time.
func TestKnowledgeAtOnce(t *testing.T) {
	const rounds = 40
	forEachLeaseMode(t, func(t *testing.T, tr transport, m leaseMode) {
		c := newCluster(t, tr)
		ctx, cancel := context.WithTimeout(context.Background(), 3*short)
		defer cancel()
		var b *node
		// The token whose revocation A's notifier checks on B (the
		// notifier runs on the goroutine that revokes), and that check's
		// error.
		var checking, checkingJTI string
		var committedErr error
		var committedChecks atomic.Int64 // how many ran
		a := c.node(livetest.NodeOptions{EndpointOptions: m.options, TokenNotifiers: []resource.Notifier{resource.NotifierFunc(func(ctx context.Context, n resource.Notification) error {
			if _, row, ok := tokenresource.RevocationOf(n); ok && checking != "" && row.JTI == checkingJTI {
				_, committedErr = b.Auth.Verify(ctx, checking)
				committedChecks.Add(1)
			}
			return nil
		})}})
		b = c.node(livetest.NodeOptions{EndpointOptions: m.options})
		bHears, bKnows := hear(b), knowledgeMetrics(t, b)
		email := "at-once@example.com"
		a.Register(t, email)
		a.ps.wait(t, ctx, live.KindSubscribed)
		b.ps.wait(t, ctx, live.KindSubscribed)
		m.wait(t, ctx, a, b)
		early := 0
		for round := range rounds {
			s := a.SignIn(t, email)
			verifiedFromMemory(t, ctx, b, bKnows, s.Token)
			checking, checkingJTI, committedErr = s.Token, s.Claims.JTI, nil
			if err := a.Auth.Tokens().Revoke(ctx, s.Token, revocation.SignedOut); err != nil {
				t.Fatal(err)
			}
			if !bHears.done(s.Claims.JTI) {
				early++
			}
			expectInvalid(t, ctx, b, s.Token, fmt.Sprintf("round %d, at once", round))
			if committedChecks.Load() != int64(round+1) {
				t.Fatalf("round %d: A's notifier checked the token on B %d times in all", round, committedChecks.Load())
			}
			if !errors.Is(committedErr, authentication.ErrInvalidToken) {
				t.Fatalf("round %d: committed, not yet published: %s verifies a revoked token: %v", round, b.name, committedErr)
			}
		}
		m.still(t, a, b)
		t.Logf("%d of %d checks began before B heard of the revocation", early, rounds)
	})
}

// TestKnowledgeSlowNode: node B holds a lease and knows a token as good,
// and its subscription is slow to hand it the announcement of the
// token's revocation on node A. A's revocation waits for B: B is handed
// the announcement only once A has published it again, and A's
// revocation returns only after that, so B refuses the token at once.
func TestKnowledgeSlowNode(t *testing.T) {
	forEachTransport(t, false, func(t *testing.T, tr transport) {
		c := newCluster(t, tr)
		a := c.node(livetest.NodeOptions{})
		b := c.node(livetest.NodeOptions{})
		bKnows := knowledgeMetrics(t, b)
		email := "slow@example.com"
		a.Register(t, email)
		ctx, cancel := context.WithTimeout(context.Background(), 3*short)
		defer cancel()
		leaseModes[0].wait(t, ctx, a, b)
		s := a.SignIn(t, email)
		verifiedFromMemory(t, ctx, b, bKnows, s.Token)

		release := make(chan struct{})
		var once sync.Once
		let := func() { once.Do(func() { close(release) }) }
		t.Cleanup(let)
		b.ps.held.Store(&release)
		var announced atomic.Int64
		republished := func(m live.Message) {
			if m.Kind == live.KindRevoking && announced.Add(1) == 2 {
				let()
			}
		}
		a.ps.onPublish.Store(&republished)
		if err := a.Auth.Tokens().Revoke(ctx, s.Token, revocation.SignedOut); err != nil {
			t.Fatal(err)
		}
		expectInvalid(t, ctx, b, s.Token, "revoked on A, announced late to B")
		if n := announced.Load(); n < 2 {
			t.Fatalf("A published its announcement %d times; B held it back, so A should have published it again", n)
		}
	})
}

// TestKnowledgeHammer: goroutines verify a token on node B, from memory,
// while node A revokes it. Once A's revocation has returned, no
// verification that begins on B succeeds, whether B has heard of the
// revocation yet or not.
func TestKnowledgeHammer(t *testing.T) {
	const (
		rounds  = 3
		workers = 4
		after   = 50 // verifications per worker once the revocation is heard
	)
	forEachLeaseMode(t, func(t *testing.T, tr transport, m leaseMode) {
		c := newCluster(t, tr)
		a := c.node(livetest.NodeOptions{EndpointOptions: m.options})
		b := c.node(livetest.NodeOptions{EndpointOptions: m.options})
		bKnows := knowledgeMetrics(t, b)
		email := "hammer@example.com"
		a.Register(t, email)
		ctx, cancel := context.WithTimeout(context.Background(), 3*short)
		defer cancel()
		m.wait(t, ctx, a, b)
		for round := range rounds {
			s := a.SignIn(t, email)
			var servedBefore, servedAfter, refusedAfter atomic.Int64
			var revoked atomic.Bool // A's revocation has returned
			hitsBefore := bKnows.hits(t, "good")
			started := make(chan struct{})
			var once sync.Once
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					left := after
					for left > 0 && ctx.Err() == nil {
						after := revoked.Load()
						_, err := b.Auth.Verify(ctx, s.Token)
						switch {
						case after && err == nil:
							servedAfter.Add(1)
						case after:
							refusedAfter.Add(1)
						case err == nil:
							if servedBefore.Add(1) >= 50 {
								once.Do(func() { close(started) })
							}
						}
						if after {
							left--
						}
					}
				})
			}
			select {
			case <-started:
			case <-ctx.Done():
				t.Fatalf("round %d: B verified the token fewer than 50 times", round)
			}
			if err := a.Auth.Tokens().Revoke(ctx, s.Token, revocation.SignedOut); err != nil {
				t.Fatal(err)
			}
			revoked.Store(true)
			wg.Wait()
			if ctx.Err() != nil {
				t.Fatalf("round %d: %v", round, ctx.Err())
			}
			if n := servedAfter.Load(); n > 0 {
				t.Fatalf("round %d: B served the token %d times after its revocation returned on A", round, n)
			}
			if bKnows.hits(t, "good") == hitsBefore {
				t.Fatalf("round %d: B never verified from memory", round)
			}
			t.Logf("round %d: served %d times before the revocation returned, refused %d times after", round, servedBefore.Load(), refusedAfter.Load())
		}
		m.still(t, a, b)
	})
}
