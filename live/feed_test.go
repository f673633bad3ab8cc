package live_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/revocation"
)

// events is a revocation.Watcher that writes down what it hears, in
// order, with the name of its endpoint; check, when set, runs in Revoked.
type events struct {
	mu    sync.Mutex
	log   []string
	check func(ds []revocation.Disconnect)
}

type named struct {
	*events
	name string
}

func (n named) Revoked(ds []revocation.Disconnect) {
	if n.check != nil {
		n.check(ds)
	}
	var parts []string
	for _, d := range ds {
		exp := ""
		if !d.ExpiresAt.IsZero() {
			exp = "@" + fmt.Sprint(d.ExpiresAt.Unix())
		}
		parts = append(parts, d.SocketID+"/"+d.JTI+exp+"/"+string(d.Reason))
	}
	n.add(n.name + " revoked " + strings.Join(parts, ","))
}

func (n named) Revoking(ds []revocation.Disconnect) {
	jtis := make([]string, len(ds))
	for i, d := range ds {
		jtis[i] = d.JTI
	}
	n.add(n.name + " revoking " + strings.Join(jtis, ","))
}

func (n named) State(up bool) {
	if up {
		n.add(n.name + " up")
	} else {
		n.add(n.name + " down")
	}
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.log = append(e.log, s)
	e.mu.Unlock()
}

func (e *events) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.log
	e.log = nil
	return l
}

