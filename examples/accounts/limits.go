package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/kiln-go/kiln/cli"
	"github.com/kiln-go/kiln/resource/bunlayer"
	"github.com/kiln-go/kiln/web/ratelimit"
	"github.com/kiln-go/kiln/web/ratelimit/postgres"
	"github.com/kiln-go/kiln/web/ratelimit/redis"
)

// rateLimiter makes the auth routes' limiter from the configuration: the
// limits (the rate_limits section's), in the store rate_limit_store names
// (this node's memory, or PostgreSQL or Redis shared by every node), with
// client addresses read through the trusted proxies alone, its refusals
// counted in metrics. close releases the store's connection.
func rateLimiter(ctx context.Context, cfg *cli.Config, limits ratelimit.Limits, layer *bunlayer.Layer, logger *slog.Logger, metrics prometheus.Registerer) (lim *ratelimit.Limiter, close func(), err error) {
	var store ratelimit.Store
	close = func() {}
	switch u := cfg.RateLimitStore; {
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		db := layer
		if u != cfg.DatabaseURL {
			if db, err = bunlayer.Open(ctx, u); err != nil {
				return nil, nil, fmt.Errorf("rate_limit_store: %w", err)
			}
			close = func() { db.Close() }
		}
		s, err := postgres.New(ctx, db.DB().DB)
		if err != nil {
			close()
			return nil, nil, fmt.Errorf("rate_limit_store: %w", err)
		}
		store = s
	case strings.HasPrefix(u, "redis://"), strings.HasPrefix(u, "rediss://"):
		opts, err := goredis.ParseURL(u)
		if err != nil {
			return nil, nil, fmt.Errorf("rate_limit_store: %w", err)
		}
		client := goredis.NewClient(opts)
		close = func() { client.Close() }
		store = redis.New(client)
	}
	// Nodes sharing a store must name a client's bucket alike: the key
	// comes from the signing secret they share.
	key := sha256.Sum256([]byte("kiln rate limits\x00" + cfg.TokenSigningSecret))
	lim, err = ratelimit.New(store, limits, ratelimit.WithTrustedProxies(cfg.TrustedProxies...),
		ratelimit.WithHashKey(key[:]), ratelimit.WithLogger(logger), ratelimit.WithMetrics(metrics))
	if err != nil {
		close()
		return nil, nil, err
	}
	return lim, close, nil
}
