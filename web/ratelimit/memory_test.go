package ratelimit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kiln-go/kiln/web/ratelimit"
)

// clock is a clock tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func take(t *testing.T, s ratelimit.Store, key string, rule ratelimit.Rule) (bool, time.Duration) {
	t.Helper()
	ok, retry, err := s.Take(context.Background(), key, rule)
	if err != nil {
		t.Fatal(err)
	}
	return ok, retry
}

func TestMemoryStoreRefillsOneTokenPerInterval(t *testing.T) {
	c := newClock()
	s := ratelimit.NewMemoryStore(ratelimit.WithClock(c.Now))
	rule := ratelimit.Rule{Burst: 10, Window: 15 * time.Minute} // one token per 90 s
	for i := range 10 {
		if ok, _ := take(t, s, "k", rule); !ok {
			t.Fatalf("take %d of the burst refused", i+1)
		}
	}
	ok, retry := take(t, s, "k", rule)
	if ok || retry != 90*time.Second {
		t.Fatalf("11th take = %v, retry %v; want refused, retry 1m30s", ok, retry)
	}
	c.Advance(89 * time.Second)
	if ok, retry := take(t, s, "k", rule); ok || retry != time.Second {
		t.Fatalf("after 89 s: %v, retry %v; want refused, retry 1s", ok, retry)
	}
	c.Advance(time.Second)
	if ok, _ := take(t, s, "k", rule); !ok {
		t.Fatal("after 90 s: refused; want one token back")
	}
	if ok, _ := take(t, s, "k", rule); ok {
		t.Fatal("after 90 s: two tokens back; want one")
	}
	c.Advance(time.Hour)
	n := 0
	for range 20 {
		if ok, _ := take(t, s, "k", rule); ok {
			n++
		}
	}
	if n != 10 {
		t.Fatalf("after an idle hour, %d of 20 let through; want the burst, 10 (never more)", n)
	}
}

func TestMemoryStoreForgetsBucketsFullAgain(t *testing.T) {
	c := newClock()
	s := ratelimit.NewMemoryStore(ratelimit.WithClock(c.Now))
	rule := ratelimit.Rule{Burst: 2, Window: time.Minute}
	for i := range 50 {
		take(t, s, fmt.Sprint(i), rule)
	}
	take(t, s, "last", rule)
	take(t, s, "last", rule)
	if n := s.Len(); n != 51 {
		t.Fatalf("Len = %d; want 51", n)
	}
	c.Advance(30 * time.Second) // the 50 single takes are full again; "last" is not
	if n := s.Len(); n != 1 {
		t.Fatalf("Len = %d after the idle buckets refilled; want 1", n)
	}
	c.Advance(30 * time.Second)
	if n := s.Len(); n != 0 {
		t.Fatalf("Len = %d once every bucket is full; want 0", n)
	}
}

func TestMemoryStoreBoundedByMaxKeys(t *testing.T) {
	c := newClock()
	s := ratelimit.NewMemoryStore(ratelimit.WithClock(c.Now), ratelimit.WithMaxKeys(100))
	slow := ratelimit.Rule{Burst: 1, Window: 24 * time.Hour}
	fast := ratelimit.Rule{Burst: 1, Window: time.Minute}
	// "victim" will be full again late; the flood's buckets sooner, so they
	// are forgotten first.
	take(t, s, "victim", slow)
	for i := range 10_000 {
		take(t, s, fmt.Sprint("flood", i), fast)
		c.Advance(time.Millisecond)
	}
	if n := s.Len(); n > 100 {
		t.Fatalf("Len = %d after 10,000 keys; want at most 100", n)
	}
	if ok, _ := take(t, s, "victim", slow); ok {
		t.Fatal("a flood of new keys made the store forget a spent bucket before buckets that refill sooner")
	}
}

func TestMemoryStoreRefundOfForgottenBucketIsNoOp(t *testing.T) {
	c := newClock()
	s := ratelimit.NewMemoryStore(ratelimit.WithClock(c.Now))
	rule := ratelimit.Rule{Burst: 2, Window: time.Minute}
	if err := s.Refund(context.Background(), "never", rule); err != nil {
		t.Fatal(err)
	}
	if n := s.Len(); n != 0 {
		t.Fatalf("Len = %d after refunding an untouched key; want 0", n)
	}
}
