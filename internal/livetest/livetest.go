// Package livetest runs the accounts of internal/accountstest behind a real
// HTTP server with the live endpoint, the web glue and the token revocation
// notifier, and dials real WebSockets to it.
package livetest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/notifiers/tokenrevocation"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/web"
)

// CookieKey is the session cookie key of the harness.
var CookieKey = []byte("kiln-test-cookie-key-0123456789abcdef")

// Template is the live socket id template of the harness.
func Template(s tokenresource.SocketID) string { return "users_sessions:" + s.JTI }

// Harness is a running server.
type Harness struct {
	*accountstest.Accounts
	Endpoint *live.Endpoint
	Web      *web.Web
	Server   *httptest.Server
}

// Options adjust the harness.
type Options struct {
	// PubSub is the endpoint's transport; InProcess when nil.
	PubSub live.PubSub
	// EndpointOptions are passed to live.New.
	EndpointOptions []live.Option
}

// New starts a harness on the named test database.
func New(t testing.TB, db string, o Options) *Harness {
	t.Helper()
	opts := o.EndpointOptions
	if o.PubSub != nil {
		opts = append(opts, live.WithPubSub(o.PubSub))
	}
	ep, err := live.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	acc := accountstest.Build(t, db, accountstest.Options{
		Endpoints:      []tokenresource.Endpoint{ep},
		Template:       Template,
		TokenNotifiers: []resource.Notifier{tokenrevocation.Notifier{}},
	})
	sessions, err := web.NewSessions(CookieKey)
	if err != nil {
		t.Fatal(err)
	}
	wb := web.New(acc.Auth, sessions)
	ep.SetAuthenticator(wb.LiveAuthenticator())
	mux := http.NewServeMux()
	routes := wb.Routes()
	mux.Handle("/auth/", routes)
	mux.Handle("/sign-out", routes)
	mux.Handle("GET /live/websocket", ep)
	mux.Handle("GET /live/client.js", live.ClientJS())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ep.Shutdown(ctx)
		srv.Close()
	})
	return &Harness{Accounts: acc, Endpoint: ep, Web: wb, Server: srv}
}

// URL is the websocket URL of the endpoint.
func (h *Harness) URL() string {
	return "ws" + strings.TrimPrefix(h.Server.URL, "http") + "/live/websocket"
}

// Client is a dialed live socket.
type Client struct {
	Conn     *websocket.Conn
	SocketID string
}

// Dial opens a socket with a bearer token and reads its hello frame. It
// returns the HTTP status and error when the upgrade is refused.
func (h *Harness) Dial(ctx context.Context, header http.Header) (*Client, int, error) {
	conn, resp, err := websocket.DefaultDialer.DialContext(ctx, h.URL(), header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return nil, status, err
	}
	c := &Client{Conn: conn}
	f, err := c.Read(ctx)
	if err != nil {
		conn.Close()
		return nil, 0, err
	}
	if f.Event != "hello" {
		conn.Close()
		return nil, 0, errors.New("livetest: first frame is " + f.Event + ", not hello")
	}
	var p struct {
		SocketID string `json:"socket_id"`
	}
	_ = json.Unmarshal(f.Payload, &p)
	c.SocketID = p.SocketID
	return c, http.StatusSwitchingProtocols, nil
}

// Bearer is an Authorization header for token.
func Bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// Read reads the next frame (ctx bounds the wait).
func (c *Client) Read(ctx context.Context) (live.Frame, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.Conn.SetReadDeadline(dl)
	}
	var f live.Frame
	_, data, err := c.Conn.ReadMessage()
	if err != nil {
		return f, err
	}
	err = json.Unmarshal(data, &f)
	return f, err
}

// WaitClose reads until the server closes the socket and returns the close
// code and reason; frames before it are skipped.
func (c *Client) WaitClose(ctx context.Context) (int, string, error) {
	for {
		_, err := c.Read(ctx)
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Text, nil
		}
		return 0, "", err
	}
}
