package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-go/kiln/internal/metricstest"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/live/pubsub/sqlite"
	"github.com/kiln-go/kiln/resource/bunlayer"
	"github.com/kiln-go/kiln/revocation"
)

// open opens the SQLite file at path as a process of its own would: its
// own connection pool.
func open(t *testing.T, path string, opts ...sqlite.Option) *sqlite.PubSub {
	t.Helper()
	l, err := bunlayer.Open(context.Background(), "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p, err := sqlite.New(context.Background(), l.DB().DB, append([]sqlite.Option{sqlite.WithInterval(20 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Two processes on one database file: what one publishes, the other's
// subscriber gets, in order; what was published before it subscribed, it
// does not.
func TestTwoProcessesOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	app, cli := open(t, path), open(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cli.Publish(ctx, live.Message{Kind: live.KindDisconnect, SocketID: "before"}); err != nil {
		t.Fatal(err)
	}
	got := make(chan live.Message, 16)
	if err := app.Subscribe(ctx, func(m live.Message) { got <- m }); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := cli.Publish(ctx, live.Message{Kind: live.KindDisconnect, SocketID: fmt.Sprint("s", i), Reason: "revoked"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		select {
		case m := <-got:
			if m.SocketID != fmt.Sprint("s", i) || m.Reason != "revoked" || m.Kind != live.KindDisconnect {
				t.Errorf("message %d: %+v", i, m)
			}
		case <-ctx.Done():
			t.Fatalf("message %d never arrived", i)
		}
	}
}

func TestBadOptions(t *testing.T) {
	l, err := bunlayer.Open(context.Background(), "file:"+filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := sqlite.New(context.Background(), l.DB().DB, sqlite.WithTable(`x"; DROP TABLE users; --`)); err == nil {
		t.Error("a bad table name was accepted")
	}
	if _, err := sqlite.New(context.Background(), l.DB().DB, sqlite.WithInterval(0)); err == nil {
		t.Error("a zero interval was accepted")
	}
}

// TestMetrics: the transport is a prometheus.Collector. It counts what
// it publishes and what its subscriber receives; while its table cannot
// be read its subscriber is not connected and a publish fails, counted as
// an error; the first poll that succeeds again counts a reconnection, and
// the messages published since arrive.
func TestMetrics(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	quiet := sqlite.WithLogger(slog.New(slog.DiscardHandler))
	app, cli := open(t, path, quiet), open(t, path, quiet)
	appReg, cliReg := prometheus.NewRegistry(), prometheus.NewRegistry()
	if err := appReg.Register(app); err != nil {
		t.Fatal(err)
	}
	if err := cliReg.Register(cli); err != nil {
		t.Fatal(err)
	}
	if err := appReg.Register(cli); !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
		t.Fatalf("a second transport on one registry: %v, want AlreadyRegisteredError", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan live.Message, 16)
	if err := app.Subscribe(ctx, func(m live.Message) { got <- m }); err != nil {
		t.Fatal(err)
	}
	receive := func(want string) {
		t.Helper()
		select {
		case m := <-got:
			if m.SocketID != want {
				t.Fatalf("got %+v, want the disconnect of %s", m, want)
			}
		case <-ctx.Done():
			t.Fatalf("the disconnect of %s never arrived", want)
		}
	}
	if err := cli.Publish(ctx, live.Message{Kind: live.KindDisconnect, SocketID: "s1"}); err != nil {
		t.Fatal(err)
	}
	receive("s1")
	metricstest.Wait(t, ctx, appReg, map[string]float64{
		`kiln_pubsub_connected{transport="sqlite"}`:                         1,
		`kiln_pubsub_received_total{kind="disconnect",transport="sqlite"}`:  1,
		`kiln_pubsub_published_total{kind="disconnect",transport="sqlite"}`: 0,
		`kiln_pubsub_reconnects_total{transport="sqlite"}`:                  0,
	})
	metricstest.Wait(t, ctx, cliReg, map[string]float64{
		`kiln_pubsub_published_total{kind="disconnect",transport="sqlite"}`: 1,
	})

	// The table goes away: the subscriber's polls fail, and so does a
	// publish.
	admin, err := bunlayer.Open(ctx, "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	db := admin.DB()
	if _, err := db.ExecContext(ctx, `ALTER TABLE "`+sqlite.DefaultTable+`" RENAME TO away`); err != nil {
		t.Fatal(err)
	}
	metricstest.Wait(t, ctx, appReg, map[string]float64{`kiln_pubsub_connected{transport="sqlite"}`: 0})
	if err := cli.Publish(ctx, live.Message{Kind: live.KindDisconnect, SocketID: "lost"}); err == nil {
		t.Fatal("published without a table")
	}
	metricstest.Wait(t, ctx, cliReg, map[string]float64{
		`kiln_pubsub_published_total{kind="disconnect",transport="sqlite"}`:      1,
		`kiln_pubsub_publish_errors_total{kind="disconnect",transport="sqlite"}`: 1,
	})

	// It is back: the subscriber polls again, and gets what follows.
	if _, err := db.ExecContext(ctx, `ALTER TABLE away RENAME TO "`+sqlite.DefaultTable+`"`); err != nil {
		t.Fatal(err)
	}
	if err := cli.Publish(ctx, live.Message{Kind: live.KindDisconnect, SocketID: "s2"}); err != nil {
		t.Fatal(err)
	}
	receive("s2")
	metricstest.Wait(t, ctx, appReg, map[string]float64{
		`kiln_pubsub_connected{transport="sqlite"}`:                        1,
		`kiln_pubsub_reconnects_total{transport="sqlite"}`:                 1,
		`kiln_pubsub_received_total{kind="disconnect",transport="sqlite"}`: 2,
	})
}

// TestClose: Close stops the subscribers before it returns, so that the
// app may close the database next without a poll failing on it; a second
// Close returns nil, and Publish and Subscribe then return ErrClosed.
func TestClose(t *testing.T) {
	l, err := bunlayer.Open(context.Background(), "file:"+filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	p, err := sqlite.New(t.Context(), l.DB().DB, sqlite.WithInterval(time.Millisecond), sqlite.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Subscribe(t.Context(), func(live.Message) {}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := p.Close(); err != nil {
			t.Fatalf("Close %d: %v", i+1, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(t.Context(), live.Message{Kind: live.KindDisconnect}); !errors.Is(err, sqlite.ErrClosed) {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
	if err := p.Subscribe(t.Context(), func(live.Message) {}); !errors.Is(err, sqlite.ErrClosed) {
		t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
	}
	if w := logs.String(); w != "" {
		t.Errorf("a subscriber polled after Close: %s", w)
	}
}

// lockedBuffer is a bytes.Buffer that goroutines may write to.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestNotPrompt: the transport polls, so it is not prompt, and neither is
// an endpoint on it: the token store reads every token it checks.
func TestNotPrompt(t *testing.T) {
	p := open(t, filepath.Join(t.TempDir(), "app.db"))
	if p.Prompt() {
		t.Fatal("the sqlite transport says it is prompt")
	}
	e, err := live.New(live.WithPubSub(p), live.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	if e.Follow(stateless{}) {
		t.Fatal("an endpoint on the sqlite transport says it is prompt")
	}
}

// stateless is a revocation.Watcher that ignores what it hears.
type stateless struct{}

func (stateless) Revoking([]revocation.Disconnect) {}
func (stateless) Revoked([]revocation.Disconnect)  {}
func (stateless) State(bool)                       {}
