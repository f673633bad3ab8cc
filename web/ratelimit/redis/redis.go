// Package redis is a ratelimit.Store in Redis (5 or later), shared by
// every node using the server.
//
// Each call is one Lua script, atomic on the server and timed by the
// server's clock (so the nodes' clocks need not agree). A bucket is one
// string key holding the moment, in microseconds, it will be full again;
// it expires at that moment, so Redis holds only the buckets in use.
package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kiln-go/kiln/web/ratelimit"
)

// DefaultPrefix starts every key the store writes.
const DefaultPrefix = "kiln:ratelimit:"

// Store is the Redis store.
type Store struct {
	client goredis.Scripter
	prefix string
}

var _ ratelimit.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithPrefix sets the prefix of the store's keys. Default: DefaultPrefix.
func WithPrefix(p string) Option { return func(s *Store) { s.prefix = p } }

// New returns a store on client: a *redis.Client, a cluster or ring
// client, or a live/pubsub/redis transport's Client().
func New(client goredis.Scripter, opts ...Option) *Store {
	s := &Store{client: client, prefix: DefaultPrefix}
	for _, o := range opts {
		o(s)
	}
	return s
}

// The scripts take KEYS[1], the bucket, and ARGV[1], a token's interval
// in microseconds; take also ARGV[2], the burst. A Take is let through
// when the bucket, after it, would be full again within burst intervals
// (the generic cell rate algorithm). Microseconds since 1970 fit a Lua
// number (a double) exactly.
const clock = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
`

var take = goredis.NewScript(clock + `
local full = tonumber(redis.call('GET', KEYS[1]) or now)
if full < now then full = now end
local nxt = full + interval
local over = nxt - now - interval * tonumber(ARGV[2])
if over > 0 then return {0, over} end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.ceil((nxt - now) / 1000))
return {1, 0}
`)

var refund = goredis.NewScript(clock + `
local full = tonumber(redis.call('GET', KEYS[1]))
if not full then return 0 end
full = full - interval
if full <= now then
	redis.call('DEL', KEYS[1])
else
	redis.call('SET', KEYS[1], string.format('%.0f', full), 'PX', math.ceil((full - now) / 1000))
end
return 1
`)

func micros(r ratelimit.Rule) int64 { return r.Interval().Microseconds() }

// Take implements ratelimit.Store.
func (s *Store) Take(ctx context.Context, key string, rule ratelimit.Rule) (bool, time.Duration, error) {
	res, err := take.Run(ctx, s.client, []string{s.prefix + key}, micros(rule), rule.Burst).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("kiln/ratelimit/redis: take: %w", err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("kiln/ratelimit/redis: take: unexpected reply %v", res)
	}
	if res[0] == 1 {
		return true, 0, nil
	}
	return false, max(time.Duration(res[1])*time.Microsecond, time.Microsecond), nil
}

// Refund implements ratelimit.Store.
func (s *Store) Refund(ctx context.Context, key string, rule ratelimit.Rule) error {
	if err := refund.Run(ctx, s.client, []string{s.prefix + key}, micros(rule)).Err(); err != nil {
		return fmt.Errorf("kiln/ratelimit/redis: refund: %w", err)
	}
	return nil
}
