package main

// Revocation never waits behind credential checks: a sign-out's revoke
// commits, and its socket closes with 4001, while many clients send wrong
// passwords at once. Password hashing runs outside write transactions, so
// failed sign-ins do not hold SQLite's write lock while bcrypt runs.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kiln-go/kiln/cli"
	"github.com/kiln-go/kiln/dsl"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/revocation"
)

const (
	// floodClients is how many clients send failed sign-ins at once.
	floodClients = 16
	// floodMaxAttempts bounds each flood client's requests.
	floodMaxAttempts = 5000
	// floodMaxDuration bounds how long a flood runs if nobody stops it.
	floodMaxDuration = 10 * time.Minute
	// floodGuard is how long a test waits for an event before it fails:
	// a guard against hangs, not a measure of speed.
	floodGuard = 5 * time.Minute
)

func TestSignOutDuringFailedSignInFlood(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			a := newContractApp(t, db)
			email := newEmail("flooded")
			a.register(t, email)
			c := a.signIn(t, email, contractPassword)
			session := c.session()
			conn, hello, _, err := a.dial(t, http.Header{"Cookie": {"kiln_session=" + session}})
			if err != nil || hello.Event != "hello" {
				t.Fatalf("dial: %v, first frame %q", err, hello.Event)
			}
			// Read all along, as a browser does, so the socket answers the
			// server's pings however long the flood takes to start.
			closes := make(chan closeEvent, 1)
			go func() { closes <- readUntilClose(conn) }()

			f := startFlood(a.url, email, floodClients)
			defer f.stop()
			if !f.waitFor(floodGuard, everyClientDone) {
				t.Fatalf("the flood did not get going: %s", summarize(f.stop()))
			}
			select {
			case ev := <-closes:
				t.Fatalf("the socket closed before the sign-out: %d %q, %v", ev.code, ev.reason, ev.err)
			default:
			}

			signOut := time.Now()
			wantRedirect(t, "sign-out during the flood", c.post("/sign-out", nil), "/sign-in")
			ev, ok := awaitClose(closes)
			if !ok {
				t.Fatalf("the socket was still open %v after the sign-out", floodGuard)
			}
			if ev.err != nil || ev.code != live.CloseSignedOut || ev.reason != live.ReasonText(revocation.SignedOut) {
				t.Errorf("the socket closed with %d %q, %v; want %d %q", ev.code, ev.reason, ev.err, live.CloseSignedOut, live.ReasonText(revocation.SignedOut))
			}

			// The flood is stopped only once an attempt has finished after
			// the close: it ran all through the sign-out.
			if !f.waitFor(floodGuard, anyEndedAfter(ev.at)) {
				t.Fatalf("the flood stalled after the sign-out: %s", summarize(f.stop()))
			}
			attempts := f.stop()
			overlapping := 0
			for _, at := range attempts {
				if at.start.Before(ev.at) && at.end.After(signOut) {
					overlapping++
				}
			}
			if overlapping == 0 {
				t.Errorf("no failed sign-in was in flight between the sign-out and the close: %s", summarize(attempts))
			}
			if bad := unexpected(attempts); bad != "" {
				t.Errorf("failed sign-ins during the flood answered other than 401 or 429: %s", bad)
			}
			t.Logf("sign-out to close: %v; %d failed sign-ins, %d of them in flight during the sign-out: %s",
				ev.at.Sub(signOut), len(attempts), overlapping, summarize(attempts))

			if a.withSession(t, session).signedIn() {
				t.Errorf("the signed-out session's cookie still works")
			}
		})
	}
}

