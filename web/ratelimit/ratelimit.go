// Package ratelimit limits brute force on the routes that take a
// credential or create one: sign-in, reset requests and registration.
//
// Each limit is a Rule: a token bucket per key (an identity or a client
// address) that holds Rule.Burst tokens and refills at Rule.Burst tokens
// per Rule.Window, one token every Window/Burst. An attempt takes a token;
// with none left it is refused with the time until the next one. Limits
// lists the rules and their defaults (the rate_limits section of a
// config file); a Limiter applies them to requests; a Store keeps the
// buckets: in memory on one node (MemoryStore), or shared by nodes
// through PostgreSQL (package postgres) or Redis (package redis).
//
// Keys never hold an identity or an address in clear: the Limiter hashes
// them (SHA-256, or HMAC-SHA-256 under WithHashKey) before a store sees
// them, and nothing in this package logs them.
package ratelimit

import (
	"context"
	"time"
)

// Rule is a token bucket: it holds Burst tokens and refills at Burst
// tokens per Window, one token every Window/Burst. A full bucket lets
// Burst attempts through at once; after that one attempt per
// Window/Burst.
type Rule struct {
	// Burst is the burst option. Tokens a full bucket holds: attempts let
	// through at once. Rules: gt=0. Its default depends on the section that
	// holds it: see docs/dsl/rate_limits.md.
	Burst int
	// Window is the window option. How long an empty bucket takes to fill
	// again; one token comes back every window/burst. Rules: gt=0. Its
	// default depends on the section that holds it: see
	// docs/dsl/rate_limits.md.
	Window time.Duration
}

// Interval is the time one token takes to come back: Window/Burst, at
// least a microsecond (the resolution of the shared stores' clocks).
func (r Rule) Interval() time.Duration {
	if r.Burst <= 0 {
		return r.Window
	}
	return max(r.Window/time.Duration(r.Burst), time.Microsecond)
}

// Store keeps token buckets by key.
//
// Every method is atomic per key, among goroutines and, for a shared
// store, among every process using it: of N concurrent Takes on a bucket
// holding k tokens, exactly min(N, k) succeed. A key is always used with
// the same Rule. A bucket no one has touched is full, and a store may
// forget a bucket once it would be full again.
type Store interface {
	// Take takes one token from key's bucket if it holds one and reports
	// ok. If it holds none, Take takes nothing and reports how long until
	// one will be there (retryAfter > 0).
	Take(ctx context.Context, key string, rule Rule) (ok bool, retryAfter time.Duration, err error)
	// Refund puts one token back into key's bucket, never beyond
	// rule.Burst: the attempt a Take was for turned out not to count (a
	// sign-in that succeeded).
	Refund(ctx context.Context, key string, rule Rule) error
}
