package live_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/olahol/melody"

	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/revocation"
	"github.com/kiln-go/kiln/web"
)

// The close frame of a Disconnect reaches a client that stopped reading
// and whose outbound buffer is full: it arrives when the client reads
// again, after the frames already on their way.
func TestDisconnectReachesAClientWithAFullBuffer(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			h := livetest.New(t, db, livetest.Options{EndpointOptions: []live.Option{
				quiet(), subscribeUser(),
				live.WithConfig(func(c *melody.Config) { c.MessageBufferSize = 2 }),
			}})
			ctx := testCtx(t, 30*time.Second)
			ada := h.Register(t, "ada@example.com")
			c := h.MustDial(t, ctx, livetest.Bearer(ada.Token))
			// The client reads nothing from here until the revocation is
			// done. 4,000 frames of 4 KiB are more than the socket buffers
			// of both ends and melody's buffer of 2 hold.
			const frames = 4000
			payload := strings.Repeat("x", 4<<10)
			for i := range frames {
				if err := h.Endpoint.Broadcast(ctx, userTopic(ada.Claims.Subject), "fill", map[string]any{"i": i, "pad": payload}); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			if err := h.Auth.Tokens().Revoke(ctx, ada.Token, revocation.Revoked); err != nil {
				t.Fatal(err)
			}
			// The revocation does not wait for the slow client: the close
			// frame is written when the client's connection can take it.
			if d := time.Since(start); d > 2500*time.Millisecond {
				t.Fatalf("revoke took %s: it waited for a client that does not read", d)
			}
			received := 0
			for {
				f, err := c.Read(ctx)
				if err == nil {
					if f.Event != "fill" {
						t.Fatalf("unexpected frame %q", f.Event)
					}
					received++
					continue
				}
				var ce *websocket.CloseError
				if !errors.As(err, &ce) {
					t.Fatalf("after %d frames: %v, want the 4001 close", received, err)
				}
				if ce.Code != live.CloseSignedOut || ce.Text != "revoked" {
					t.Fatalf("closed with %d %q", ce.Code, ce.Text)
				}
				break
			}
			if received >= frames {
				t.Fatalf("the client received all %d frames: the buffer never filled", received)
			}
			t.Logf("received %d of %d frames, then the close", received, frames)
		})
	}
}

// Incoming frames go to the handler of their event; an unknown event or a
// frame that is not {"event", "payload"} JSON gets an "error" frame, and
// the socket stays open.
func TestIncomingEvents(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	echo := live.WithHandler("echo", func(ctx context.Context, c *live.Conn, payload json.RawMessage) {
		if ctx.Err() != nil {
			t.Errorf("handler context already done: %v", ctx.Err())
		}
		mu.Lock()
		seen = append(seen, c.Identity().Subject)
		mu.Unlock()
		_ = c.Send("echoed", payload)
	})
	h := livetest.New(t, "sqlite", livetest.Options{EndpointOptions: []live.Option{echo}})
	ctx := testCtx(t, 10*time.Second)
	ada := h.Register(t, "ada@example.com")
	c := h.MustDial(t, ctx, livetest.Bearer(ada.Token))

	roundTrip := func(n int) {
		t.Helper()
		if err := c.Send("echo", map[string]int{"n": n}); err != nil {
			t.Fatal(err)
		}
		f, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var p struct{ N int }
		if f.Event != "echoed" || json.Unmarshal(f.Payload, &p) != nil || p.N != n {
			t.Fatalf("got %s %s, want echoed {\"n\":%d}", f.Event, f.Payload, n)
		}
	}
	roundTrip(1)
	for _, tc := range []struct {
		frame string
		want  string
	}{
		{`{"event":"nope","payload":{}}`, "unknown event nope"},
		{`not json at all`, `frames are JSON {"event": …, "payload": …}`},
		{`{"payload":{}}`, `frames are JSON {"event": …, "payload": …}`},
		{`[1,2,3]`, `frames are JSON {"event": …, "payload": …}`},
	} {
		if err := c.Conn.WriteMessage(websocket.TextMessage, []byte(tc.frame)); err != nil {
			t.Fatal(err)
		}
		f, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("after %s: %v", tc.frame, err)
		}
		var p struct{ Message string }
		if f.Event != "error" || json.Unmarshal(f.Payload, &p) != nil || p.Message != tc.want {
			t.Fatalf("after %s: got %s %s, want error %q", tc.frame, f.Event, f.Payload, tc.want)
		}
	}
	roundTrip(2)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != ada.Claims.Subject {
		t.Fatalf("the handler saw %v", seen)
	}
}

