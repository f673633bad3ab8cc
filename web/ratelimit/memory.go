package ratelimit

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// DefaultMaxKeys is how many buckets a MemoryStore keeps at most.
const DefaultMaxKeys = 100_000

// MemoryStore is a Store in the memory of one process: each node of a
// cluster counts on its own, so N nodes let up to N times the burst
// through. It is the default store.
//
// A bucket is kept as the moment it will be full again (the "theoretical
// arrival time" of the generic cell rate algorithm, which is a token
// bucket kept as one number). Buckets that are full again are dropped on
// the next call; when MaxKeys buckets are held and a new key comes, the
// bucket that will be full soonest is dropped, so memory stays bounded
// and the least is forgotten.
type MemoryStore struct {
	mu      sync.Mutex
	now     func() time.Time
	max     int
	buckets map[string]*bucket
	byFull  fullHeap
}

var _ Store = (*MemoryStore)(nil)

// MemoryOption configures a MemoryStore.
type MemoryOption func(*MemoryStore)

// WithMaxKeys bounds the buckets held. Default: DefaultMaxKeys.
func WithMaxKeys(n int) MemoryOption {
	return func(s *MemoryStore) {
		if n > 0 {
			s.max = n
		}
	}
}

// WithClock sets the clock. Default: time.Now.
func WithClock(now func() time.Time) MemoryOption { return func(s *MemoryStore) { s.now = now } }

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(opts ...MemoryOption) *MemoryStore {
	s := &MemoryStore{now: time.Now, max: DefaultMaxKeys, buckets: map[string]*bucket{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// bucket is one key's bucket: full at fullAt (Unix nanoseconds).
type bucket struct {
	key    string
	fullAt int64
	index  int
}

// Take implements Store.
func (s *MemoryStore) Take(_ context.Context, key string, rule Rule) (bool, time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixNano()
	s.dropFull(now)
	interval := int64(rule.Interval())
	b := s.buckets[key]
	fullAt := now
	if b != nil {
		fullAt = max(b.fullAt, now)
	}
	next := fullAt + interval
	if over := next - now - interval*int64(rule.Burst); over > 0 {
		return false, time.Duration(over), nil
	}
	if b == nil {
		if len(s.buckets) >= s.max {
			delete(s.buckets, heap.Pop(&s.byFull).(*bucket).key)
		}
		b = &bucket{key: key, fullAt: next}
		s.buckets[key] = b
		heap.Push(&s.byFull, b)
		return true, 0, nil
	}
	b.fullAt = next
	heap.Fix(&s.byFull, b.index)
	return true, 0, nil
}

// Refund implements Store.
func (s *MemoryStore) Refund(_ context.Context, key string, rule Rule) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixNano()
	b := s.buckets[key]
	if b == nil {
		return nil
	}
	b.fullAt -= int64(rule.Interval())
	heap.Fix(&s.byFull, b.index)
	s.dropFull(now)
	return nil
}

// Len is the number of buckets held: those not yet full again, at most
// MaxKeys.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropFull(s.now().UnixNano())
	return len(s.buckets)
}

// dropFull forgets the buckets that are full again: they are the same as
// no bucket at all.
func (s *MemoryStore) dropFull(now int64) {
	for len(s.byFull) > 0 && s.byFull[0].fullAt <= now {
		delete(s.buckets, heap.Pop(&s.byFull).(*bucket).key)
	}
}

// fullHeap orders buckets by the moment they are full again.
type fullHeap []*bucket

func (h fullHeap) Len() int           { return len(h) }
func (h fullHeap) Less(i, j int) bool { return h[i].fullAt < h[j].fullAt }
func (h fullHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *fullHeap) Push(x any) {
	b := x.(*bucket)
	b.index = len(*h)
	*h = append(*h, b)
}
func (h *fullHeap) Pop() any {
	old := *h
	b := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return b
}
