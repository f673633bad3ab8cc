// Package redis is a live.PubSub on Redis pub/sub (go-redis).
//
// Importing it registers the schemes redis and rediss with
// pubsub.FromURL:
//
//	import _ "github.com/kiln-go/kiln/live/pubsub/redis"
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/live/pubsub"
	"github.com/kiln-go/kiln/live/pubsub/internal/transport"
)

func init() {
	pubsub.Register("redis", open)
	pubsub.Register("rediss", open)
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

// DefaultChannel is the channel the nodes subscribe to.
const DefaultChannel = "kiln:live"

// PubSub is the Redis transport. It is a prometheus.Collector: register
// it to export its metrics, kiln_pubsub_* with transport="redis" (see
// docs/operations.md). It is connected while every subscription receives.
type PubSub struct {
	client  *goredis.Client
	channel string
	logger  *slog.Logger
	closed  atomic.Bool
	metrics *transport.Metrics
}

var (
	_ live.Prompter        = (*PubSub)(nil)
	_ live.PayloadLimiter  = (*PubSub)(nil)
	_ prometheus.Collector = (*PubSub)(nil)
)

// Option configures the transport.
type Option func(*PubSub)

// WithChannel sets the channel. Default: DefaultChannel.
func WithChannel(name string) Option { return func(p *PubSub) { p.channel = name } }

// WithLogger sets the logger. Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(p *PubSub) { p.logger = l } }

// New connects to Redis at url (redis://host:6379/0).
func New(ctx context.Context, url string, opts ...Option) (*PubSub, error) {
	o, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("kiln/pubsub/redis: %w", err)
	}
	// A publish gives up when its ctx does (the live endpoint bounds its
	// announcements and fences with live.EchoTimeout), not only after the
	// client's own timeouts and retries.
	o.ContextTimeoutEnabled = true
	p := &PubSub{client: goredis.NewClient(o), channel: DefaultChannel, logger: slog.Default(), metrics: transport.NewMetrics("redis")}
	for _, opt := range opts {
		opt(p)
	}
	if err := p.client.Ping(ctx).Err(); err != nil {
		p.client.Close()
		return nil, fmt.Errorf("kiln/pubsub/redis: connect: %w", err)
	}
	return p, nil
}

// Client is the underlying client.
func (p *PubSub) Client() *goredis.Client { return p.client }

// Close implements io.Closer: it closes the client, and its subscriptions
// end. A second call returns nil.
func (p *PubSub) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	p.metrics.Closed()
	return p.client.Close()
}

// Describe implements prometheus.Collector.
func (p *PubSub) Describe(ch chan<- *prometheus.Desc) { p.metrics.Describe(ch) }

// Collect implements prometheus.Collector.
func (p *PubSub) Collect(ch chan<- prometheus.Metric) { p.metrics.Collect(ch) }

// Prompt implements live.Prompter: Redis pushes each message to every
// subscribed connection at once, and a lost connection is handed as
// live.KindLost.
func (p *PubSub) Prompt() bool { return true }

// PayloadLimit implements live.PayloadLimiter: Redis takes messages of
// up to 512 MB, no limit that matters (0).
func (p *PubSub) PayloadLimit() int { return 0 }

// Publish implements live.PubSub.
func (p *PubSub) Publish(ctx context.Context, msg live.Message) error {
	err := p.publish(ctx, msg)
	p.metrics.Published(msg.Kind, err)
	return err
}

func (p *PubSub) publish(ctx context.Context, msg live.Message) error {
	b, err := transport.Encode(msg, 0)
	if err != nil {
		return err
	}
	return p.client.Publish(ctx, p.channel, b).Err()
}

// Subscribe implements live.PubSub: it returns once subscribed and keeps
// receiving until ctx is done. go-redis reconnects and resubscribes by
// itself; each (re)subscription hands fn a live.KindSubscribed message,
// and a lost connection a live.KindLost message, before the next
// (re)subscription.
func (p *PubSub) Subscribe(ctx context.Context, fn func(live.Message)) error {
	ps := p.client.Subscribe(ctx, p.channel)
	if _, err := ps.Receive(ctx); err != nil { // the subscription confirmation
		ps.Close()
		return fmt.Errorf("kiln/pubsub/redis: subscribe: %w", err)
	}
	p.logger.Info("kiln/pubsub/redis: subscribed", "channel", p.channel)
	fn(live.Message{Kind: live.KindSubscribed})
	// Receive does not return when ctx is done (it waits on the socket
	// with no deadline): closing the subscription unblocks it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	go p.loop(ctx, ps, fn, stop)
	return nil
}

func (p *PubSub) loop(ctx context.Context, ps *goredis.PubSub, fn func(live.Message), stop func() bool) {
	link := p.metrics.Link()
	defer func() {
		link.End()
		stop()
		_ = ps.Close()
	}()
	backoff := transport.Backoff{}
	for {
		m, err := ps.Receive(ctx)
		if ctx.Err() != nil {
			return // nothing more for a subscriber that left
		}
		if err != nil {
			if errors.Is(err, goredis.ErrClosed) || p.closed.Load() {
				return
			}
			if link.Lost() {
				p.logger.Warn("kiln/pubsub/redis: connection lost; reconnecting", "err", err)
				fn(live.Message{Kind: live.KindLost})
			}
			if !backoff.Wait(ctx) {
				return
			}
			continue
		}
		switch m := m.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				backoff.Reset()
				link.Restored()
				p.logger.Info("kiln/pubsub/redis: resubscribed", "channel", p.channel)
				fn(live.Message{Kind: live.KindSubscribed})
			}
		case *goredis.Message:
			msg, err := transport.Decode([]byte(m.Payload))
			if err != nil {
				p.logger.Warn("kiln/pubsub/redis: message ignored", "err", err)
				continue
			}
			p.metrics.Received(msg.Kind)
			fn(msg)
		}
	}
}