// Shutdown closes every socket with 1001 (clients reconnect elsewhere),
// waits for them, and refuses new upgrades with 503.
func TestShutdown(t *testing.T) {
	h := livetest.New(t, "sqlite", livetest.Options{})
	ctx := testCtx(t, 10*time.Second)
	ada := h.Register(t, "ada@example.com")
	bob := h.Register(t, "bob@example.com")
	clients := []*livetest.Client{
		h.MustDial(t, ctx, livetest.Bearer(ada.Token)),
		h.MustDial(t, ctx, livetest.Bearer(ada.Token)),
		h.MustDial(t, ctx, livetest.Bearer(bob.Token)),
	}
	type closed struct {
		code   int
		reason string
		err    error
	}
	results := make(chan closed, len(clients))
	for _, c := range clients {
		go func() {
			code, reason, err := c.WaitClose(ctx)
			results <- closed{code, reason, err}
		}()
	}
	start := time.Now()
	if err := h.Endpoint.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	t.Logf("shutdown took %s", time.Since(start))
	for range clients {
		r := <-results
		if r.err != nil || r.code != live.CloseGoingAway || r.reason != "server shutting down" {
			t.Fatalf("closed with %d %q %v, want 1001", r.code, r.reason, r.err)
		}
	}
	if n := h.Endpoint.Len(); n != 0 {
		t.Fatalf("%d sockets left", n)
	}
	_, status, err := h.Dial(ctx, livetest.Bearer(ada.Token))
	if err == nil || status != http.StatusServiceUnavailable {
		t.Fatalf("dial after shutdown: %d %v, want 503", status, err)
	}
	// Revoking after shutdown is harmless.
	if err := h.Auth.Tokens().Revoke(ctx, ada.Token, revocation.Revoked); err != nil {
		t.Fatal(err)
	}
}

// client.js probes the endpoint with a plain GET when a connection fails
// before its hello: the endpoint must answer 401 for a session that is
// gone, and something else (400: not a WebSocket request) for one that
// holds.
func TestPlainGETTellsWhetherTheSessionHolds(t *testing.T) {
	h := livetest.New(t, "sqlite", livetest.Options{})
	ada := h.Register(t, "ada@example.com")
	probe := func(hd http.Header) int {
		t.Helper()
		resp, _ := h.Do(t, http.MethodGet, "/live/websocket", nil, hd)
		return resp.StatusCode
	}
	cookie := livetest.CookieHeader(h.SignInCookie(t, "ada@example.com"))
	if got := probe(cookie); got != http.StatusBadRequest {
		t.Fatalf("a valid session's probe answered %d, want 400", got)
	}
	if got := probe(livetest.Bearer(ada.Token)); got != http.StatusBadRequest {
		t.Fatalf("a valid token's probe answered %d, want 400", got)
	}
	if got := probe(nil); got != http.StatusUnauthorized {
		t.Fatalf("a probe without a session answered %d, want 401", got)
	}
	if resp, _ := h.PostForm(t, "/sign-out", nil, cookie); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out answered %d", resp.StatusCode)
	}
	if got := probe(cookie); got != http.StatusUnauthorized {
		t.Fatalf("a signed-out session's probe answered %d, want 401", got)
	}
	if err := h.Endpoint.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := probe(livetest.Bearer(ada.Token)); got != http.StatusServiceUnavailable {
		t.Fatalf("a probe during shutdown answered %d, want 503", got)
	}
}

