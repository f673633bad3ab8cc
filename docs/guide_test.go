//go:build unix

package docs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kiln-go/kiln/live"
)

// The guide that TestGettingStarted follows, and the conventions it reads
// it by.
const (
	guideDoc = "getting-started.md"
	// kilnPlaceholder is the path of the reader's kiln clone in the
	// guide's commands; the test puts this checkout's path in its place.
	kilnPlaceholder = "/path/to/kiln"
	// serverMarker, on the line before a ```sh fence, says that its last
	// command serves until the reader stops it with Ctrl-C.
	serverMarker = "<!-- runs until stopped -->"
)

// saveAs is how the guide names the file a ```go block is saved as.
var saveAs = regexp.MustCompile("[Ss]ave (?:this|it) as `([^`]+)`")

// guideTimeout bounds the whole walk through the guide. A cold module
// cache and build cache take minutes (SQLite is a large package); a warm
// one, seconds.
const guideTimeout = 8 * time.Minute

// TestGettingStarted follows getting-started.md as a reader would, in an
// empty folder outside this module, against this checkout: it runs each
// ```sh block in order (with the path of this checkout for the guide's
// placeholder path of a kiln clone), saves each ```go block as the file the
// text before it names, and checks each ```text block against the output of
// the commands before it. The block marked as a server is started, tried as
// step 3 of the guide tries it, over HTTP and WebSockets, and stopped with
// the Ctrl-C the guide tells the reader to press. Under -v it logs each
// step and how long it took.
func TestGettingStarted(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the guide's programs")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not available: the guide's commands need it")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh: the guide's commands need a POSIX shell")
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(guideDoc)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := fencedBlocks(guideDoc, text)
	if err != nil {
		t.Fatal(err)
	}
	placeholders := 0
	for _, b := range blocks {
		if b.lang == "sh" {
			placeholders += strings.Count(strings.Join(b.lines, "\n"), kilnPlaceholder)
		}
	}
	if placeholders != 1 {
		t.Fatalf("%s: the commands name the kiln clone's placeholder path %s %d times, want once (set in a variable)", guideDoc, kilnPlaceholder, placeholders)
	}

	ctx, cancel := context.WithTimeout(t.Context(), guideTimeout)
	defer cancel()
	g := &guide{t: t, root: root, cwd: t.TempDir(), scratch: t.TempDir()}
	var outputs, servers int
	for _, b := range blocks {
		at := fmt.Sprintf("%s:%d", guideDoc, b.line)
		switch {
		case b.lang == "go":
			g.save(at, b)
		case b.lang == "sh" && b.marker() == serverMarker:
			servers++
			base, stop := g.serve(ctx, at, b)
			tryTheApp(ctx, t, base)
			stop()
		case b.lang == "sh":
			g.run(ctx, at, b)
		case b.lang == "text":
			if g.stdout == nil {
				t.Fatalf("%s: a text block, the output of commands, follows no commands", at)
			}
			if got, want := strings.TrimSpace(*g.stdout), strings.TrimSpace(strings.Join(b.lines, "\n")); got != want {
				t.Fatalf("%s: the commands printed\n%s\nbut the guide shows\n%s", at, got, want)
			}
			t.Logf("%s: the output is the one shown", at)
			g.stdout = nil
			outputs++
		default:
			t.Fatalf("%s: a ```%s block: this test knows go, sh and text blocks", at, b.lang)
		}
	}
	if outputs == 0 || servers != 1 {
		t.Fatalf("%s: %d outputs checked and %d servers run, want at least one output (step 1's) and one server (step 2's)", guideDoc, outputs, servers)
	}
}

// guide is the state of a reader's walk through the guide: the shell's
// working folder, and the output of the last commands run.
type guide struct {
	t       *testing.T
	root    string // this checkout: the reader's kiln clone
	cwd     string // where the next commands run and files are saved
	scratch string // the test's own files, outside the reader's folder
	stdout  *string
}

// save writes a go block to the file the text before it names, in the
// current folder. A block that overwrites a file must say so.
func (g *guide) save(at string, b block) {
	before := strings.Join(b.before, " ")
	m := saveAs.FindAllStringSubmatch(before, -1)
	if len(m) != 1 {
		g.t.Fatalf("%s: the text before the go block names %d files to save it as, want one (\"save this as `main.go`\")", at, len(m))
	}
	name := filepath.Join(g.cwd, m[0][1])
	if _, err := os.Stat(name); err == nil && !strings.Contains(before, "replacing") {
		g.t.Fatalf("%s: %s exists, from an earlier step, but the text does not say the block replaces it", at, m[0][1])
	}
	if err := os.WriteFile(name, []byte(strings.Join(b.lines, "\n")+"\n"), 0o644); err != nil {
		g.t.Fatal(err)
	}
	g.t.Logf("%s: saved as %s", at, m[0][1])
	g.stdout = nil
}

