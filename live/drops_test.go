package live_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
)

// logLine is one record of a dropLog.
type logLine struct {
	msg   string
	attrs map[string]slog.Value
}

// dropLog is a slog.Handler that keeps every record and tells waiters of
// each new one.
type dropLog struct {
	mu    sync.Mutex
	lines []logLine
	added chan struct{}
}

func newDropLog() *dropLog { return &dropLog{added: make(chan struct{}, 1)} }

func (l *dropLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *dropLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *dropLog) WithGroup(string) slog.Handler            { return l }
func (l *dropLog) Handle(_ context.Context, r slog.Record) error {
	line := logLine{msg: r.Message, attrs: map[string]slog.Value{}}
	r.Attrs(func(a slog.Attr) bool {
		line.attrs[a.Key] = a.Value
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	select {
	case l.added <- struct{}{}:
	default:
	}
	return nil
}

// of returns the lines about socketID.
func (l *dropLog) of(socketID string) []logLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []logLine
	for _, line := range l.lines {
		if v, ok := line.attrs["socket_id"]; ok && v.String() == socketID {
			out = append(out, line)
		}
	}
	return out
}

// summary waits for the line about socketID that carries the dropped
// count, and returns it.
func (l *dropLog) summary(ctx context.Context, t *testing.T, socketID string) int64 {
	t.Helper()
	for {
		for _, line := range l.of(socketID) {
			if v, ok := line.attrs["dropped"]; ok {
				return v.Int64()
			}
		}
		select {
		case <-l.added:
		case <-ctx.Done():
			t.Fatalf("no dropped-frames summary for %s: %v", socketID, l.of(socketID))
		}
	}
}

// A slow consumer's dropped frames are logged twice per socket, however
// many: once at the first drop, and once, with the count, when the socket
// closes. No line carries the token.
func TestDroppedFramesAreLoggedOncePerSocket(t *testing.T) {
	t.Run("outbound flood", func(t *testing.T) {
		const frames = 4000
		dropped := make(chan int64, 1)
		flood := live.WithHandler("flood", func(_ context.Context, c *live.Conn, _ json.RawMessage) {
			pad := strings.Repeat("x", 4<<10)
			var n int64
			for i := range frames {
				err := c.Send("fill", map[string]any{"i": i, "pad": pad})
				switch {
				case errors.Is(err, live.ErrFrameDropped):
					n++
				case err != nil:
					t.Errorf("send: %v", err)
				}
			}
			dropped <- n
		})
		log := newDropLog()
		h := livetest.New(t, "sqlite", livetest.Options{EndpointOptions: []live.Option{
			flood, live.WithLogger(slog.New(log)),
			live.WithSettings(live.Settings{MessageBufferSize: 2}),
		}})
		ctx := testCtx(t, 30*time.Second)
		ada := h.Register(t, "ada@example.com")
		c := h.MustDial(t, ctx, livetest.Bearer(ada.Token))
		if err := c.Send("flood", nil); err != nil {
			t.Fatal(err)
		}
		// The client reads nothing: 4,000 frames of 4 KiB are more than the
		// socket buffers of both ends and a queue of 2 hold.
		want := <-dropped
		if want == 0 {
			t.Fatal("no frame was dropped: the queue never filled")
		}
		c.Conn.Close()
		if got := log.summary(ctx, t, c.SocketID); got != want {
			t.Fatalf("the summary counts %d dropped frames; Send reported %d", got, want)
		}
		checkDropLines(t, log, c.SocketID, ada.Token)
		t.Logf("%d of %d frames dropped", want, frames)
	})

	// 20,000 incoming frames, each answered with an error frame of 1 KiB
	// the client does not read. The write wait is long, so that the
	// endpoint does not give up on the client before it has sent them all.
	t.Run("inbound flood", func(t *testing.T) {
		const frames = 20000
		log := newDropLog()
		h := livetest.New(t, "sqlite", livetest.Options{EndpointOptions: []live.Option{
			live.WithLogger(slog.New(log)),
			live.WithSettings(live.Settings{MessageBufferSize: 2, WriteWait: time.Minute}),
		}})
		ctx := testCtx(t, 60*time.Second)
		ada := h.Register(t, "ada@example.com")
		c := h.MustDial(t, ctx, livetest.Bearer(ada.Token))
		frame := []byte(`{"event":"` + strings.Repeat("n", 1000) + `","payload":{}}`)
		_ = c.Conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		for range frames {
			if err := c.Conn.WriteMessage(websocket.TextMessage, frame); err != nil {
				t.Fatal(err)
			}
		}
		c.Conn.Close()
		got := log.summary(ctx, t, c.SocketID)
		if got <= 0 || got > frames {
			t.Fatalf("the summary counts %d dropped frames of %d", got, frames)
		}
		checkDropLines(t, log, c.SocketID, ada.Token)
		t.Logf("%d of %d answers dropped", got, frames)
	})
}

// checkDropLines checks that the socket's log has two lines, the first
// drop's and the summary, and that no line of the log holds the token.
func checkDropLines(t *testing.T, log *dropLog, socketID, token string) {
	t.Helper()
	lines := log.of(socketID)
	if len(lines) != 2 {
		t.Fatalf("%d log lines about the socket, want 2: %v", len(lines), lines)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, line := range log.lines {
		for k, v := range line.attrs {
			if strings.Contains(v.String(), token) {
				t.Fatalf("log line %q logs the token in %s", line.msg, k)
			}
		}
	}
}
