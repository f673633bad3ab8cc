package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/live/pubsub/postgres"
	"github.com/kiln-go/kiln/revocation"
)

func open(t *testing.T, rawURL string, opts ...postgres.Option) *postgres.PubSub {
	t.Helper()
	ps, err := postgres.New(t.Context(), rawURL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ps.Close(); err != nil {
			t.Error(err)
		}
	})
	return ps
}

// roundTrip subscribes, publishes one disconnect and waits for it.
func roundTrip(t *testing.T, ps *postgres.PubSub) {
	t.Helper()
	roundTripMessage(t, ps, live.Message{Kind: live.KindDisconnect, SocketID: "s", Reason: "revoked"})
}

// roundTripMessage subscribes, publishes want and waits for it to come
// back as it was sent.
func roundTripMessage(t *testing.T, ps *postgres.PubSub, want live.Message) {
	t.Helper()
	got := make(chan live.Message, 4)
	if err := ps.Subscribe(t.Context(), func(m live.Message) { got <- m }); err != nil {
		t.Fatal(err)
	}
	if err := ps.Publish(t.Context(), want); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-got:
			if m.Kind == live.KindSubscribed {
				continue
			}
			if !reflect.DeepEqual(m, want) {
				t.Fatalf("got %+v, want %+v", m, want)
			}
			return
		case <-timeout:
			t.Fatal("the message did not come back")
		}
	}
}

// TestChannelNames: PostgreSQL truncates a LISTEN channel name to 63 bytes
// but refuses a longer one in pg_notify, so such a channel would never
// deliver anything; New refuses it, and an empty one.
func TestChannelNames(t *testing.T) {
	base := testdb.PostgresURL(t)
	for _, name := range []string{"", strings.Repeat("c", postgres.MaxChannel+1)} {
		_, err := postgres.New(t.Context(), base, postgres.WithChannel(name))
		if err == nil || !strings.Contains(err.Error(), "want 1 to 63 bytes") {
			t.Errorf("channel of %d bytes: got %v, want an error", len(name), err)
		}
	}
	longest := testdb.UniqueName("Kiln_Test_") // case is kept
	longest += strings.Repeat("x", postgres.MaxChannel-len(longest))
	roundTrip(t, open(t, base, postgres.WithChannel(longest)))
}

// TestPoolParameters: a URL with pgxpool's own parameters (pool_max_conns)
// works for the listening connection too, which is not from the pool.
func TestPoolParameters(t *testing.T) {
	u, err := url.Parse(testdb.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("pool_max_conns", "2")
	u.RawQuery = q.Encode()
	roundTrip(t, open(t, u.String(), postgres.WithChannel(testdb.UniqueName("kiln_test_"))))
}

// TestEndpointPayloadTooLarge: an endpoint's Broadcast over the NOTIFY
// limit fails with live.ErrPayloadTooLarge instead of an SQL error.
func TestEndpointPayloadTooLarge(t *testing.T) {
	ps := open(t, testdb.PostgresURL(t), postgres.WithChannel(testdb.UniqueName("kiln_test_")))
	ep, err := live.New(live.WithPubSub(ps))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Shutdown(context.Background()) })
	err = ep.Broadcast(t.Context(), "topic", "event", strings.Repeat("x", postgres.MaxPayload))
	if !errors.Is(err, live.ErrPayloadTooLarge) {
		t.Fatalf("got %v, want ErrPayloadTooLarge", err)
	}
	if err := ep.Broadcast(t.Context(), "topic", "event", "small"); err != nil {
		t.Fatal(err)
	}
}

