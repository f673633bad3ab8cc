package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-go/kiln/internal/latency"
	"github.com/kiln-go/kiln/internal/sessionbench"
	"github.com/kiln-go/kiln/live"
)

// sessionImpls are the endpoints of the memory and disconnect scenarios.
var sessionImpls = []string{implKiln, implMelody, implCentrifuge}

// serverProc is a server process (the internal-server role): one
// endpoint, and a control server to issue and revoke its tokens and to
// read its memory.
type serverProc struct {
	impl    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	ws      string // the endpoint's ws:// URL
	control string
	http    *http.Client
}

// startServer starts a server process with impl's endpoint, for n
// sessions; args are more of the role's flags.
func startServer(ctx context.Context, env *Env, impl string, n int, args ...string) (*serverProc, error) {
	s, fields, err := startRole(ctx, env, 2, "internal-server", append([]string{"-impl", impl, "-sessions", strconv.Itoa(n)}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("the %s server did not start: %w", impl, err)
	}
	s.impl, s.ws, s.control = impl, fields[0], fields[1]
	return s, nil
}

// startRole starts this command again in role, with args, and returns
// the want fields of the "ready …" line it prints first.
func startRole(ctx context.Context, env *Env, want int, role string, args ...string) (s *serverProc, fields []string, err error) {
	s = &serverProc{http: &http.Client{Timeout: time.Minute}}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	s.cmd = exec.CommandContext(ctx, env.Self, append([]string{role}, args...)...)
	s.cmd.Stderr = os.Stderr
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		return s, nil, err
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return s, nil, err
	}
	if err = s.cmd.Start(); err != nil {
		return s, nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	fields = strings.Fields(line)
	if err != nil || len(fields) != want+1 || fields[0] != "ready" {
		return s, nil, fmt.Errorf("%s printed %q, %v; want ready and %d fields", role, line, err, want)
	}
	return s, fields[1:], nil
}

// post posts body to the control server's path and returns the answer.
func (s *serverProc) post(path, body string) (string, error) {
	resp, err := s.http.Post(s.control+path, "text/plain", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	return strings.TrimSpace(string(b)), nil
}

// issue issues n tokens.
func (s *serverProc) issue(n int) ([]string, error) {
	out, err := s.post("/issue?n="+strconv.Itoa(n), "")
	if err != nil {
		return nil, err
	}
	tokens := strings.Split(out, "\n")
	if len(tokens) != n {
		return nil, fmt.Errorf("issued %d tokens, want %d", len(tokens), n)
	}
	return tokens, nil
}

// revoke revokes token and returns when its revocation committed.
func (s *serverProc) revoke(token string) (time.Time, error) {
	out, err := s.post("/revoke", token)
	if err != nil {
		return time.Time{}, err
	}
	ns, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("revoke answered %q", out)
	}
	return time.Unix(0, ns), nil
}

// memory is the server process's memory in use.
func (s *serverProc) memory() (sessionbench.Memory, error) {
	var m sessionbench.Memory
	resp, err := s.http.Get(s.control + "/memory")
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("memory: %s", resp.Status)
	}
	return m, json.NewDecoder(resp.Body).Decode(&m)
}

// close ends the process: its stdin closes, and it is killed when it has
// not exited ten seconds later.
func (s *serverProc) close() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.stdin.Close()
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// sessionFixture is a server process and a client process that holds
// the client ends of its sockets.
type sessionFixture struct {
	server  *serverProc
	clients *sessionbench.Clients
	tokens  []string
}

// startSessions starts a server process with impl's endpoint (args are
// more of its flags), issues n tokens, and starts the client process,
// which has not dialed yet.
func startSessions(ctx context.Context, env *Env, impl string, n int, args ...string) (f *sessionFixture, err error) {
	f = &sessionFixture{}
	defer func() {
		if err != nil {
			f.close()
		}
	}()
	if f.server, err = startServer(ctx, env, impl, n, args...); err != nil {
		return f, err
	}
	if f.tokens, err = f.server.issue(n); err != nil {
		return f, err
	}
	clients := exec.CommandContext(ctx, env.Self, "internal-clients", "-impl", impl, "-url", f.server.ws)
	if f.clients, err = sessionbench.StartClients(clients); err != nil {
		return f, err
	}
	// A loaded server may miss a pong and drop a socket; a browser would
	// reopen it, and so do these clients. The drops are counted.
	f.clients.Reopen = true
	return f, nil
}

