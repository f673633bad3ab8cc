// Package pubsub chooses a live.PubSub transport by URL:
//
//	""                 live.InProcess (a single node)
//	postgres://…       PostgreSQL LISTEN/NOTIFY (live/pubsub/postgres)
//	redis://…          Redis pub/sub (live/pubsub/redis)
//	nats://…           NATS (live/pubsub/nats)
//
// A "channel" query parameter names the channel (the subject, for NATS)
// instead of the transport's default, so that several apps can share one
// server: redis://127.0.0.1:6379/0?channel=shop:live. It is removed from
// the URL before the URL is handed to the driver.
//
// Every transport here (and live/pubsub/sqlite) is a prometheus.Collector
// of its metrics, kiln_pubsub_* with a transport label: register what
// FromURL returned when it is one. live.InProcess is not: it has no
// connection to lose.
//
//	if c, ok := ps.(prometheus.Collector); ok {
//		err = registry.Register(c)
//	}
package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/live/pubsub/nats"
	"github.com/kiln-go/kiln/live/pubsub/postgres"
	"github.com/kiln-go/kiln/live/pubsub/redis"
)

// FromURL returns the transport for rawURL. A nil logger means
// slog.Default().
func FromURL(ctx context.Context, rawURL string, logger *slog.Logger) (live.PubSub, error) {
	if rawURL == "" {
		return &live.InProcess{}, nil
	}
	if logger == nil {
		logger = slog.Default()
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// Not the URL itself: it may hold a password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("kiln/pubsub: bad URL (%w); want postgres://…, redis://… or nats://…", err)
	}
	if u.Scheme == "" {
		return nil, errors.New("kiln/pubsub: the URL has no scheme; want postgres://…, redis://… or nats://…")
	}
	q := u.Query()
	channel, hasChannel := q.Get("channel"), q.Has("channel")
	if hasChannel {
		if channel == "" {
			return nil, fmt.Errorf("kiln/pubsub: the channel parameter of %s://… is empty", u.Scheme)
		}
		// Cut it from the text, leaving the rest as written: a NATS URL
		// may list several servers, which url.URL does not round-trip.
		q.Del("channel")
		rawURL = rawURL[:strings.IndexByte(rawURL, '?')]
		if len(q) > 0 {
			rawURL += "?" + q.Encode()
		}
	}
	switch u.Scheme {
	case "postgres", "postgresql":
		opts := []postgres.Option{postgres.WithLogger(logger)}
		if hasChannel {
			opts = append(opts, postgres.WithChannel(channel))
		}
		return postgres.New(ctx, rawURL, opts...)
	case "redis", "rediss":
		opts := []redis.Option{redis.WithLogger(logger)}
		if hasChannel {
			opts = append(opts, redis.WithChannel(channel))
		}
		return redis.New(ctx, rawURL, opts...)
	case "nats", "tls":
		opts := []nats.Option{nats.WithLogger(logger)}
		if hasChannel {
			opts = append(opts, nats.WithSubject(channel))
		}
		return nats.New(ctx, rawURL, opts...)
	}
	return nil, fmt.Errorf("kiln/pubsub: unsupported scheme %q; use postgres://, redis:// or nats://", u.Scheme)
}
