// Package nats is a live.PubSub on NATS (nats.go).
//
// Importing it registers the schemes nats and tls with pubsub.FromURL:
//
//	import _ "github.com/kiln-go/kiln/live/pubsub/nats"
package nats

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/live/pubsub"
	"github.com/kiln-go/kiln/live/pubsub/internal/transport"
)

func init() {
	pubsub.Register("nats", open)
	pubsub.Register("tls", open)
}

// open is the transport's pubsub.OpenFunc.
func open(ctx context.Context, url string, o pubsub.Options) (live.PubSub, error) {
	opts := []Option{WithLogger(o.Logger)}
	if o.Channel != "" {
		opts = append(opts, WithSubject(o.Channel))
	}
	p, err := New(ctx, url, opts...)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// DefaultSubject is the subject the nodes subscribe to.
const DefaultSubject = "kiln.live"

// subscribeTimeout bounds how long Subscribe waits for the server to
// confirm the subscription when ctx sets no earlier deadline.
const subscribeTimeout = 10 * time.Second

// PubSub is the NATS transport. nats.go reconnects and resubscribes by
// itself; the transport logs it and tells its subscribers: live.KindLost
// when the connection is lost, live.KindSubscribed once it is back. It is a
// prometheus.Collector: register it to export its metrics, kiln_pubsub_*
// with transport="nats" (see docs/operations.md). It is connected while
// its one connection is.
type PubSub struct {
	conn    *natsgo.Conn
	subject string
	logger  *slog.Logger
	metrics *transport.Metrics
	link    *transport.Link // the connection

	mu     sync.Mutex
	subs   map[int]subscriber // told of each reconnection
	nextID int
}

var (
	_ live.Prompter        = (*PubSub)(nil)
	_ live.PayloadLimiter  = (*PubSub)(nil)
	_ prometheus.Collector = (*PubSub)(nil)
)

// Option configures the transport.
type Option func(*PubSub)

// WithSubject sets the subject. Default: DefaultSubject.
func WithSubject(name string) Option { return func(p *PubSub) { p.subject = name } }

// WithLogger sets the logger. Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(p *PubSub) { p.logger = l } }

// New connects to NATS at url (nats://host:4222).
func New(_ context.Context, url string, opts ...Option) (*PubSub, error) {
	p := &PubSub{subject: DefaultSubject, logger: slog.Default(), metrics: transport.NewMetrics("nats")}
	p.link = p.metrics.Link()
	for _, o := range opts {
		o(p)
	}
	conn, err := natsgo.Connect(url,
		natsgo.Name("kiln live"),
		// Every write goes to the socket at once, in the goroutine that
		// makes it: Publish returns once its message has left the node,
		// not when nats.go's flusher goroutine gets to run (see Publish).
		natsgo.WriteBufferSize(writeAtOnce),
		natsgo.MaxReconnects(-1),
		natsgo.ReconnectWait(250*time.Millisecond),
		natsgo.ReconnectJitter(250*time.Millisecond, time.Second),
		natsgo.DisconnectErrHandler(func(_ *natsgo.Conn, err error) {
			// err is nil when the connection was closed or made to
			// reconnect on purpose.
			p.link.Lost()
			if err != nil {
				p.logger.Warn("kiln/pubsub/nats: connection lost; reconnecting", "err", err)
			}
			p.tell(live.KindLost)
		}),
		natsgo.ReconnectHandler(func(c *natsgo.Conn) {
			// The subscriptions were sent again; a round trip makes sure the
			// server has them before the endpoints sweep, so that nothing
			// published after the sweep is missed.
			if err := c.FlushTimeout(subscribeTimeout); err != nil {
				p.logger.Warn("kiln/pubsub/nats: resubscription not confirmed", "err", err)
			}
			p.link.Restored()
			p.logger.Info("kiln/pubsub/nats: reconnected and resubscribed", "subject", p.subject)
			p.tell(live.KindSubscribed)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("kiln/pubsub/nats: connect: %w", err)
	}
	p.conn = conn
	return p, nil
}

// writeAtOnce is the connection's write buffer threshold: a message as
// small as one byte is written to the socket when published.
const writeAtOnce = 1

// subscriber is a Subscribe call's ctx and func.
type subscriber struct {
	ctx context.Context
	fn  func(live.Message)
}

// tell hands every subscriber a local message of kind (live.KindLost,
// live.KindSubscribed), under the lock, so that each subscriber gets them
// in the order they happened.
func (p *PubSub) tell(kind string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.subs {
		// A subscriber whose ctx has just ended may not be removed yet
		// (context.AfterFunc runs on its own goroutine).
		if s.ctx.Err() == nil {
			s.fn(live.Message{Kind: kind})
		}
	}
}

// Conn is the underlying connection.
func (p *PubSub) Conn() *natsgo.Conn { return p.conn }

// Close implements io.Closer: it closes the connection, and the
// subscriptions end. It returns nil, a second call included.
func (p *PubSub) Close() error {
	p.metrics.Closed()
	p.conn.Close()
	return nil
}

// Describe implements prometheus.Collector.
func (p *PubSub) Describe(ch chan<- *prometheus.Desc) { p.metrics.Describe(ch) }

// Collect implements prometheus.Collector.
func (p *PubSub) Collect(ch chan<- prometheus.Metric) { p.metrics.Collect(ch) }

// Prompt implements live.Prompter: the server pushes each message to
// every subscribed connection at once, and a lost connection is handed as
// live.KindLost.
func (p *PubSub) Prompt() bool { return true }

// PayloadLimit implements live.PayloadLimiter: the server's max_payload.
func (p *PubSub) PayloadLimit() int { return int(p.conn.MaxPayload()) }

// Publish implements live.PubSub. It returns once the message is written
// to the connection's socket (without waiting for the server's answer, as
// a round trip of Flush would), so that a revocation has left the node
// when the request that made it answers; nats.go would otherwise leave it
// in a buffer for its flusher goroutine. While the connection is being
// re-established, nats.go buffers what is published and sends it once
// reconnected.
func (p *PubSub) Publish(_ context.Context, msg live.Message) error {
	err := p.publish(msg)
	p.metrics.Published(msg.Kind, err)
	return err
}

func (p *PubSub) publish(msg live.Message) error {
	b, err := transport.Encode(msg, int(p.conn.MaxPayload()))
	if err != nil {
		return err
	}
	return p.conn.Publish(p.subject, b)
}

// Subscribe implements live.PubSub: it returns once the server has the
// subscription, and unsubscribes when ctx is done.
func (p *PubSub) Subscribe(ctx context.Context, fn func(live.Message)) error {
	sub, err := p.conn.Subscribe(p.subject, func(m *natsgo.Msg) {
		msg, err := transport.Decode(m.Data)
		if err != nil {
			p.logger.Warn("kiln/pubsub/nats: message ignored", "err", err)
			return
		}
		p.metrics.Received(msg.Kind)
		fn(msg)
	})
	if err != nil {
		return fmt.Errorf("kiln/pubsub/nats: subscribe: %w", err)
	}
	// FlushWithContext needs a deadline, and the endpoint's ctx (which
	// lives as long as the endpoint) has none.
	fctx, cancel := context.WithTimeout(ctx, subscribeTimeout)
	defer cancel()
	if err := p.conn.FlushWithContext(fctx); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("kiln/pubsub/nats: subscribe: %w", err)
	}
	p.mu.Lock()
	if p.subs == nil {
		p.subs = map[int]subscriber{}
	}
	id := p.nextID
	p.nextID++
	p.subs[id] = subscriber{ctx: ctx, fn: fn}
	// Told under the lock the handlers tell under: a loss from now on is
	// told after this. A connection lost already leaves it to the
	// reconnection's live.KindSubscribed.
	if p.conn.IsConnected() {
		fn(live.Message{Kind: live.KindSubscribed})
	}
	p.mu.Unlock()
	p.logger.Info("kiln/pubsub/nats: subscribed", "subject", p.subject)
	context.AfterFunc(ctx, func() {
		_ = sub.Unsubscribe()
		// A subscriber that left is not told of reconnections any more.
		p.mu.Lock()
		delete(p.subs, id)
		p.mu.Unlock()
	})
	return nil
}
