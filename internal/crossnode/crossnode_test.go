package crossnode_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kiln-go/kiln/internal/crossnode"
	"github.com/kiln-go/kiln/internal/testdb"
)

// checkSamples wants a latency per socket and a Publish and Received time
// per round, each in order, every transport time no longer than the
// fastest socket of its run took to close (B closes them once a message
// reached it).
func checkSamples(t *testing.T, s crossnode.Samples, rounds, batch int) {
	t.Helper()
	if len(s.Latencies) != rounds*batch || len(s.Publish) != rounds || len(s.Received) != rounds {
		t.Fatalf("%d latencies, %d publish and %d received times; want %d, %d and %d",
			len(s.Latencies), len(s.Publish), len(s.Received), rounds*batch, rounds, rounds)
	}
	for name, d := range map[string][]time.Duration{"latencies": s.Latencies, "publish": s.Publish, "received": s.Received} {
		for i := range d {
			if d[i] <= 0 || (i > 0 && d[i] < d[i-1]) {
				t.Fatalf("%s not positive and sorted: %v", name, d)
			}
		}
	}
	if s.Received[0] > s.Latencies[0] {
		t.Errorf("a disconnect reached B after %v, yet a socket closed after %v", s.Received[0], s.Latencies[0])
	}
	if p50, p99 := s.Percentile(50), s.Percentile(99); p50 > p99 || p99 > s.Latencies[len(s.Latencies)-1] {
		t.Errorf("p50 %v, p99 %v, max %v", p50, p99, s.Latencies[len(s.Latencies)-1])
	}
}

// open opens a pair on rawURL, closed when t ends.
func open(t *testing.T, ctx context.Context, rawURL string) *crossnode.Pair {
	t.Helper()
	p, err := crossnode.Open(ctx, rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// TestMeasure: on every transport, taking turns with an in-process pair,
// each round's sockets close with the sign-out close code, every one of
// them measured, while the idle sockets stay open (Measure fails
// otherwise). A round of 150 sockets needs two PostgreSQL NOTIFYs, both
// of which B acts on.
func TestMeasure(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  func(testing.TB) string
	}{
		{"inprocess", func(testing.TB) string { return "" }},
		{"postgres", testdb.PostgresURL},
		{"redis", testdb.RedisURL},
		{"nats", testdb.NATSURL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			pairs := []*crossnode.Pair{open(t, ctx, ""), open(t, ctx, tc.url(t))}
			s, err := crossnode.Measure(ctx, crossnode.Options{Rounds: 5, Batch: 3, Idle: 2, Pause: time.Millisecond}, pairs...)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range s {
				checkSamples(t, s, 5, 3)
			}
			s, err = crossnode.Measure(ctx, crossnode.Options{Rounds: 1, Batch: 150}, pairs[1])
			if err != nil {
				t.Fatal(err)
			}
			checkSamples(t, s[0], 1, 150)
		})
	}
}

// TestMeasureBeside: what Measure times beside the pairs is called once a
// round, handed the pause, and its latencies follow
// the pairs' samples, sorted; its error ends Measure.
func TestMeasureBeside(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := open(t, ctx, "")
	const rounds = 6
	var calls int
	d := time.Duration(rounds)
	beside := func(_ context.Context, pause time.Duration) (time.Duration, error) {
		if pause != 3*time.Millisecond {
			return 0, fmt.Errorf("handed a pause of %s, want 3ms", pause)
		}
		calls++
		d--
		return d, nil
	}
	s, err := crossnode.Measure(ctx, crossnode.Options{Rounds: rounds, Pause: 3 * time.Millisecond,
		Beside: []func(context.Context, time.Duration) (time.Duration, error){beside}}, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 2 || calls != rounds {
		t.Fatalf("%d samples and %d calls beside, want 2 and %d", len(s), calls, rounds)
	}
	checkSamples(t, s[0], rounds, 1)
	if !slices.IsSorted(s[1].Latencies) || len(s[1].Latencies) != rounds || s[1].Latencies[0] != 0 {
		t.Errorf("the latencies beside are %v, want 0…%d sorted", s[1].Latencies, rounds-1)
	}
	failing := func(context.Context, time.Duration) (time.Duration, error) { return 0, errors.New("beside failed") }
	if _, err := crossnode.Measure(ctx, crossnode.Options{Rounds: 2,
		Beside: []func(context.Context, time.Duration) (time.Duration, error){failing}}, p); err == nil || err.Error() != "beside failed" {
		t.Errorf("Measure with a failing call beside: %v, want its error", err)
	}
}

// TestRoundDisconnectsOnce: a round's sockets are closed once; a second
// Disconnect is refused rather than waiting for closes that cannot come.
func TestRoundDisconnectsOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := open(t, ctx, "")
	r, err := p.Dial(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n := p.B.Len(); n != 2 {
		t.Fatalf("B has %d sockets once Dial returned, want 2", n)
	}
	res, err := r.Disconnect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Latencies) != 2 || r.Ended() != 0 {
		t.Fatalf("%d latencies and %d ends left unread, want 2 and 0", len(res.Latencies), r.Ended())
	}
	if _, err := r.Disconnect(ctx); err == nil {
		t.Fatal("a second Disconnect of a round succeeded")
	}
}
