package pubsub_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/kiln-go/kiln/internal/latency"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/revocation"
)

// nothing is a revocation.Watcher that ignores what it hears: it makes an
// endpoint followed, and so a member.
type nothing struct{}

func (nothing) Revoking([]revocation.Disconnect) {}
func (nothing) Revoked([]revocation.Disconnect)  {}
func (nothing) State(bool)                       {}

// BenchmarkAnnounce measures what the leases cost a revocation: how long
// node A's announcement of one token takes (Endpoint.Announce, before the
// revoking transaction commits), with node B a member holding a lease,
// which A waits to acknowledge the announcement, and with B not a member
// (live.WithLeases(false)), when A only hears its own message back. ns/op
// is the mean; p50-µs and p99-µs its percentiles.
//
//	go test -run '^$' -bench Announce -benchtime 500x ./live/pubsub
func BenchmarkAnnounce(b *testing.B) {
	for _, tr := range transports() {
		for _, mode := range leaseModes {
			b.Run(tr.name+"/"+mode.name, func(b *testing.B) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				channel := testdb.UniqueName("kiln_test_")
				endpoint := func(opts ...live.Option) *live.Endpoint {
					ps := tr.open(b, channel, testdb.UniqueName("kiln_node_"), quiet())
					e, err := live.New(append(opts, live.WithPubSub(ps), live.WithLogger(quiet()))...)
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { _ = e.Shutdown(context.Background()) })
					e.Follow(nothing{})
					return e
				}
				a, bn := endpoint(), endpoint(mode.options...)
				for mode.leased && !bn.Leased() {
					select {
					case <-time.After(10 * time.Millisecond):
					case <-ctx.Done():
						b.Fatal("no lease")
					}
				}
				// The first announcement waits until A has heard every
				// member (live.LeaseTerm).
				if err := a.Announce(ctx, []revocation.Disconnect{{JTI: "warm-up"}}); err != nil {
					b.Fatal(err)
				}
				took := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for i := range b.N {
					start := time.Now()
					if err := a.Announce(ctx, []revocation.Disconnect{{JTI: strconv.Itoa(i)}}); err != nil {
						b.Fatal(err)
					}
					took = append(took, time.Since(start))
				}
				b.StopTimer()
				b.ReportMetric(µs(latency.Percentile(took, 50)), "p50-µs")
				b.ReportMetric(µs(latency.Percentile(took, 99)), "p99-µs")
			})
		}
	}
}
