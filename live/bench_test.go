package live_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/olahol/melody"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/extensions/tokenresource/tokenrevocation"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
	"github.com/kiln-go/kiln/revocation"
	"github.com/kiln-go/kiln/web"
)

// BenchmarkDisconnectLatency measures the time from a revocation's commit
// to the moment the client reads its close frame, with 1,000 and 9,000
// live sessions, for kiln's endpoint (a socket-id index) and for a
// baseline that finds the session with melody's BroadcastFilter, a scan of
// every session (each session's Keys hold its socket id).
//
// Both run the same token store, revocation notifier and authentication;
// only the endpoint differs. The clients live in a child process
// (internal/benchclient), so that 9,000 sockets cost 9,000 open files
// here. Each op revokes one session's token, waits for its close frame,
// then opens a new session in its place; ns/op is the mean disconnect
// latency, p50-µs and p99-µs its percentiles. A table of all runs is
// printed at the end.
//
//	go test -run '^$' -bench DisconnectLatency ./live/
func BenchmarkDisconnectLatency(b *testing.B) {
	bin := buildBenchClient(b)
	var rows []latencyRow
	for _, n := range []int{1000, 9000} {
		for _, impl := range []string{"kiln-index", "melody-scan"} {
			var fx *latencyFixture
			var last latencyRow
			b.Run(fmt.Sprintf("%s/sessions=%d", impl, n), func(b *testing.B) {
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
				last = summarize(impl, n, lat)
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

// TestDisconnectLatencyHarness runs the benchmark's machinery small: the
// child process, both endpoints, a few revocations each.
func TestDisconnectLatencyHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the benchmark client")
	}
	bin := buildBenchClient(t)
	for _, impl := range []string{"kiln-index", "melody-scan"} {
		fx, err := newLatencyFixture(bin, impl, 20)
		if err != nil {
			t.Fatal(err)
		}
		var lat []time.Duration
		for i := range 30 { // more than the sessions: each is replaced
			d, err := fx.revokeOne(i % 20)
			if err != nil {
				fx.close()
				t.Fatalf("%s: %v", impl, err)
			}
			if d <= 0 || d > 10*time.Second {
				fx.close()
				t.Fatalf("%s: latency %s", impl, d)
			}
			lat = append(lat, d)
		}
		fx.close()
		row := summarize(impl, 20, lat)
		if row.p50 > row.p99 || row.samples != 30 {
			t.Fatalf("summary %+v", row)
		}
		t.Logf("%s: p50 %s p99 %s", impl, row.p50, row.p99)
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
	max            time.Duration
}

func summarize(impl string, n int, lat []time.Duration) latencyRow {
	s := slices.Clone(lat)
	slices.Sort(s)
	r := latencyRow{impl: impl, sessions: n, samples: len(s)}
	if len(s) == 0 {
		return r
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	pct := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	r.p50, r.p99, r.mean, r.max = pct(0.50), pct(0.99), sum/time.Duration(len(s)), s[len(s)-1]
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
	layer  *bunlayer.Layer
	domain *resource.Domain
	auth   *authentication.Auth
	user   any
	server *httptest.Server
	stop   func()

	committed atomic.Int64 // unix nanoseconds of the last revocation's commit

	child  *exec.Cmd
	stdin  io.WriteCloser
	events chan clientEvent
	tokens []string
}

// clientEvent is a line of the benchmark client.
type clientEvent struct {
	kind string // ready, fail, close
	idx  int
	at   int64
	code int
	text string
}

// commitClock records when each revocation committed: notifiers run right
// after the commit, in order, and it is declared before the revocation
// notifier.
type commitClock struct{ at *atomic.Int64 }

func (c commitClock) Notify(_ context.Context, n resource.Notification) error {
	if _, ok := n.Metadata[tokenresource.ReasonKey]; ok {
		c.at.Store(time.Now().UnixNano())
	}
	return nil
}

// scanEndpoint is the baseline: a plain melody.Melody that finds the
// sessions of a socket id by scanning all of them with BroadcastFilter.
type scanEndpoint struct{ m *melody.Melody }

const scanKey = "socket_id"

func (s *scanEndpoint) Disconnect(_ context.Context, socketID string, reason revocation.Reason) error {
	closeMsg := melody.FormatCloseMessage(live.CloseSignedOut, live.ReasonText(reason))
	return s.m.BroadcastFilter(nil, func(sess *melody.Session) bool {
		if id, _ := sess.Get(scanKey); id == socketID {
			_ = sess.CloseWithMsg(closeMsg)
		}
		return false
	})
}

func newLatencyFixture(bin, impl string, n int) (*latencyFixture, error) {
	fx, err := startFixture(bin, impl, n)
	if err != nil {
		return nil, err
	}
	if err := fx.dialAll(); err != nil {
		fx.close()
		return nil, err
	}
	return fx, nil
}

// startFixture starts the server, issues n tokens and starts the client
// process, which has not dialed yet.
func startFixture(bin, impl string, n int) (fx *latencyFixture, err error) {
	ctx := context.Background()
	fx = &latencyFixture{}
	defer func() {
		if err != nil {
			fx.close()
		}
	}()
	quietLog := slog.New(slog.NewTextHandler(io.Discard, nil))
	clock := commitClock{&fx.committed}
	var endpoint revocation.Endpoint
	var handler http.Handler
	// wire makes the endpoint from the web glue: the glue needs the built
	// domain, and the endpoint its authenticator.
	var wire func(*web.Web) error
	switch impl {
	case "kiln-index":
		wire = func(w *web.Web) error {
			// One user holds all n sessions, and a revoked one's slot may be
			// freed after its replacement dials: raise the per-user limit.
			ep, err := live.New(live.WithLogger(quietLog), live.WithSettings(live.Settings{MaxSocketsPerSubject: 2 * n}),
				live.WithAuthenticator(w.LiveAuthenticator()))
			if err != nil {
				return err
			}
			endpoint, handler = ep, ep
			fx.stop = func() {
				sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				_ = ep.Shutdown(sctx)
			}
			return nil
		}
	case "melody-scan":
		m := melody.New()
		hello := []byte(`{"event":"hello","payload":{}}`)
		m.HandleConnect(func(s *melody.Session) { _ = s.Write(hello) })
		endpoint = &scanEndpoint{m}
		var glue *web.Web
		wire = func(w *web.Web) error { glue = w; return nil }
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := glue.Authenticate(r)
			if err != nil {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			_ = m.HandleRequestWithKeys(w, r, map[string]any{scanKey: p.SocketID})
		})
		fx.stop = func() { _ = m.Close() }
	default:
		return fx, fmt.Errorf("unknown endpoint %q", impl)
	}

	users, tokens := accountstest.Declare(accountstest.Options{
		Template:       livetest.Template,
		TokenNotifiers: []resource.Notifier{clock, tokenrevocation.Notifier{}},
	})
	if fx.layer, err = bunlayer.Open(ctx, "sqlite::memory:"); err != nil {
		return fx, err
	}
	if fx.domain, err = resource.NewDomain("accounts", users, tokens).Build(ctx, fx.layer, resource.WithLogger(quietLog)); err != nil {
		return fx, err
	}
	if err = fx.layer.Migrate(ctx); err != nil {
		return fx, err
	}
	if fx.auth, err = authentication.For(fx.domain, users); err != nil {
		return fx, err
	}
	pw, err := password.For(fx.auth)
	if err != nil {
		return fx, err
	}
	reg, err := pw.Register(ctx, fx.domain, password.RegisterInput{Identity: "ada@example.com", Password: "password123", PasswordConfirmation: "password123"})
	if err != nil {
		return fx, err
	}
	fx.user = reg.Record
	sessions, err := web.NewSessions(livetest.CookieKey)
	if err != nil {
		return fx, err
	}
	if err := wire(web.New(fx.auth, sessions, web.WithLogger(quietLog))); err != nil {
		return fx, err
	}
	if err := fx.domain.Attach(endpoint); err != nil {
		return fx, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /live/websocket", handler)
	fx.server = httptest.NewServer(mux)

	fx.tokens = make([]string, n)
	err = fx.domain.InTransaction(ctx, func(ctx context.Context) error {
		for i := range fx.tokens {
			token, _, err := fx.auth.Issue(ctx, fx.user, authentication.IssueOptions{})
			if err != nil {
				return err
			}
			fx.tokens[i] = token
		}
		return nil
	})
	if err != nil {
		return fx, err
	}

	fx.child = exec.Command(bin, "-url", "ws"+strings.TrimPrefix(fx.server.URL, "http")+"/live/websocket")
	fx.child.Stderr = os.Stderr
	if fx.stdin, err = fx.child.StdinPipe(); err != nil {
		return fx, err
	}
	stdout, err := fx.child.StdoutPipe()
	if err != nil {
		return fx, err
	}
	if err = fx.child.Start(); err != nil {
		return fx, err
	}
	fx.events = make(chan clientEvent, n+16)
	go readClientEvents(stdout, fx.events)

	return fx, nil
}

// dialAll opens a session with each token and waits until every one has
// read its hello frame.
func (fx *latencyFixture) dialAll() error {
	w := bufio.NewWriter(fx.stdin)
	for i, token := range fx.tokens {
		fmt.Fprintf(w, "dial %d %s\n", i, token)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for range fx.tokens {
		if _, err := fx.next("ready", -1); err != nil {
			return err
		}
	}
	return nil
}

func readClientEvents(r io.Reader, events chan<- clientEvent) {
	defer close(events)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 5)
		ev := clientEvent{kind: f[0]}
		if len(f) > 1 {
			ev.idx, _ = strconv.Atoi(f[1])
		}
		switch {
		case ev.kind == "close" && len(f) >= 4:
			ev.at, _ = strconv.ParseInt(f[2], 10, 64)
			ev.code, _ = strconv.Atoi(f[3])
			if len(f) == 5 {
				ev.text = f[4]
			}
		case ev.kind == "fail" && len(f) >= 3:
			ev.text = strings.Join(f[2:], " ")
		}
		events <- ev
	}
}

// next waits for the client's next event, which must be of kind (for idx,
// unless idx is -1).
func (fx *latencyFixture) next(kind string, idx int) (clientEvent, error) {
	select {
	case ev, ok := <-fx.events:
		switch {
		case !ok:
			return ev, errors.New("the benchmark client exited")
		case ev.kind == "fail":
			return ev, fmt.Errorf("socket %d: %s", ev.idx, ev.text)
		case ev.kind != kind || (idx >= 0 && ev.idx != idx):
			return ev, fmt.Errorf("got %s %d (%d %q), want %s %d", ev.kind, ev.idx, ev.code, ev.text, kind, idx)
		}
		return ev, nil
	case <-time.After(60 * time.Second):
		return clientEvent{}, fmt.Errorf("no %s event in a minute", kind)
	}
}

// revokeOne revokes session idx's token, waits for its close frame and
// returns the latency from the commit, then opens a new session in its
// place.
func (fx *latencyFixture) revokeOne(idx int) (time.Duration, error) {
	ctx := context.Background()
	if err := fx.auth.Tokens().Revoke(ctx, fx.tokens[idx], revocation.Revoked); err != nil {
		return 0, err
	}
	committed := fx.committed.Load()
	ev, err := fx.next("close", idx)
	if err != nil {
		return 0, err
	}
	if ev.code != live.CloseSignedOut || ev.text != "revoked" {
		return 0, fmt.Errorf("socket %d closed with %d %q", idx, ev.code, ev.text)
	}
	latency := time.Duration(ev.at - committed)

	token, _, err := fx.auth.Issue(ctx, fx.user, authentication.IssueOptions{})
	if err != nil {
		return 0, err
	}
	fx.tokens[idx] = token
	if _, err := fmt.Fprintf(fx.stdin, "dial %d %s\n", idx, token); err != nil {
		return 0, err
	}
	if _, err := fx.next("ready", idx); err != nil {
		return 0, err
	}
	return latency, nil
}

// close stops the client process (its sockets close with it) and the
// server.

func (fx *latencyFixture) close() {
	if fx.child != nil && fx.child.Process != nil {
		_, _ = io.WriteString(fx.stdin, "quit\n")
		_ = fx.stdin.Close()
		_ = fx.child.Process.Kill()
		_ = fx.child.Wait()
	}
	if fx.stop != nil {
		fx.stop()
	}
	if fx.server != nil {
		fx.server.Close()
	}
	if fx.layer != nil {
		_ = fx.layer.Close()
	}
}
