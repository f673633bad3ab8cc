package live_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/internal/metricstest"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/revocation"
)

// waitMetrics waits until every metric in want has its value, and
// returns the values then. A close frame is observed in the disconnect
// histogram once it is written, which the client may see first.
func waitMetrics(t *testing.T, ctx context.Context, reg prometheus.Gatherer, want map[string]float64) map[string]float64 {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		got := metricstest.Values(t, reg)
		var diff []string
		for name, v := range want {
			if got[name] != v {
				diff = append(diff, fmt.Sprintf("%s = %v, want %v", name, got[name], v))
			}
		}
		if len(diff) == 0 {
			return got
		}
		select {
		case <-ctx.Done():
			sort.Strings(diff)
			t.Fatalf("metrics:\n%s", strings.Join(diff, "\n"))
		case <-tick.C:
		}
	}
}

// The live metrics count every way a socket ends: a revocation (4001 and
// its reason, with its disconnect latency), a client's own close, and the
// safety net's sweep. Every socket is counted opened and closed once, and
// the gauge of open sockets comes back to 0.
func TestMetricsCountOpensClosesAndSweeps(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := sweepHarness(t, "sqlite", time.Hour, nil, livetest.Options{Checker: livetest.SessionChecker, EndpointOptions: []live.Option{live.WithMetrics(reg)}})
	ctx := testCtx(t, 30*time.Second)

	ada := h.Register(t, "ada@example.com")
	tabs := []*livetest.Client{h.MustDial(t, ctx, livetest.Bearer(ada.Token)), h.MustDial(t, ctx, livetest.Bearer(ada.Token))}
	bob := h.MustDial(t, ctx, livetest.Bearer(h.Register(t, "bob@example.com").Token))
	carol := sweepOpen(t, ctx, h, h.Register(t, "carol@example.com").Record, 1)[0]
	waitMetrics(t, ctx, reg, map[string]float64{"kiln_live_sockets": 4, "kiln_live_opened_total": 4})

	// A revocation closes both of ada's sockets.
	if err := h.Auth.Tokens().Revoke(ctx, ada.Token, revocation.SignedOut); err != nil {
		t.Fatal(err)
	}
	for _, c := range tabs {
		sweepExpectClose(t, ctx, c, "signed out")
	}
	// bob closes his own socket.
	if err := bob.Conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Read(ctx); !errors.As(err, new(*websocket.CloseError)) {
		t.Fatalf("after bob's close: %v, want the server's close reply", err)
	}
	// carol's token is revoked behind the endpoint's back: the sweep
	// closes her socket.
	sweepRevokeInDB(t, ctx, h, carol.jti)
	if closed, err := h.Endpoint.Sweep(ctx); err != nil || closed != 1 {
		t.Fatalf("Sweep closed %d (%v), want 1", closed, err)
	}
	sweepExpectClose(t, ctx, carol.client, "revoked")

	got := waitMetrics(t, ctx, reg, map[string]float64{
		"kiln_live_sockets":      0,
		"kiln_live_opened_total": 4,
		`kiln_live_closed_total{code="4001",reason="signed out"}`:                       2,
		`kiln_live_closed_total{code="none",reason="client closed or connection lost"}`: 1,
		`kiln_live_closed_total{code="4001",reason="revoked"}`:                          1,
		"kiln_live_disconnect_seconds_count":                                            2,
		"kiln_live_swept_total":                                                         1,
	})
	if got["kiln_live_sweeps_total"] < 1 {
		t.Errorf("kiln_live_sweeps_total = %v, want at least 1", got["kiln_live_sweeps_total"])
	}
}

// Without WithMetrics nothing is registered; registering two endpoints'
// metrics with one registry is an error from New.
func TestMetricsRegisteredOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	ep, err := live.New(quiet(), live.WithMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Shutdown(context.Background()) })
	if _, err := live.New(quiet(), live.WithMetrics(reg)); !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
		t.Fatalf("second endpoint on one registry: %v, want AlreadyRegisteredError", err)
	}
	if _, ok := metricstest.Values(t, reg)["kiln_live_sockets"]; !ok {
		t.Fatal("kiln_live_sockets is not registered")
	}
}
