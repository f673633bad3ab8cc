package live

import (
	"strconv"
	"time"

	"github.com/kiln-go/kiln/revocation"
	"github.com/prometheus/client_golang/prometheus"
)

// WithMetrics registers the endpoint's Prometheus metrics with reg; nil
// registers none. New returns the registration's error (two endpoints on
// one registry collide). The metrics, all for this node:
//
//   - kiln_live_sockets (gauge): open sockets, those registered and not
//     yet closed (a socket leaves it when its close is decided, before
//     its close frame is written).
//   - kiln_live_opened_total (counter): sockets opened (registered after
//     the upgrade), and sockets refused at once with CloseTooManySockets.
//   - kiln_live_closed_total{code,reason} (counter): sockets closed, once
//     each. A socket the server closes counts with the code and reason of
//     its close frame (reason "other" for a reason outside the endpoint's
//     own, given to Conn.Close); a socket the client closed, or whose
//     connection was lost, with code "none" and reason "client closed or
//     connection lost".
//   - kiln_live_disconnect_seconds (histogram): for each socket a
//     Disconnect closes on this node (called here, or received from the
//     PubSub), the time from DisconnectLocal starting to its close frame
//     having been written to the connection (handed to the kernel, not
//     acknowledged by the client). It covers the wait for the
//     connection's writer; a close frame that could not be written is not
//     observed. It does not cover the PubSub's delivery from another node.
//   - kiln_live_sweeps_total (counter): safety net sweeps run (with a
//     checker set).
//   - kiln_live_swept_total (counter): sockets the safety net closed, each
//     one a disconnect the PubSub did not deliver in time.
//   - kiln_live_lease (gauge): 1 while this node holds a lease (see
//     LeaseTerm): its token store answers checks from memory without a
//     fence. 0 on a transport that is not prompt, with WithLeases(false),
//     without a token store that follows the endpoint, and for
//     AliveInterval after each subscription.
//   - kiln_live_members (gauge): the other members this node hears, whose
//     acknowledgement its revocations wait for.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(e *Endpoint) { e.registry = reg }
}

// metrics are the endpoint's collectors. They always count; WithMetrics
// only registers them.
type metrics struct {
	opened     prometheus.Counter
	closed     *prometheus.CounterVec
	disconnect prometheus.Histogram
	sweeps     prometheus.Counter
	swept      prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		opened: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kiln_live_opened_total",
			Help: "Live sockets opened on this node, those refused at once with 4029 included.",
		}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_live_closed_total",
			Help: `Live sockets closed on this node, by the close code and reason the server sent (code "none": closed by the client or lost).`,
		}, []string{"code", "reason"}),
		disconnect: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kiln_live_disconnect_seconds",
			Help:    "Time from a disconnect reaching this node to the socket's close frame written to its connection.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8), // 0.5 ms to 8 s
		}),
		sweeps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kiln_live_sweeps_total",
			Help: "Safety net sweeps run on this node.",
		}),
		swept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kiln_live_swept_total",
			Help: "Live sockets closed by the safety net on this node: disconnects the pub/sub did not deliver.",
		}),
	}
}

// register registers the collectors, and the gauges of e's open sockets
// and lease, with reg; it returns unregister.
func (m *metrics) register(reg prometheus.Registerer, e *Endpoint) (unregister func(), err error) {
	sockets := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kiln_live_sockets",
		Help: "Live sockets open on this node.",
	}, func() float64 { return float64(e.Len()) })
	leased := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kiln_live_lease",
		Help: "1 while this node holds a lease: its token store answers checks from memory without a fence.",
	}, func() float64 {
		if e.Leased() {
			return 1
		}
		return 0
	})
	members := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kiln_live_members",
		Help: "Other members this node hears, whose acknowledgement its revocations wait for.",
	}, func() float64 { return float64(e.members.count()) })
	var done []prometheus.Collector
	unregister = func() {
		for _, c := range done {
			reg.Unregister(c)
		}
	}
	for _, c := range []prometheus.Collector{sockets, leased, members, m.opened, m.closed, m.disconnect, m.sweeps, m.swept} {
		if err := reg.Register(c); err != nil {
			unregister() // only this call's: another's have the same descriptors
			return nil, err
		}
		done = append(done, c)
	}
	return unregister, nil
}

// reasonClientClosed labels the sockets the server did not close.
const reasonClientClosed = "client closed or connection lost"

// knownReasons are the close reasons the endpoint sends; a reason outside
// them is counted as "other", so that the label's values stay few.
var knownReasons = map[string]bool{
	ReasonText(revocation.SignedOut):        true,
	ReasonText(revocation.LogOutEverywhere): true,
	ReasonText(revocation.PasswordChanged):  true,
	ReasonText(revocation.Expired):          true,
	ReasonText(revocation.Revoked):          true,
	reasonShuttingDown:                      true,
	ReasonTooManyForSession:                 true,
	ReasonTooManyForUser:                    true,
}

// countClosed counts a socket closed by the server with code and reason.
func (m *metrics) countClosed(code int, reason string) {
	if !knownReasons[reason] {
		reason = "other"
	}
	m.closed.WithLabelValues(strconv.Itoa(code), reason).Inc()
}

// countClientClosed counts a socket that ended without the server closing
// it.
func (m *metrics) countClientClosed() {
	m.closed.WithLabelValues("none", reasonClientClosed).Inc()
}

// observeDisconnect records a disconnect's close frame written, since
// the disconnect reached this node.
func (m *metrics) observeDisconnect(since time.Time) {
	m.disconnect.Observe(time.Since(since).Seconds())
}