// BenchmarkSignOutCloseUnderFlood measures the time from sending POST
// /sign-out to receiving the socket's 4001 close, alone ("quiet") and while
// floodClients clients send wrong passwords ("flood"): p50-ms and p99-ms
// are its percentiles. ns/op is the mean time until both the sign-out's
// answer and the close are in.
func BenchmarkSignOutCloseUnderFlood(b *testing.B) {
	for _, db := range testdb.Layers() {
		b.Run(db, func(b *testing.B) {
			a, _ := newBenchApp(b, db)
			email := newEmail("flooded")
			hc := noRedirectClient()
			if err := registerUser(hc, a.url, email); err != nil {
				b.Fatal(err)
			}
			b.Run("quiet", func(b *testing.B) { benchSignOutClose(b, a, hc, email, 0) })
			b.Run("flood", func(b *testing.B) { benchSignOutClose(b, a, hc, email, floodClients) })
		})
	}
}

// benchSignOutClose signs b.N sessions in, starts a flood of clients
// (none for 0), then for each session opens its socket and times its
// sign-out until the close. The sessions are signed in before the flood
// starts, so that each iteration's setup costs no bcrypt under load.
func benchSignOutClose(b *testing.B, a *contractApp, hc *http.Client, email string, clients int) {
	b.StopTimer()
	sessions := make([]string, b.N)
	for i := range sessions {
		s, err := signInSession(hc, a.url, email, contractPassword)
		if err != nil {
			b.Fatal(err)
		}
		sessions[i] = s
	}
	var f *flood
	if clients > 0 {
		f = startFlood(a.url, email, clients)
		defer f.stop()
		if !f.waitFor(floodGuard, everyClientDone) {
			b.Fatalf("the flood did not get going: %s", summarize(f.stop()))
		}
	}

	took := make([]time.Duration, 0, b.N)
	for _, session := range sessions {
		conn, err := dialLive(a.url, session)
		if err != nil {
			b.Fatal(err)
		}
		closed := make(chan closeEvent, 1)
		go func() { closed <- readUntilClose(conn) }()
		b.StartTimer()
		start := time.Now()
		status, err := postSignOut(hc, a.url, session)
		ev, ok := awaitClose(closed)
		b.StopTimer()
		conn.Close()
		if err != nil || status != http.StatusSeeOther {
			b.Fatalf("sign-out: %d, %v", status, err)
		}
		if !ok {
			b.Fatalf("the socket was still open %v after the sign-out", floodGuard)
		}
		if ev.err != nil || ev.code != live.CloseSignedOut {
			b.Fatalf("the socket closed with %d %q, %v; want %d", ev.code, ev.reason, ev.err, live.CloseSignedOut)
		}
		took = append(took, ev.at.Sub(start))
	}

	if f != nil {
		if bad := unexpected(f.stop()); bad != "" {
			b.Errorf("failed sign-ins during the flood answered other than 401 or 429: %s", bad)
		}
	}
	slices.Sort(took)
	b.ReportMetric(percentile(took, 50), "p50-ms")
	b.ReportMetric(percentile(took, 99), "p99-ms")
}

// percentile returns the p-th percentile of sorted durations, in
// milliseconds (nearest rank).
func percentile(sorted []time.Duration, p int) float64 {
	i := (len(sorted)*p+99)/100 - 1
	return float64(sorted[max(i, 0)]) / float64(time.Millisecond)
}

// flood sends failed sign-ins from several clients at once until stopped:
// wrong passwords, the even clients for one registered email, the odd ones
// for a new unknown email each time.
type flood struct {
	clients  int
	hc       *http.Client
	stopping atomic.Bool
	wg       sync.WaitGroup
	stopOnce sync.Once
	progress chan struct{} // a token whenever an attempt completes

	mu       sync.Mutex
	attempts []attempt
}

// attempt is one failed sign-in of a flood.
type attempt struct {
	client     int
	start, end time.Time
	status     int   // 0 when err is set
	err        error // a transport error
}

