// Package livetest runs the accounts of internal/accountstest behind a real
// HTTP server with the live endpoint, the web glue and the token revocation
// notifier, and dials real WebSockets to it.
package livetest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/extensions/tokenresource/tokenrevocation"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/live"
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
	// Template replaces the harness's live socket id template.
	Template func(tokenresource.SocketID) string
	// TLS serves over HTTPS (httptest.NewTLSServer).
	TLS bool
	// CookieKeys replace the session cookie keys (newest first); default
	// CookieKey.
	CookieKeys [][]byte
	// WebOptions are passed to web.New.
	WebOptions []web.Option
	// TokenNotifiers are notifiers of the token store that run before the
	// token revocation notifier (to time a commit, say).
	TokenNotifiers []resource.Notifier
	// Mailbox receives reset tokens; one is made when nil.
	Mailbox *accountstest.Mailbox
	// Authenticator makes the endpoint's authenticator from the web glue;
	// the glue's LiveAuthenticator when nil.
	Authenticator func(w *web.Web) live.Authenticator
	// Checker makes the endpoint's safety net checker from the web glue
	// (live.WithChecker); none when nil. SessionChecker is the glue's.
	Checker func(w *web.Web) live.Checker
}

// SessionChecker is the web glue's safety net checker, for Options.Checker.
func SessionChecker(w *web.Web) live.Checker { return w.SessionChecker() }

// New starts a harness on the named test database.
func New(t testing.TB, db string, o Options) *Harness {
	t.Helper()
	tmpl := o.Template
	if tmpl == nil {
		tmpl = Template
	}
	acc := accountstest.Build(t, db, accountstest.Options{
		Template:       tmpl,
		TokenNotifiers: append(append([]resource.Notifier{}, o.TokenNotifiers...), tokenrevocation.Notifier{}),
		Mailbox:        o.Mailbox,
	})
	keys := o.CookieKeys
	if len(keys) == 0 {
		keys = [][]byte{CookieKey}
	}
	sessions, err := web.NewSessions(keys...)
	if err != nil {
		t.Fatal(err)
	}
	wb := web.New(acc.Auth, sessions, o.WebOptions...)
	var auth live.Authenticator = wb.LiveAuthenticator()
	if o.Authenticator != nil {
		auth = o.Authenticator(wb)
	}
	opts := append([]live.Option{live.WithAuthenticator(auth)}, o.EndpointOptions...)
	if o.PubSub != nil {
		opts = append(opts, live.WithPubSub(o.PubSub))
	}
	if o.Checker != nil {
		opts = append(opts, live.WithChecker(o.Checker(wb)))
	}
	ep, err := live.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := acc.Domain.Attach(ep); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	routes := wb.Routes()
	mux.Handle("/auth/", routes)
	mux.Handle("/sign-out", routes)
	mux.Handle("GET /live/websocket", ep)
	mux.Handle("GET /live/client.js", live.ClientJS())
	var srv *httptest.Server
	if o.TLS {
		srv = httptest.NewTLSServer(mux)
	} else {
		srv = httptest.NewServer(mux)
	}
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

// Dialer is the websocket dialer of the harness (it trusts the TLS
// server's certificate).
func (h *Harness) Dialer() *websocket.Dialer {
	d := *websocket.DefaultDialer
	if tr, ok := h.Server.Client().Transport.(*http.Transport); ok && tr.TLSClientConfig != nil {
		d.TLSClientConfig = tr.TLSClientConfig.Clone()
	} else {
		d.TLSClientConfig = &tls.Config{}
	}
	return &d
}

// Dial opens a socket (with a bearer token or a session cookie in header)
// and reads its hello frame. It returns the HTTP status and error when the
// upgrade is refused. When the server closes the socket before its hello
// (a token revoked while the socket registered), the error wraps the
// *websocket.CloseError and the status is 101.
func (h *Harness) Dial(ctx context.Context, header http.Header) (*Client, int, error) {
	conn, resp, err := h.Dialer().DialContext(ctx, h.URL(), header)
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
		return nil, http.StatusSwitchingProtocols, fmt.Errorf("livetest: no hello: %w", err)
	}
	if f.Event != "hello" {
		conn.Close()
		return nil, http.StatusSwitchingProtocols, errors.New("livetest: first frame is " + f.Event + ", not hello")
	}
	var p struct {
		SocketID string `json:"socket_id"`
	}
	if err := json.Unmarshal(f.Payload, &p); err != nil {
		conn.Close()
		return nil, http.StatusSwitchingProtocols, fmt.Errorf("livetest: bad hello: %w", err)
	}
	c.SocketID = p.SocketID
	return c, http.StatusSwitchingProtocols, nil
}

