package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kiln-go/kiln/internal/latency"
	"github.com/kiln-go/kiln/internal/sessionbench"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/live/pubsub"
	_ "github.com/kiln-go/kiln/live/pubsub/nats"     // nats:// for pubsub.FromURL
	_ "github.com/kiln-go/kiln/live/pubsub/postgres" // postgres://
	_ "github.com/kiln-go/kiln/live/pubsub/redis"    // redis://
)

// crossNodeScenario is scenario 5.
type crossNodeScenario struct{}

func (crossNodeScenario) Section() Section {
	return Section{Name: "crossnode", Title: "5. Cross-node disconnect",
		Measures: "Auto sign-out across nodes: the time from a revocation's commit on node A to the close frame read by a " +
			"client of node B, whose endpoint hears of it only through the transport between nodes: two endpoints of one " +
			"process sharing a live.InProcess (the baseline), or each with its own connection to PostgreSQL (LISTEN/NOTIFY), " +
			"Redis or NATS. Node B authenticates with node A's token store (SQLite, in memory). One socket is open at a time; " +
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
			if skip != "" {
				p50.Skipped, p99.Skipped = skip, skip
				rows = append(rows, p50, p99)
				continue
			}
		}
		for rep := range env.Repeats {
			lat, err := measureCrossNode(ctx, env, tr)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", tr.name, err)
			}
			a, b := latency.Percentile(lat, 50), latency.Percentile(lat, 99)
			env.Progress("crossnode: %s, repeat %d/%d: p50 %s, p99 %s over %d", tr.name, rep+1, env.Repeats,
				a.Round(time.Microsecond), b.Round(time.Microsecond), len(lat))
			p50.Kiln = append(p50.Kiln, micros(a))
			p99.Kiln = append(p99.Kiln, micros(b))
		}
		rows = append(rows, p50, p99)
	}
	return rows, nil
}

// openPair opens the two nodes' connections to the transport, on a
// channel of their own.
func openPair(ctx context.Context, tr transport) (a, b live.PubSub, err error) {
	if tr.url == "" {
		ps := &live.InProcess{}
		return ps, ps, nil
	}
	u, err := url.Parse(tr.url)
	if err != nil {
		return nil, nil, err
	}
	q := u.Query()
	q.Set("channel", "kiln_bench_"+randomHex(6))
	u.RawQuery = q.Encode()
	if a, err = pubsub.FromURL(ctx, u.String(), sessionbench.Quiet); err != nil {
		return nil, nil, err
	}
	if b, err = pubsub.FromURL(ctx, u.String(), sessionbench.Quiet); err != nil {
		_ = a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

// measureCrossNode starts node A (a sessionbench.Server) and node B (an
// endpoint authenticating with A's glue, not attached to A's store) and
// returns the latencies of env.Samples revocations on A of sockets of B.
func measureCrossNode(ctx context.Context, env *Env, tr transport) ([]time.Duration, error) {
	psA, psB, err := openPair(ctx, tr)
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = psA.Close()
		_ = psB.Close()
	}()
	a, err := sessionbench.NewServer(ctx, sessionbench.Kiln, sessionbench.Options{PubSub: psA, Sessions: 16})
	if err != nil {
		return nil, err
	}
	defer a.Close()
	b, err := live.New(live.WithAuthenticator(a.Web.LiveAuthenticator()), live.WithPubSub(psB), live.WithLogger(sessionbench.Quiet))
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /live/websocket", b)
	srv := httptest.NewServer(mux)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Shutdown(sctx)
		srv.Close()
	}()
	// Let both subscriptions settle: a first revocation must reach B.
	if _, err := crossNodeOnce(ctx, a, sessionbench.WebSocketURL(srv.URL)); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	lat := make([]time.Duration, 0, env.Samples)
	for range env.Samples {
		d, err := crossNodeOnce(ctx, a, sessionbench.WebSocketURL(srv.URL))
		if err != nil {
			return nil, err
		}
		lat = append(lat, d)
	}
	return lat, nil
}

// crossNodeOnce opens a socket on node B with a new token of A's, revokes
// the token on A and returns the time from the commit to the close frame.
func crossNodeOnce(ctx context.Context, a *sessionbench.Server, wsURL string) (time.Duration, error) {
	tokens, err := a.Issue(ctx, 1)
	if err != nil {
		return 0, err
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, _, err := websocket.DefaultDialer.DialContext(dctx, wsURL, http.Header{"Authorization": {"Bearer " + tokens[0]}})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if err := sessionbench.KilnProtocol.Handshake(conn); err != nil {
		return 0, err
	}
	type closed struct {
		at  time.Time
		err error
	}
	done := make(chan closed, 1)
	go func() {
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				done <- closed{time.Now(), err}
				return
			}
		}
	}()
	committed, err := a.Revoke(ctx, tokens[0])
	if err != nil {
		return 0, err
	}
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case c := <-done:
		var ce *websocket.CloseError
		if !errors.As(c.err, &ce) || ce.Code != live.CloseSignedOut {
			return 0, fmt.Errorf("the socket closed with %v, want %d", c.err, live.CloseSignedOut)
		}
		return c.at.Sub(committed), nil
	case <-timer.C:
		return 0, errors.New("no close frame within 30s of the revocation")
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
