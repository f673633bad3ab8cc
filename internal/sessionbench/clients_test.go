package sessionbench

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestRunClients drives the client process's loop in the test: sockets
// open and report ready, the server closes them all at once and every
// close is reported with its code, and quit returns with the reports
// written.
func TestRunClients(t *testing.T) {
	const n = 50
	var mu sync.Mutex
	var conns []*websocket.Conn
	var upgrader websocket.Upgrader
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		mu.Lock()
		conns = append(conns, conn)
		mu.Unlock()
		_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello"}`))
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}))
	defer srv.Close()

	in, commands := io.Pipe()
	reports, out := io.Pipe()
	returned := make(chan error, 1)
	go func() {
		returned <- RunClients(WebSocketURL(srv.URL), 8, KilnProtocol, in, out)
		out.Close()
	}()
	lines := bufio.NewScanner(reports)
	next := func(kind string) []string {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("reports ended waiting for %s: %v", kind, lines.Err())
		}
		f := strings.Fields(lines.Text())
		if len(f) == 0 || f[0] != kind {
			t.Fatalf("report %q, want %s", lines.Text(), kind)
		}
		return f
	}
	for i := range n {
		fmt.Fprintf(commands, "dial %d token-%d\n", i, i)
	}
	for range n {
		next("ready")
	}
	mu.Lock()
	for _, conn := range conns {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "signed out"), time.Now().Add(10*time.Second))
	}
	mu.Unlock()
	seen := map[string]bool{}
	for range n {
		f := next("close")
		if len(f) < 5 || f[3] != "4001" || seen[f[1]] {
			t.Fatalf("close report %q", f)
		}
		seen[f[1]] = true
	}
	fmt.Fprintln(commands, "quit")
	if lines.Scan() {
		t.Errorf("report after the closes: %q", lines.Text())
	}
	if err := <-returned; err != nil {
		t.Errorf("RunClients: %v", err)
	}
}