func expectEvents(t *testing.T, e *events, want ...string) {
	t.Helper()
	if got := e.take(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("heard:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func newEndpoint(t *testing.T, opts ...live.Option) *live.Endpoint {
	t.Helper()
	e, err := live.New(append([]live.Option{quiet()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	return e
}

// TestEndpointFeed: an endpoint is a revocation.Feed. Its followers hear
// of its own revocations when it sends them, before they are published,
// of the other nodes' when their messages arrive, in either message form
// (one without a jti is heard without one), and of the subscription going
// up and down; after Shutdown it stays down. It is prompt only on a
// prompt transport.
func TestEndpointFeed(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	bus := &livetest.PromptInProcess{}
	a := newEndpoint(t, live.WithPubSub(bus))
	b := newEndpoint(t, live.WithPubSub(bus))
	log := &events{}
	if !a.Follow(named{log, "a"}) || !b.Follow(named{log, "b"}) {
		t.Fatal("an endpoint on a prompt transport says it is not prompt")
	}
	expectEvents(t, log, "a up", "b up")

	exp := time.Unix(2000000000, 0)
	if err := a.DisconnectMany(ctx, []revocation.Disconnect{
		{SocketID: "s:1", Reason: revocation.SignedOut, JTI: "1", ExpiresAt: exp},
		{SocketID: "s:2", Reason: revocation.LogOutEverywhere, JTI: "2"},
	}); err != nil {
		t.Fatal(err)
	}
	// a before it publishes; then the message, to a (its echo) and b in
	// the order the bus calls them.
	got := log.take()
	if len(got) != 3 || got[0] != "a revoked s:1/1@2000000000/signed_out,s:2/2/log_out_everywhere" {
		t.Fatalf("heard %q; want a's own revocations first", got)
	}
	for _, name := range []string{"a", "b"} {
		if !strings.Contains(strings.Join(got[1:], "\n"), name+" revoked s:1/1@2000000000/signed_out,s:2/2/log_out_everywhere") {
			t.Fatalf("heard %q; want the message at %s", got, name)
		}
	}

	// One socket id: the single form, with its jti.
	if err := a.DisconnectMany(ctx, []revocation.Disconnect{{SocketID: "s:3", Reason: revocation.Revoked, JTI: "3", ExpiresAt: exp}}); err != nil {
		t.Fatal(err)
	}
	if got := log.take(); len(got) != 3 || !strings.Contains(strings.Join(got, "\n"), "b revoked s:3/3@2000000000/revoked") {
		t.Fatalf("heard %q", got)
	}

	// A node of an earlier version names no token.
	if err := bus.Publish(ctx, live.Message{Kind: live.KindDisconnect, SocketID: "s:old", Reason: "revoked"}); err != nil {
		t.Fatal(err)
	}
	got = log.take()
	if len(got) != 2 || !strings.Contains(strings.Join(got, "\n"), "b revoked s:old//revoked") {
		t.Fatalf("heard %q", got)
	}
	if err := a.Disconnect(ctx, "s:4", revocation.Revoked); err != nil {
		t.Fatal(err)
	}
	if got := log.take(); len(got) != 3 || !strings.Contains(strings.Join(got, "\n"), "b revoked s:4//revoked") {
		t.Fatalf("heard %q", got)
	}

	for _, kind := range []string{live.KindLost, live.KindSubscribed} {
		if err := bus.Publish(ctx, live.Message{Kind: kind}); err != nil {
			t.Fatal(err)
		}
	}
	got = log.take()
	if len(got) != 4 || !strings.HasSuffix(got[0], " down") || !strings.HasSuffix(got[1], " down") || got[0] == got[1] ||
		!strings.HasSuffix(got[2], " up") || !strings.HasSuffix(got[3], " up") || got[2] == got[3] {
		t.Fatalf("heard %q; want each down, then each up", got)
	}

	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := log.take(); len(got) != 1 || got[0] != "b down" {
		t.Fatalf("heard %q at shutdown; want b down", got)
	}
	if err := bus.Publish(ctx, live.Message{Kind: live.KindSubscribed}); err != nil {
		t.Fatal(err)
	}
	for _, e := range log.take() {
		if e == "b up" {
			t.Fatal("b is up again after its shutdown")
		}
	}

	// Not prompt: the default InProcess, this process's only.
	if newEndpoint(t).Follow(named{&events{}, "c"}) {
		t.Fatal("an endpoint on an InProcess says it is prompt")
	}
}

// TestEndpointFeedBeforeClose: a revocation from another node is heard
// before the endpoint closes its sockets, so that once a socket of the
// token is closed, the node knows the token revoked.
func TestEndpointFeedBeforeClose(t *testing.T) {
	bus := &livetest.PromptInProcess{}
	h := livetest.New(t, "sqlite", livetest.Options{PubSub: bus, EndpointOptions: []live.Option{quiet()}})
	other := newEndpoint(t, live.WithPubSub(bus))
	ctx := testCtx(t, 10*time.Second)
	ada := h.Register(t, "ada@example.com")
	c := h.MustDial(t, ctx, livetest.Bearer(ada.Token))
	log := &events{}
	open := make(chan int, 1)
	log.check = func(ds []revocation.Disconnect) {
		if len(ds) == 1 && ds[0].JTI == ada.Claims.JTI {
			open <- len(h.Endpoint.Conns())
		}
	}
	h.Endpoint.Follow(named{log, "h"})
	if err := other.DisconnectMany(ctx, []revocation.Disconnect{{SocketID: c.SocketID, Reason: revocation.Revoked, JTI: ada.Claims.JTI}}); err != nil {
		t.Fatal(err)
	}
	if n := <-open; n != 1 {
		t.Fatalf("%d sockets open when the revocation was heard; want the token's one", n)
	}
	code, reason, err := c.WaitClose(ctx)
	if err != nil || code != live.CloseSignedOut || reason != "revoked" {
		t.Fatalf("closed with %d %q (%v)", code, reason, err)
	}
}

// TestSweepTellsFollowers: a revocation the safety net's sweep reads (one
// whose message never arrived) reaches the endpoint's followers, with its
// jti, before the token's socket closes.
func TestSweepTellsFollowers(t *testing.T) {
	var revokedJTI string
	checker := live.CheckerFunc(func(_ context.Context, jtis []string) (map[string]revocation.Reason, error) {
		out := map[string]revocation.Reason{}
		for _, jti := range jtis {
			if jti == revokedJTI {
				out[jti] = revocation.Revoked
			}
		}
		return out, nil
	})
	h := livetest.New(t, "sqlite", livetest.Options{EndpointOptions: []live.Option{quiet(), live.WithChecker(checker)}})
	ctx := testCtx(t, 10*time.Second)
	ada := h.Register(t, "ada@example.com")
	bob := h.Register(t, "bob@example.com")
	c := h.MustDial(t, ctx, livetest.Bearer(ada.Token))
	h.MustDial(t, ctx, livetest.Bearer(bob.Token))
	revokedJTI = ada.Claims.JTI
	log := &events{}
	open := make(chan int, 1)
	log.check = func(ds []revocation.Disconnect) {
		if len(ds) == 1 && ds[0].JTI == ada.Claims.JTI && ds[0].SocketID == c.SocketID && ds[0].Reason == revocation.Revoked {
			open <- len(h.Endpoint.Conns())
		}
	}
	h.Endpoint.Follow(named{log, "h"})
	n, err := h.Endpoint.Sweep(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1 closed", n, err)
	}
	select {
	case open := <-open:
		if open != 2 {
			t.Fatalf("%d sockets open when the sweep's revocation was heard; want both", open)
		}
	default:
		t.Fatalf("the followers did not hear the sweep's revocation: %v", log.take())
	}
	if code, reason, err := c.WaitClose(ctx); err != nil || code != live.CloseSignedOut || reason != "revoked" {
		t.Fatalf("closed with %d %q (%v)", code, reason, err)
	}
}
