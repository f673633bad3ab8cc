// Package ratelimittest is the conformance suite of ratelimit.Store:
// every store kiln ships passes it, and so must a new one.
package ratelimittest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-go/kiln/web/ratelimit"
)

// Config describes the store under test.
type Config struct {
	// New returns a store. The suite uses keys of its own, so stores may
	// share their data with earlier ones.
	New func(t *testing.T) ratelimit.Store
	// Shared says that the stores New returns share their buckets, as the
	// nodes of a cluster on one PostgreSQL or Redis do: the suite then
	// checks that two of them count as one.
	Shared bool
}

// Deadline bounds every wait for an event.
const Deadline = 15 * time.Second

// Run runs the suite.
func Run(t *testing.T, c Config) {
	t.Run("TakesBurstThenRefuses", func(t *testing.T) { takesBurst(t, c.New(t)) })
	t.Run("KeysAreIndependent", func(t *testing.T) { keysIndependent(t, c.New(t)) })
	t.Run("RefundGivesOneBack", func(t *testing.T) { refund(t, c.New(t)) })
	t.Run("RefundNeverExceedsBurst", func(t *testing.T) { refundCapped(t, c.New(t)) })
	t.Run("ConcurrentTakesGetExactlyBurst", func(t *testing.T) {
		s := c.New(t)
		concurrentTakes(t, s, s)
	})
	t.Run("ConcurrentTakeAndRefundLeaveBucketFull", func(t *testing.T) { concurrentRefunds(t, c.New(t)) })
	t.Run("RefillsOverTime", func(t *testing.T) { refills(t, c.New(t)) })
	if c.Shared {
		t.Run("TwoNodesShareOneBudget", func(t *testing.T) { shared(t, c.New(t), c.New(t)) })
		t.Run("TwoNodesConcurrentTakesGetExactlyBurst", func(t *testing.T) { concurrentTakes(t, c.New(t), c.New(t)) })
	}
}

// Key returns a key no other test uses.
func Key() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "test:" + hex.EncodeToString(b)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), Deadline)
	t.Cleanup(cancel)
	return c
}

// count takes n times and returns how many were let through.
func count(t *testing.T, s ratelimit.Store, key string, rule ratelimit.Rule, n int) int {
	t.Helper()
	got := 0
	for range n {
		ok, retry, err := s.Take(ctx(t), key, rule)
		if err != nil {
			t.Fatalf("Take: %v", err)
		}
		if ok != (retry == 0) {
			t.Fatalf("Take = %v with retryAfter %v; want retryAfter 0 exactly when ok", ok, retry)
		}
		if ok {
			got++
		}
	}
	return got
}

var hour = ratelimit.Rule{Burst: 3, Window: time.Hour}

func takesBurst(t *testing.T, s ratelimit.Store) {
	key := Key()
	if got := count(t, s, key, hour, 3); got != 3 {
		t.Fatalf("a fresh bucket let %d of 3 through; want all", got)
	}
	ok, retry, err := s.Take(ctx(t), key, hour)
	if err != nil || ok {
		t.Fatalf("4th Take = %v, %v; want refused", ok, err)
	}
	if retry <= 0 || retry > hour.Interval() {
		t.Fatalf("retryAfter = %v; want in (0, %v]", retry, hour.Interval())
	}
}

func keysIndependent(t *testing.T, s ratelimit.Store) {
	a, b := Key(), Key()
	count(t, s, a, hour, 3)
	if got := count(t, s, b, hour, 4); got != 3 {
		t.Fatalf("another key let %d of 4 through; want 3", got)
	}
}

func refund(t *testing.T, s ratelimit.Store) {
	key := Key()
	if got := count(t, s, key, hour, 4); got != 3 {
		t.Fatalf("let %d of 4 through; want 3", got)
	}
	if err := s.Refund(ctx(t), key, hour); err != nil {
		t.Fatal(err)
	}
	if got := count(t, s, key, hour, 2); got != 1 {
		t.Fatalf("after one refund, let %d of 2 through; want 1", got)
	}
}

