package pubsub_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/live/pubsub/nats"
	"github.com/kiln-go/kiln/live/pubsub/postgres"
)

// inbox subscribes to ps with ctx and returns the messages it gets.
func inbox(t *testing.T, ctx context.Context, ps live.PubSub) <-chan live.Message {
	t.Helper()
	ch := make(chan live.Message, 64)
	if err := ps.Subscribe(ctx, func(m live.Message) { ch <- m }); err != nil {
		t.Fatal(err)
	}
	return ch
}

// next returns the next message of in, failing t after short.
func next(t *testing.T, in <-chan live.Message) live.Message {
	t.Helper()
	select {
	case m := <-in:
		return m
	case <-time.After(short):
		t.Fatal("no message")
		return live.Message{}
	}
}

func quiet() *slog.Logger { return slog.New(&logRecorder{}) }

// TestRoundTrip: every subscriber, on every connection, the publisher's
// own included, is told it subscribed (the network transports), then gets
// each message as it was published, in order.
func TestRoundTrip(t *testing.T) {
	forEachTransport(t, true, func(t *testing.T, tr transport) {
		channel := testdb.UniqueName("kiln_test_")
		a := tr.open(t, channel, testdb.UniqueName("kiln_a_"), quiet())
		b := tr.open(t, channel, testdb.UniqueName("kiln_b_"), quiet())
		inA, inB := inbox(t, t.Context(), a), inbox(t, t.Context(), b)
		for _, in := range []<-chan live.Message{inA, inB} {
			if tr.name == inProcess.name {
				break // it loses nothing, so it has nothing to tell
			}
			if m := next(t, in); m.Kind != live.KindSubscribed {
				t.Fatalf("first message %+v, want %s", m, live.KindSubscribed)
			}
		}
		sent := []live.Message{
			{Kind: live.KindDisconnect, SocketID: "users_sessions:jti-1", Reason: "signed_out"},
			{Kind: live.KindBroadcast, Topic: "room:1", Event: "tick", Payload: json.RawMessage(`{"n":1,"s":"é ✓"}`)},
			{Kind: live.KindDisconnect, SocketID: "users_sessions:jti-2"},
		}
		for _, m := range sent {
			if err := a.Publish(t.Context(), m); err != nil {
				t.Fatal(err)
			}
		}
		for name, in := range map[string]<-chan live.Message{"publisher": inA, "other node": inB} {
			for _, want := range sent {
				if got := next(t, in); !reflect.DeepEqual(got, want) {
					t.Fatalf("%s got %+v, want %+v", name, got, want)
				}
			}
		}
	})
}

// broadcastOfSize is a broadcast whose encoding is exactly n bytes.
func broadcastOfSize(t *testing.T, n int) live.Message {
	t.Helper()
	m := live.Message{Kind: live.KindBroadcast, Topic: "t", Event: "e", Payload: json.RawMessage(`""`)}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	m.Payload = json.RawMessage(`"` + strings.Repeat("x", n-len(b)) + `"`)
	if b, _ := json.Marshal(m); len(b) != n {
		t.Fatalf("built %d bytes, want %d", len(b), n)
	}
	return m
}

// TestPayloadLimits: a message at a transport's limit is delivered whole;
// one byte more is refused with live.ErrPayloadTooLarge before it is sent.
func TestPayloadLimits(t *testing.T) {
	cases := []struct {
		tr transport
		// limit is the largest message; 0 when the transport has none worth
		// testing (Redis: 512 MB).
		limit func(ps live.PubSub) int
	}{
		{transports()[0], func(live.PubSub) int { return postgres.MaxPayload }},
		{transports()[1], func(live.PubSub) int { return 0 }},
		{transports()[2], func(ps live.PubSub) int { return int(ps.(*nats.PubSub).Conn().MaxPayload()) }},
	}
	for _, tc := range cases {
		t.Run(tc.tr.name, func(t *testing.T) {
			t.Parallel()
			channel := testdb.UniqueName("kiln_test_")
			ps := tc.tr.open(t, channel, testdb.UniqueName("kiln_a_"), quiet())
			in := inbox(t, t.Context(), ps)
			next(t, in) // subscribed
			limit := tc.limit(ps)
			size := limit
			if limit == 0 {
				size = 1 << 20
			}
			big := broadcastOfSize(t, size)
			if err := ps.Publish(t.Context(), big); err != nil {
				t.Fatalf("%d bytes: %v", size, err)
			}
			if got := next(t, in); !reflect.DeepEqual(got, big) {
				t.Fatalf("%d bytes: got %d bytes of payload back", size, len(got.Payload))
			}
			if limit == 0 {
				return
			}
			err := ps.Publish(t.Context(), broadcastOfSize(t, limit+1))
			if !errors.Is(err, live.ErrPayloadTooLarge) {
				t.Fatalf("%d bytes: got %v, want ErrPayloadTooLarge", limit+1, err)
			}
			marker := live.Message{Kind: live.KindDisconnect, SocketID: "after"}
			if err := ps.Publish(t.Context(), marker); err != nil {
				t.Fatal(err)
			}
			if got := next(t, in); !reflect.DeepEqual(got, marker) {
				t.Fatalf("after the refused message got %+v, want the marker", got)
			}
		})
	}
}

