package pubsub_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-go/kiln/internal/metricstest"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/live"
)

// nextOf returns the next message of kind in, skipping the others.
func nextOf(t *testing.T, in <-chan live.Message, kind string) live.Message {
	t.Helper()
	for {
		if m := next(t, in); m.Kind == kind {
			return m
		}
	}
}

// TestTransportMetrics: each network transport is a prometheus.Collector,
// registered once per registry. It counts what it publishes and receives
// by kind; it is connected once subscribed, counts one reconnection when
// the server drops its subscription and it gets it back (connected
// again), and is not connected once closed, when a publish fails and is
// counted as an error.
func TestTransportMetrics(t *testing.T) {
	forEachTransport(t, false, func(t *testing.T, tr transport) {
		channel, node := testdb.UniqueName("kiln_test_"), testdb.UniqueName("kiln_a_")
		ps := tr.open(t, channel, node, quiet())
		c, ok := ps.(prometheus.Collector)
		if !ok {
			t.Fatalf("%T is not a prometheus.Collector", ps)
		}
		reg := prometheus.NewRegistry()
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
		other := tr.open(t, channel, testdb.UniqueName("kiln_b_"), quiet())
		if err := reg.Register(other.(prometheus.Collector)); !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			t.Fatalf("a second %s transport on one registry: %v, want AlreadyRegisteredError", tr.name, err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), short)
		defer cancel()
		l := `{transport="` + tr.name + `"}`
		kind := func(k string) string { return `{kind="` + k + `",transport="` + tr.name + `"}` }

		in := inbox(t, t.Context(), ps)
		nextOf(t, in, live.KindSubscribed)
		for _, m := range []live.Message{
			{Kind: live.KindDisconnect, SocketID: "users_sessions:1", Reason: "signed_out"},
			{Kind: live.KindBroadcast, Topic: "t", Event: "e"},
			{Kind: live.KindBroadcast, Topic: "t", Event: "e"},
		} {
			if err := ps.Publish(ctx, m); err != nil {
				t.Fatal(err)
			}
			nextOf(t, in, m.Kind)
		}
		metricstest.Wait(t, ctx, reg, map[string]float64{
			"kiln_pubsub_connected" + l:                             1,
			"kiln_pubsub_reconnects_total" + l:                      0,
			"kiln_pubsub_published_total" + kind("disconnect"):      1,
			"kiln_pubsub_published_total" + kind("broadcast"):       2,
			"kiln_pubsub_received_total" + kind("disconnect"):       1,
			"kiln_pubsub_received_total" + kind("broadcast"):        2,
			"kiln_pubsub_publish_errors_total" + kind("disconnect"): 0,
		})

		// The server drops the subscription; the transport gets it back,
		// then tells its subscriber.
		tr.kill(t, channel, node, ps)
		nextOf(t, in, live.KindSubscribed)
		if err := ps.Publish(ctx, live.Message{Kind: live.KindDisconnect, SocketID: "users_sessions:2"}); err != nil {
			t.Fatal(err)
		}
		nextOf(t, in, live.KindDisconnect)
		metricstest.Wait(t, ctx, reg, map[string]float64{
			"kiln_pubsub_connected" + l:                        1,
			"kiln_pubsub_reconnects_total" + l:                 1,
			"kiln_pubsub_received_total" + kind("disconnect"):  2,
			"kiln_pubsub_published_total" + kind("disconnect"): 2,
		})

		if err := ps.Close(); err != nil {
			t.Fatal(err)
		}
		if err := ps.Publish(ctx, live.Message{Kind: live.KindDisconnect, SocketID: "users_sessions:3"}); err == nil {
			t.Fatal("a closed transport published")
		}
		metricstest.Wait(t, ctx, reg, map[string]float64{
			"kiln_pubsub_connected" + l:                             0,
			"kiln_pubsub_published_total" + kind("disconnect"):      2,
			"kiln_pubsub_publish_errors_total" + kind("disconnect"): 1,
		})
	})
}
