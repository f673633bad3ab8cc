package redis_test

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/web/ratelimit"
	"github.com/kiln-go/kiln/web/ratelimit/ratelimittest"
	"github.com/kiln-go/kiln/web/ratelimit/redis"
)

// client returns a new client (a new node) on KILN_TEST_REDIS_URL.
func client(t testing.TB) *goredis.Client {
	t.Helper()
	o, err := goredis.ParseURL(testdb.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// prefix returns a prefix of the test's own, so that parallel test runs
// on one server do not share buckets; its keys are deleted when t ends.
func prefix(t testing.TB, c *goredis.Client) string {
	p := testdb.UniqueName("kiln_test_ratelimit_") + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, p+"*", 100).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return p
}

func TestConformance(t *testing.T) {
	p := prefix(t, client(t))
	ratelimittest.Run(t, ratelimittest.Config{
		New:    func(t *testing.T) ratelimit.Store { return redis.New(client(t), redis.WithPrefix(p)) },
		Shared: true,
	})
}

func TestBucketsExpireWhenFullAgain(t *testing.T) {
	c := client(t)
	p := prefix(t, c)
	s := redis.New(c, redis.WithPrefix(p))
	ctx := context.Background()
	key := ratelimittest.Key()
	rule := ratelimit.Rule{Burst: 4, Window: time.Hour}
	for range 2 {
		if _, _, err := s.Take(ctx, key, rule); err != nil {
			t.Fatal(err)
		}
	}
	ttl, err := c.PTTL(ctx, p+key).Result()
	if err != nil {
		t.Fatal(err)
	}
	// Two of four tokens spent: full again in two intervals, 30 minutes.
	if ttl <= 29*time.Minute || ttl > 30*time.Minute {
		t.Fatalf("TTL = %v; want the time until the bucket is full again, 30m", ttl)
	}
	for range 2 {
		if err := s.Refund(ctx, key, rule); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := c.Exists(ctx, p+key).Result(); err != nil || n != 0 {
		t.Fatalf("key exists = %d, %v after refunding every token; want it deleted", n, err)
	}
}

func BenchmarkTake(b *testing.B) {
	c := client(b)
	ratelimittest.BenchTake(b, redis.New(c, redis.WithPrefix(prefix(b, c))))
}
