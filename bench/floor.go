package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	goredis "github.com/redis/go-redis/v9"
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

// floorMessage is about the size of a sign-out's disconnect message.
var floorMessage = `{"kind":"disconnect","socket_id":"user?id=9cdafac3-46ea-404a-bb67-b0f40009d274#mpKSeLAxZhtk96YxSivhew",` +
	`"reason":"signed_out","jti":"mpKSeLAxZhtk96YxSivhew","expires_at":1900000000}`

// openHop opens the bare link of the transport named name at rawURL, on
// a channel of its own.
func openHop(ctx context.Context, name, rawURL string) (*hop, error) {
	channel := "kiln_bench_floor_" + randomHex(6)
	h := &hop{got: make(chan time.Time, 1)}
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
		pub, sub := goredis.NewClient(o), goredis.NewClient(o)
		ps := sub.Subscribe(ctx, channel)
		if _, err := ps.Receive(ctx); err != nil {
			pub.Close()
			sub.Close()
			return nil, err
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
		h.close = func() { ps.Close(); pub.Close(); sub.Close() }
	case "nats":
		pub, err := nats.Connect(rawURL)
		if err != nil {
			return nil, err
		}
		sub, err := nats.Connect(rawURL)
		if err != nil {
			pub.Close()
			return nil, err
		}
		if _, err := sub.Subscribe(channel, func(*nats.Msg) { arrived() }); err != nil {
			pub.Close()
			sub.Close()
			return nil, err
		}
		if err := sub.Flush(); err != nil {
			pub.Close()
			sub.Close()
			return nil, err
		}
		// As kiln's transport does, the message is written to the
		// socket before Publish returns.
		h.publish = func(context.Context) error {
			if err := pub.Publish(channel, []byte(floorMessage)); err != nil {
				return err
			}
			return pub.FlushTimeout(10 * time.Second)
		}
		h.close = func() { pub.Close(); sub.Close() }
	case "postgres":
		pub, err := pgx.Connect(ctx, rawURL)
		if err != nil {
			return nil, err
		}
		sub, err := pgx.Connect(ctx, rawURL)
		if err != nil {
			pub.Close(ctx)
			return nil, err
		}
		if _, err := sub.Exec(ctx, "LISTEN "+channel); err != nil {
			pub.Close(ctx)
			sub.Close(ctx)
			return nil, err
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
		h.publish = func(ctx context.Context) error {
			_, err := pub.Exec(ctx, "SELECT pg_notify($1, $2)", channel, floorMessage)
			return err
		}
		h.close = func() {
			stop()
			<-done
			pub.Close(context.Background())
			sub.Close(context.Background())
		}
	default:
		return nil, fmt.Errorf("no bare link for transport %q", name)
	}
	return h, nil
}

// measureFloors times rounds messages on each transport's bare link,
// from the publish call to the subscriber's receipt, each sent after a
// pause as the cross-node rounds are; the links take turns in a random
// order every round, as crossnode.Measure's pairs do. It returns each
// link's latencies, sorted.
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
	order := make([]int, len(hops))
	for i := range order {
		order[i] = i
	}
	for range rounds {
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			time.Sleep(pause)
			start := time.Now()
			if err := hops[i].publish(ctx); err != nil {
				return nil, fmt.Errorf("%s: bare publish: %w", transports[i].name, err)
			}
			select {
			case at := <-hops[i].got:
				samples[i] = append(samples[i], at.Sub(start))
			case <-time.After(10 * time.Second):
				return nil, fmt.Errorf("%s: a bare message did not arrive within 10s", transports[i].name)
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	for _, s := range samples {
		slices.Sort(s)
	}
	return samples, nil
}
