package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/kiln-go/kiln/internal/latency"
	"github.com/kiln-go/kiln/internal/sessionbench"
)

const (
	// clusterNodes is how many nodes the cluster scenario runs.
	clusterNodes = 3
	// clusterConns bounds each node's PostgreSQL connections, as a
	// deployment would, so that the nodes' dials do not exhaust the
	// server's max_connections.
	clusterConns = 10
)

// clusterScenario is the multi-node run: memory and disconnect latency
// with more live sessions than one process may hold open files for.
type clusterScenario struct{}

func (clusterScenario) Section() Section {
	return Section{Name: "cluster", Title: "6. Three nodes",
		Measures: "Memory per session and disconnect latency of kiln with more sessions than one node holds here: three server " +
			"processes (nodes) share a PostgreSQL schema (the token store) and Redis (the transport between nodes), each " +
			"with a third of the sessions, held by a client process of its own. Memory is the three nodes' heap and stacks, " +
			"and resident sets, added up, before and after the dials, divided by the sessions. Every revocation is committed " +
			"on the first node; the revoked sessions take turns over the three nodes, so two in three close through Redis. " +
			"The latency runs from the commit to the client's read of the close frame, as in scenario 2. A node this loaded " +
			"can miss a client's pong and drop its socket; the clients then reopen it, as kiln's client.js does, and the " +
			"drops are counted."}
}

func (clusterScenario) Run(ctx context.Context, env *Env) ([]Row, error) {
	total := env.ClusterSessions
	label := fmt.Sprintf("%s sessions on %d nodes", sessionsText(total), clusterNodes)
	hs := Row{ID: "cluster-heapstack", Metric: "heap+stack per session, " + label, Unit: "KiB", Peers: map[string]Figure{},
		Plot: plotMemHS, Sessions: total, Goals: []Goal{{AtMost: true, Value: 16}}}
	rss := Row{ID: "cluster-rss", Metric: "RSS per session, " + label, Unit: "KiB", Peers: map[string]Figure{},
		Plot: plotMemRSS, Sessions: total, Goals: []Goal{{AtMost: true, Value: 18}}}
	p50 := Row{ID: "cluster-p50", Metric: "disconnect p50, " + label, Unit: "µs", Peers: map[string]Figure{},
		Plot: plotP50, Sessions: total}
	p99 := Row{ID: "cluster-p99", Metric: "disconnect p99, " + label, Unit: "µs", Peers: map[string]Figure{},
		Plot: plotP99, Sessions: total}
	dropped := Row{ID: "cluster-dropped", Metric: "sockets dropped by the server and reopened, " + label,
		Peers: map[string]Figure{}, Goals: []Goal{{AtMost: true, Value: 0}}}
	rows := []*Row{&hs, &rss, &p50, &p99, &dropped}
	result := func() []Row {
		var out []Row
		for _, r := range rows {
			out = append(out, *r)
		}
		return out
	}
	for _, svc := range []struct{ url, variable string }{{env.PostgresURL, "KILN_TEST_POSTGRES_URL"}, {env.RedisURL, "KILN_TEST_REDIS_URL"}} {
		skip, err := env.service(svc.url, svc.variable)
		if err != nil {
			return nil, err
		}
		if skip != "" {
			for _, r := range rows {
				r.Skipped = skip
			}
			return result(), nil
		}
	}
	for rep := range env.Repeats {
		m, lat, err := measureCluster(ctx, env, total)
		if err != nil {
			return nil, err
		}
		a, b := latency.Percentile(lat, 50), latency.Percentile(lat, 99)
		env.Progress("cluster: %d sessions on %d nodes, repeat %d/%d: heap+stack %.1f KiB, RSS %.1f KiB per session; p50 %s, p99 %s over %d; %d dropped and reopened",
			total, clusterNodes, rep+1, env.Repeats, m.heapStack, m.rss, a.Round(time.Microsecond), b.Round(time.Microsecond), len(lat), m.dropped)
		dropped.Kiln = append(dropped.Kiln, float64(m.dropped))
		hs.Kiln = append(hs.Kiln, m.heapStack)
		rss.Kiln = append(rss.Kiln, m.rss)
		p50.Kiln = append(p50.Kiln, micros(a))
		p99.Kiln = append(p99.Kiln, micros(b))
	}
	return result(), nil
}

// clusterMemory is memory per session, in KiB, and how many sockets the
// nodes dropped without a close frame (which the clients reopened).
type clusterMemory struct {
	heapStack, rss float64
	dropped        int
}

// measureCluster starts the nodes on a fresh schema and channel, opens
// total sessions over them, and returns the memory each session added and
// the latencies of env.Samples disconnects.
func measureCluster(ctx context.Context, env *Env, total int) (clusterMemory, []time.Duration, error) {
	var m clusterMemory
	dbURL, drop, err := postgresSchema(ctx, env.PostgresURL)
	if err != nil {
		return m, nil, err
	}
	defer drop()
	redisURL, err := freshChannel(env.RedisURL)
	if err != nil {
		return m, nil, err
	}

	// One node after the other: the first creates the tables.
	nodes := make([]*sessionFixture, clusterNodes)
	defer func() {
		for _, n := range nodes {
			if n != nil {
				n.close()
			}
		}
	}()
	per := total / clusterNodes
	for i := range nodes {
		n := per
		if i == 0 {
			n = total - per*(clusterNodes-1)
		}
		f, err := startSessions(ctx, env, implKiln, n, "-db", dbURL, "-pubsub", redisURL, "-email", "node"+strconv.Itoa(i)+"@example.com",
			"-max-conns", strconv.Itoa(clusterConns))
		if err != nil {
			return m, nil, fmt.Errorf("node %d: %w", i+1, err)
		}
		nodes[i] = f
	}
	env.Progress("cluster: %d nodes up, dialing %d sessions", clusterNodes, total)
	before := make([]sessionbench.Memory, clusterNodes)
	after := make([]sessionbench.Memory, clusterNodes)
	for i, n := range nodes {
		if before[i], err = n.server.memory(); err != nil {
			return m, nil, err
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, clusterNodes)
	for i, n := range nodes {
		wg.Go(func() { errs[i] = n.clients.DialAll(n.tokens) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return m, nil, err
	}
	for i, n := range nodes {
		if after[i], err = n.server.memory(); err != nil {
			return m, nil, err
		}
	}
	var sum sessionbench.Memory
	var base sessionbench.Memory
	for i := range nodes {
		sum.Heap += after[i].Heap
		sum.Stack += after[i].Stack
		sum.RSS += after[i].RSS
		base.Heap += before[i].Heap
		base.Stack += before[i].Stack
		base.RSS += before[i].RSS
	}
	heap, stack, rss := sessionbench.PerSession(base, sum, total)
	m = clusterMemory{heapStack: (heap + stack) / 1024, rss: rss / 1024}

	lat := make([]time.Duration, 0, env.Samples)
	for i := range env.Samples {
		if err := ctx.Err(); err != nil {
			return m, nil, err
		}
		n := nodes[i%clusterNodes]
		d, err := n.revokeOne(nodes[0].server, (i/clusterNodes)*len(n.tokens)/max(env.Samples/clusterNodes, 1)%len(n.tokens))
		if err != nil {
			return m, nil, err
		}
		lat = append(lat, d)
	}
	for _, n := range nodes {
		m.dropped += n.clients.Reopened
	}
	return m, lat, nil
}
