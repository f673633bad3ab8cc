package password

import (
	"context"
	"fmt"
	"runtime"
	"sync"
)

// HashLimiter caps how many password hashes and checks run at once. A
// hash is slow on purpose (bcrypt at cost 10 is some 60 ms of one core):
// a burst of sign-ins beyond the cores queues here, in arrival order,
// instead of slicing the cores between all of them, which makes every
// sign-in slow and starves the short work around the hashes (the
// transactions that issue tokens) of CPU.
//
// The strategy waits for a slot before each Hash, Valid and SimulateValid
// of its HashProvider (a sign-in before it reads its user, so that a
// burst reads no faster than it hashes), holding no database connection
// or transaction while it waits or hashes. A wait ends early, with the
// request's context error, when the request is cancelled.
//
// Every password strategy of a process shares one limiter, sized to
// GOMAXPROCS, unless Build is given one: resource.With(limiter). Give the
// same limiter to every domain of a process to keep one process-wide cap.
// A HashLimiter is safe for concurrent use.
type HashLimiter struct {
	// limit is the number of slots; 0 follows runtime.GOMAXPROCS.
	limit int

	mu      sync.Mutex
	running int
	waiting []chan struct{} // in arrival order; closed when granted
}

// NewHashLimiter returns a limiter with limit slots; limit ≤ 0 follows
// runtime.GOMAXPROCS(0), read at each acquisition.
func NewHashLimiter(limit int) *HashLimiter {
	return &HashLimiter{limit: max(limit, 0)}
}

// processHashes is the limiter of the strategies whose domain was given
// none: one per process, since the cores it shares out are the process's.
var processHashes = NewHashLimiter(0)

// HashLimiterStats is a limiter's state at one moment.
type HashLimiterStats struct {
	// Limit is the number of slots.
	Limit int
	// Running is the number of hashes holding a slot.
	Running int
	// Waiting is the number of hashes waiting for one.
	Waiting int
}

// Stats returns the limiter's state.
func (l *HashLimiter) Stats() HashLimiterStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return HashLimiterStats{Limit: l.size(), Running: l.running, Waiting: len(l.waiting)}
}

// size is the number of slots; l.mu is held.
func (l *HashLimiter) size() int {
	if l.limit > 0 {
		return l.limit
	}
	return runtime.GOMAXPROCS(0)
}

// Do runs f once a slot is free, and frees it when f returns. It returns
// ctx's error, without running f, when ctx ends first.
func (l *HashLimiter) Do(ctx context.Context, f func()) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	f()
	return nil
}

func (l *HashLimiter) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kiln/password: waiting to hash a password: %w", err)
	}
	l.mu.Lock()
	if l.running < l.size() && len(l.waiting) == 0 {
		l.running++
		l.mu.Unlock()
		return nil
	}
	granted := make(chan struct{})
	l.waiting = append(l.waiting, granted)
	l.mu.Unlock()
	select {
	case <-granted:
		return nil
	case <-ctx.Done():
	}
	l.mu.Lock()
	for i, w := range l.waiting {
		if w == granted {
			l.waiting = append(l.waiting[:i], l.waiting[i+1:]...)
			l.mu.Unlock()
			return fmt.Errorf("kiln/password: waiting to hash a password: %w", ctx.Err())
		}
	}
	l.mu.Unlock()
	// The slot was granted as ctx ended: pass it on.
	l.release()
	return fmt.Errorf("kiln/password: waiting to hash a password: %w", ctx.Err())
}

func (l *HashLimiter) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running--
	for len(l.waiting) > 0 && l.running < l.size() {
		close(l.waiting[0])
		l.waiting = l.waiting[1:]
		l.running++
	}
}
