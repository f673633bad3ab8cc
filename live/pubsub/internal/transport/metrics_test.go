package transport_test

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-go/kiln/internal/metricstest"
	"github.com/kiln-go/kiln/live/pubsub/internal/transport"
)

// TestMetricsLinks: the transport is connected while none of its links
// is lost; getting a lost link back is one reconnection, however many
// times it was reported lost; a link that ends while lost stops holding
// the transport down without a reconnection; a closed transport is not
// connected.
func TestMetricsLinks(t *testing.T) {
	m := transport.NewMetrics("test")
	reg := prometheus.NewRegistry()
	if err := reg.Register(m); err != nil {
		t.Fatal(err)
	}
	expect := func(what string, connected, reconnects float64) {
		t.Helper()
		got := metricstest.Values(t, reg)
		if diff := metricstest.Diff(got, map[string]float64{
			`kiln_pubsub_connected{transport="test"}`:        connected,
			`kiln_pubsub_reconnects_total{transport="test"}`: reconnects,
		}); len(diff) > 0 {
			t.Fatalf("%s: %v", what, diff)
		}
	}
	a, b := m.Link(), m.Link()
	expect("new", 1, 0)
	if !a.Lost() {
		t.Error("the first loss of a link reported it lost already")
	}
	if a.Lost() {
		t.Error("a second loss of a link reported it connected until then")
	}
	b.Lost()
	expect("two links lost", 0, 0)
	a.Restored()
	a.Restored()
	expect("one back", 0, 1)
	b.End()
	expect("the other gone", 1, 1)
	b.Restored()
	expect("a restore of a link that is not lost", 1, 1)
	m.Closed()
	expect("closed", 0, 1)
}

// TestMetricsMessages: publishes count by kind, failed ones apart;
// receptions by kind, the announcements and fences of checks from memory
// included; a kind the endpoints do not send is "other".
func TestMetricsMessages(t *testing.T) {
	m := transport.NewMetrics("test")
	reg := prometheus.NewRegistry()
	if err := reg.Register(m); err != nil {
		t.Fatal(err)
	}
	m.Published("disconnect", nil)
	m.Published("disconnect", errors.New("down"))
	m.Published("broadcast", nil)
	m.Published("broadcast", nil)
	m.Published("made-up", nil)
	m.Published("revoking", nil)
	m.Published("fence", nil)
	m.Published("fence", nil)
	m.Received("broadcast")
	m.Received("made-up")
	m.Received("fence")
	got := metricstest.Values(t, reg)
	if diff := metricstest.Diff(got, map[string]float64{
		`kiln_pubsub_published_total{kind="disconnect",transport="test"}`:      1,
		`kiln_pubsub_publish_errors_total{kind="disconnect",transport="test"}`: 1,
		`kiln_pubsub_published_total{kind="broadcast",transport="test"}`:       2,
		`kiln_pubsub_publish_errors_total{kind="broadcast",transport="test"}`:  0,
		`kiln_pubsub_published_total{kind="other",transport="test"}`:           1,
		`kiln_pubsub_received_total{kind="disconnect",transport="test"}`:       0,
		`kiln_pubsub_received_total{kind="broadcast",transport="test"}`:        1,
		`kiln_pubsub_received_total{kind="other",transport="test"}`:            1,
		`kiln_pubsub_published_total{kind="revoking",transport="test"}`:        1,
		`kiln_pubsub_publish_errors_total{kind="revoking",transport="test"}`:   0,
		`kiln_pubsub_received_total{kind="revoking",transport="test"}`:         0,
		`kiln_pubsub_published_total{kind="fence",transport="test"}`:           2,
		`kiln_pubsub_publish_errors_total{kind="fence",transport="test"}`:      0,
		`kiln_pubsub_received_total{kind="fence",transport="test"}`:            1,
	}); len(diff) > 0 {
		t.Fatal(diff)
	}
}
