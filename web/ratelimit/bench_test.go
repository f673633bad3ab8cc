package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/kiln-go/kiln/web/ratelimit"
	"github.com/kiln-go/kiln/web/ratelimit/ratelimittest"
)

func BenchmarkMemoryStoreTake(b *testing.B) {
	ratelimittest.BenchTake(b, ratelimit.NewMemoryStore())
}

// BenchmarkMemoryStoreTakeNewKeys takes from a new key each time, the
// store full: each Take evicts a bucket.
func BenchmarkMemoryStoreTakeNewKeys(b *testing.B) {
	s := ratelimit.NewMemoryStore(ratelimit.WithMaxKeys(10_000))
	rule := ratelimit.Rule{Burst: 10, Window: time.Hour}
	ctx := context.Background()
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = ratelimittest.Key()
	}
	for i := 0; b.Loop(); i++ {
		if _, _, err := s.Take(ctx, keys[i%len(keys)], rule); err != nil {
			b.Fatal(err)
		}
	}
}
