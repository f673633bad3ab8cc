package live_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/latency"
	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/internal/sessionbench"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/revocation"
)

// BenchmarkDisconnectLatency measures the time from a revocation's commit
// to the moment the client reads its close frame, with 1,000 and 9,000
// live sessions, for kiln's endpoint (a socket-id index) and for a
// baseline that finds the session with melody's BroadcastFilter, a scan of
// every session (each session's Keys hold its socket id).
//
// Both run the same token store, revocation notifier and authentication;
// only the endpoint differs (internal/sessionbench). The clients live in
// a child process (internal/benchclient), so that 9,000 sockets cost
// 9,000 open files here. Each op revokes one session's token, waits for
// its close frame, then opens a new session in its place; ns/op is the
// mean disconnect latency, p50-µs and p99-µs its percentiles. A table of
// all runs is printed at the end. The bench command (bench/) runs the
// same with centrifuge beside them.
//
//	go test -run '^$' -bench DisconnectLatency ./live/
func BenchmarkDisconnectLatency(b *testing.B) {
	bin := buildBenchClient(b)
	var rows []latencyRow
	for _, n := range []int{1000, 9000} {
		for _, impl := range []sessionbench.Impl{sessionbench.Kiln, sessionbench.MelodyScan} {
			var fx *latencyFixture
			var last latencyRow
			b.Run(fmt.Sprintf("%s/sessions=%d", impl.Name, n), func(b *testing.B) {
				if fx == nil {
					var err error
					if fx, err = newLatencyFixture(bin, impl, n); err != nil {
						b.Fatal(err)
					}
				}
				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for i := range b.N {
					d, err := fx.revokeOne(i % n)
					if err != nil {
						b.Fatal(err)
					}
					lat = append(lat, d)
				}
				b.StopTimer()
				last = summarize(impl.Name, n, lat)
				b.ReportMetric(float64(last.mean.Nanoseconds()), "ns/op")
				b.ReportMetric(float64(last.p50.Nanoseconds())/1e3, "p50-µs")
				b.ReportMetric(float64(last.p99.Nanoseconds())/1e3, "p99-µs")
			})
			if fx != nil {
				fx.close()
				rows = append(rows, last)
			}
		}
	}
	if len(rows) > 0 {
		fmt.Print(latencyTable(rows))
	}
}

// BenchmarkDisconnectMany measures the closing part of a log out
// everywhere: one DisconnectMany of all 1,000 sockets of the server, each
// held by the benchmark client process, until every client has read its
// close frame. It reports, per op, when the first close frame was read
// (first-ms), the median (p50-ms) and the last (last-ms), from the call.
// The database's part is extensions/authentication/logouteverywhere's
// BenchmarkLogOutEverywhere. Each op dials the sockets again off the
// clock.
//
//	go test -run '^$' -bench DisconnectMany -benchtime 15x ./live/
func BenchmarkDisconnectMany(b *testing.B) {
	const n = 1000
	fx, err := newLatencyFixture(buildBenchClient(b), sessionbench.Kiln, n)
	if err != nil {
		b.Fatal(err)
	}
	defer fx.close()
	ep := fx.server.Endpoint.(*live.Endpoint)
	var firsts, p50s, lasts []time.Duration
	b.ResetTimer()
	for range b.N {
		conns := ep.Conns()
		ds := make([]revocation.Disconnect, len(conns))
		for i, c := range conns {
			ds[i] = revocation.Disconnect{SocketID: c.Identity().SocketID, Reason: revocation.LogOutEverywhere}
		}
		start := time.Now()
		if err := ep.DisconnectMany(context.Background(), ds); err != nil {
			b.Fatal(err)
		}
		at := make([]time.Duration, 0, n)
		for range ds {
			ev, err := fx.clients.Next("close", -1)
			if err != nil {
				b.Fatal(err)
			}
			if ev.Code != live.CloseSignedOut {
				b.Fatalf("socket %d closed with %d %q", ev.Idx, ev.Code, ev.Text)
			}
			at = append(at, ev.At.Sub(start))
		}
		b.StopTimer()
		firsts = append(firsts, slices.Min(at))
		p50s = append(p50s, latency.Percentile(at, 50))
		lasts = append(lasts, slices.Max(at))
		if fx.tokens, err = fx.server.Issue(context.Background(), n); err != nil {
			b.Fatal(err)
		}
		if err := fx.clients.DialAll(fx.tokens); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	ms := func(d []time.Duration) float64 { return float64(latency.Percentile(d, 50).Nanoseconds()) / 1e6 }
	b.ReportMetric(ms(firsts), "first-ms")
	b.ReportMetric(ms(p50s), "p50-ms")
	b.ReportMetric(ms(lasts), "last-ms")
}

// TestDisconnectLatencyHarness runs the benchmark's machinery small: the
// child process, both endpoints, a few revocations each.
func TestDisconnectLatencyHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the benchmark client")
	}
	bin := buildBenchClient(t)
	for _, impl := range []sessionbench.Impl{sessionbench.Kiln, sessionbench.MelodyScan} {
		fx, err := newLatencyFixture(bin, impl, 20)
		if err != nil {
			t.Fatal(err)
		}
		var lat []time.Duration
		for i := range 30 { // more than the sessions: each is replaced
			d, err := fx.revokeOne(i % 20)
			if err != nil {
				fx.close()
				t.Fatalf("%s: %v", impl.Name, err)
			}
			if d <= 0 || d > 10*time.Second {
				fx.close()
				t.Fatalf("%s: latency %s", impl.Name, d)
			}
			lat = append(lat, d)
		}
		fx.close()
		row := summarize(impl.Name, 20, lat)
		if row.p50 > row.p99 || row.samples != 30 {
			t.Fatalf("summary %+v", row)
		}
		t.Logf("%s: p50 %s p99 %s", impl.Name, row.p50, row.p99)
	}
}

