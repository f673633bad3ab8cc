// Package sessionbench runs the live-session benchmarks of kiln's tests
// (live/bench_test.go, live/memory_test.go) and of the bench command
// (bench/): a server whose sessions all belong to one user of a token
// store, with a choice of endpoint (kiln's, or a baseline); a child
// process that holds the client ends of the sockets (RunClients, started
// with StartClients), so that the server's open files and memory are its
// own; and the server's memory in use.
package sessionbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
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

// Env is what an Impl builds its endpoint from.
type Env struct {
	// Web is the server's web glue: it authenticates a socket's request.
	Web *web.Web
	// Sessions is how many sessions the server will hold, all of one user.
	Sessions int
	// Logger is the server's logger.
	Logger *slog.Logger
	// PubSub is the endpoint's transport between nodes; nil for a single
	// node.
	PubSub live.PubSub
}

// Parts are a running endpoint.
type Parts struct {
	// Endpoint is attached to the domain: the revocation notifier
	// disconnects its sockets.
	Endpoint revocation.Endpoint
	// Handler serves the sockets, at GET /live/websocket.
	Handler http.Handler
	// Stop closes every socket.
	Stop func()
}

// Impl is an endpoint under test.
type Impl struct {
	// Name names it in tables: "kiln", "melody-scan".
	Name string
	// New starts it.
	New func(Env) (Parts, error)
}

// Kiln is kiln's live endpoint: it finds a socket id's sessions in an
// index.
var Kiln = Impl{Name: "kiln", New: func(e Env) (Parts, error) {
	// One user holds every session, and a revoked one's slot may be freed
	// after its replacement dials: the per-user limit is raised.
	opts := []live.Option{live.WithLogger(e.Logger), live.WithSettings(live.Settings{MaxSocketsPerSubject: 2*e.Sessions + 16}),
		live.WithAuthenticator(e.Web.LiveAuthenticator())}
	if e.PubSub != nil {
		opts = append(opts, live.WithPubSub(e.PubSub))
	}
	ep, err := live.New(opts...)
	if err != nil {
		return Parts{}, err
	}
	return Parts{Endpoint: ep, Handler: ep, Stop: func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ep.Shutdown(ctx)
	}}, nil
}}

// MelodyScan is the baseline: a plain melody.Melody, each session's Keys
// holding its socket id, which finds the sessions of a socket id by
// scanning every session with BroadcastFilter. It sends the hello frame
// kiln's endpoint sends. It has no transport between nodes.
var MelodyScan = Impl{Name: "melody-scan", New: func(e Env) (Parts, error) {
	if e.PubSub != nil {
		return Parts{}, errors.New("sessionbench: melody-scan runs on one node")
	}
	m := melody.New()
	hello := []byte(`{"event":"hello","payload":{}}`)
	m.HandleConnect(func(s *melody.Session) { _ = s.Write(hello) })
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := e.Web.Authenticate(r)
		if err != nil {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		_ = m.HandleRequestWithKeys(w, r, map[string]any{scanKey: p.SocketID})
	})
	return Parts{Endpoint: scanEndpoint{m}, Handler: handler, Stop: func() { _ = m.Close() }}, nil
}}

const scanKey = "socket_id"

// scanEndpoint closes a socket id's sessions found by a scan of all.
type scanEndpoint struct{ m *melody.Melody }

func (s scanEndpoint) Disconnect(_ context.Context, socketID string, reason revocation.Reason) error {
	closeMsg := melody.FormatCloseMessage(live.CloseSignedOut, live.ReasonText(reason))
	return s.m.BroadcastFilter(nil, func(sess *melody.Session) bool {
		if id, _ := sess.Get(scanKey); id == socketID {
			_ = sess.CloseWithMsg(closeMsg)
		}
		return false
	})
}

// Options adjust a server.
type Options struct {
	// DatabaseURL is the token store's database (bunlayer.Open); an
	// in-memory SQLite database when empty.
	DatabaseURL string
	// Sessions is how many sessions the server is meant to hold (Env).
	Sessions int
	// PubSub is the endpoint's transport between nodes (Env).
	PubSub live.PubSub
	// MaxConns bounds a PostgreSQL database's connection pool
	// (bunlayer.WithMaxConns); bunlayer.DefaultMaxConns when 0. Nodes
	// sharing a PostgreSQL server keep under its max_connections.
	MaxConns int
	// Logger receives the server's logs; they are discarded when nil.
	Logger *slog.Logger
	// Email is the registered user's, whose tokens the server issues;
	// ada@example.com when empty. The nodes of one database each register
	// a user of their own.
	Email string
}

