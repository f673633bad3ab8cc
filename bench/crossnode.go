package main

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/kiln-go/kiln/internal/crossnode"
)

// crossNodeScenario is scenario 5.
type crossNodeScenario struct{}

func (crossNodeScenario) Section() Section {
	return Section{Name: "crossnode", Title: "5. Cross-node disconnect",
		Measures: "Auto sign-out across nodes (internal/crossnode, as kiln's BenchmarkCrossNodeDisconnect): the time from " +
			"the disconnect on node A — the call the token revocation notifier makes once a revocation has committed — to " +
			"the close frame read by a client of node B, whose endpoint hears of it only through the transport between " +
			"nodes: two endpoints of one process sharing a live.InProcess (the baseline), or each with its own connection " +
			"to PostgreSQL (LISTEN/NOTIFY), Redis or NATS. Each socket is left idle 1 ms before its disconnect; the " +
			"transports take turns, a socket each in a random order, so that the machine's load weighs on them alike. " +
			"p50 and p99 are taken over each repeat's samples. The bare link of each server is its floor: a message of the " +
			"same form and size published with the client library alone (go-redis, nats.go, pgx), as kiln's transport " +
			"publishes it, on one connection and received on another, timed from the publish call to its receipt, after " +
			"the same 1 ms pause, the publisher subscribed too, as a node hears its own messages; the bare links take turns " +
			"with the transports' rounds, so that they are measured under the same load. A transport's p50 less its bare " +
			"link's p50 is about what kiln adds to the server's own hop."}
}

// transport is a way between two nodes.
type transport struct {
	name, variable, url string
	// factor bounds its p50 against the in-process one's; 0 for none.
	factor float64
}

func (crossNodeScenario) Run(ctx context.Context, env *Env) ([]Row, error) {
	transports := []transport{
		{name: "in-process"},
		{name: "redis", variable: "KILN_TEST_REDIS_URL", url: env.RedisURL, factor: 3},
		{name: "nats", variable: "KILN_TEST_NATS_URL", url: env.NATSURL, factor: 3},
		{name: "postgres", variable: "KILN_TEST_POSTGRES_URL", url: env.PostgresURL, factor: 5},
	}
	var rows []Row
	var measured []transport
	for _, tr := range transports {
		p50 := Row{ID: "crossnode-p50-" + tr.name, Metric: "p50, " + tr.name, Unit: "µs", Peers: map[string]Figure{}}
		p99 := Row{ID: "crossnode-p99-" + tr.name, Metric: "p99, " + tr.name, Unit: "µs", Peers: map[string]Figure{}}
		var floor, own Row
		if tr.factor > 0 {
			p50.Goals = []Goal{{AtMost: true, Value: tr.factor, Of: "row:crossnode-p50-in-process"}}
			floor = Row{ID: "crossnode-floor-p50-" + tr.name, Metric: "bare link p50, " + tr.name + " (client library alone)",
				Unit: "µs", Peers: map[string]Figure{}}
			own = Row{ID: "crossnode-own-p50-" + tr.name, Metric: "p50 less the bare link's p50, " + tr.name,
				Unit: "µs", Peers: map[string]Figure{}}
		}
		if tr.variable != "" {
			skip, err := env.service(tr.url, tr.variable)
			if err != nil {
				return nil, err
			}
			p50.Skipped, p99.Skipped, floor.Skipped, own.Skipped = skip, skip, skip, skip
		}
		if p50.Skipped == "" {
			measured = append(measured, tr)
		}
		rows = append(rows, p50, p99)
		if floor.ID != "" {
			rows = append(rows, floor, own)
		}
	}
	var links []transport // the measured transports with a server
	for _, tr := range measured {
		if tr.url != "" {
			links = append(links, tr)
		}
	}
	add := func(id string, v float64) {
		for j := range rows {
			if rows[j].ID == id {
				rows[j].Kiln = append(rows[j].Kiln, v)
			}
		}
	}
	for rep := range env.Repeats {
		samples, floors, err := measureCrossNode(ctx, env, measured, links)
		if err != nil {
			return nil, err
		}
		p50s := map[string]time.Duration{}
		for i, tr := range measured {
			a, b := samples[i].Percentile(50), samples[i].Percentile(99)
			env.Progress("crossnode: %s, repeat %d/%d: p50 %s, p99 %s over %d", tr.name, rep+1, env.Repeats,
				a.Round(time.Microsecond), b.Round(time.Microsecond), len(samples[i].Latencies))
			add("crossnode-p50-"+tr.name, micros(a))
			add("crossnode-p99-"+tr.name, micros(b))
			p50s[tr.name] = a
		}
		for i, tr := range links {
			f := floors[i].Percentile(50)
			env.Progress("crossnode: %s bare link, repeat %d/%d: p50 %s over %d", tr.name, rep+1, env.Repeats,
				f.Round(time.Microsecond), len(floors[i].Latencies))
			add("crossnode-floor-p50-"+tr.name, micros(f))
			add("crossnode-own-p50-"+tr.name, micros(p50s[tr.name]-f))
		}
	}
	return rows, nil
}

// measureCrossNode opens a pair of nodes on each transport and the bare
// link of each of links, and measures env.Samples disconnects on each
// pair and as many messages on each bare link, all taking turns.
func measureCrossNode(ctx context.Context, env *Env, transports, links []transport) (pairSamples, floors []crossnode.Samples, err error) {
	pairs := make([]*crossnode.Pair, 0, len(transports))
	var hops []*hop
	defer func() {
		for _, p := range pairs {
			_ = p.Close()
		}
		for _, h := range hops {
			h.close()
		}
	}()
	for _, tr := range transports {
		p, err := crossnode.Open(ctx, tr.url)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", tr.name, err)
		}
		pairs = append(pairs, p)
	}
	var beside []func(context.Context, time.Duration) (time.Duration, error)
	for _, tr := range links {
		h, err := openHop(ctx, tr.name, tr.url)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: bare link: %w", tr.name, err)
		}
		hops = append(hops, h)
		beside = append(beside, func(ctx context.Context, pause time.Duration) (time.Duration, error) {
			time.Sleep(pause)
			d, err := h.send(ctx)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", tr.name, err)
			}
			return d, nil
		})
	}
	s, err := crossnode.Measure(ctx, crossnode.Options{Rounds: env.Samples, Pause: time.Millisecond, Beside: beside}, pairs...)
	if err != nil {
		return nil, nil, err
	}
	return s[:len(pairs)], s[len(pairs):], nil
}

// freshChannel is rawURL, a pub/sub transport's, with a channel of its
// own, so that a run shares nothing with another on the same server.
func freshChannel(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("channel", "kiln_bench_"+randomHex(6))
	u.RawQuery = q.Encode()
	return u.String(), nil
}
