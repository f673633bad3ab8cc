package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	goredis "github.com/redis/go-redis/v9"
)

// A hop is a server's bare pub/sub link, with its client library alone:
// a publisher and a subscriber, each with a connection of its own, as
// two nodes have, the publisher subscribed too, as a node hears its own
// messages. It is the floor under a cross-node disconnect on that server:
// what no code of kiln's could take away.
type hop struct {
	publish func(ctx context.Context) error
	got     chan time.Time // when the subscriber received a message
	close   func()
}

// floorMessage has the form and size of the cross-node rounds' messages
// (a disconnect of one socket id of internal/crossnode).
var floorMessage = `{"kind":"disconnect","socket_id":"crossnode:0123456789ab:1","reason":"signed_out"}`

// openHop opens the bare link of the transport named name at rawURL, on
// a channel of its own, and sends one message through it untimed, so
// that no connection is dialed nor anything prepared in a timed one.
func openHop(ctx context.Context, name, rawURL string) (*hop, error) {
	h, err := dialHop(ctx, name, rawURL)
	if err != nil {
		return nil, err
	}
	if _, err := h.send(ctx); err != nil {
		h.close()
		return nil, err
	}
	return h, nil
}

// send publishes a message and returns how long it took to arrive.
func (h *hop) send(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	if err := h.publish(ctx); err != nil {
		return 0, fmt.Errorf("bare publish: %w", err)
	}
	select {
	case at := <-h.got:
		return at.Sub(start), nil
	case <-time.After(10 * time.Second):
		return 0, errors.New("a bare message did not arrive within 10s")
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// withoutChannel is rawURL without the channel parameter kiln's
// transports read, which the client libraries refuse.
func withoutChannel(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Del("channel")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// dialHop connects the publisher and the subscriber, and subscribes the
// publisher too, as kiln's transport of that name does; what the
// publisher hears is dropped.
func dialHop(ctx context.Context, name, rawURL string) (*hop, error) {
	rawURL, err := withoutChannel(rawURL)
	if err != nil {
		return nil, err
	}
	channel := "kiln_bench_floor_" + randomHex(6)
	h := &hop{got: make(chan time.Time, 1)}
	// What is open so far, closed in reverse by h.close, also on failure.
	var closers []func()
	h.close = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	fail := func(err error) (*hop, error) {
		h.close()
		return nil, err
	}
	arrived := func() {
		select {
		case h.got <- time.Now():
		default: // a message nobody waits for
		}
	}
	switch name {
	case "redis":
		o, err := goredis.ParseURL(rawURL)
		if err != nil {
			return nil, err
		}
		o.ContextTimeoutEnabled = true // as kiln's transport has it
		pub, sub := goredis.NewClient(o), goredis.NewClient(o)
		closers = append(closers, func() { sub.Close() }, func() { pub.Close() })
		for _, c := range []struct {
			client *goredis.Client
			heard  func()
		}{{pub, func() {}}, {sub, arrived}} {
			ps := c.client.Subscribe(ctx, channel)
			closers = append(closers, func() { ps.Close() })
			if _, err := ps.Receive(ctx); err != nil {
				return fail(err)
			}
			go func() {
				for {
					m, err := ps.Receive(context.Background())
					if err != nil {
						return
					}
					if _, ok := m.(*goredis.Message); ok {
						c.heard()
					}
				}
			}()
		}
		h.publish = func(ctx context.Context) error { return pub.Publish(ctx, channel, floorMessage).Err() }
	case "nats":
		// As kiln's transport does, every write goes to the socket at
		// once: the message has left when Publish returns.
		pub, err := nats.Connect(rawURL, nats.WriteBufferSize(1))
		if err != nil {
			return nil, err
		}
		closers = append(closers, pub.Close)
		sub, err := nats.Connect(rawURL)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, sub.Close)
		if _, err := pub.Subscribe(channel, func(*nats.Msg) {}); err != nil {
			return fail(err)
		}
		if _, err := sub.Subscribe(channel, func(*nats.Msg) { arrived() }); err != nil {
			return fail(err)
		}
		for _, c := range []*nats.Conn{pub, sub} {
			if err := c.Flush(); err != nil {
				return fail(err)
			}
		}
		h.publish = func(context.Context) error { return pub.Publish(channel, []byte(floorMessage)) }
	case "postgres":
		pub, err := pgx.Connect(ctx, rawURL)
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { pub.Close(context.Background()) })
		// As kiln's transport does: a NOTIFY statement with the message
		// quoted in it, sent as a simple query.
		quoted, err := pub.PgConn().EscapeString(floorMessage)
		if err != nil {
			return fail(err)
		}
		notify := "NOTIFY " + pgx.Identifier{channel}.Sanitize() + ", '" + quoted + "'"
		// Each node listens on a connection of its own.
		for _, heard := range []func(){func() {}, arrived} {
			sub, err := pgx.Connect(ctx, rawURL)
			if err != nil {
				return fail(err)
			}
			closers = append(closers, func() { sub.Close(context.Background()) })
			if _, err := sub.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
				return fail(err)
			}
			listening, stop := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					if _, err := sub.WaitForNotification(listening); err != nil {
						return
					}
					heard()
				}
			}()
			closers = append(closers, func() { stop(); <-done })
		}
		h.publish = func(ctx context.Context) error {
			_, err := pub.Exec(ctx, notify)
			return err
		}
	default:
		return nil, fmt.Errorf("no bare link for transport %q", name)
	}
	return h, nil
}