// buildBenchClient builds internal/benchclient (without -race: it is the
// load, not the code under test).
func buildBenchClient(tb testing.TB) string {
	tb.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		tb.Skip("the go command is not available to build the benchmark client")
	}
	bin := filepath.Join(tb.TempDir(), "benchclient")
	cmd := exec.Command(goTool, "build", "-o", bin, "github.com/kiln-go/kiln/internal/benchclient")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building the benchmark client: %v\n%s", err, out)
	}
	return bin
}

// latencyRow is one line of the table.
type latencyRow struct {
	impl           string
	sessions       int
	samples        int
	p50, p99, mean time.Duration
}

func summarize(impl string, n int, lat []time.Duration) latencyRow {
	r := latencyRow{impl: impl, sessions: n, samples: len(lat)}
	if len(lat) == 0 {
		return r
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	r.p50, r.p99, r.mean = latency.Percentile(lat, 50), latency.Percentile(lat, 99), sum/time.Duration(len(lat))
	return r
}

func latencyTable(rows []latencyRow) string {
	var b strings.Builder
	b.WriteString("\ndisconnect latency, revocation commit → close frame read by the client\n")
	b.WriteString("| endpoint    | sessions | samples |      p50 |      p99 |     mean |\n")
	b.WriteString("|-------------|---------:|--------:|---------:|---------:|---------:|\n")
	us := func(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d.Nanoseconds())/1e3) }
	for _, r := range rows {
		fmt.Fprintf(&b, "| %-11s | %8d | %7d | %8s | %8s | %8s |\n", r.impl, r.sessions, r.samples, us(r.p50), us(r.p99), us(r.mean))
	}
	return b.String()
}

// latencyFixture is a server with n live sessions whose clients live in
// the benchmark client process.
type latencyFixture struct {
	server  *sessionbench.Server
	clients *sessionbench.Clients
	tokens  []string
}

func newLatencyFixture(bin string, impl sessionbench.Impl, n int) (*latencyFixture, error) {
	fx, err := startFixture(bin, impl, n)
	if err != nil {
		return nil, err
	}
	if err := fx.clients.DialAll(fx.tokens); err != nil {
		fx.close()
		return nil, err
	}
	return fx, nil
}

