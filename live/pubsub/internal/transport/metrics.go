package transport

import (
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-go/kiln/live"
)

// Metrics are a transport's Prometheus collectors, each with the constant
// label transport="<name>". They always count; the transport is a
// prometheus.Collector through them (Describe and Collect), so that an app
// registers it as it is. The metrics, all for this process:
//
//   - kiln_pubsub_connected (gauge): 1 while the transport is connected
//     and every subscription receiving; 0 while a connection is lost and
//     being re-established, and once the transport is closed.
//   - kiln_pubsub_reconnects_total (counter): lost connections got back
//     (reconnected, and resubscribed where the transport subscribes).
//   - kiln_pubsub_published_total{kind} (counter): messages published,
//     by kind ("disconnect", "broadcast").
//   - kiln_pubsub_publish_errors_total{kind} (counter): messages that
//     could not be published (the connection is down, the message too
//     large …). A disconnect among them is left to the endpoints' safety
//     net.
//   - kiln_pubsub_received_total{kind} (counter): messages received and
//     handed to a subscriber, once per subscriber; a message that cannot
//     be read is logged and not counted.
type Metrics struct {
	connected     prometheus.GaugeFunc
	reconnects    prometheus.Counter
	published     *prometheus.CounterVec
	publishErrors *prometheus.CounterVec
	received      *prometheus.CounterVec

	down   atomic.Int64 // links lost and not yet restored
	closed atomic.Bool
}

// NewMetrics makes the collectors of the transport named transport
// ("redis").
func NewMetrics(transport string) *Metrics {
	labels := prometheus.Labels{"transport": transport}
	m := &Metrics{
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "kiln_pubsub_reconnects_total",
			Help:        "Lost pub/sub connections got back (reconnected and resubscribed) by this process.",
			ConstLabels: labels,
		}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "kiln_pubsub_published_total",
			Help:        "Messages this process published on the pub/sub transport, by kind.",
			ConstLabels: labels,
		}, []string{"kind"}),
		publishErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "kiln_pubsub_publish_errors_total",
			Help:        "Messages this process failed to publish on the pub/sub transport, by kind.",
			ConstLabels: labels,
		}, []string{"kind"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "kiln_pubsub_received_total",
			Help:        "Messages this process received from the pub/sub transport, by kind, once per subscriber.",
			ConstLabels: labels,
		}, []string{"kind"}),
	}
	m.connected = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "kiln_pubsub_connected",
		Help:        "1 while this process's pub/sub transport is connected and subscribed; 0 while a connection is lost, or the transport closed.",
		ConstLabels: labels,
	}, func() float64 {
		if m.closed.Load() || m.down.Load() > 0 {
			return 0
		}
		return 1
	})
	// Every series exists from the start, at 0, so that a rate over it
	// has a value before the first message.
	for _, kind := range kinds {
		m.published.WithLabelValues(kind)
		m.publishErrors.WithLabelValues(kind)
		m.received.WithLabelValues(kind)
	}
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.connected, m.reconnects, m.published, m.publishErrors, m.received}
}

// kinds are the kinds of message the endpoints send.
var kinds = []string{live.KindDisconnect, live.KindBroadcast, live.KindRevoking, live.KindFence, live.KindAlive, live.KindAck, live.KindLeave}

// kindLabel is msg's kind as a label value; a kind the endpoints do not
// send is "other", so that the label's values stay few.
func kindLabel(kind string) string {
	if slices.Contains(kinds, kind) {
		return kind
	}
	return "other"
}

// Published counts a Publish of a message of kind that returned err.
func (m *Metrics) Published(kind string, err error) {
	if err != nil {
		m.publishErrors.WithLabelValues(kindLabel(kind)).Inc()
		return
	}
	m.published.WithLabelValues(kindLabel(kind)).Inc()
}

// Received counts a message of kind handed to a subscriber.
func (m *Metrics) Received(kind string) {
	m.received.WithLabelValues(kindLabel(kind)).Inc()
}

// Closed marks the transport closed: not connected from now on.
func (m *Metrics) Closed() { m.closed.Store(true) }

// Link is one connection the transport keeps up, as the metrics see it:
// a subscription's own connection, or the transport's only one. The
// transport is connected while none of its links is lost. A Link's
// methods are safe for concurrent use.
type Link struct {
	m    *Metrics
	lost atomic.Bool
}

// Link makes a link, connected.
func (m *Metrics) Link() *Link { return &Link{m: m} }

// Lost records the link's connection lost, and reports whether it was
// connected until now: a second call before Restored changes nothing and
// returns false.
func (l *Link) Lost() bool {
	if !l.lost.CompareAndSwap(false, true) {
		return false
	}
	l.m.down.Add(1)
	return true
}

// Restored records a lost connection got back, one reconnection; on a
// link that is not lost it changes nothing.
func (l *Link) Restored() {
	if l.lost.CompareAndSwap(true, false) {
		l.m.down.Add(-1)
		l.m.reconnects.Inc()
	}
}

// End records the link gone (its subscriber left): lost, it no longer
// keeps the transport disconnected.
func (l *Link) End() {
	if l.lost.CompareAndSwap(true, false) {
		l.m.down.Add(-1)
	}
}