// MustDial dials and fails t when the socket does not open.
func (h *Harness) MustDial(t testing.TB, ctx context.Context, header http.Header) *Client {
	t.Helper()
	c, status, err := h.Dial(ctx, header)
	if err != nil {
		t.Fatalf("livetest: dial: status %d: %v", status, err)
	}
	t.Cleanup(func() { c.Conn.Close() })
	return c
}

// Bearer is an Authorization header for token.
func Bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// CookieHeader is a Cookie header carrying c.
func CookieHeader(c *http.Cookie) http.Header {
	return http.Header{"Cookie": {c.Name + "=" + c.Value}}
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

// Send writes a frame.
func (c *Client) Send(event string, payload any) error {
	p, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	return c.Conn.WriteJSON(live.Frame{Event: event, Payload: p})
}

// WaitEvent reads until a frame of event arrives and returns it; a close
// or any other error ends the wait.
func (c *Client) WaitEvent(ctx context.Context, event string) (live.Frame, error) {
	for {
		f, err := c.Read(ctx)
		if err != nil {
			return f, err
		}
		if f.Event == event {
			return f, nil
		}
	}
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

// HTTPClient is a client of the server that does not follow redirects, so
// that tests see the 303s of the auth routes and their cookies.
func (h *Harness) HTTPClient() *http.Client {
	c := *h.Server.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// Do sends a request to path with body and header, and returns the
// response with its body read.
func (h *Harness) Do(t testing.TB, method, path string, body io.Reader, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, h.Server.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = append(req.Header[k], vs...)
	}
	resp, err := h.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("livetest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("livetest: %s %s: %v", method, path, err)
	}
	return resp, b
}

// PostForm posts a form to path.
func (h *Harness) PostForm(t testing.TB, path string, form url.Values, header http.Header) (*http.Response, []byte) {
	t.Helper()
	hd := header.Clone()
	if hd == nil {
		hd = http.Header{}
	}
	hd.Set("Content-Type", "application/x-www-form-urlencoded")
	return h.Do(t, http.MethodPost, path, strings.NewReader(form.Encode()), hd)
}

// PostJSON posts v as JSON to path, asking for a JSON answer, and decodes
// the answer into a map.
func (h *Harness) PostJSON(t testing.TB, path string, v any, header http.Header) (*http.Response, map[string]any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	hd := header.Clone()
	if hd == nil {
		hd = http.Header{}
	}
	hd.Set("Content-Type", "application/json")
	hd.Set("Accept", "application/json")
	resp, body := h.Do(t, http.MethodPost, path, bytes.NewReader(b), hd)
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("livetest: POST %s answered %d with non-JSON %q", path, resp.StatusCode, body)
	}
	return resp, out
}

// SessionCookie returns the session cookie a response sets, or nil. When
// it sets it twice (cleared, then renewed), the last one wins, as in a
// browser.
func (h *Harness) SessionCookie(resp *http.Response) *http.Cookie {
	var last *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == h.Web.Sessions().Name {
			last = c
		}
	}
	return last
}

// SignInCookie signs email in through the sign-in route (password
// "password123") and returns the session cookie it sets.
func (h *Harness) SignInCookie(t testing.TB, email string) *http.Cookie {
	t.Helper()
	resp, body := h.PostForm(t, "/auth/user/password/sign_in", url.Values{"email": {email}, "password": {"password123"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("livetest: sign in %s: status %d: %s", email, resp.StatusCode, body)
	}
	c := h.SessionCookie(resp)
	if c == nil || c.Value == "" {
		t.Fatalf("livetest: sign in %s set no session cookie", email)
	}
	return c
}

// PromptInProcess is an InProcess that says it is prompt (live.Prompter),
// as a network transport is, and hands its subscriber live.KindSubscribed
// on Subscribe, as a prompt transport must: the nodes of one process on it
// check tokens from memory, as nodes on PostgreSQL, Redis or NATS do.
// Publishing live.KindLost or live.KindSubscribed on it tells every
// subscriber its subscription was lost or made again.
type PromptInProcess struct{ live.InProcess }

var _ live.Prompter = (*PromptInProcess)(nil)

// Prompt implements live.Prompter.
func (p *PromptInProcess) Prompt() bool { return true }

// Subscribe implements live.PubSub.
func (p *PromptInProcess) Subscribe(ctx context.Context, fn func(live.Message)) error {
	if err := p.InProcess.Subscribe(ctx, fn); err != nil {
		return err
	}
	fn(live.Message{Kind: live.KindSubscribed})
	return nil
}
