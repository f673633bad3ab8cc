package live_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
)

// limited is a harness whose endpoint allows perSession sockets per
// session and perSubject per user.
func limited(t *testing.T, perSession, perSubject int) *livetest.Harness {
	t.Helper()
	return livetest.New(t, "sqlite", livetest.Options{EndpointOptions: []live.Option{
		live.WithSettings(live.Settings{MaxSocketsPerSession: perSession, MaxSocketsPerSubject: perSubject}),
	}})
}

// issue issues another session token for user.
func issue(t *testing.T, ctx context.Context, h *livetest.Harness, user any) string {
	t.Helper()
	token, _, err := h.Auth.Issue(ctx, user, authentication.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// isTooMany tells whether a dial's error is the socket being closed
// at once with 4029 and reason.
func isTooMany(status int, err error, reason string) bool {
	var ce *websocket.CloseError
	return status == http.StatusSwitchingProtocols && errors.As(err, &ce) &&
		ce.Code == live.CloseTooManySockets && ce.Text == reason
}

// closeClient closes a socket with a close handshake and waits for the
// server's reply.
func closeClient(t *testing.T, ctx context.Context, c *livetest.Client) {
	t.Helper()
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := c.Conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := c.Read(ctx); err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("closing: %v", err)
			}
			return
		}
	}
}

// One session may open max_sockets_per_session sockets; one more is
// closed at once with 4029 and the reason. Another session of the same
// user is not affected, and closing a socket frees its slot.
func TestSocketLimitPerSession(t *testing.T) {
	h := limited(t, 3, 100)
	ctx := testCtx(t, 20*time.Second)
	ada := h.Register(t, "ada@example.com")
	var open []*livetest.Client
	for range 3 {
		open = append(open, h.MustDial(t, ctx, livetest.Bearer(ada.Token)))
	}
	_, status, err := h.Dial(ctx, livetest.Bearer(ada.Token))
	if !isTooMany(status, err, live.ReasonTooManyForSession) {
		t.Fatalf("the 4th socket of a session: %d %v, want closed with 4029 %q", status, err, live.ReasonTooManyForSession)
	}
	// The plain GET client.js probes with still tells the session holds.
	if resp, _ := h.Do(t, http.MethodGet, "/live/websocket", nil, livetest.Bearer(ada.Token)); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("the probe at the limit answered %d, want 400", resp.StatusCode)
	}
	h.MustDial(t, ctx, livetest.Bearer(issue(t, ctx, h, ada.Record)))

	// The slot is given back once the server has seen the socket end,
	// just after its close reply: until then a dial is refused the same
	// way.
	closeClient(t, ctx, open[0])
	for {
		c, status, err := h.Dial(ctx, livetest.Bearer(ada.Token))
		if err == nil {
			c.Conn.Close()
			break
		}
		if !isTooMany(status, err, live.ReasonTooManyForSession) {
			t.Fatalf("a dial after a socket closed: %d %v", status, err)
		}
	}
}

// Sockets of one session dialed all at once cannot overshoot the limit.
func TestSocketLimitHoldsUnderConcurrentDials(t *testing.T) {
	const limit, dials = 3, 24
	h := limited(t, limit, 100)
	ctx := testCtx(t, 30*time.Second)
	ada := h.Register(t, "ada@example.com")
	var mu sync.Mutex
	var opened []*livetest.Client
	refused := 0
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range dials {
		wg.Go(func() {
			<-start
			c, status, err := h.Dial(ctx, livetest.Bearer(ada.Token))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				opened = append(opened, c)
			case isTooMany(status, err, live.ReasonTooManyForSession):
				refused++
			default:
				t.Errorf("dial: %d %v", status, err)
			}
		})
	}
	close(start)
	wg.Wait()
	for _, c := range opened {
		c.Conn.Close()
	}
	if len(opened) != limit || refused != dials-limit {
		t.Fatalf("%d sockets opened and %d refused, want %d and %d", len(opened), refused, limit, dials-limit)
	}
}

// One user may open max_sockets_per_subject sockets over all sessions;
// another user is not affected.
func TestSocketLimitPerUser(t *testing.T) {
	h := limited(t, 2, 3)
	ctx := testCtx(t, 20*time.Second)
	ada := h.Register(t, "ada@example.com")
	second := issue(t, ctx, h, ada.Record)
	h.MustDial(t, ctx, livetest.Bearer(ada.Token))
	h.MustDial(t, ctx, livetest.Bearer(ada.Token))
	h.MustDial(t, ctx, livetest.Bearer(second))
	for _, token := range []string{second, issue(t, ctx, h, ada.Record)} {
		_, status, err := h.Dial(ctx, livetest.Bearer(token))
		if !isTooMany(status, err, live.ReasonTooManyForUser) {
			t.Fatalf("ada's 4th socket: %d %v, want closed with 4029 %q", status, err, live.ReasonTooManyForUser)
		}
	}
	bob := h.Register(t, "bob@example.com")
	h.MustDial(t, ctx, livetest.Bearer(bob.Token))
	h.MustDial(t, ctx, livetest.Bearer(bob.Token))
}