// revokeOne revokes session idx's token through via (this fixture's
// server, or another node's), waits for its close frame and returns the
// time from the revocation's commit to the client's read of the close
// frame; then it opens a new session in its place.
func (f *sessionFixture) revokeOne(via *serverProc, idx int) (time.Duration, error) {
	committed, err := via.revoke(f.tokens[idx])
	if err != nil {
		return 0, err
	}
	ev, err := f.clients.Next("close", idx)
	if err != nil {
		return 0, err
	}
	if ev.Code != live.CloseSignedOut || ev.Text != "revoked" {
		return 0, fmt.Errorf("%s: socket %d closed with %d %q, want %d revoked", f.server.impl, idx, ev.Code, ev.Text, live.CloseSignedOut)
	}
	latency := ev.At.Sub(committed)
	tokens, err := f.server.issue(1)
	if err != nil {
		return 0, err
	}
	f.tokens[idx] = tokens[0]
	if err := f.clients.Dial(idx, tokens[0]); err != nil {
		return 0, err
	}
	if _, err := f.clients.Next("ready", idx); err != nil {
		return 0, err
	}
	return latency, nil
}

// close ends both processes.
func (f *sessionFixture) close() {
	if f.clients != nil {
		f.clients.Close()
	}
	if f.server != nil {
		f.server.close()
	}
}

// memoryScenario is scenario 1.
type memoryScenario struct{}

func (memoryScenario) Section() Section {
	return Section{Name: "memory", Title: "1. Memory per idle live session",
		Measures: "What one idle live session costs the server, after its first frame was sent (kiln's and melody-scan's hello, " +
			"centrifuge's connect reply). A server process is started per measurement with one endpoint and one user's tokens; " +
			"a client process dials N sockets (Authorization: Bearer) and waits until each has read its first frame. The " +
			"server's heap and stacks in use (runtime.MemStats HeapInuse + StackInuse) and its resident set (/proc/self/statm) " +
			"are read after garbage collection before and after the dials; the difference is divided by N. All three endpoints " +
			"authenticate with the same kiln token store (SQLite, presence check). A loaded server may drop a socket (a " +
			"missed pong); the clients reopen it, as kiln's client.js does, and the drops are counted."}
}

func (memoryScenario) Run(ctx context.Context, env *Env) ([]Row, error) {
	var rows []Row
	for _, n := range env.Sessions {
		hs := Row{ID: fmt.Sprintf("memory-heapstack-%d", n), Metric: fmt.Sprintf("heap+stack per session, %s sessions", sessionsText(n)),
			Unit: "KiB", Peers: map[string]Figure{}, Plot: plotMemHS, Sessions: n,
			Goals: []Goal{{AtMost: true, Value: 16}}}
		rss := Row{ID: fmt.Sprintf("memory-rss-%d", n), Metric: fmt.Sprintf("RSS per session, %s sessions", sessionsText(n)),
			Unit: "KiB", Peers: map[string]Figure{}, Plot: plotMemRSS, Sessions: n,
			Goals: []Goal{{AtMost: true, Value: 18}}}
		drops := droppedRow("memory", n)
		for rep := range env.Repeats {
			for _, impl := range sessionImpls {
				heapStack, rssPer, dropped, err := measureMemory(ctx, env, impl, n)
				if err != nil {
					return nil, fmt.Errorf("%s, %d sessions: %w", impl, n, err)
				}
				env.Progress("memory: %s, %d sessions, repeat %d/%d: heap+stack %.1f KiB, RSS %.1f KiB per session; %d dropped and reopened",
					impl, n, rep+1, env.Repeats, heapStack, rssPer, dropped)
				addFigure(&hs, impl, heapStack)
				addFigure(&rss, impl, rssPer)
				addFigure(&drops, impl, float64(dropped))
			}
		}
		rows = append(rows, hs, rss, drops)
	}
	return rows, nil
}

// droppedRow counts the sockets the servers dropped during a scenario,
// which the clients reopened: none is the goal.
func droppedRow(scenario string, n int) Row {
	return Row{ID: fmt.Sprintf("%s-dropped-%d", scenario, n), Metric: fmt.Sprintf("sockets dropped by the server and reopened, %s sessions", sessionsText(n)),
		Peers: map[string]Figure{}, Goals: []Goal{{AtMost: true, Value: 0}}}
}

