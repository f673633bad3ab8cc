package live_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
)

// echoFrame is a frame of the "echo" event whose JSON is exactly size
// bytes long.
func echoFrame(t *testing.T, size int) []byte {
	t.Helper()
	empty, err := json.Marshal(live.Frame{Event: "echo", Payload: json.RawMessage(`""`)})
	if err != nil {
		t.Fatal(err)
	}
	pad := size - len(empty)
	if pad < 0 {
		t.Fatalf("a %d-byte frame is too small for the echo event", size)
	}
	b, err := json.Marshal(live.Frame{Event: "echo", Payload: json.RawMessage(`"` + strings.Repeat("x", pad) + `"`)})
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != size {
		t.Fatalf("the frame is %d bytes, want %d", len(b), size)
	}
	return b
}

// echoes sends a frame of size bytes and waits for its echo: the socket
// reads frames of that size.
func echoes(t *testing.T, ctx context.Context, c *livetest.Client, size int) {
	t.Helper()
	if err := c.Conn.WriteMessage(websocket.TextMessage, echoFrame(t, size)); err != nil {
		t.Fatalf("sending %d bytes: %v", size, err)
	}
	f, err := c.WaitEvent(ctx, "echoed")
	if err != nil {
		t.Fatalf("no echo of a %d-byte frame: %v", size, err)
	}
	var p string
	if err := json.Unmarshal(f.Payload, &p); err != nil || len(p) != size-len(`{"event":"echo","payload":""}`) {
		t.Fatalf("the echo of a %d-byte frame is %d bytes", size, len(f.Payload))
	}
}

// A frame larger than max_message_size closes the socket that sent it
// with 1009 (message too big); a frame of exactly that size goes through.
// The endpoint stays up: the user's other socket and another user's keep
// working, and new sockets open.
func TestOversizedFrameClosesOnlyItsSocket(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings live.Settings
		limit    int
	}{
		{"default", live.Settings{}, 64 << 10},
		{"max_message_size 4096", live.Settings{MaxMessageSize: 4096}, 4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			echo := live.WithHandler("echo", func(_ context.Context, c *live.Conn, payload json.RawMessage) {
				_ = c.Send("echoed", payload)
			})
			h := livetest.New(t, "sqlite", livetest.Options{EndpointOptions: []live.Option{
				quiet(), echo, live.WithSettings(tc.settings),
			}})
			ctx := testCtx(t, 30*time.Second)
			ada := h.Register(t, "ada@example.com")
			bob := h.Register(t, "bob@example.com")
			sender := h.MustDial(t, ctx, livetest.Bearer(ada.Token))
			sibling := h.MustDial(t, ctx, livetest.Bearer(ada.Token))
			other := h.MustDial(t, ctx, livetest.Bearer(bob.Token))

			echoes(t, ctx, sender, tc.limit)
			if err := sender.Conn.WriteMessage(websocket.TextMessage, echoFrame(t, tc.limit+1)); err != nil {
				t.Fatalf("sending %d bytes: %v", tc.limit+1, err)
			}
			f, err := sender.Read(ctx)
			var ce *websocket.CloseError
			switch {
			case err == nil:
				t.Fatalf("a %d-byte frame was read: the server answered %s", tc.limit+1, f.Event)
			case !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig:
				t.Fatalf("after a %d-byte frame the socket ended with %v, want close %d (message too big)",
					tc.limit+1, err, websocket.CloseMessageTooBig)
			}

			echoes(t, ctx, sibling, tc.limit)
			echoes(t, ctx, other, tc.limit)
			again := h.MustDial(t, ctx, livetest.Bearer(ada.Token))
			echoes(t, ctx, again, tc.limit)
		})
	}
}
