package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	goredis "github.com/redis/go-redis/v9"

	"github.com/kiln-go/kiln/internal/crossnode"
)

// A hop is a server's bare pub/sub link, with its client library alone:
// a publisher and a subscriber, each with a connection of its own, as
// two nodes have. It is the floor under a cross-node disconnect on that
// server: what no code of kiln's could take away.
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

// dialHop connects the publisher and the subscriber, as kiln's transport
// of that name does.
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
		ps := sub.Subscribe(ctx, channel)
		closers = append(closers, func() { sub.Close() }, func() { pub.Close() }, func() { ps.Close() })
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
					arrived()
				}
			}
		}()
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
		if _, err := sub.Subscribe(channel, func(*nats.Msg) { arrived() }); err != nil {
			return fail(err)
		}
		if err := sub.Flush(); err != nil {
			return fail(err)
		}
		h.publish = func(context.Context) error { return pub.Publish(channel, []byte(floorMessage)) }
	case "postgres":
		pub, err := pgx.Connect(ctx, rawURL)
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { pub.Close(context.Background()) })
		sub, err := pgx.Connect(ctx, rawURL)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, func() { sub.Close(context.Background()) })
		// As kiln's transport does: a NOTIFY statement with the message
		// quoted in it, sent as a simple query.
		quoted, err := pub.PgConn().EscapeString(floorMessage)
		if err != nil {
			return fail(err)
		}
		notify := "NOTIFY " + pgx.Identifier{channel}.Sanitize() + ", '" + quoted + "'"
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
				arrived()
			}
		}()
		closers = append(closers, func() { stop(); <-done })
		h.publish = func(ctx context.Context) error {
			_, err := pub.Exec(ctx, notify)
			return err
		}
	default:
		return nil, fmt.Errorf("no bare link for transport %q", name)
	}
	return h, nil
}

// measureFloors times rounds messages on each transport's bare link,
// from the publish call to the subscriber's receipt, each sent after a
// pause as the cross-node rounds are; the links take turns in a random
// order every round (crossnode.TakeTurns), as crossnode.Measure's pairs
// do. It returns each link's latencies, sorted.
func measureFloors(ctx context.Context, transports []transport, rounds int, pause time.Duration) ([][]time.Duration, error) {
	hops := make([]*hop, len(transports))
	defer func() {
		for _, h := range hops {
			if h != nil {
				h.close()
			}
		}
	}()
	for i, tr := range transports {
		h, err := openHop(ctx, tr.name, tr.url)
		if err != nil {
			return nil, fmt.Errorf("%s: bare link: %w", tr.name, err)
		}
		hops[i] = h
	}
	samples := make([][]time.Duration, len(hops))
	if err := crossnode.TakeTurns(rounds, len(hops), func(i int) error {
		time.Sleep(pause)
		d, err := hops[i].send(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", transports[i].name, err)
		}
		samples[i] = append(samples[i], d)
		return nil
	}); err != nil {
		return nil, err
	}
	for _, s := range samples {
		slices.Sort(s)
	}
	return samples, nil
}