// startFlood starts clients flood clients against the app at baseURL.
func startFlood(baseURL, email string, clients int) *flood {
	f := &flood{
		clients:  clients,
		hc:       &http.Client{Timeout: floodGuard, Transport: &http.Transport{MaxIdleConnsPerHost: clients}},
		progress: make(chan struct{}, 1),
	}
	deadline := time.Now().Add(floodMaxDuration)
	for i := range clients {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for n := 0; n < floodMaxAttempts && !f.stopping.Load() && time.Now().Before(deadline); n++ {
				who := email
				if i%2 == 1 {
					who = newEmail("nobody")
				}
				f.record(f.signIn(i, baseURL, who))
			}
		}()
	}
	return f
}

// signIn sends one sign-in with a wrong password, asking for JSON.
func (f *flood) signIn(client int, baseURL, email string) attempt {
	at := attempt{client: client, start: time.Now()}
	form := url.Values{"email": {email}, "password": {"wrong " + contractPassword}}
	req, err := http.NewRequest(http.MethodPost, baseURL+"/auth/user/password/sign_in", strings.NewReader(form.Encode()))
	if err != nil {
		at.err = err
		return at
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := f.hc.Do(req)
	if err != nil {
		at.err = err
	} else {
		at.status = resp.StatusCode
		drain(resp)
	}
	at.end = time.Now()
	return at
}

func (f *flood) record(at attempt) {
	f.mu.Lock()
	f.attempts = append(f.attempts, at)
	f.mu.Unlock()
	select {
	case f.progress <- struct{}{}:
	default:
	}
}

// waitFor waits until done holds for the attempts so far, and reports
// whether it did before timeout.
func (f *flood) waitFor(timeout time.Duration, done func(clients int, attempts []attempt) bool) bool {
	guard := time.NewTimer(timeout)
	defer guard.Stop()
	for {
		f.mu.Lock()
		ok := done(f.clients, f.attempts)
		f.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-f.progress:
		case <-guard.C:
			return false
		}
	}
}

// everyClientDone holds once every client has completed an attempt.
func everyClientDone(clients int, attempts []attempt) bool {
	seen := map[int]bool{}
	for _, at := range attempts {
		seen[at.client] = true
	}
	return len(seen) == clients
}

// anyEndedAfter holds once an attempt has completed after t.
func anyEndedAfter(t time.Time) func(int, []attempt) bool {
	return func(_ int, attempts []attempt) bool {
		for _, at := range attempts {
			if at.end.After(t) {
				return true
			}
		}
		return false
	}
}

