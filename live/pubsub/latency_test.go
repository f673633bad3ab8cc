package pubsub_test

import (
	"testing"
	"time"

	"github.com/kiln-go/kiln/internal/crossnode"
	"github.com/kiln-go/kiln/internal/latency"
	"github.com/kiln-go/kiln/internal/testdb"
)

// idlePause is how long a round of BenchmarkCrossNodeDisconnect leaves its
// socket open before the disconnect: long enough for the process's threads
// to go idle, as on a server whose sockets opened long before a sign-out.
const idlePause = time.Millisecond

// BenchmarkCrossNodeDisconnect measures auto sign-out across nodes with
// internal/crossnode: endpoints A and B, each with its own connection to
// the transport, a client of B's, and the disconnect of its socket on A,
// from the call to DisconnectMany on A (what the token revocation notifier
// calls once a revocation has committed) to the client reading the close
// frame. Each socket is left open for idlePause first.
//
// Each transport takes turns, a round each in a random order, with an
// in-process pair (two endpoints sharing one live.InProcess), so that the
// machine's load weighs on both alike. It reports the transport's median
// and 99th percentile (p50-µs, p99-µs), the median of its part alone
// (recv-p50-µs: until the message reaches B's subscriber) and of
// DisconnectMany's return (publish-p50-µs), the in-process median of the
// same rounds (inprocess-p50-µs) and the ratio of the two medians
// (x-inprocess). ns/op is a round of each, sockets' dial and pause
// included. A few hundred samples are enough:
//
//	go test -run '^$' -bench CrossNodeDisconnect -benchtime 300x -count 3 ./live/pubsub
func BenchmarkCrossNodeDisconnect(b *testing.B) { benchmarkCrossNode(b, idlePause) }

// BenchmarkCrossNodeDisconnectBusy is BenchmarkCrossNodeDisconnect with
// the disconnect made as soon as the socket is open, while the process is
// still busy with it: nothing has gone idle, neither the process's
// threads nor the servers'.
func BenchmarkCrossNodeDisconnectBusy(b *testing.B) { benchmarkCrossNode(b, 0) }

func benchmarkCrossNode(b *testing.B, pause time.Duration) {
	for _, tr := range append([]transport{inProcess}, transports()...) {
		b.Run(tr.name, func(b *testing.B) {
			pairs := []*crossnode.Pair{startPair(b, tr), startPair(b, inProcess)}
			b.ResetTimer()
			samples, err := crossnode.Measure(b.Context(), crossnode.Options{Rounds: b.N, Pause: pause}, pairs...)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			s, base := samples[0], samples[1]
			b.ReportMetric(µs(s.Percentile(50)), "p50-µs")
			b.ReportMetric(µs(s.Percentile(99)), "p99-µs")
			b.ReportMetric(µs(latency.Percentile(s.Received, 50)), "recv-p50-µs")
			b.ReportMetric(µs(latency.Percentile(s.Publish, 50)), "publish-p50-µs")
			b.ReportMetric(µs(base.Percentile(50)), "inprocess-p50-µs")
			b.ReportMetric(float64(s.Percentile(50))/float64(base.Percentile(50)), "x-inprocess")
		})
	}
}

// startPair starts a crossnode pair on tr, each endpoint with a
// connection of its own, on a channel of its own.
func startPair(b *testing.B, tr transport) *crossnode.Pair {
	b.Helper()
	channel := testdb.UniqueName("kiln_test_")
	nodeA := tr.open(b, channel, testdb.UniqueName("kiln_node_"), quiet())
	nodeB := tr.open(b, channel, testdb.UniqueName("kiln_node_"), quiet())
	p, err := crossnode.Start(nodeA, nodeB)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := p.Close(); err != nil {
			b.Error(err)
		}
	})
	return p
}

// µs is d in microseconds, for a metric.
func µs(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
