package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kiln-go/kiln/cli"
	"github.com/kiln-go/kiln/live"
)

// listen serves h with cli.NewServer(cfg) on a loopback port until t ends,
// and returns its address.
func listen(t *testing.T, cfg *cli.Config, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := cli.NewServer(cfg, h)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// rawConn dials addr over TCP, closed when t ends.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// waitClosed reads conn until the server closes it; it fails t when the
// connection is still open after 30 seconds.
func waitClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection is still open after 30s")
	}
}

func TestServerDefaults(t *testing.T) {
	srv := cli.NewServer(&cli.Config{}, http.NotFoundHandler())
	if srv.ReadTimeout != 30*time.Second || srv.ReadHeaderTimeout != 10*time.Second || srv.WriteTimeout != 30*time.Second ||
		srv.IdleTimeout != 120*time.Second || srv.MaxHeaderBytes != 64<<10 {
		t.Errorf("defaults: read %s, header %s, write %s, idle %s, max header %d",
			srv.ReadTimeout, srv.ReadHeaderTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
	srv = cli.NewServer(&cli.Config{ReadTimeout: 2 * time.Second, WriteTimeout: 3 * time.Second, IdleTimeout: 4 * time.Second, MaxHeaderBytes: 8192}, http.NotFoundHandler())
	if srv.ReadTimeout != 2*time.Second || srv.ReadHeaderTimeout != 2*time.Second || srv.WriteTimeout != 3*time.Second ||
		srv.IdleTimeout != 4*time.Second || srv.MaxHeaderBytes != 8192 {
		t.Errorf("configured: read %s, header %s, write %s, idle %s, max header %d",
			srv.ReadTimeout, srv.ReadHeaderTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
}

// A client that sends a request's header and then trickles its body, or
// stops, is cut off after ReadTimeout; the handler's read fails.
func TestServerSlowBody(t *testing.T) {
	readErr := make(chan error, 1)
	addr := listen(t, &cli.Config{ReadTimeout: time.Second}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
	}))
	conn := rawConn(t, addr)
	if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: kiln\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\nsome"); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, conn)
	select {
	case err := <-readErr:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("the handler read the slow body with %v, want a timeout", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the handler's read of the slow body did not end")
	}
}

// A request header over MaxHeaderBytes is answered 431.
func TestServerLargeHeader(t *testing.T) {
	addr := listen(t, &cli.Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "served")
	}))
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	req.Header.Set("User-Agent", strings.Repeat("u", 40<<10))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a 40 KiB header: %d, want 200", resp.StatusCode)
	}
	req.Header.Set("User-Agent", strings.Repeat("u", 80<<10))
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("an 80 KiB header: %d, want 431", resp.StatusCode)
	}
}

// A client that does not read its response holds the handler for
// WriteTimeout at most: then the write fails and the connection closes.
func TestServerSlowReader(t *testing.T) {
	writeErr := make(chan error, 1)
	addr := listen(t, &cli.Config{WriteTimeout: time.Second}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for range 16 << 10 { // up to 1 GiB, far more than the socket buffers hold
			if _, err := w.Write(chunk); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}))
	conn := rawConn(t, addr)
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: kiln\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// The client reads nothing.
	select {
	case err := <-writeErr:
		if err == nil {
			t.Errorf("the handler wrote 1 GiB to a client that reads nothing")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the handler is still writing to a client that reads nothing after 30s")
	}
}

// A live socket outlives the read, write and idle timeouts: the WebSocket
// upgrade clears the connection's deadlines.
func TestServerLiveSocketOutlivesTimeouts(t *testing.T) {
	e := newEnv(t)
	s := serve(t, e.cfg) // the test app, for a token
	token := s.register(t, "gail@example.com")
	cfg := *e.cfg
	cfg.ReadTimeout, cfg.WriteTimeout, cfg.IdleTimeout = time.Second, time.Second, time.Second
	addr := listen(t, &cfg, s.rt.Handler)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+addr+"/live/websocket", http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	opened := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var hello live.Frame
	if err := conn.ReadJSON(&hello); err != nil || hello.Event != "hello" {
		t.Fatalf("first frame %+v, %v; want hello", hello, err)
	}
	// What is tested is that time passes: wait until every timeout has
	// run out twice over.
	time.Sleep(time.Until(opened.Add(3 * time.Second)))
	if err := conn.WriteJSON(live.Frame{Event: "ping", Payload: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	var f live.Frame
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if err := conn.ReadJSON(&f); err != nil || f.Event != "error" || !strings.Contains(string(f.Payload), "unknown event ping") {
		t.Errorf("after the timeouts, the socket answered %+v, %v; want it open, answering an error frame", f, err)
	}

	// A plain request on the same server is still bounded: the timeouts
	// are in force.
	plain := rawConn(t, addr)
	if _, err := io.WriteString(plain, "POST /auth/user/password/sign_in HTTP/1.1\r\nHost: kiln\r\nContent-Length: 100\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, plain)
}