// startFixture starts the server, issues n tokens and starts the client
// process, which has not dialed yet.
func startFixture(bin string, impl sessionbench.Impl, n int) (fx *latencyFixture, err error) {
	ctx := context.Background()
	fx = &latencyFixture{}
	defer func() {
		if err != nil {
			fx.close()
		}
	}()
	if fx.server, err = sessionbench.NewServer(ctx, impl, sessionbench.Options{Sessions: n}); err != nil {
		return fx, err
	}
	if fx.tokens, err = fx.server.Issue(ctx, n); err != nil {
		return fx, err
	}
	fx.clients, err = sessionbench.StartClients(exec.Command(bin, "-url", fx.server.URL()))
	return fx, err
}

// revokeOne revokes session idx's token, waits for its close frame and
// returns the latency from the commit, then opens a new session in its
// place.
func (fx *latencyFixture) revokeOne(idx int) (time.Duration, error) {
	ctx := context.Background()
	committed, err := fx.server.Revoke(ctx, fx.tokens[idx])
	if err != nil {
		return 0, err
	}
	ev, err := fx.clients.Next("close", idx)
	if err != nil {
		return 0, err
	}
	if ev.Code != live.CloseSignedOut || ev.Text != "revoked" {
		return 0, fmt.Errorf("socket %d closed with %d %q", idx, ev.Code, ev.Text)
	}
	latency := ev.At.Sub(committed)

	tokens, err := fx.server.Issue(ctx, 1)
	if err != nil {
		return 0, err
	}
	fx.tokens[idx] = tokens[0]
	if err := fx.clients.Dial(idx, tokens[0]); err != nil {
		return 0, err
	}
	if _, err := fx.clients.Next("ready", idx); err != nil {
		return 0, err
	}
	return latency, nil
}

// close stops the client process (its sockets close with it) and the
// server.
func (fx *latencyFixture) close() {
	if fx.clients != nil {
		fx.clients.Close()
	}
	if fx.server != nil {
		fx.server.Close()
	}
}

// BenchmarkDisconnectBusy times Endpoint.Disconnect of one socket, from
// the call to its return, while goroutines that never block (as password
// hashing does not) keep every processor busy. The revoker hands the close
// frame to a goroutine and goes on: were it to yield or wait for that
// goroutine, the scheduler could run a busy goroutine's 10 ms time slice
// first: with 4 busy, a yield (runtime.Gosched) made the median 40 ms, and
// a wait on a channel made the slowest 20–23 ms, about one op in 50.
// Reported: p50-µs and max-µs over the ops.
//
//	go test -run '^$' -bench DisconnectBusy -benchtime 50x ./live/
func BenchmarkDisconnectBusy(b *testing.B) {
	for _, busy := range []int{0, 4} {
		b.Run(fmt.Sprintf("busy=%d", busy), func(b *testing.B) {
			h := livetest.New(b, "sqlite", livetest.Options{EndpointOptions: []live.Option{quiet()}})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			stop := make(chan struct{})
			defer close(stop)
			for range busy {
				go spin(stop)
			}
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				u := h.Register(b, fmt.Sprintf("busy%d@example.com", i))
				c := h.MustDial(b, ctx, livetest.Bearer(u.Token))
				id := livetest.Template(tokenresource.SocketID{JTI: u.Claims.JTI, Subject: u.Claims.Subject})
				b.StartTimer()
				start := time.Now()
				if err := h.Endpoint.Disconnect(ctx, id, revocation.SignedOut); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
				b.StopTimer()
				if code, _, err := c.WaitClose(ctx); err != nil || code != live.CloseSignedOut {
					b.Fatalf("closed with %d, %v", code, err)
				}
				b.StartTimer()
			}
			b.StopTimer()
			slices.Sort(took)
			b.ReportMetric(float64(latency.Percentile(took, 50).Nanoseconds())/1e3, "p50-µs")
			b.ReportMetric(float64(took[len(took)-1].Nanoseconds())/1e3, "max-µs")
		})
	}
}

// spin keeps a processor busy until stop is closed, yielding only when the
// scheduler preempts it.
func spin(stop <-chan struct{}) {
	x := uint64(1)
	for {
		select {
		case <-stop:
			return
		default:
		}
		for range 1_000_000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		spinSink.Store(x)
	}
}

var spinSink atomic.Uint64