// A socket accepted while Shutdown runs (it was authenticating when
// Shutdown closed the registered ones) is closed with 1001 too, and
// Shutdown does not wait for it to leave on its own.
func TestShutdownClosesASocketAcceptedMeanwhile(t *testing.T) {
	entered := make(chan struct{})
	gate := make(chan struct{})
	var once sync.Once
	h := livetest.New(t, "sqlite", livetest.Options{Authenticator: func(w *web.Web) live.Authenticator {
		inner := w.LiveAuthenticator()
		return live.AuthenticatorFunc(func(r *http.Request) (*live.Identity, error) {
			if r.Header.Get("X-Slow") != "" {
				once.Do(func() { close(entered) })
				<-gate
			}
			return inner.AuthenticateSocket(r)
		})
	}})
	ctx := testCtx(t, 20*time.Second)
	ada := h.Register(t, "ada@example.com")

	type dialed struct {
		c      *livetest.Client
		status int
		err    error
	}
	slow := make(chan dialed, 1)
	go func() {
		hd := livetest.Bearer(ada.Token)
		hd.Set("X-Slow", "1")
		c, status, err := h.Dial(ctx, hd)
		slow <- dialed{c, status, err}
	}()
	<-entered // the slow request is being authenticated

	shutdownCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.Endpoint.Shutdown(shutdownCtx) }()
	// Once new upgrades get 503, Shutdown has begun.
	for {
		c, status, err := h.Dial(ctx, livetest.Bearer(ada.Token))
		if err != nil && status == http.StatusServiceUnavailable {
			break
		}
		if err == nil {
			c.Conn.Close() // Shutdown has not begun yet
			continue
		}
		if ctx.Err() != nil {
			t.Fatal("Shutdown never refused an upgrade")
		}
	}
	close(gate)
	d := <-slow
	switch {
	case d.err == nil:
		defer d.c.Conn.Close()
		code, reason, err := d.c.WaitClose(ctx)
		if err != nil || code != live.CloseGoingAway || reason != "server shutting down" {
			t.Fatalf("the socket accepted during shutdown: %d %q %v, want 1001", code, reason, err)
		}
	default:
		var ce *websocket.CloseError
		if !errors.As(d.err, &ce) || ce.Code != live.CloseGoingAway {
			t.Fatalf("the socket accepted during shutdown: %d %v, want 1001", d.status, d.err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v (it waited for a socket it did not close)", err)
	}
}

// counting is a live.Rechecker around the glue's authenticator that
// counts its calls; its RecheckSocket fails while refuse is set.
type counting struct {
	inner                    live.Rechecker
	authenticated, rechecked atomic.Int64
	refuse                   atomic.Bool
}

func (c *counting) AuthenticateSocket(r *http.Request) (*live.Identity, error) {
	c.authenticated.Add(1)
	return c.inner.AuthenticateSocket(r)
}

func (c *counting) RecheckSocket(r *http.Request) error {
	c.rechecked.Add(1)
	if c.refuse.Load() {
		return errors.New("revoked meanwhile")
	}
	return c.inner.RecheckSocket(r)
}

// TestRecheck: with a live.Rechecker, a socket is authenticated once
// before its upgrade and rechecked once registered (the glue's rechecks
// its token without reading its user again); a recheck that fails closes
// the socket as revoked.
func TestRecheck(t *testing.T) {
	auth := &counting{}
	h := livetest.New(t, "sqlite", livetest.Options{Authenticator: func(w *web.Web) live.Authenticator {
		auth.inner = w.LiveAuthenticator().(live.Rechecker)
		return auth
	}})
	ctx := testCtx(t, 20*time.Second)
	ada := h.Register(t, "ada@example.com")
	c := h.MustDial(t, ctx, livetest.Bearer(ada.Token))
	defer c.Conn.Close()
	if a, r := auth.authenticated.Load(), auth.rechecked.Load(); a != 1 || r != 1 {
		t.Fatalf("authenticated %d times, rechecked %d times; want once each", a, r)
	}

	auth.refuse.Store(true)
	// The close frame goes ahead of the hello: it may end the dial.
	code, reason := 0, ""
	d, _, err := h.Dial(ctx, livetest.Bearer(ada.Token))
	var ce *websocket.CloseError
	switch {
	case err == nil:
		defer d.Conn.Close()
		code, reason, err = d.WaitClose(ctx)
	case errors.As(err, &ce):
		code, reason, err = ce.Code, ce.Text, nil
	}
	if err != nil || code != live.CloseSignedOut || reason != live.ReasonText(revocation.Revoked) {
		t.Fatalf("a socket whose recheck failed: %d %q %v; want %d %q", code, reason, err, live.CloseSignedOut, live.ReasonText(revocation.Revoked))
	}
}
