package live_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource"
)

// dialMany issues n tokens for user and opens a socket with each, a few at
// a time.
func dialMany(t *testing.T, ctx context.Context, h *livetest.Harness, user any, n int) []*livetest.Client {
	t.Helper()
	tokens := make([]string, n)
	err := h.Domain.InTransaction(ctx, func(ctx context.Context) error {
		for i := range tokens {
			token, _, err := h.Auth.Issue(ctx, user, authentication.IssueOptions{})
			if err != nil {
				return err
			}
			tokens[i] = token
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	clients := make([]*livetest.Client, n)
	errs := make(chan error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range next {
				c, _, err := h.Dial(ctx, livetest.Bearer(tokens[i]))
				if err != nil {
					errs <- err
					continue
				}
				clients[i] = c
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() {
		for _, c := range clients {
			c.Conn.Close()
		}
	})
	return clients
}

// One log out everywhere closes all 1,000 sockets of a user (1,000
// sessions, over the default per-user limit, raised here); another user's
// 1,000 sockets stay open and keep receiving broadcasts.
func TestLogOutEverywhereClosesAThousandSockets(t *testing.T) {
	const n = 1000
	h := livetest.New(t, "sqlite", livetest.Options{EndpointOptions: []live.Option{
		subscribeUser(), live.WithSettings(live.Settings{MaxSocketsPerSubject: n}),
	}})
	ctx := testCtx(t, 2*time.Minute)
	ada := h.Register(t, "ada@example.com")
	bob := h.Register(t, "bob@example.com")
	adas := dialMany(t, ctx, h, ada.Record, n)
	bobs := dialMany(t, ctx, h, bob.Record, n)
	if got := h.Endpoint.Len(); got != 2*n {
		t.Fatalf("%d sockets open, want %d", got, 2*n)
	}

	type closed struct {
		code   int
		reason string
		err    error
	}
	results := make(chan closed, n)
	for _, c := range adas {
		go func() {
			code, reason, err := c.WaitClose(ctx)
			results <- closed{code, reason, err}
		}()
	}
	start := time.Now()
	res, err := h.Domain.Run(ctx, h.Users, "log_out_everywhere", resource.Input{"user": ada.Record})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.NotifyErrors) != 0 || res.Value != n+1 {
		t.Fatalf("revoked %v tokens (want %d), notify errors %v", res.Value, n+1, res.NotifyErrors)
	}
	revoked := time.Since(start)
	if got := h.Endpoint.Len(); got != n {
		t.Fatalf("%d sockets open after log out everywhere, want bob's %d", got, n)
	}
	for range n {
		r := <-results
		if r.err != nil || r.code != live.CloseSignedOut || r.reason != "signed out everywhere" {
			t.Fatalf("closed with %d %q %v", r.code, r.reason, r.err)
		}
	}
	t.Logf("log out everywhere revoked %d tokens in %s; all %d sockets closed after %s", n+1, revoked, n, time.Since(start))

	if err := h.Endpoint.Broadcast(ctx, userTopic(bob.Claims.Subject), "still-here", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, n)
	for _, c := range bobs {
		go func() {
			f, err := c.Read(ctx)
			if err == nil && (f.Event != "still-here" || string(f.Payload) != `{"n":1}`) {
				b, _ := json.Marshal(f)
				t.Errorf("bob's socket read %s", b)
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("bob's socket: %v", err)
		}
	}
}

// limitedPubSub is an InProcess with a payload limit, recording every
// message published.
type limitedPubSub struct {
	live.InProcess
	limit int
	mu    sync.Mutex
	sent  []live.Message
}

func (p *limitedPubSub) PayloadLimit() int { return p.limit }

func (p *limitedPubSub) Publish(ctx context.Context, msg live.Message) error {
	p.mu.Lock()
	p.sent = append(p.sent, msg)
	p.mu.Unlock()
	return p.InProcess.Publish(ctx, msg)
}

// A log out everywhere publishes its socket ids in as few disconnect
// messages as the transport's payload limit allows, not one per token:
// each message is under the limit and full (the next message's first id
// would not fit), together they carry every revoked token's socket id
// once, and every socket closes with 4001 and its reason.
func TestLogOutEverywherePublishesFullChunks(t *testing.T) {
	const n, limit = 300, 2000
	ps := &limitedPubSub{limit: limit}
	h := livetest.New(t, "sqlite", livetest.Options{EndpointOptions: []live.Option{
		live.WithPubSub(ps), live.WithSettings(live.Settings{MaxSocketsPerSubject: n}),
	}})
	ctx := testCtx(t, 2*time.Minute)
	ada := h.Register(t, "ada@example.com")
	clients := dialMany(t, ctx, h, ada.Record, n)
	ps.mu.Lock()
	ps.sent = nil
	ps.mu.Unlock()
	res, err := h.Domain.Run(ctx, h.Users, "log_out_everywhere", resource.Input{"user": ada.Record})
	if err != nil || len(res.NotifyErrors) != 0 || res.Value != n+1 {
		t.Fatalf("log out everywhere: revoked %v, %v, notify errors %v", res, err, res.NotifyErrors)
	}
	for _, c := range clients {
		code, reason, err := c.WaitClose(ctx)
		if err != nil || code != live.CloseSignedOut || reason != "signed out everywhere" {
			t.Fatalf("closed with %d %q %v", code, reason, err)
		}
	}
	ps.mu.Lock()
	sent := ps.sent
	ps.mu.Unlock()
	seen := map[string]bool{}
	for i, m := range sent {
		b, _ := json.Marshal(m)
		if m.SocketID != "" { // one socket id: Disconnect's form
			m = live.Message{Kind: m.Kind, Disconnects: []live.Disconnected{{SocketID: m.SocketID, Reason: m.Reason}}}
		}
		if m.Kind != live.KindDisconnect || len(b) > limit {
			t.Fatalf("message %d: %s (%d bytes, limit %d)", i, b, len(b), limit)
		}
		if i+1 < len(sent) {
			fuller := m
			next := live.Disconnected{SocketID: sent[i+1].SocketID, Reason: sent[i+1].Reason}
			if len(sent[i+1].Disconnects) > 0 {
				next = sent[i+1].Disconnects[0]
			}
			fuller.Disconnects = append(slices.Clone(m.Disconnects), next)
			if b, _ := json.Marshal(fuller); len(b) <= limit {
				t.Fatalf("message %d has room for the next socket id (%d bytes with it)", i, len(b))
			}
		}
		for _, d := range m.Disconnects {
			if seen[d.SocketID] || d.Reason != "log_out_everywhere" {
				t.Fatalf("socket id %s again, or reason %q", d.SocketID, d.Reason)
			}
			seen[d.SocketID] = true
		}
	}
	if len(seen) != n+1 || len(sent) < 2 {
		t.Fatalf("%d socket ids in %d messages, want %d (the registration's token too) in several", len(seen), len(sent), n+1)
	}
	t.Logf("%d socket ids in %d messages of at most %d bytes", len(seen), len(sent), limit)
}
