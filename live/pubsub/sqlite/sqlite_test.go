package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/live/pubsub/sqlite"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// open opens the SQLite file at path as a process of its own would: its
// own connection pool.
func open(t *testing.T, path string) *sqlite.PubSub {
	t.Helper()
	l, err := bunlayer.Open(context.Background(), "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p, err := sqlite.New(context.Background(), l.DB().DB, sqlite.WithInterval(20*time.Millisecond))
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