// TestDisconnectManyChunks: an endpoint's DisconnectMany of far more
// socket ids than one NOTIFY carries publishes them in messages under the
// limit, each as full as it can be, and every id arrives once with its
// reason.
func TestDisconnectManyChunks(t *testing.T) {
	ps := open(t, testdb.PostgresURL(t), postgres.WithChannel(testdb.UniqueName("kiln_test_")))
	got := make(chan live.Message, 1024)
	if err := ps.Subscribe(t.Context(), func(m live.Message) {
		if m.Kind == live.KindDisconnect {
			if m.SocketID != "" { // one socket id: Disconnect's form
				m.Disconnects = []live.Disconnected{{SocketID: m.SocketID, Reason: m.Reason}}
			}
			got <- m
		}
	}); err != nil {
		t.Fatal(err)
	}
	ep, err := live.New(live.WithPubSub(ps))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Shutdown(context.Background()) })
	const n = 2000
	ds := make([]revocation.Disconnect, n)
	for i := range ds {
		ds[i] = revocation.Disconnect{SocketID: fmt.Sprintf("users_sessions:%040d", i), Reason: revocation.LogOutEverywhere}
	}
	if err := ep.DisconnectMany(t.Context(), ds); err != nil {
		t.Fatal(err)
	}
	item := len(fmt.Sprintf(`{"socket_id":"users_sessions:%040d","reason":"log_out_everywhere"}`, 0)) + 1
	perMessage := (postgres.MaxPayload - len(`{"kind":"disconnect","disconnects":[]}`) + 1) / item
	wantMessages := (n + perMessage - 1) / perMessage
	seen := map[string]bool{}
	timeout := time.After(10 * time.Second)
	for messages := 0; len(seen) < n; messages++ {
		select {
		case m := <-got:
			if messages < wantMessages-1 && len(m.Disconnects) != perMessage {
				t.Fatalf("message %d carries %d socket ids, want %d", messages, len(m.Disconnects), perMessage)
			}
			for _, d := range m.Disconnects {
				if seen[d.SocketID] || d.Reason != string(revocation.LogOutEverywhere) {
					t.Fatalf("socket id %s again, or reason %q", d.SocketID, d.Reason)
				}
				seen[d.SocketID] = true
			}
		case <-timeout:
			t.Fatalf("%d of %d socket ids arrived", len(seen), n)
		}
	}
	select {
	case m := <-got:
		t.Fatalf("a message more than the %d needed: %d ids", wantMessages, len(m.Disconnects))
	default:
	}

	// One socket id goes in the form every version reads.
	one := make(chan live.Message, 1)
	if err := ps.Subscribe(t.Context(), func(m live.Message) {
		if m.Kind == live.KindDisconnect && m.SocketID == "users_sessions:one" {
			one <- m
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := ep.DisconnectMany(t.Context(), []revocation.Disconnect{{SocketID: "users_sessions:one", Reason: revocation.SignedOut}}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-one:
		if m.Reason != string(revocation.SignedOut) || len(m.Disconnects) != 0 {
			t.Fatalf("one socket id published as %+v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the one-socket-id disconnect did not arrive")
	}
}

// TestPublishQuotes: the message, quoted in a NOTIFY statement, arrives
// as it was sent, quotes, backslashes and dollar signs included, both on
// a connection with standard_conforming_strings (the default) and on one
// without, where Publish uses pg_notify instead.
func TestPublishQuotes(t *testing.T) {
	for _, conforming := range []string{"on", "off"} {
		t.Run("standard_conforming_strings="+conforming, func(t *testing.T) {
			u, err := url.Parse(testdb.PostgresURL(t))
			if err != nil {
				t.Fatal(err)
			}
			// Escaped by hand: pgx does not read a "+" as a space.
			u.RawQuery += "&options=-c%20standard_conforming_strings%3D" + conforming
			ps := open(t, u.String(), postgres.WithChannel(testdb.UniqueName("kiln_test_")))
			roundTripMessage(t, ps, live.Message{Kind: live.KindBroadcast, Topic: `it's`, Event: `a\'b`,
				Payload: []byte(`{"text":"O'Brien's \\ back\\slash '' $$ $q$ \n"}`)})
		})
	}
}