// stop lets the attempts in flight finish, stops the clients and returns
// every attempt. Later calls return the same.
func (f *flood) stop() []attempt {
	f.stopOnce.Do(func() {
		f.stopping.Store(true)
		f.wg.Wait()
		f.hc.CloseIdleConnections()
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.attempts)
}

// unexpected describes the attempts that answered other than 401 or 429
// (a brute-force limit), "" when there are none.
func unexpected(attempts []attempt) string {
	var bad []attempt
	for _, at := range attempts {
		if at.err != nil || at.status != http.StatusUnauthorized && at.status != http.StatusTooManyRequests {
			bad = append(bad, at)
		}
	}
	if len(bad) == 0 {
		return ""
	}
	return summarize(bad)
}

// summarize counts attempts by answer.
func summarize(attempts []attempt) string {
	byAnswer := map[string]int{}
	for _, at := range attempts {
		if at.err != nil {
			byAnswer[at.err.Error()]++
		} else {
			byAnswer[fmt.Sprint(at.status)]++
		}
	}
	var parts []string
	for answer, n := range byAnswer {
		parts = append(parts, fmt.Sprintf("%d × %s", n, answer))
	}
	slices.Sort(parts)
	return fmt.Sprintf("%d attempts: %s", len(attempts), strings.Join(parts, ", "))
}

// newBenchApp is newContractApp for a benchmark: the example with
// production-style secrets (no development mode), on a SQLite file or a
// PostgreSQL schema, behind an httptest server. Its brute-force limits are
// off, so that every failed sign-in of the flood checks a password: the
// worst case, and the one the limits only shorten. The app's log comes
// with it.
func newBenchApp(b *testing.B, database string) (*contractApp, *lockedBuffer) {
	b.Helper()
	cfg := cli.Config{
		TokenSigningSecret: "contract-test-token-signing-secret-0123456789",
		CookieKeys:         []string{"contract-test-cookie-key-0123456789abcdef"},
		DSL:                dsl.FromEnv("KILN", []string{"KILN_LIVE__SWEEP_INTERVAL=1m", "KILN_RATE_LIMITS__DISABLED=true"}),
	}
	if database == "postgres" {
		cfg.DatabaseURL = testdb.PostgresSchemaURL(b)
	}
	return startApp(b, cfg)
}

// noRedirectClient is a client without a cookie jar that follows no
// redirects.
func noRedirectClient() *http.Client {
	return &http.Client{
		Timeout:       time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// postForm posts form to baseURL+path with the session cookie, if any.
func postForm(hc *http.Client, baseURL, path string, form url.Values, session string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, baseURL+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if session != "" {
		req.Header.Set("Cookie", "kiln_session="+session)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	drain(resp)
	return resp, nil
}

func registerUser(hc *http.Client, baseURL, email string) error {
	resp, err := postForm(hc, baseURL, "/auth/user/password/register", registerForm(email, contractPassword, contractPassword), "")
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		return fmt.Errorf("register %s: %d to %q", email, resp.StatusCode, resp.Header.Get("Location"))
	}
	return nil
}

// signInSession signs email in with a form post and returns the session
// cookie's value.
func signInSession(hc *http.Client, baseURL, email, password string) (string, error) {
	resp, err := postForm(hc, baseURL, "/auth/user/password/sign_in", url.Values{"email": {email}, "password": {password}}, "")
	if err != nil {
		return "", err
	}
	for _, c := range resp.Cookies() {
		if c.Name == "kiln_session" && c.Value != "" {
			return c.Value, nil
		}
	}
	return "", fmt.Errorf("sign in %s: %d to %q, no session cookie", email, resp.StatusCode, resp.Header.Get("Location"))
}

// postSignOut signs the session out with a form post.
func postSignOut(hc *http.Client, baseURL, session string) (int, error) {
	resp, err := postForm(hc, baseURL, "/sign-out", nil, session)
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// dialLive opens the session's live socket and reads its hello frame.
func dialLive(baseURL, session string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), floodGuard)
	defer cancel()
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(baseURL, "http")+"/live/websocket",
		http.Header{"Cookie": {"kiln_session=" + session}})
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(floodGuard))
	var hello live.Frame
	if err := conn.ReadJSON(&hello); err != nil || hello.Event != "hello" {
		conn.Close()
		return nil, fmt.Errorf("first frame %q, %v; want hello", hello.Event, err)
	}
	return conn, nil
}

// drain reads the rest of resp's body and closes it, so that its
// connection is reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// awaitClose waits for the close that readUntilClose reports on closes,
// and reports whether it came within floodGuard.
func awaitClose(closes <-chan closeEvent) (closeEvent, bool) {
	guard := time.NewTimer(floodGuard)
	defer guard.Stop()
	select {
	case ev := <-closes:
		return ev, true
	case <-guard.C:
		return closeEvent{}, false
	}
}

// closeEvent is how and when a socket was closed.
type closeEvent struct {
	at     time.Time
	code   int
	reason string
	err    error // the socket ended without a close frame
}

// readUntilClose reads until the server closes the socket, answering its
// pings meanwhile.
func readUntilClose(conn *websocket.Conn) closeEvent {
	for {
		_ = conn.SetReadDeadline(time.Now().Add(floodGuard))
		if _, _, err := conn.ReadMessage(); err != nil {
			ev := closeEvent{at: time.Now()}
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				ev.code, ev.reason = ce.Code, ce.Text
			} else {
				ev.err = err
			}
			return ev
		}
	}
}
