package nats_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

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

// TestPublishWritesBeforeReturning: Publish returns once the message is
// written to the connection, nothing of it left in the client's buffer
// for its flusher to send later, so that a revocation has left the node
// when the request that made it answers; a subscriber on another
// connection then gets every message without the publisher doing
// anything more.
func TestPublishWritesBeforeReturning(t *testing.T) {
	subject := testdb.UniqueName("kiln_test_")
	ps, err := nats.New(t.Context(), testdb.NATSURL(t), nats.WithSubject(subject))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ps.Close(); err != nil {
			t.Error(err)
		}
	})
	other, err := natsgo.Connect(testdb.NATSURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	sub, err := other.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Flush(); err != nil { // the server has the subscription
		t.Fatal(err)
	}
	const n = 100
	for i := range n {
		msg := live.Message{Kind: live.KindDisconnect, SocketID: fmt.Sprintf("users_sessions:%d", i), Reason: "signed_out"}
		if err := ps.Publish(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
		if b, err := ps.Conn().Buffered(); err != nil || b != 0 {
			t.Fatalf("message %d: Publish returned with %d bytes still buffered (%v): the message had not left the node", i, b, err)
		}
	}
	for i := range n {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("message %d not received: %v", i, err)
		}
		if want := fmt.Sprintf(`"socket_id":"users_sessions:%d"`, i); !strings.Contains(string(m.Data), want) {
			t.Fatalf("message %d is %s, want %s", i, m.Data, want)
		}
	}
}
