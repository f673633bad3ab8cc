package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kiln-go/kiln/internal/latency"
	"github.com/kiln-go/kiln/internal/sessionbench"
	"github.com/kiln-go/kiln/live"
)

// accountsScenario is scenario 3.
type accountsScenario struct{}

func (accountsScenario) Section() Section {
	return Section{Name: "accounts", Title: "3. The example app, end to end",
		Measures: "The full path through the accounts example (examples/accounts, built and run as a process of its own with " +
			"production secrets, bcrypt cost 10 and its rate limits off), over its HTTP contract. Users register with " +
			"POST /auth/user/password/register and each opens a live socket with its token (clients in another process), so " +
			"that the users are online. A sign-out (POST /sign-out with the session's bearer token) is timed from sending " +
			"the request to the client's read of the socket's close frame (4001); the user then signs in again and reopens " +
			"its socket. Its floor takes turns with it: the same sign-out on a server of the contract with nothing behind " +
			"it (no database, token or framework; a process of its own, as many sockets from another client process), " +
			"which is what the processes and the loopback take on this machine. Sign-ins per second: one user signs in as many times as log out everywhere will close sessions, " +
			"eight requests in flight (POST /auth/user/password/sign_in); any 5xx answer is counted. Each of these sessions " +
			"opens a socket, then POST /auth/user/log_out_everywhere is timed until the last of them has read its close frame; " +
			"its floor is as many sockets on the floor's server, closed one after another by one request, the median of three runs right after; " +
			"the difference in each repeat is about what kiln adds (the database's write, the framework, the transport's publish)."}
}

// accountsPassword is every user's password.
const accountsPassword = "bench-password-123"

func (accountsScenario) Run(ctx context.Context, env *Env) ([]Row, error) {
	dbs, err := databases(env)
	if err != nil {
		return nil, err
	}
	env.Progress("accounts: building examples/accounts")
	bin := filepath.Join(env.Temp, "accounts")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/accounts")
	build.Dir = env.KilnRoot
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./examples/accounts: %v\n%s", err, out)
	}
	var rows []Row
	for _, db := range dbs {
		users := sessionsText(env.Users)
		r := accountsRows{
			p50: Row{ID: "accounts-signout-p50-" + db.name, Metric: fmt.Sprintf("sign-out → socket closed, p50, %s users online, %s", users, db.name),
				Unit: "ms", Peers: map[string]Figure{}},
			p99: Row{ID: "accounts-signout-p99-" + db.name, Metric: fmt.Sprintf("sign-out → socket closed, p99, %s users online, %s", users, db.name),
				Unit: "ms", Peers: map[string]Figure{}, Goals: []Goal{{AtMost: true, Value: 2}}},
			floorP50: Row{ID: "accounts-signout-floor-p50-" + db.name, Metric: "the same on a server of the contract with nothing behind it (floor), p50, beside " + db.name,
				Unit: "ms", Peers: map[string]Figure{}},
			floorP99: Row{ID: "accounts-signout-floor-p99-" + db.name, Metric: "the same on a server of the contract with nothing behind it (floor), p99, beside " + db.name,
				Unit: "ms", Peers: map[string]Figure{}},
			everywhere: Row{ID: "accounts-everywhere-" + db.name, Metric: fmt.Sprintf("log out everywhere over %d sessions → last socket closed, %s", env.Everywhere, db.name),
				Unit: "ms", Peers: map[string]Figure{}, Goals: []Goal{{AtMost: true, Value: 50}}},
			floorEverywhere: Row{ID: "accounts-everywhere-floor-" + db.name, Metric: "the same on a server of the contract with nothing behind it (floor), beside " + db.name,
				Unit: "ms", Peers: map[string]Figure{}},
			ownEverywhere: Row{ID: "accounts-everywhere-own-" + db.name, Metric: "log out everywhere less its floor, " + db.name,
				Unit: "ms", Peers: map[string]Figure{}},
			signIns: Row{ID: "accounts-signins-" + db.name, Metric: "sign-ins per second, bcrypt cost 10, " + db.name,
				Unit: "/s", Peers: map[string]Figure{}, Goals: []Goal{{Value: 25}}},
			errors: Row{ID: "accounts-5xx-" + db.name, Metric: "5xx answers to those sign-ins, " + db.name,
				Unit: "", Peers: map[string]Figure{}, Goals: []Goal{{AtMost: true, Value: 0}}},
		}
		if db.skip != "" {
			for _, row := range r.all() {
				row.Skipped = db.skip
			}
		} else if err := runAccounts(ctx, env, bin, db, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", db.name, err)
		}
		for _, row := range r.all() {
			rows = append(rows, *row)
		}
	}
	return rows, nil
}