func refundCapped(t *testing.T, s ratelimit.Store) {
	fresh, used := Key(), Key()
	count(t, s, used, hour, 1)
	for _, key := range []string{fresh, used} {
		for range 3 {
			if err := s.Refund(ctx(t), key, hour); err != nil {
				t.Fatal(err)
			}
		}
		if got := count(t, s, key, hour, 5); got != 3 {
			t.Fatalf("after refunds on a full bucket, let %d of 5 through; want the burst, 3", got)
		}
	}
}

// concurrentTakes hammers one key from many goroutines, half on a and
// half on b.
func concurrentTakes(t *testing.T, a, b ratelimit.Store) {
	const goroutines, each = 32, 4
	rule := ratelimit.Rule{Burst: 10, Window: time.Hour}
	key := Key()
	var allowed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range goroutines {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			<-start
			for range each {
				ok, _, err := s.Take(ctx(t), key, rule)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					allowed.Add(1)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if got := allowed.Load(); got != int64(rule.Burst) {
		t.Fatalf("%d concurrent takes let %d through; want exactly the burst, %d", goroutines*each, got, rule.Burst)
	}
}

// concurrentRefunds takes and refunds from many goroutines: every token
// taken comes back, so the bucket ends full.
func concurrentRefunds(t *testing.T, s ratelimit.Store) {
	rule := ratelimit.Rule{Burst: 5, Window: time.Hour}
	key := Key()
	var wg sync.WaitGroup
	for range 24 {
		wg.Go(func() {
			for range 4 {
				ok, _, err := s.Take(ctx(t), key, rule)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					if err := s.Refund(ctx(t), key, rule); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if got := count(t, s, key, rule, 7); got != rule.Burst {
		t.Fatalf("after concurrent take-and-refund, let %d of 7 through; want the full burst, %d", got, rule.Burst)
	}
}

func refills(t *testing.T, s ratelimit.Store) {
	rule := ratelimit.Rule{Burst: 2, Window: 2 * time.Second}
	key := Key()
	// Take until refused: on a busy machine a token may come back between
	// two calls.
	var retry time.Duration
	for i := 0; retry == 0; i++ {
		if i == 100 {
			t.Fatal("100 takes in a row were let through; want refusals once the burst of 2 is spent")
		}
		var err error
		if _, retry, err = s.Take(ctx(t), key, rule); err != nil {
			t.Fatal(err)
		}
	}
	if retry <= 0 || retry > rule.Interval() {
		t.Fatalf("retryAfter = %v; want in (0, %v]", retry, rule.Interval())
	}
	deadline := time.Now().Add(Deadline)
	for {
		ok, _, err := s.Take(ctx(t), key, rule)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no token came back within %v; want one every %v", Deadline, rule.Interval())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func shared(t *testing.T, a, b ratelimit.Store) {
	key := Key()
	if got := count(t, a, key, hour, 2); got != 2 {
		t.Fatalf("node a let %d of 2 through", got)
	}
	if got := count(t, b, key, hour, 2); got != 1 {
		t.Fatalf("node b let %d of 2 through after a took 2 of 3; want 1", got)
	}
	if got := count(t, a, key, hour, 1); got != 0 {
		t.Fatal("node a let one through after the budget was spent on both")
	}
	if err := b.Refund(ctx(t), key, hour); err != nil {
		t.Fatal(err)
	}
	if got := count(t, a, key, hour, 2); got != 1 {
		t.Fatalf("after node b refunded one, node a let %d of 2 through; want 1", got)
	}
}

// BenchTake measures Take on s, each parallel goroutine on its own key of
// a bucket that never runs out.
func BenchTake(b *testing.B, s ratelimit.Store) {
	rule := ratelimit.Rule{Burst: 1 << 30, Window: time.Hour}
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		key := Key()
		for pb.Next() {
			if _, _, err := s.Take(ctx, key, rule); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