// script is a sh block's commands, with this checkout for the kiln clone.
func (g *guide) script(b block) string {
	return strings.ReplaceAll(strings.Join(b.lines, "\n"), kilnPlaceholder, "'"+strings.ReplaceAll(g.root, "'", `'\''`)+"'")
}

// run runs a sh block's commands in the current folder, stopping at the
// first that fails, and moves to the folder they end in.
func (g *guide) run(ctx context.Context, at string, b block) {
	pwd, err := os.Create(filepath.Join(g.scratch, "pwd"))
	if err != nil {
		g.t.Fatal(err)
	}
	defer pwd.Close()
	script := g.script(b)
	cmd := exec.CommandContext(ctx, "sh", "-ec", script+"\npwd >&3")
	cmd.Dir = g.cwd
	// A go.work of the test's environment is not the reader's.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	cmd.ExtraFiles = []*os.File{pwd}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := g.progress(at)
	start := time.Now()
	err = cmd.Run()
	done()
	g.t.Logf("%s: ran %s in %v", at, commands(script), time.Since(start).Round(time.Millisecond))
	if err != nil {
		g.t.Fatalf("%s: the commands failed: %v\n%s%s", at, err, stdout.String(), stderr.String())
	}
	folder, err := os.ReadFile(pwd.Name())
	if err != nil {
		g.t.Fatal(err)
	}
	g.cwd = strings.TrimSpace(string(folder))
	out := stdout.String()
	g.stdout = &out
}

// serve starts a sh block whose last command is a server, with ADDR set
// to port 0 of the loopback address, and waits until it says where it
// serves. stop sends it the reader's Ctrl-C (SIGINT to its process group)
// and waits for it to end.
func (g *guide) serve(ctx context.Context, at string, b block) (base string, stop func()) {
	script := g.script(b)
	cmd := exec.Command("sh", "-ec", script)
	cmd.Dir = g.cwd
	cmd.Env = append(os.Environ(), "GOWORK=off", "ADDR=127.0.0.1:0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &watchedOutput{want: servingOn, seen: make(chan string, 1)}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	exited := make(chan struct{}) // closed once the commands ended, with waitErr
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	group := -cmd.Process.Pid
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = syscall.Kill(group, syscall.SIGINT)
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				g.t.Errorf("%s: the server did not stop on SIGINT within 30 s", at)
				_ = syscall.Kill(group, syscall.SIGKILL)
				<-exited
			}
		})
	}
	g.t.Cleanup(stop)

	done := g.progress(at)
	defer done()
	select {
	case base = <-out.seen:
		g.t.Logf("%s: ran %s: serving on %s after %v", at, commands(script), base, time.Since(start).Round(time.Millisecond))
		return base, stop
	case <-exited:
		g.t.Fatalf("%s: the commands ended (%v) before serving:\n%s", at, waitErr, out.String())
	case <-ctx.Done():
		g.t.Fatalf("%s: not serving after %v:\n%s", at, time.Since(start).Round(time.Second), out.String())
	}
	return "", stop
}

// servingOn is the server's line saying where it listens.
var servingOn = regexp.MustCompile(`serving on (http://127\.0\.0\.1:[0-9]+)\n`)

// progress logs, every 15 s until done is called, that the step at is
// still running: a cold cache makes the first builds slow.
func (g *guide) progress(at string) (done func()) {
	stopped := make(chan struct{})
	start := time.Now()
	go func() {
		tick := time.NewTicker(15 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopped:
				return
			case <-tick.C:
				g.t.Logf("%s: still running after %v (building; a cold cache takes minutes)", at, time.Since(start).Round(time.Second))
			}
		}
	}()
	return func() { close(stopped) }
}

// commands is a script's commands on one line, for the log.
func commands(script string) string {
	var cmds []string
	for _, l := range strings.Split(script, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			cmds = append(cmds, l)
		}
	}
	return strconv.Quote(strings.Join(cmds, "; "))
}

// watchedOutput collects a process's output and sends on seen the first
// submatch of want, once the output holds it.
type watchedOutput struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want *regexp.Regexp
	seen chan string
	once sync.Once
}

func (w *watchedOutput) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if m := w.want.FindSubmatch(w.buf.Bytes()); m != nil {
		w.once.Do(func() { w.seen <- string(m[1]) })
	}
	return len(p), nil
}

