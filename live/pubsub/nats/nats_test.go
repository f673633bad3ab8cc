package nats_test

import (
	"context"
	"testing"
	"time"

	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/live/pubsub/nats"
)

func wait(t *testing.T, ch <-chan live.Message, kind string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-ch:
			if m.Kind == kind {
				return
			}
		case <-timeout:
			t.Fatalf("no %s message", kind)
		}
	}
}

// TestEndpointSubscribes: an endpoint subscribes with a context that lives
// as long as it does, without a deadline; the transport must not need one.
func TestEndpointSubscribes(t *testing.T) {
	ps, err := nats.New(t.Context(), testdb.NATSURL(t), nats.WithSubject(testdb.UniqueName("kiln_test_")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ps.Close(); err != nil {
			t.Error(err)
		}
	})
	ep, err := live.New(live.WithPubSub(ps))
	if err != nil {
		t.Fatal(err)
	}
	if err := ep.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestReconnectTellsCurrentSubscribers: after a reconnection every current
// subscriber gets live.KindSubscribed, and one whose ctx has ended does
// not (its endpoint is gone).
func TestReconnectTellsCurrentSubscribers(t *testing.T) {
	ps, err := nats.New(t.Context(), testdb.NATSURL(t), nats.WithSubject(testdb.UniqueName("kiln_test_")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ps.Close(); err != nil {
			t.Error(err)
		}
	})
	gone, stay := make(chan live.Message, 16), make(chan live.Message, 16)
	ctx, cancel := context.WithCancel(t.Context())
	if err := ps.Subscribe(ctx, func(m live.Message) { gone <- m }); err != nil {
		t.Fatal(err)
	}
	if err := ps.Subscribe(t.Context(), func(m live.Message) { stay <- m }); err != nil {
		t.Fatal(err)
	}
	wait(t, gone, live.KindSubscribed)
	wait(t, stay, live.KindSubscribed)
	cancel()
	for range 2 {
		// The reconnect handler runs on one goroutine, one call after the
		// other: once the second has told stay, the first is over.
		if err := ps.Conn().ForceReconnect(); err != nil {
			t.Fatal(err)
		}
		wait(t, stay, live.KindSubscribed)
	}
	select {
	case m := <-gone:
		t.Fatalf("a subscriber whose ctx ended got %+v", m)
	default:
	}
}