// accountsRows are the scenario's rows for one database.
type accountsRows struct {
	p50, p99, floorP50, floorP99, everywhere, floorEverywhere, ownEverywhere, signIns, errors Row
}

func (r *accountsRows) all() []*Row {
	return []*Row{&r.p50, &r.p99, &r.floorP50, &r.floorP99, &r.everywhere, &r.floorEverywhere, &r.ownEverywhere, &r.signIns, &r.errors}
}

// runAccounts runs the example on db and measures it.
func runAccounts(ctx context.Context, env *Env, bin string, db database, r *accountsRows) error {
	dbURL, drop, err := db.open(ctx)
	if err != nil {
		return err
	}
	defer drop()
	if db.name == "sqlite" {
		dbURL = "" // the app's own file in its data folder
	}
	app, err := startAccounts(ctx, env, bin, dbURL)
	if err != nil {
		return err
	}
	defer app.stop()
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 16},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	a := &accountsClient{url: app.url, hc: hc}

	// The users online, each with a socket.
	env.Progress("accounts: %s: registering %d users", db.name, env.Users)
	tokens := make([]string, env.Users)
	if _, err := parallel(ctx, env.Users, 8, func(i int) error {
		t, err := a.register(env, userEmail(i))
		tokens[i] = t
		return err
	}); err != nil {
		return err
	}
	everyone := "everywhere@example.com"
	if _, err := a.register(env, everyone); err != nil {
		return err
	}
	// Sixteen dials in flight: each checks its token in the database, on
	// the example's pool of database_max_conns connections.
	clients, err := sessionbench.StartClients(exec.CommandContext(ctx, env.Self, "internal-clients", "-impl", implKiln,
		"-parallel", "16", "-url", sessionbench.WebSocketURL(app.url)))
	if err != nil {
		return err
	}
	defer clients.Close()
	if err := clients.DialAll(tokens); err != nil {
		return err
	}
	env.Progress("accounts: %s: %d users online", db.name, env.Users)

	// The floor: as many sockets on a server of the same contract with
	// nothing behind it, each sign-out there taking turns with the app's.
	floor, fields, err := startRole(ctx, env, 1, "internal-signout-floor")
	if err != nil {
		return err
	}
	defer floor.close()
	floorClient := &accountsClient{url: fields[0], hc: hc}
	floorClients, err := sessionbench.StartClients(exec.CommandContext(ctx, env.Self, "internal-clients", "-impl", implKiln,
		"-parallel", "16", "-url", sessionbench.WebSocketURL(floorClient.url)))
	if err != nil {
		return err
	}
	defer floorClients.Close()
	floorTokens := make([]string, env.Users)
	for i := range floorTokens {
		floorTokens[i] = fmt.Sprintf("floor-%d", i)
	}
	if err := floorClients.DialAll(floorTokens); err != nil {
		return err
	}

	// As many as the disconnect scenario's samples, though each costs a
	// sign-in: with a hundred, the p99 would be the second-slowest.
	samples := max(min(env.Samples, env.Users), 1)
	for rep := range env.Repeats {
		// Sign-outs, each user signed in again after, each followed by one
		// on the floor.
		var took, floorTook []time.Duration
		for i := range samples {
			idx := i * env.Users / samples
			d, err := timeSignOut(a, clients, idx, tokens[idx])
			if err != nil {
				return err
			}
			took = append(took, d)
			if tokens[idx], err = a.auth("/auth/user/password/sign_in", url.Values{"email": {userEmail(idx)}, "password": {accountsPassword}}, ""); err != nil {
				return err
			}
			if err := reopen(clients, idx, tokens[idx]); err != nil {
				return err
			}
			if d, err = timeSignOut(floorClient, floorClients, idx, floorTokens[idx]); err != nil {
				return fmt.Errorf("floor: %w", err)
			}
			floorTook = append(floorTook, d)
			if err := reopen(floorClients, idx, floorTokens[idx]); err != nil {
				return fmt.Errorf("floor: %w", err)
			}
		}
		p50, p99 := latency.Percentile(took, 50), latency.Percentile(took, 99)
		r.p50.Kiln = append(r.p50.Kiln, millis(p50))
		r.p99.Kiln = append(r.p99.Kiln, millis(p99))
		floorP50, floorP99 := latency.Percentile(floorTook, 50), latency.Percentile(floorTook, 99)
		r.floorP50.Kiln = append(r.floorP50.Kiln, millis(floorP50))
		r.floorP99.Kiln = append(r.floorP99.Kiln, millis(floorP99))

		// Sign-ins of one user, then log out everywhere over them. A 5xx
		// answer is counted and its session left out.
		signedIn := make([]string, env.Everywhere)
		var fivexx atomic.Int64
		elapsed, err := parallel(ctx, env.Everywhere, 8, func(i int) error {
			t, err := a.auth("/auth/user/password/sign_in", url.Values{"email": {everyone}, "password": {accountsPassword}}, "")
			var se *statusError
			if errors.As(err, &se) && se.status >= 500 {
				fivexx.Add(1)
				return nil
			}
			signedIn[i] = t
			return err
		})
		if err != nil {
			return err
		}
		rate := float64(env.Everywhere) / elapsed.Seconds()
		r.signIns.Kiln = append(r.signIns.Kiln, rate)
		r.errors.Kiln = append(r.errors.Kiln, float64(fivexx.Load()))
		var sessions []string
		for _, t := range signedIn {
			if t != "" {
				sessions = append(sessions, t)
			}
		}
		if len(sessions) == 0 {
			return errors.New("every sign-in answered 5xx")
		}
		everywhere, err := timeEverywhere(a, "/auth/user/log_out_everywhere", clients, env.Users, sessions)
		if err != nil {
			return err
		}
		floorSessions := make([]string, len(sessions))
		for i := range floorSessions {
			floorSessions[i] = fmt.Sprintf("everywhere.%d", i)
		}
		// The floor varies from run to run about as much as kiln's part
		// does: its median of three, each run costing no sign-in.
		var floors []time.Duration
		for range 3 {
			d, err := timeEverywhere(floorClient, "/log-out-everywhere", floorClients, env.Users, floorSessions)
			if err != nil {
				return fmt.Errorf("floor: %w", err)
			}
			floors = append(floors, d)
		}
		floorEverywhere := latency.Percentile(floors, 50)
		r.everywhere.Kiln = append(r.everywhere.Kiln, millis(everywhere))
		r.floorEverywhere.Kiln = append(r.floorEverywhere.Kiln, millis(floorEverywhere))
		r.ownEverywhere.Kiln = append(r.ownEverywhere.Kiln, millis(everywhere-floorEverywhere))
		env.Progress("accounts: %s, repeat %d/%d: sign-out p50 %s p99 %s over %d (floor %s, %s); %.1f sign-ins/s (%d 5xx); log out everywhere over %d: %s (floor %s)",
			db.name, rep+1, env.Repeats, p50.Round(time.Microsecond), p99.Round(time.Microsecond), samples,
			floorP50.Round(time.Microsecond), floorP99.Round(time.Microsecond), rate, fivexx.Load(),
			len(sessions), everywhere.Round(time.Microsecond), floorEverywhere.Round(time.Microsecond))
	}
	return nil
}