func (w *watchedOutput) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// tryTheApp does over HTTP and WebSockets what step 3 of the guide has the
// reader do in two browser windows, and checks what step 2 says the glue
// does.
func tryTheApp(ctx context.Context, t *testing.T, base string) {
	start := time.Now()
	defer func() { t.Logf("%s: step 3, two windows, in %v", guideDoc, time.Since(start).Round(time.Millisecond)) }()
	const email, first, second = "ada@example.com", "correct horse", "battery staple"
	one, two := newWindow(ctx, t, base), newWindow(ctx, t, base)

	// The pages answer; a stranger is sent to sign in, and refused a socket.
	one.wantPage("/sign-in", "Sign in")
	one.wantRedirect("GET /", one.get("/"), "/sign-in")
	if _, status := one.dial(); status != http.StatusUnauthorized {
		t.Fatalf("a socket without a session: status %d, want 401", status)
	}
	// A cross-origin browser post is refused.
	if resp := one.post("/auth/user/password/sign_in", url.Values{"email": {email}, "password": {first}}, "Origin", "http://elsewhere.example"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a cross-origin sign-in post: status %d, want 403", resp.StatusCode)
	}

	// 1. Register: the live page, a socket whose first frame is its hello,
	// and the clock.
	one.wantRedirect("register", one.post("/auth/user/password/register", url.Values{
		"email": {email}, "password": {first}, "password_confirmation": {first}}), "/")
	one.wantPage("/", "Signed in as "+email)
	oneSocket, _ := one.dial()
	one.waitTick(oneSocket)

	// 2. Sign in as the same user in a second window; as JSON, the answer
	// holds the token and the user, without the hashed password.
	resp := two.post("/auth/user/password/sign_in", url.Values{"email": {email}, "password": {first}}, "Accept", "application/json")
	var signedIn struct {
		Token string         `json:"token"`
		User  map[string]any `json:"user"`
	}
	if err := json.Unmarshal([]byte(readBody(t, resp)), &signedIn); err != nil || resp.StatusCode != http.StatusOK || signedIn.Token == "" || signedIn.User["email"] != email {
		t.Fatalf("a JSON sign-in: status %d, %+v (%v)", resp.StatusCode, signedIn, err)
	}
	for field := range signedIn.User {
		if strings.Contains(strings.ToLower(field), "password") {
			t.Errorf("the JSON sign-in's user holds %q", field)
		}
	}
	twoSocket, _ := two.dial()

	// 3. Change the password in the first: the second window's socket
	// closes with 4001 "password changed", its session no longer holds,
	// and the sign-in page shows why. The first window's old socket
	// closes too; it is back on the live page, on a fresh session.
	one.wantRedirect("change password", one.post("/auth/user/password/change", url.Values{
		"current_password": {first}, "password": {second}, "password_confirmation": {second}}), "/")
	wantClose(t, "the second window's socket", twoSocket, live.CloseSignedOut, "password changed")
	wantClose(t, "the first window's old socket", oneSocket, live.CloseSignedOut, "password changed")
	if status := two.probe(); status != http.StatusUnauthorized {
		t.Errorf("client.js's question for the second window: status %d, want 401", status)
	}
	two.wantPage("/sign-in?reason=password%20changed", "signed out: password changed")
	one.wantPage("/", "Signed in as "+email)
	oneSocket, _ = one.dial()

	// 4. Sign the second window in again; sign out everywhere in the
	// first: both sockets close, and both windows are signed out.
	two.wantRedirect("sign in again", two.post("/auth/user/password/sign_in", url.Values{"email": {email}, "password": {second}}), "/")
	twoSocket, _ = two.dial()
	one.wantRedirect("sign out everywhere", one.post("/auth/user/log_out_everywhere", nil), "/sign-in")
	wantClose(t, "the second window's socket", twoSocket, live.CloseSignedOut, "signed out everywhere")
	wantClose(t, "the first window's socket", oneSocket, live.CloseSignedOut, "signed out everywhere")
	if status := two.probe(); status != http.StatusUnauthorized {
		t.Errorf("client.js's question for the other window: status %d, want 401", status)
	}
	one.wantRedirect("GET / after signing out everywhere", one.get("/"), "/sign-in")
	two.wantRedirect("GET / in the other window", two.get("/"), "/sign-in")

	// And POST /sign-out closes its session's socket with "signed out".
	one.wantRedirect("sign in", one.post("/auth/user/password/sign_in", url.Values{"email": {email}, "password": {second}}), "/")
	oneSocket, _ = one.dial()
	one.wantRedirect("sign out", one.post("/sign-out", nil), "/sign-in")
	wantClose(t, "the signed-out socket", oneSocket, live.CloseSignedOut, "signed out")
}