// addFigure adds a repeat's value to impl's figure of row.
func addFigure(row *Row, impl string, v float64) {
	if impl == implKiln {
		row.Kiln = append(row.Kiln, v)
		return
	}
	row.Peers[impl] = append(row.Peers[impl], v)
}

// measureMemory opens n sessions on a fresh server and returns what each
// added to its heap and stacks, and to its resident set, in KiB.
func measureMemory(ctx context.Context, env *Env, impl string, n int) (heapStack, rss float64, dropped int, err error) {
	f, err := startSessions(ctx, env, impl, n)
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.close()
	before, err := f.server.memory()
	if err != nil {
		return 0, 0, 0, err
	}
	if err := f.clients.DialAll(f.tokens); err != nil {
		return 0, 0, 0, err
	}
	after, err := f.server.memory()
	if err != nil {
		return 0, 0, 0, err
	}
	heap, stack, r := sessionbench.PerSession(before, after, n)
	return (heap + stack) / 1024, r / 1024, f.clients.Reopened, nil
}

// disconnectScenario is scenario 2.
type disconnectScenario struct{}

func (disconnectScenario) Section() Section {
	return Section{Name: "disconnect", Title: "2. Disconnect latency",
		Measures: "The time from a revocation's commit to the moment the client reads its socket's close frame, with N idle " +
			"live sessions open. The server (one process per endpoint) and the clients (another process) are apart; the " +
			"command asks the server over HTTP to revoke one session's token. The token store's revocation notifier then " +
			"disconnects the session's socket id: kiln finds it in its socket-id index, melody-scan scans every session with " +
			"BroadcastFilter, centrifuge disconnects its user (here, the socket id) through its own index (Node.Disconnect). " +
			"Each revoked session is replaced by a new one, so N stay open. p50 and p99 are taken over each repeat's samples. " +
			"Sockets the server drops meanwhile are reopened and counted, as in scenario 1."}
}

func (disconnectScenario) Run(ctx context.Context, env *Env) ([]Row, error) {
	var rows []Row
	for _, n := range env.Sessions {
		p50 := Row{ID: fmt.Sprintf("disconnect-p50-%d", n), Metric: fmt.Sprintf("p50, %s sessions", sessionsText(n)),
			Unit: "µs", Peers: map[string]Figure{}, Plot: plotP50, Sessions: n}
		p99 := Row{ID: fmt.Sprintf("disconnect-p99-%d", n), Metric: fmt.Sprintf("p99, %s sessions", sessionsText(n)),
			Unit: "µs", Peers: map[string]Figure{}, Plot: plotP99, Sessions: n,
			Goals: []Goal{{AtMost: true, Value: 500, Note: "quiet machine"}, {AtMost: true, Value: 1, Of: "peer:" + implCentrifuge}}}
		drops := droppedRow("disconnect", n)
		for rep := range env.Repeats {
			for _, impl := range sessionImpls {
				lat, dropped, err := measureDisconnects(ctx, env, impl, n)
				if err != nil {
					return nil, fmt.Errorf("%s, %d sessions: %w", impl, n, err)
				}
				a, b := latency.Percentile(lat, 50), latency.Percentile(lat, 99)
				env.Progress("disconnect: %s, %d sessions, repeat %d/%d: p50 %s, p99 %s over %d; %d dropped and reopened", impl, n, rep+1, env.Repeats,
					a.Round(time.Microsecond), b.Round(time.Microsecond), len(lat), dropped)
				addFigure(&p50, impl, micros(a))
				addFigure(&p99, impl, micros(b))
				addFigure(&drops, impl, float64(dropped))
			}
		}
		rows = append(rows, p50, p99, drops)
	}
	return rows, nil
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// measureDisconnects opens n sessions on a fresh server and returns the
// latencies of env.Samples disconnects, spread over the sessions, and how
// many sockets the server dropped meanwhile.
func measureDisconnects(ctx context.Context, env *Env, impl string, n int) ([]time.Duration, int, error) {
	f, err := startSessions(ctx, env, impl, n)
	if err != nil {
		return nil, 0, err
	}
	defer f.close()
	if err := f.clients.DialAll(f.tokens); err != nil {
		return nil, 0, err
	}
	lat := make([]time.Duration, 0, env.Samples)
	for i := range env.Samples {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		d, err := f.revokeOne(f.server, i*n/env.Samples%n)
		if err != nil {
			return nil, 0, err
		}
		lat = append(lat, d)
	}
	return lat, f.clients.Reopened, nil
}