// timeEverywhere opens a socket for each of tokens, as sockets base,
// base+1… of clients, then posts path with the first token and times it
// until the last of them has read its 4001 close frame.
func timeEverywhere(c *accountsClient, path string, clients *sessionbench.Clients, base int, tokens []string) (time.Duration, error) {
	for i, t := range tokens {
		if err := clients.Dial(base+i, t); err != nil {
			return 0, err
		}
	}
	for range tokens {
		if _, err := clients.Next("ready", -1); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	if err := c.post(path, nil, tokens[0]); err != nil {
		return 0, err
	}
	var last time.Time
	for range tokens {
		ev, err := clients.Next("close", -1)
		if err != nil {
			return 0, err
		}
		if ev.Idx < base || ev.Code != live.CloseSignedOut {
			return 0, fmt.Errorf("socket %d closed with %d %q during log out everywhere", ev.Idx, ev.Code, ev.Text)
		}
		if ev.At.After(last) {
			last = ev.At
		}
	}
	return last.Sub(start), nil
}

// timeSignOut signs token out through c's POST /sign-out and times it
// until the client of socket idx has read the 4001 close frame.
func timeSignOut(c *accountsClient, clients *sessionbench.Clients, idx int, token string) (time.Duration, error) {
	start := time.Now()
	if err := c.signOut(token); err != nil {
		return 0, err
	}
	ev, err := clients.Next("close", idx)
	if err != nil {
		return 0, err
	}
	if ev.Code != live.CloseSignedOut {
		return 0, fmt.Errorf("socket %d closed with %d %q, want %d", idx, ev.Code, ev.Text, live.CloseSignedOut)
	}
	return ev.At.Sub(start), nil
}

// reopen opens socket idx again with token and waits for its hello.
func reopen(clients *sessionbench.Clients, idx int, token string) error {
	if err := clients.Dial(idx, token); err != nil {
		return err
	}
	_, err := clients.Next("ready", idx)
	return err
}

func millis(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func userEmail(i int) string { return fmt.Sprintf("user%d@example.com", i) }

// parallel runs do(0…n-1) with width calls in flight and returns how long
// it took; the first error stops further calls.
func parallel(ctx context.Context, n, width int, do func(i int) error) (time.Duration, error) {
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range width {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := do(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					next.Store(int64(n))
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return time.Since(start), first
}

// statusError is an answer other than 2xx or 303.
type statusError struct {
	path   string
	status int
	body   string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("POST %s: status %d: %s", e.path, e.status, e.body)
}

// accountsClient speaks the example's HTTP contract, asking for JSON.
type accountsClient struct {
	url string
	hc  *http.Client
}

// postBody posts form to path, with bearer's token when set, and returns the
// answer's body; an answer other than 2xx or 303 is a *statusError.
func (a *accountsClient) postBody(path string, form url.Values, bearer string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, a.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusSeeOther {
		return nil, &statusError{path: path, status: resp.StatusCode, body: strings.TrimSpace(string(body))}
	}
	return body, nil
}

func (a *accountsClient) post(path string, form url.Values, bearer string) error {
	_, err := a.postBody(path, form, bearer)
	return err
}

// auth registers or signs in and returns the session's token.
func (a *accountsClient) auth(path string, form url.Values, bearer string) (string, error) {
	body, err := a.postBody(path, form, bearer)
	if err != nil {
		return "", err
	}
	var answer struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || answer.Token == "" {
		return "", fmt.Errorf("POST %s answered %q, want a token", path, body)
	}
	return answer.Token, nil
}

func (a *accountsClient) signOut(token string) error { return a.post("/sign-out", nil, token) }

// register registers email and returns its session's token. It is the
// scenario's setup, not a measure: an answer of 5xx (a database shared
// with other work may refuse a connection) is tried again, up to five
// times in all, and reported.
func (a *accountsClient) register(env *Env, email string) (string, error) {
	form := url.Values{"email": {email}, "password": {accountsPassword}, "password_confirmation": {accountsPassword}}
	for try := 1; ; try++ {
		t, err := a.auth("/auth/user/password/register", form, "")
		var se *statusError
		if !errors.As(err, &se) || se.status < 500 || try == 5 {
			return t, err
		}
		env.Progress("accounts: registering %s answered %d (%s); trying again", email, se.status, se.body)
		time.Sleep(time.Duration(try) * 200 * time.Millisecond)
	}
}

// accountsApp is the example running as a process.
type accountsApp struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startAccounts runs the example's serve command on a free port with
// production secrets, on dbURL (its SQLite file when ""), and returns once
// it answers /healthz. Its log goes to a file of the run's temporary
// folder.
func startAccounts(ctx context.Context, env *Env, bin, dbURL string) (*accountsApp, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	dir, err := os.MkdirTemp(env.Temp, "accounts-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KILN_") { // configured here alone
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "KILN_ADDR="+addr, "KILN_DATA_DIR="+dir,
		"KILN_TOKEN_SIGNING_SECRET=kiln-bench-token-signing-secret-0123456789abcdef",
		"KILN_COOKIE_KEYS=kiln-bench-cookie-key-0123456789abcdef",
		"KILN_RATE_LIMITS__DISABLED=true",
		"KILN_LIVE__SWEEP_INTERVAL=1m",
		"KILN_LIVE__MAX_SOCKETS_PER_SUBJECT="+strconv.Itoa(env.Everywhere+64))
	if dbURL != "" {
		cmd.Env = append(cmd.Env, "KILN_DATABASE_URL="+dbURL)
	}
	logs, err := os.Create(filepath.Join(dir, "app.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	// A group of its own, for stop; killed should this command die first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logs.Close()
		return nil, err
	}
	app := &accountsApp{url: "http://" + addr, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logs.Close(); close(app.done) }()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(app.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return app, nil
			}
		}
		select {
		case <-app.done:
			log, _ := os.ReadFile(logs.Name())
			return nil, fmt.Errorf("the example exited before serving:\n%s", log)
		case <-ctx.Done():
			app.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			app.stop()
			log, _ := os.ReadFile(logs.Name())
			return nil, fmt.Errorf("the example did not answer /healthz within a minute:\n%s", log)
		}
	}
}

// stop interrupts the example, and kills it when it has not exited within
// ten seconds.
func (a *accountsApp) stop() {
	_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		<-a.done
	}
}
