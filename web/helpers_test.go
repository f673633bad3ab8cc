package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
)

// databases are the databases every end-to-end test runs on; postgres
// skips without KILN_TEST_POSTGRES_URL (and fails without it under CI).
var databases = []string{"sqlite", "postgres"}

// userTopic is the topic every socket of a subject joins (subscribeUser).
func userTopic(subject string) string { return "user:" + subject }

// subscribeUser subscribes every socket to its user's topic when it opens.
func subscribeUser() live.Option {
	return live.OnOpen(func(c *live.Conn) { c.Subscribe(userTopic(c.Identity().Subject)) })
}

// testCtx bounds a test's waits.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// expectClose waits for c to be closed with 4001 and reason.
func expectClose(t *testing.T, ctx context.Context, c *livetest.Client, reason string) {
	t.Helper()
	code, text, err := c.WaitClose(ctx)
	if err != nil {
		t.Fatalf("socket %s: waiting for its close: %v", c.SocketID, err)
	}
	if code != live.CloseSignedOut || text != reason {
		t.Fatalf("socket %s closed with %d %q, want %d %q", c.SocketID, code, text, live.CloseSignedOut, reason)
	}
}

var nonce atomic.Int64

// expectOpen broadcasts a fresh event on topic and waits for c to receive
// it: a socket that was disconnected would read its close frame instead,
// since Disconnect takes it out of the topics before it returns.
func expectOpen(t *testing.T, ctx context.Context, h *livetest.Harness, c *livetest.Client, topic string) {
	t.Helper()
	n := nonce.Add(1)
	if err := h.Endpoint.Broadcast(ctx, topic, "ping", map[string]int64{"n": n}); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := c.WaitEvent(ctx, "ping")
		if err != nil {
			t.Fatalf("socket %s should be open and receive broadcasts on %s: %v", c.SocketID, topic, err)
		}
		var p struct{ N int64 }
		if err := json.Unmarshal(f.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if p.N == n {
			return
		}
	}
}

// expectRefused dials with header and wants the upgrade refused with
// status.
func expectRefused(t *testing.T, ctx context.Context, h *livetest.Harness, header http.Header, status int) {
	t.Helper()
	c, got, err := h.Dial(ctx, header)
	if err == nil {
		c.Conn.Close()
		t.Fatalf("socket %s opened; want the upgrade refused with %d", c.SocketID, status)
	}
	if got != status {
		t.Fatalf("dial: status %d (%v), want %d", got, err, status)
	}
}

// sendOnOpen sends a "welcome" frame from OnOpen.
func sendOnOpen() live.Option {
	return live.OnOpen(func(c *live.Conn) { _ = c.Send("welcome", map[string]string{}) })
}
