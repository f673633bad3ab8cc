package pubsub_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
)

// commitClock is a notifier of node A's token store that notes when each
// revocation committed: notifiers run right after the commit, and it runs
// before the revocation notifier.
type commitClock struct{ at sync.Map } // jti → time.Time

func (c *commitClock) Notify(_ context.Context, n resource.Notification) error {
	if _, ok := n.Metadata[tokenresource.ReasonKey]; ok {
		if rec, ok := n.Record.(tokenresource.Record); ok {
			c.at.Store(rec.TokenFields().JTI, time.Now())
		}
	}
	return nil
}

// BenchmarkCrossNodeDisconnect measures the latency of auto sign-out
// across nodes: from the commit of a revocation on node A to the close
// frame read by a client of node B, through each transport, against the
// in-process one (two endpoints of one process sharing an InProcess). It
// reports the median and the 99th percentile; ns/op is the whole revoke
// round trip. A few hundred samples are enough:
//
//	go test -run '^$' -bench CrossNodeDisconnect -benchtime 300x ./live/pubsub
func BenchmarkCrossNodeDisconnect(b *testing.B) {
	for _, tr := range append([]transport{inProcess}, transports()...) {
		b.Run(tr.name, func(b *testing.B) {
			clock := &commitClock{}
			c := newCluster(b, tr)
			silent := []live.Option{live.WithLogger(quiet())}
			a := c.node(livetest.NodeOptions{TokenNotifiers: []resource.Notifier{clock}, EndpointOptions: silent})
			nodeB := c.node(livetest.NodeOptions{EndpointOptions: silent})
			ctx := context.Background()
			user := a.Register(b, "bench@example.com").Record
			samples := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				token, claims, err := a.Auth.Issue(ctx, user, authentication.IssueOptions{})
				if err != nil {
					b.Fatal(err)
				}
				client := nodeB.MustDial(b, ctx, livetest.Bearer(token))
				closed := make(chan time.Time, 1)
				var closeErr error
				go func() {
					for {
						if _, _, err := client.Conn.ReadMessage(); err != nil {
							at := time.Now()
							closeErr = err
							closed <- at
							return
						}
					}
				}()
				b.StartTimer()
				if err := a.Auth.Tokens().RevokeJTI(ctx, claims.JTI, claims.Subject, revocation.SignedOut); err != nil {
					b.Fatal(err)
				}
				var at time.Time
				select {
				case at = <-closed:
				case <-time.After(short):
					b.Fatal("no close frame")
				}
				b.StopTimer()
				var ce *websocket.CloseError
				if !errors.As(closeErr, &ce) || ce.Code != live.CloseSignedOut {
					b.Fatalf("closed with %v", closeErr)
				}
				committed, ok := clock.at.LoadAndDelete(claims.JTI)
				if !ok {
					b.Fatal("the revocation's commit was not seen")
				}
				samples = append(samples, at.Sub(committed.(time.Time)))
				b.StartTimer()
			}
			b.StopTimer()
			slices.Sort(samples)
			b.ReportMetric(float64(percentile(samples, 50).Microseconds()), "p50-µs")
			b.ReportMetric(float64(percentile(samples, 99).Microseconds()), "p99-µs")
		})
	}
}

// percentile is the p-th percentile of sorted samples (nearest rank).
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)]
}