// Server is an HTTP server with an endpoint at /live/websocket, in front
// of a token store with one registered user, whose tokens authenticate
// the sockets (Authorization: Bearer).
type Server struct {
	// Auth is the user's authentication; Web the web glue.
	Auth *authentication.Auth
	Web  *web.Web
	// HTTP serves the endpoint.
	HTTP *httptest.Server

	// Endpoint is the server's endpoint: a *live.Endpoint for Kiln.
	Endpoint revocation.Endpoint

	layer     *bunlayer.Layer
	domain    *resource.Domain
	user      any
	stop      func()
	committed atomic.Int64 // unix nanoseconds of the last revocation's commit
}

// commitClock notes when each revocation committed: notifiers run right
// after the commit, in order, and it is declared before the revocation
// notifier.
type commitClock struct{ at *atomic.Int64 }

func (c commitClock) Notify(_ context.Context, n resource.Notification) error {
	if _, ok := n.Metadata[tokenresource.ReasonKey]; ok {
		c.at.Store(time.Now().UnixNano())
	}
	return nil
}

// Quiet is a logger that discards.
var Quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// NewServer starts a server with impl's endpoint.
func NewServer(ctx context.Context, impl Impl, o Options) (s *Server, err error) {
	s = &Server{}
	logger := o.Logger
	if logger == nil {
		logger = Quiet
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	users, tokens := accountstest.Declare(accountstest.Options{
		Template:       livetest.Template,
		TokenNotifiers: []resource.Notifier{commitClock{&s.committed}, tokenrevocation.Notifier{}},
	})
	url := o.DatabaseURL
	if url == "" {
		url = "sqlite::memory:"
	}
	if s.layer, err = bunlayer.Open(ctx, url, bunlayer.WithMaxConns(o.MaxConns)); err != nil {
		return s, err
	}
	if s.domain, err = resource.NewDomain("accounts", users, tokens).Build(ctx, s.layer, resource.WithLogger(logger)); err != nil {
		return s, err
	}
	if err = s.layer.Migrate(ctx); err != nil {
		return s, err
	}
	if s.Auth, err = authentication.For(s.domain, users); err != nil {
		return s, err
	}
	pw, err := password.For(s.Auth)
	if err != nil {
		return s, err
	}
	email := o.Email
	if email == "" {
		email = "ada@example.com"
	}
	reg, err := pw.Register(ctx, s.domain, password.RegisterInput{Identity: email, Password: "password123", PasswordConfirmation: "password123"})
	if err != nil {
		return s, err
	}
	s.user = reg.Record
	sessions, err := web.NewSessions(livetest.CookieKey)
	if err != nil {
		return s, err
	}
	s.Web = web.New(s.Auth, sessions, web.WithLogger(logger))
	parts, err := impl.New(Env{Web: s.Web, Sessions: o.Sessions, Logger: logger, PubSub: o.PubSub})
	if err != nil {
		return s, fmt.Errorf("sessionbench: %s: %w", impl.Name, err)
	}
	s.stop, s.Endpoint = parts.Stop, parts.Endpoint
	if err = s.domain.Attach(parts.Endpoint); err != nil {
		return s, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /live/websocket", parts.Handler)
	s.HTTP = httptest.NewServer(mux)
	return s, nil
}

// URL is the endpoint's ws:// URL.
func (s *Server) URL() string { return WebSocketURL(s.HTTP.URL) }

// WebSocketURL is the ws:// URL of the live endpoint of the server at
// httpURL.
func WebSocketURL(httpURL string) string {
	return "ws" + strings.TrimPrefix(httpURL, "http") + "/live/websocket"
}

// Issue issues n session tokens of the user, in one transaction.
func (s *Server) Issue(ctx context.Context, n int) ([]string, error) {
	tokens := make([]string, n)
	err := s.domain.InTransaction(ctx, func(ctx context.Context) error {
		for i := range tokens {
			token, _, err := s.Auth.Issue(ctx, s.user, authentication.IssueOptions{})
			if err != nil {
				return err
			}
			tokens[i] = token
		}
		return nil
	})
	return tokens, err
}

// Revoke revokes token and returns when its revocation committed.
func (s *Server) Revoke(ctx context.Context, token string) (time.Time, error) {
	if err := s.Auth.Tokens().Revoke(ctx, token, revocation.Revoked); err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, s.committed.Load()), nil
}

// Close stops the endpoint, the server and the database.
func (s *Server) Close() {
	if s.stop != nil {
		s.stop()
	}
	if s.HTTP != nil {
		s.HTTP.Close()
	}
	if s.layer != nil {
		_ = s.layer.Close()
	}
}
