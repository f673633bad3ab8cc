// Package transport holds what kiln's pub/sub transports share: the wire
// format, the reconnection backoff and the Prometheus metrics.
package transport

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the reconnection schedule the transports share: from Min,
// doubling to Max, with jitter.
type Backoff struct {
	Min, Max time.Duration
	attempt  int
}

// Reset starts the schedule over, after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Wait waits for the next delay, or until ctx is done (then it returns
// false).
func (b *Backoff) Wait(ctx context.Context) bool {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 250 * time.Millisecond
	}
	if hi <= 0 {
		hi = 10 * time.Second
	}
	d := lo << min(b.attempt, 16)
	if d > hi || d <= 0 {
		d = hi
	}
	b.attempt++
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
