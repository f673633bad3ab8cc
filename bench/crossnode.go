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
			"p50 and p99 are taken over each repeat's samples."}
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
		if tr.factor > 0 {
			p50.Goals = []Goal{{AtMost: true, Value: tr.factor, Of: "row:crossnode-p50-in-process"}}
		}
		if tr.variable != "" {
			skip, err := env.service(tr.url, tr.variable)
			if err != nil {
				return nil, err
			}
			p50.Skipped, p99.Skipped = skip, skip
		}
		if p50.Skipped == "" {
			measured = append(measured, tr)
		}
		rows = append(rows, p50, p99)
	}
	for rep := range env.Repeats {
		samples, err := measureCrossNode(ctx, env, measured)
		if err != nil {
			return nil, err
		}
		for i, tr := range measured {
			a, b := samples[i].Percentile(50), samples[i].Percentile(99)
			env.Progress("crossnode: %s, repeat %d/%d: p50 %s, p99 %s over %d", tr.name, rep+1, env.Repeats,
				a.Round(time.Microsecond), b.Round(time.Microsecond), len(samples[i].Latencies))
			for j := range rows {
				switch rows[j].ID {
				case "crossnode-p50-" + tr.name:
					rows[j].Kiln = append(rows[j].Kiln, micros(a))
				case "crossnode-p99-" + tr.name:
					rows[j].Kiln = append(rows[j].Kiln, micros(b))
				}
			}
		}
	}
	return rows, nil
}

// measureCrossNode opens a pair of nodes on each transport and measures
// env.Samples disconnects on each, the pairs taking turns.
func measureCrossNode(ctx context.Context, env *Env, transports []transport) ([]crossnode.Samples, error) {
	pairs := make([]*crossnode.Pair, 0, len(transports))
	defer func() {
		for _, p := range pairs {
			_ = p.Close()
		}
	}()
	for _, tr := range transports {
		p, err := crossnode.Open(ctx, tr.url)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tr.name, err)
		}
		pairs = append(pairs, p)
	}
	return crossnode.Measure(ctx, crossnode.Options{Rounds: env.Samples, Pause: time.Millisecond}, pairs...)
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
