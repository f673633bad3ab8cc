package main

// Two instances of the example, as two processes, on one PostgreSQL
// database and one LISTEN/NOTIFY channel: a session made on one opens a
// socket on the other, and log out everywhere on the first closes it.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/live"
)

// multinodeInstance is one running instance of the example.
type multinodeInstance struct {
	name string
	url  string
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs strings.Builder
	done chan struct{}
}

func (p *multinodeInstance) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// startMultinodeInstance runs bin with env and a free port, and returns
// once it logs that it serves.
func startMultinodeInstance(t *testing.T, name, bin string, env []string) *multinodeInstance {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &multinodeInstance{name: name, url: "http://" + addr, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve")
	for _, kv := range os.Environ() {
		// The instance is configured by env alone, not by the caller's KILN_….
		if !strings.HasPrefix(kv, "KILN_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Env = append(p.cmd.Env, "KILN_ADDR="+addr, "KILN_DATA_DIR="+t.TempDir())
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	serving := make(chan struct{})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			if strings.Contains(line, `msg="kiln: serving"`) {
				close(serving)
			}
		}
		_ = p.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			t.Errorf("%s did not stop on SIGINT:\n%s", name, p.log())
		}
		if t.Failed() {
			t.Logf("%s logged:\n%s", name, p.log())
		}
	})
	select {
	case <-serving:
	case <-p.done:
		t.Fatalf("%s exited before serving:\n%s", name, p.log())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not serve within a minute:\n%s", name, p.log())
	}
	return p
}

// TestTwoInstances: register on instance 1, open a socket on instance 2
// with the session cookie, log out everywhere on instance 1: the socket on
// instance 2 is closed with 4001 by the PostgreSQL message (the sweep is
// an hour away, and would say "revoked").
func TestTwoInstances(t *testing.T) {
	dbURL := testdb.PostgresSchemaURL(t)
	// The nodes' channel, of this test's own (the transport's channel
	// parameter), so that parallel test packages do not hear each other.
	pubsubURL, err := url.Parse(testdb.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	q := pubsubURL.Query()
	q.Set("channel", testdb.UniqueName("kiln_example_"))
	pubsubURL.RawQuery = q.Encode()
	bin := filepath.Join(t.TempDir(), "accounts")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	env := []string{
		"KILN_DATABASE_URL=" + dbURL,
		"KILN_PUBSUB_URL=" + pubsubURL.String(),
		"KILN_TOKEN_SIGNING_SECRET=kiln-multinode-signing-secret-0123456789abcdef",
		"KILN_COOKIE_KEYS=kiln-multinode-cookie-key-0123456789abcdef",
		"KILN_SWEEP_INTERVAL=1h",
	}
	// One after the other: the first creates the tables.
	one := startMultinodeInstance(t, "instance 1", bin, env)
	two := startMultinodeInstance(t, "instance 2", bin, env)

	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	form := url.Values{"email": {"two@example.com"}, "password": {"password123"}, "password_confirmation": {"password123"}}
	req, err := http.NewRequest(http.MethodPost, one.url+"/auth/user/password/register", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var registered struct {
		Token string `json:"token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &registered) != nil || registered.Token == "" {
		t.Fatalf("register on instance 1: %d %s", resp.StatusCode, body)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "kiln_session" && c.Value != "" {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatal("register on instance 1 set no session cookie")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	header := http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}}
	conn, wsResp, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(two.url, "http")+"/live/websocket", header)
	if err != nil {
		status := 0
		if wsResp != nil {
			status = wsResp.StatusCode
		}
		t.Fatalf("socket on instance 2 with instance 1's cookie: %d %v", status, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetReadDeadline(deadline)
	var hello live.Frame
	if err := conn.ReadJSON(&hello); err != nil || hello.Event != "hello" {
		t.Fatalf("first frame on instance 2: %+v %v", hello, err)
	}

	req, err = http.NewRequest(http.MethodPost, one.url+"/auth/user/log_out_everywhere", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Cookie", cookie.Name+"="+cookie.Value)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("log out everywhere on instance 1: %d", resp.StatusCode)
	}

	for {
		_, _, err := conn.ReadMessage()
		if err == nil {
			continue // clock ticks
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("the socket on instance 2 was not closed: %v", err)
		}
		if ce.Code != live.CloseSignedOut || ce.Text != "signed out everywhere" {
			t.Fatalf("the socket on instance 2 closed with %d %q, want %d %q", ce.Code, ce.Text, live.CloseSignedOut, "signed out everywhere")
		}
		return
	}
}
