// Package pubsub chooses a live.PubSub transport by URL:
//
//	""                 live.InProcess (a single node)
//	postgres://…       PostgreSQL LISTEN/NOTIFY (live/pubsub/postgres)
//	redis://…          Redis pub/sub (live/pubsub/redis)
//	nats://…           NATS (live/pubsub/nats)
package pubsub

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/live/pubsub/nats"
	"github.com/kiln-go/kiln/live/pubsub/postgres"
	"github.com/kiln-go/kiln/live/pubsub/redis"
)

// FromURL returns the transport for rawURL.
func FromURL(ctx context.Context, rawURL string, logger *slog.Logger) (live.PubSub, error) {
	if rawURL == "" {
		return &live.InProcess{}, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("kiln/pubsub: bad URL: %w", err)
	}
	switch u.Scheme {
	case "postgres", "postgresql":
		return postgres.New(ctx, rawURL, postgres.WithLogger(logger))
	case "redis", "rediss":
		return redis.New(ctx, rawURL, redis.WithLogger(logger))
	case "nats", "tls":
		return nats.New(ctx, rawURL, nats.WithLogger(logger))
	}
	return nil, fmt.Errorf("kiln/pubsub: unsupported scheme %q; use postgres://, redis:// or nats://", u.Scheme)
}
