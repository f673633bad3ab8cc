package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kiln-go/kiln/internal/sessionbench"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/live/pubsub"
	_ "github.com/kiln-go/kiln/live/pubsub/nats"     // nats:// for -pubsub and the scenarios' transports
	_ "github.com/kiln-go/kiln/live/pubsub/postgres" // postgres://
	_ "github.com/kiln-go/kiln/live/pubsub/redis"    // redis://
)

// roles are what this binary does when its first argument names one: the
// command runs itself again in them, as child processes.
var roles = map[string]func(args []string) error{
	"internal-server":        serverRole,
	"internal-clients":       clientsRole,
	"internal-signout-floor": signOutFloorRole,
}

// impls are the endpoints a server role can run.
var impls = map[string]sessionbench.Impl{
	implKiln:       sessionbench.Kiln,
	implMelody:     sessionbench.MelodyScan,
	implCentrifuge: centrifugeImpl,
}

// serverRole runs a sessionbench.Server with the named endpoint and a
// control server beside it, on loopback:
//
//	POST /issue?n=N     issues N tokens, one a line
//	POST /revoke        revokes the token in the body; answers the commit's unix nanoseconds
//	GET  /memory        the process's memory in use, JSON (sessionbench.Memory)
//
// It prints "ready <ws URL> <control URL>" on stdout, and exits when its
// stdin ends.
func serverRole(args []string) error {
	fs := flag.NewFlagSet("internal-server", flag.ContinueOnError)
	name := fs.String("impl", implKiln, "the endpoint")
	sessions := fs.Int("sessions", 1000, "how many sessions it will hold")
	db := fs.String("db", "", "the token store's database URL; SQLite in memory when empty")
	ps := fs.String("pubsub", "", "the transport between nodes, by URL; none when empty")
	email := fs.String("email", "", "the user whose tokens it issues")
	conns := fs.Int("max-conns", 0, "bound on the PostgreSQL connection pool; bunlayer.DefaultMaxConns when 0")
	if err := fs.Parse(args); err != nil {
		return err
	}
	impl, ok := impls[*name]
	if !ok {
		return fmt.Errorf("unknown endpoint %q", *name)
	}
	ctx := context.Background()
	// Warnings and errors only: a server that holds its sessions quietly
	// says nothing.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("server", *name)
	o := sessionbench.Options{Sessions: *sessions, DatabaseURL: *db, Email: *email, Logger: logger, MaxConns: *conns}
	if *ps != "" {
		p, err := pubsub.FromURL(ctx, *ps, logger)
		if err != nil {
			return err
		}
		defer p.Close()
		o.PubSub = p
	}
	s, err := sessionbench.NewServer(ctx, impl, o)
	if err != nil {
		return err
	}
	defer s.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /issue", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n <= 0 {
			http.Error(w, "n must be a positive count", http.StatusBadRequest)
			return
		}
		tokens, err := s.Issue(r.Context(), n)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, strings.Join(tokens, "\n"))
	})
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		token, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		at, err := s.Revoke(r.Context(), strings.TrimSpace(string(token)))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, at.UnixNano())
	})
	mux.HandleFunc("GET /memory", func(w http.ResponseWriter, r *http.Request) {
		m, err := sessionbench.MemoryInUse()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(m)
	})
	return serveUntilStdinEnds(mux, func(addr net.Addr) string { return s.URL() + " http://" + addr.String() })
}

// serveUntilStdinEnds serves h on a loopback port, prints "ready" and the
// fields ready makes of its address on stdout, and returns once stdin
// ends: a role's server, which its parent stops by closing its stdin.
func serveUntilStdinEnds(h http.Handler, ready func(addr net.Addr) string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	fmt.Printf("ready %s\n", ready(ln.Addr()))
	_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
	return nil
}

// clientsRole is the client process (sessionbench.RunClients) for the
// named endpoint's protocol.
func clientsRole(args []string) error {
	fs := flag.NewFlagSet("internal-clients", flag.ContinueOnError)
	url := fs.String("url", "", "the endpoint's ws:// URL")
	name := fs.String("impl", implKiln, "the endpoint, whose protocol the clients speak")
	parallel := fs.Int("parallel", 64, "dials in flight at most")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p := sessionbench.KilnProtocol
	if *name == implCentrifuge {
		p = centrifugeProtocol
	}
	return sessionbench.RunClients(*url, *parallel, p, os.Stdin, os.Stdout)
}

// signOutFloorRole serves the example app's sign-out contract with nothing
// behind it, no database, token or framework: the floor under the
// accounts scenario's sign-out figure, which holds what its processes
// and the loopback take (the request, the close frame, the client's wake).
//
//	GET  /live/websocket          opens a socket for the bearer token and sends a hello frame
//	POST /sign-out                closes the bearer token's socket with 4001 and answers 204
//	POST /log-out-everywhere      closes, one after another, the socket of every token of the
//	                              bearer's group (what comes before a token's first dot) with
//	                              4001, then answers 204
//
// It prints "ready <URL>" on stdout, and exits when its stdin ends.
func signOutFloorRole(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("internal-signout-floor takes no arguments, got %q", args)
	}
	var mu sync.Mutex
	sockets := map[string]*websocket.Conn{}
	bearer := func(r *http.Request) string { return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ") }
	var upgrader websocket.Upgrader
	mux := http.NewServeMux()
	mux.HandleFunc("GET /live/websocket", func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		mu.Lock()
		sockets[bearer(r)] = conn
		mu.Unlock()
		if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello"}`)); err != nil {
			return
		}
		for { // until the client's close reply
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("POST /sign-out", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conn := sockets[bearer(r)]
		delete(sockets, bearer(r))
		mu.Unlock()
		if conn == nil {
			http.Error(w, "no socket for this token", http.StatusUnauthorized)
			return
		}
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(live.CloseSignedOut, "signed out"), time.Now().Add(10*time.Second))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /log-out-everywhere", func(w http.ResponseWriter, r *http.Request) {
		group, _, ok := strings.Cut(bearer(r), ".")
		if !ok {
			http.Error(w, "the token names no group", http.StatusBadRequest)
			return
		}
		var conns []*websocket.Conn
		mu.Lock()
		for token, conn := range sockets {
			if strings.HasPrefix(token, group+".") {
				conns = append(conns, conn)
				delete(sockets, token)
			}
		}
		mu.Unlock()
		frame := websocket.FormatCloseMessage(live.CloseSignedOut, "signed out everywhere")
		for _, conn := range conns {
			_ = conn.WriteControl(websocket.CloseMessage, frame, time.Now().Add(10*time.Second))
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return serveUntilStdinEnds(mux, func(addr net.Addr) string { return "http://" + addr.String() })
}