// window is a browser window: its own cookies, redirects not followed,
// posts sent with the page's Origin as a browser's are.
type window struct {
	ctx    context.Context
	t      *testing.T
	base   string
	jar    http.CookieJar
	client *http.Client
}

func newWindow(ctx context.Context, t *testing.T, base string) *window {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &window{ctx: ctx, t: t, base: base, jar: jar, client: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (w *window) do(method, path string, body io.Reader, header ...string) *http.Response {
	w.t.Helper()
	req, err := http.NewRequestWithContext(w.ctx, method, w.base+path, body)
	if err != nil {
		w.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := w.client.Do(req)
	if err != nil {
		w.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

func (w *window) get(path string) *http.Response {
	w.t.Helper()
	return w.do(http.MethodGet, path, nil)
}

// post sends a form as the page's form would; header pairs override.
func (w *window) post(path string, form url.Values, header ...string) *http.Response {
	w.t.Helper()
	header = append([]string{"Origin", w.base, "Content-Type", "application/x-www-form-urlencoded"}, header...)
	return w.do(http.MethodPost, path, strings.NewReader(form.Encode()), header...)
}

func (w *window) wantRedirect(what string, resp *http.Response, to string) {
	w.t.Helper()
	body := readBody(w.t, resp)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != to {
		w.t.Fatalf("%s: %d to %q, want 303 to %q\n%s", what, resp.StatusCode, resp.Header.Get("Location"), to, body)
	}
}

func (w *window) wantPage(path, holds string) {
	w.t.Helper()
	resp := w.get(path)
	body := readBody(w.t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, holds) {
		w.t.Fatalf("GET %s: %d, want 200 with %q:\n%s", path, resp.StatusCode, holds, body)
	}
}

// probe asks, as client.js does after a 4001, whether the window's session
// still holds: a plain GET of the socket's URL.
func (w *window) probe() int {
	w.t.Helper()
	resp := w.get("/live/websocket")
	readBody(w.t, resp)
	return resp.StatusCode
}

// dial opens the live page's socket, with the window's cookies and Origin.
// On an upgrade it reads the hello, which must name the socket's session;
// otherwise it returns the refusal's status.
func (w *window) dial() (*websocket.Conn, int) {
	w.t.Helper()
	dialer := websocket.Dialer{Jar: w.jar, HandshakeTimeout: 30 * time.Second}
	conn, resp, err := dialer.DialContext(w.ctx, "ws"+strings.TrimPrefix(w.base, "http")+"/live/websocket", http.Header{"Origin": {w.base}})
	if err != nil {
		if resp == nil {
			w.t.Fatalf("dial the live endpoint: %v", err)
		}
		return nil, resp.StatusCode
	}
	w.t.Cleanup(func() { conn.Close() })
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var hello live.Frame
	if err := conn.ReadJSON(&hello); err != nil {
		w.t.Fatalf("the socket's first frame: %v", err)
	}
	var p struct {
		SocketID string `json:"socket_id"`
	}
	if err := json.Unmarshal(hello.Payload, &p); hello.Event != "hello" || err != nil || !strings.HasPrefix(p.SocketID, "users_sessions:") {
		w.t.Fatalf("the socket's first frame is %s %s, want a hello with a users_sessions: socket id", hello.Event, hello.Payload)
	}
	return conn, http.StatusSwitchingProtocols
}

// waitTick reads frames until the clock's tick, which must hold a time.
func (w *window) waitTick(conn *websocket.Conn) {
	w.t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		var f live.Frame
		if err := conn.ReadJSON(&f); err != nil {
			w.t.Fatalf("waiting for the clock's tick: %v", err)
		}
		var p struct {
			Time string `json:"time"`
		}
		if f.Event == "tick" && json.Unmarshal(f.Payload, &p) == nil && p.Time != "" {
			return
		}
	}
}

// wantClose reads until the server closes the socket, and checks the
// close code and reason.
func wantClose(t *testing.T, what string, conn *websocket.Conn, code int, reason string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("%s was not closed within 30 s", what)
			}
			if !errors.As(err, &ce) {
				t.Fatalf("%s ended without a close frame: %v", what, err)
			}
			if ce.Code != code || ce.Text != reason {
				t.Fatalf("%s closed with %d %q, want %d %q", what, ce.Code, ce.Text, code, reason)
			}
			return
		}
	}
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
