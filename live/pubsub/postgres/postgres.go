// Package postgres is a live.PubSub on PostgreSQL LISTEN/NOTIFY: no
// infrastructure beyond the database the nodes already share.
//
// Importing it registers the schemes postgres and postgresql with
// pubsub.FromURL:
//
//	import _ "github.com/kiln-go/kiln/live/pubsub/postgres"
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/live/pubsub"
	"github.com/kiln-go/kiln/live/pubsub/internal/transport"
)

func init() {
	pubsub.Register("postgres", open)
	pubsub.Register("postgresql", open)
}

// open is the transport's pubsub.OpenFunc.
func open(ctx context.Context, url string, o pubsub.Options) (live.PubSub, error) {
	opts := []Option{WithLogger(o.Logger)}
	if o.Channel != "" {
		opts = append(opts, WithChannel(o.Channel))
	}
	p, err := New(ctx, url, opts...)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// MaxPayload is the largest message NOTIFY carries (PostgreSQL's limit is
// 8000 bytes).
const MaxPayload = 7999

// DefaultChannel is the channel the nodes listen on.
const DefaultChannel = "kiln_live"

// MaxChannel is the longest channel name PostgreSQL takes, in bytes
// (NAMEDATALEN - 1): LISTEN would silently truncate a longer one, and
// pg_notify refuse it.
const MaxChannel = 63

// PubSub is the LISTEN/NOTIFY transport. It publishes through a pool and
// listens on a dedicated connection, reconnecting with backoff. It is a
// prometheus.Collector: register it to export its metrics, kiln_pubsub_*
// with transport="postgres" (see docs/operations.md). It is connected
// while every listening connection is up.
type PubSub struct {
	channel string
	logger  *slog.Logger
	metrics *transport.Metrics
	pool    *pgxpool.Pool
	// listenConfig is the pool's connection configuration, without the
	// pool's own URL parameters (pool_max_conns, …), which a plain
	// connection would send to the server as unknown settings.
	listenConfig *pgx.ConnConfig
}

var (
	_ live.Prompter        = (*PubSub)(nil)
	_ live.PayloadLimiter  = (*PubSub)(nil)
	_ prometheus.Collector = (*PubSub)(nil)
)

// Option configures the transport.
type Option func(*PubSub)

// WithChannel sets the channel: at most MaxChannel bytes, used as is (case
// included). Default: DefaultChannel.
func WithChannel(name string) Option { return func(p *PubSub) { p.channel = name } }

// WithLogger sets the logger. Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(p *PubSub) { p.logger = l } }

// New connects to PostgreSQL at url.
func New(ctx context.Context, url string, opts ...Option) (*PubSub, error) {
	p := &PubSub{channel: DefaultChannel, logger: slog.Default(), metrics: transport.NewMetrics("postgres")}
	for _, o := range opts {
		o(p)
	}
	if p.channel == "" || len(p.channel) > MaxChannel {
		return nil, fmt.Errorf("kiln/pubsub/postgres: channel %q: want 1 to %d bytes", p.channel, MaxChannel)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("kiln/pubsub/postgres: %w", err)
	}
	p.listenConfig = cfg.ConnConfig.Copy()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("kiln/pubsub/postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("kiln/pubsub/postgres: connect: %w", err)
	}
	p.pool = pool
	return p, nil
}

// Close implements io.Closer: it closes the publishing pool, waiting for
// the Publish calls under way; listeners stop with their ctx. It returns
// nil, a second call included.
func (p *PubSub) Close() error {
	p.metrics.Closed()
	p.pool.Close()
	return nil
}

// Describe implements prometheus.Collector.
func (p *PubSub) Describe(ch chan<- *prometheus.Desc) { p.metrics.Describe(ch) }

// Collect implements prometheus.Collector.
func (p *PubSub) Collect(ch chan<- prometheus.Metric) { p.metrics.Collect(ch) }

// Prompt implements live.Prompter: NOTIFY reaches every listening
// connection at once, and a lost connection is handed as live.KindLost.
func (p *PubSub) Prompt() bool { return true }

// PayloadLimit implements live.PayloadLimiter: MaxPayload.
func (p *PubSub) PayloadLimit() int { return MaxPayload }

// Publish implements live.PubSub with a NOTIFY statement, the message
// quoted in it: one simple query, which the server runs sooner than the
// prepared SELECT pg_notify($1, $2) (no plan, no result row). A
// connection without standard_conforming_strings, where quoting would
// take more than doubling quotes, uses pg_notify.
func (p *PubSub) Publish(ctx context.Context, msg live.Message) error {
	err := p.publish(ctx, msg)
	p.metrics.Published(msg.Kind, err)
	return err
}

func (p *PubSub) publish(ctx context.Context, msg live.Message) error {
	b, err := transport.Encode(msg, MaxPayload)
	if err != nil {
		return err
	}
	return p.pool.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
		quoted, err := c.Conn().PgConn().EscapeString(string(b))
		if err != nil {
			_, err = c.Exec(ctx, "SELECT pg_notify($1, $2)", p.channel, string(b))
			return err
		}
		// Without arguments, pgx sends it as a simple query.
		_, err = c.Exec(ctx, "NOTIFY "+pgx.Identifier{p.channel}.Sanitize()+", '"+quoted+"'")
		return err
	})
}

// Subscribe implements live.PubSub: it LISTENs on a connection of its
// own, returns once listening, and keeps listening — reconnecting with
// backoff — until ctx is done. After each (re)subscription it hands fn a
// live.KindSubscribed message; when the connection is lost, a
// live.KindLost message, before it reconnects.
func (p *PubSub) Subscribe(ctx context.Context, fn func(live.Message)) error {
	conn, err := p.listen(ctx)
	if err != nil {
		return err
	}
	p.logger.Info("kiln/pubsub/postgres: listening", "channel", p.channel)
	fn(live.Message{Kind: live.KindSubscribed})
	go p.loop(ctx, conn, fn)
	return nil
}

func (p *PubSub) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, p.listenConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("kiln/pubsub/postgres: connect: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{p.channel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("kiln/pubsub/postgres: listen: %w", err)
	}
	return conn, nil
}

func (p *PubSub) loop(ctx context.Context, conn *pgx.Conn, fn func(live.Message)) {
	link := p.metrics.Link()
	defer func() {
		link.End()
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	backoff := transport.Backoff{}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			link.Lost()
			p.logger.Warn("kiln/pubsub/postgres: connection lost; reconnecting", "err", err)
			fn(live.Message{Kind: live.KindLost})
			conn.Close(context.Background())
			conn = nil
			for conn == nil {
				if !backoff.Wait(ctx) {
					return
				}
				if conn, err = p.listen(ctx); err != nil {
					if errors.Is(err, context.Canceled) {
						return
					}
					p.logger.Warn("kiln/pubsub/postgres: reconnect failed", "err", err)
				}
			}
			backoff.Reset()
			link.Restored()
			p.logger.Info("kiln/pubsub/postgres: resubscribed", "channel", p.channel)
			fn(live.Message{Kind: live.KindSubscribed})
			continue
		}
		msg, err := transport.Decode([]byte(n.Payload))
		if err != nil {
			p.logger.Warn("kiln/pubsub/postgres: message ignored", "err", err)
			continue
		}
		p.metrics.Received(msg.Kind)
		fn(msg)
	}
}