// TestSubscribeEndsWithContext: when the subscriber's ctx ends (its
// endpoint shut down), the transport drops the subscription on the
// server, and messages stop.
func TestSubscribeEndsWithContext(t *testing.T) {
	cases := []struct {
		tr transport
		// subscribed tells whether the server still has node's subscription.
		subscribed func(t *testing.T, channel, node string, ps live.PubSub) bool
	}{
		{transports()[0], func(t *testing.T, channel, node string, _ live.PubSub) bool {
			conn, err := pgx.Connect(t.Context(), testdb.PostgresURL(t))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			var n int
			err = conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query = $2`,
				node, "LISTEN "+pgx.Identifier{channel}.Sanitize()).Scan(&n)
			if err != nil {
				t.Fatal(err)
			}
			return n > 0
		}},
		{transports()[1], func(t *testing.T, channel, _ string, _ live.PubSub) bool {
			n, err := redisAdmin(t).PubSubNumSub(t.Context(), channel).Result()
			if err != nil {
				t.Fatal(err)
			}
			return n[channel] > 0
		}},
		{transports()[2], func(t *testing.T, _, _ string, ps live.PubSub) bool {
			return ps.(*nats.PubSub).Conn().NumSubscriptions() > 0
		}},
	}
	for _, tc := range cases {
		t.Run(tc.tr.name, func(t *testing.T) {
			t.Parallel()
			channel, node := testdb.UniqueName("kiln_test_"), testdb.UniqueName("kiln_a_")
			ps := tc.tr.open(t, channel, node, quiet())
			ctx, cancel := context.WithCancel(t.Context())
			in := inbox(t, ctx, ps)
			next(t, in) // subscribed
			if !tc.subscribed(t, channel, node, ps) {
				t.Fatal("the server does not have the subscription")
			}
			cancel()
			waitFor(t, short, "the subscription to end", func() bool { return !tc.subscribed(t, channel, node, ps) })
			if err := ps.Publish(t.Context(), live.Message{Kind: live.KindDisconnect, SocketID: "x"}); err != nil {
				t.Fatal(err)
			}
			// The transport is still usable: a new subscriber hears it.
			in2 := inbox(t, t.Context(), ps)
			next(t, in2)
			if err := ps.Publish(t.Context(), live.Message{Kind: live.KindDisconnect, SocketID: "y"}); err != nil {
				t.Fatal(err)
			}
			if m := next(t, in2); m.SocketID != "y" {
				t.Fatalf("new subscriber got %+v", m)
			}
			select {
			case m := <-in:
				t.Fatalf("the subscriber that left got %+v", m)
			default:
			}
		})
	}
}

// TestClose: every transport is an io.Closer whose second Close returns
// nil; a network transport refuses to publish once closed, while an
// InProcess, which holds no connection, keeps delivering.
func TestClose(t *testing.T) {
	forEachTransport(t, true, func(t *testing.T, tr transport) {
		ps := tr.open(t, testdb.UniqueName("kiln_test_"), testdb.UniqueName("kiln_a_"), quiet())
		in := inbox(t, t.Context(), ps)
		for i := range 2 {
			if err := ps.Close(); err != nil {
				t.Fatalf("Close %d: %v", i+1, err)
			}
		}
		msg := live.Message{Kind: live.KindDisconnect, SocketID: "after-close"}
		err := ps.Publish(t.Context(), msg)
		if tr.name == inProcess.name {
			if err != nil {
				t.Fatal(err)
			}
			if got := next(t, in); !reflect.DeepEqual(got, msg) {
				t.Fatalf("got %+v, want %+v", got, msg)
			}
			return
		}
		if err == nil {
			t.Error("a closed transport published")
		}
	})
}

// TestLostAndSubscribed: each network transport is prompt, and tells its
// subscriber of every loss of its subscription (live.KindLost) before it
// tells it the subscription is back (live.KindSubscribed), each time; in
// between, and after, it hands nothing of another kind.
func TestLostAndSubscribed(t *testing.T) {
	forEachTransport(t, false, func(t *testing.T, tr transport) {
		channel, node := testdb.UniqueName("kiln_test_"), testdb.UniqueName("kiln_a_")
		ps := tr.open(t, channel, node, quiet())
		if p, ok := ps.(live.Prompter); !ok || !p.Prompt() {
			t.Fatalf("%T is not prompt", ps)
		}
		in := inbox(t, t.Context(), ps)
		if m := next(t, in); m.Kind != live.KindSubscribed {
			t.Fatalf("first message %+v, want %s", m, live.KindSubscribed)
		}
		for i := range 2 {
			tr.kill(t, channel, node, ps)
			for _, want := range []string{live.KindLost, live.KindSubscribed} {
				if m := next(t, in); m.Kind != want {
					t.Fatalf("kill %d: got %+v, want %s", i+1, m, want)
				}
			}
			msg := live.Message{Kind: live.KindDisconnect, SocketID: "s", JTI: "j", ExpiresAt: 2000000000}
			if err := ps.Publish(t.Context(), msg); err != nil {
				t.Fatal(err)
			}
			if got := next(t, in); !reflect.DeepEqual(got, msg) {
				t.Fatalf("kill %d: got %+v, want %+v", i+1, got, msg)
			}
		}
	})
}
