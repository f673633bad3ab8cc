package main

// The example's HTTP contract (DESIGN.md, "The example app's HTTP
// contract"), route by route, with plain HTTP clients against the app that
// build() makes, on SQLite and, when KILN_TEST_POSTGRES_URL is set, on
// PostgreSQL.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/uptrace/bun"

	"github.com/kiln-go/kiln/cli"
	"github.com/kiln-go/kiln/dsl"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
)

const (
	contractPassword    = "correct horse battery"
	contractNewPassword = "staple battery horse"
)

func TestContract(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			newContractApp(t, db).testContract(t)
		})
	}
}

// testContract runs every part of the contract on a.
func (a *contractApp) testContract(t *testing.T) {
	t.Run("healthz", a.testHealthz)
	t.Run("pages", a.testPages)
	t.Run("register", a.testRegister)
	t.Run("register errors", a.testRegisterErrors)
	t.Run("sign in", a.testSignIn)
	t.Run("change password", a.testChangePassword)
	t.Run("change password errors", a.testChangePasswordErrors)
	t.Run("reset", a.testReset)
	t.Run("log out everywhere", a.testLogOutEverywhere)
	t.Run("sign out", a.testSignOut)
	t.Run("sessions", a.testSessions)
	t.Run("subject of", a.testSubjectOf)
	t.Run("live websocket", a.testLiveWebsocket)
	t.Run("cross origin", a.testCrossOrigin)
}

// contractApp is the example as build() makes it, migrated and started,
// behind an httptest server.
type contractApp struct {
	url string
	rt  *cli.Runtime
	db  *bun.DB
}

// lockedBuffer collects the app's log, shown when a test fails.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newContractApp(t *testing.T, database string) *contractApp {
	t.Helper()
	cfg := contractConfig()
	if database == "postgres" {
		cfg.DatabaseURL = testdb.PostgresSchemaURL(t)
	}
	a, _ := startApp(t, cfg)
	return a
}

// contractConfig is the contract tests' configuration, on a SQLite file.
func contractConfig() cli.Config {
	return cli.Config{
		TokenSigningSecret: "contract-test-token-signing-secret-0123456789",
		CookieKeys:         []string{"contract-test-cookie-key-0123456789abcdef"},
		DSL:                dsl.FromEnv("KILN", []string{"KILN_LIVE__SWEEP_INTERVAL=1m"}),
		// The reset tests read the development mailbox; the test secrets
		// are development ones.
		Dev:        true,
		DevSecrets: true,
	}
}

// startApp builds the example from cfg and serves it behind an httptest
// server on loopback until tb ends; a SQLite file in a fresh folder is its
// database unless cfg names one. It returns the app's log (debug level),
// which is printed when tb fails.
func startApp(tb testing.TB, cfg cli.Config) (*contractApp, *lockedBuffer) {
	tb.Helper()
	dir := tb.TempDir()
	cfg.Addr = "127.0.0.1:0"
	if cfg.DataDir == "" {
		cfg.DataDir = dir
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = "sqlite:" + filepath.Join(dir, "accounts.db")
	}
	if cfg.DSL != nil {
		cfg.DSL.Register(accounts().Sections...) // as the command line does
	}
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	rt, err := build(ctx, &cfg, logger)
	if err != nil {
		cancel()
		tb.Fatalf("build: %v", err)
	}
	if err := rt.Layer.Migrate(ctx); err != nil {
		cancel()
		rt.Close()
		tb.Fatalf("migrate: %v", err)
	}
	rt.Start(ctx)
	srv := httptest.NewServer(rt.Handler)
	tb.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := rt.Shutdown(sctx); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
		srv.Close()
		cancel()
		rt.Close()
		if tb.Failed() {
			tb.Logf("the app's log:\n%s", logs)
		}
	})
	return &contractApp{url: srv.URL, rt: rt, db: rt.Layer.DB()}, logs
}

// counts are the rows of the users and tokens tables.
type counts struct{ users, tokens int }

func (a *contractApp) counts(t *testing.T) counts {
	t.Helper()
	ctx := context.Background()
	u, err := a.db.NewSelect().Table("users").Count(ctx)
	if err != nil {
		t.Fatalf("count users: %v", err)
	}
	n, err := a.db.NewSelect().Table("tokens").Count(ctx)
	if err != nil {
		t.Fatalf("count tokens: %v", err)
	}
	return counts{users: int(u), tokens: int(n)}
}

// unchanged fails t when the tables changed since before.
func (a *contractApp) unchanged(t *testing.T, what string, before counts) {
	t.Helper()
	if after := a.counts(t); after != before {
		t.Errorf("%s wrote rows: users %d -> %d, tokens %d -> %d", what, before.users, after.users, before.tokens, after.tokens)
	}
}

// client is one user agent: a cookie jar, no redirects followed.
type client struct {
	t   *testing.T
	app *contractApp
	jar *cookiejar.Jar
	hc  *http.Client
}

func (a *contractApp) client(t *testing.T) *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, app: a, jar: jar, hc: &http.Client{
		Jar:           jar,
		Timeout:       time.Minute, // a guard against hangs: bcrypt under -race on a busy machine is slow
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// withSession returns a new client holding the session cookie value.
func (a *contractApp) withSession(t *testing.T, value string) *client {
	c := a.client(t)
	u, _ := url.Parse(a.url)
	c.jar.SetCookies(u, []*http.Cookie{{Name: "kiln_session", Value: value, Path: "/"}})
	return c
}

// session is the client's session cookie value, "" when it has none.
func (c *client) session() string {
	u, _ := url.Parse(c.app.url)
	for _, ck := range c.jar.Cookies(u) {
		if ck.Name == "kiln_session" {
			return ck.Value
		}
	}
	return ""
}

func (c *client) do(method, path string, body io.Reader, header http.Header) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.app.url+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp, string(b)
}

func (c *client) get(path string) (*http.Response, string) {
	c.t.Helper()
	return c.do(http.MethodGet, path, nil, nil)
}

// post posts a form the way a browser does.
func (c *client) post(path string, form url.Values) *http.Response {
	c.t.Helper()
	resp, _ := c.do(http.MethodPost, path, strings.NewReader(form.Encode()),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	return resp
}

// postJSON posts a form asking for JSON, and decodes the answer.
func (c *client) postJSON(path string, form url.Values, header ...string) (int, map[string]any) {
	c.t.Helper()
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"application/json"}}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	resp, body := c.do(http.MethodPost, path, strings.NewReader(form.Encode()), h)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		c.t.Fatalf("POST %s answered %d with Content-Type %q: %q", path, resp.StatusCode, ct, body)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		c.t.Fatalf("POST %s answered %d with bad JSON %q: %v", path, resp.StatusCode, body, err)
	}
	return resp.StatusCode, out
}

// signedIn tells whether the client's session opens the live page.
func (c *client) signedIn() bool {
	c.t.Helper()
	resp, _ := c.get("/")
	switch {
	case resp.StatusCode == http.StatusOK:
		return true
	case resp.StatusCode == http.StatusSeeOther && resp.Header.Get("Location") == "/sign-in":
		return false
	}
	c.t.Fatalf("GET / answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	return false
}

func wantRedirect(t *testing.T, what string, resp *http.Response, location string) {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != location {
		t.Errorf("%s answered %d, Location %q; want 303 to %q", what, resp.StatusCode, resp.Header.Get("Location"), location)
	}
}

// newEmail returns an address no other test uses.
func newEmail(name string) string {
	return name + "-" + uuid.NewString()[:8] + "@example.com"
}

func registerForm(email, pw, confirm string) url.Values {
	return url.Values{"email": {email}, "password": {pw}, "password_confirmation": {confirm}}
}

// register registers email over JSON and returns the client, signed in.
func (a *contractApp) register(t *testing.T, email string) *client {
	t.Helper()
	c := a.client(t)
	if status, body := c.postJSON("/auth/user/password/register", registerForm(email, contractPassword, contractPassword)); status != http.StatusOK {
		t.Fatalf("register %s: %d %v", email, status, body)
	}
	return c
}

// signIn signs email in with a form post and returns the client.
func (a *contractApp) signIn(t *testing.T, email, password string) *client {
	t.Helper()
	c := a.client(t)
	wantRedirect(t, "sign in", c.post("/auth/user/password/sign_in", url.Values{"email": {email}, "password": {password}}), "/")
	if c.session() == "" {
		t.Fatalf("sign in %s set no session cookie", email)
	}
	return c
}

// checkUserJSON checks the {"token", "user"} answer of register and sign-in.
func checkUserJSON(t *testing.T, body map[string]any, email string) string {
	t.Helper()
	token, _ := body["token"].(string)
	if strings.Count(token, ".") != 2 {
		t.Errorf("token %q is not a JWT", token)
	}
	user, ok := body["user"].(map[string]any)
	if !ok {
		t.Fatalf("no user object in %v", body)
	}
	if user["email"] != email {
		t.Errorf("user.email = %v, want %s", user["email"], email)
	}
	if id, _ := user["id"].(string); uuid.Validate(id) != nil {
		t.Errorf("user.id = %v, want a UUID", user["id"])
	}
	for k := range user {
		if strings.Contains(k, "password") {
			t.Errorf("the user object leaks %q: %v", k, user)
		}
	}
	return token
}

func (a *contractApp) testHealthz(t *testing.T) {
	resp, body := a.client(t).get("/healthz")
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Errorf("GET /healthz = %d %q, want 200 ok", resp.StatusCode, body)
	}
}

func (a *contractApp) testPages(t *testing.T) {
	c := a.client(t)
	resp, _ := c.get("/")
	wantRedirect(t, "GET / signed out", resp, "/sign-in")
	for path, want := range map[string][]string{
		"/sign-in":  {`action="/auth/user/password/sign_in"`, `id="email"`, `id="password"`, `id="submit"`},
		"/register": {`action="/auth/user/password/register"`, `id="email"`, `id="password"`, `id="password_confirmation"`},
	} {
		resp, body := c.get(path)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s = %d %s, want a 200 page", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if !strings.Contains(body, `method="post"`) {
			t.Errorf("GET %s has no form", path)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s lacks %s", path, w)
			}
		}
	}
	// A flash from the query is escaped.
	_, body := c.get("/sign-in?reason=" + url.QueryEscape("<b>x</b>"))
	if !strings.Contains(body, `id="error">signed out: &lt;b&gt;x&lt;/b&gt;<`) {
		t.Errorf("the reason flash is missing or not escaped")
	}
	// Signed-in pages send the signed out to /sign-in.
	for _, path := range []string{"/change-password", "/sessions"} {
		resp, _ := c.get(path)
		wantRedirect(t, "GET "+path+" signed out", resp, "/sign-in")
	}
}

func (a *contractApp) testRegister(t *testing.T) {
	// A form post: 303 to the live page, signed in.
	email := newEmail("form")
	c := a.client(t)
	before := a.counts(t)
	wantRedirect(t, "register", c.post("/auth/user/password/register", registerForm(email, contractPassword, contractPassword)), "/")
	if after := a.counts(t); after.users != before.users+1 || after.tokens != before.tokens+1 {
		t.Errorf("register wrote %+v -> %+v, want one user and one token", before, after)
	}
	resp, body := c.get("/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, email) || !strings.Contains(body, `id="status"`) {
		t.Errorf("the live page after register: %d, email or #status missing", resp.StatusCode)
	}

	// JSON: the token and the user, which has no hashed password; the
	// token works as a bearer token.
	email = newEmail("json")
	status, out := a.client(t).postJSON("/auth/user/password/register", registerForm(email, contractPassword, contractPassword))
	if status != http.StatusOK {
		t.Fatalf("register JSON = %d %v", status, out)
	}
	token := checkUserJSON(t, out, email)
	resp, body = a.client(t).do(http.MethodGet, "/", nil, http.Header{"Authorization": {"Bearer " + token}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, email) {
		t.Errorf("GET / with the bearer token = %d", resp.StatusCode)
	}

	// A JSON body works too.
	email = newEmail("jsonbody")
	b, _ := json.Marshal(map[string]string{"email": email, "password": contractPassword, "password_confirmation": contractPassword})
	resp, body = a.client(t).do(http.MethodPost, "/auth/user/password/register", bytes.NewReader(b),
		http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, email) {
		t.Errorf("register with a JSON body = %d %s", resp.StatusCode, body)
	}
}

func (a *contractApp) testRegisterErrors(t *testing.T) {
	taken := newEmail("taken")
	a.register(t, taken)
	fresh := newEmail("fresh")
	for _, tc := range []struct {
		name    string
		form    url.Values
		status  int
		message string
	}{
		{"missing fields", url.Values{}, http.StatusUnprocessableEntity, "email is required; password is required"},
		{"missing confirmation", url.Values{"email": {fresh}, "password": {contractPassword}}, http.StatusUnprocessableEntity, "password_confirmation does not match the password"},
		{"bad email", registerForm("not-an-email", contractPassword, contractPassword), http.StatusUnprocessableEntity, "email must be a valid email address"},
		{"weak password", registerForm(fresh, "short", "short"), http.StatusUnprocessableEntity, "password must be at least 8 characters long"},
		{"mismatched confirmation", registerForm(fresh, contractPassword, contractPassword+"!"), http.StatusUnprocessableEntity, "password_confirmation does not match the password"},
		{"duplicate email", registerForm(taken, contractPassword, contractPassword), http.StatusConflict, "email has already been taken"},
		{"every problem at once", registerForm("not-an-email", "short", "other"), http.StatusUnprocessableEntity,
			"email must be a valid email address; password must be at least 8 characters long; password_confirmation does not match the password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := a.counts(t)
			c := a.client(t)
			status, out := c.postJSON("/auth/user/password/register", tc.form)
			if status != tc.status || out["error"] != tc.message {
				t.Errorf("JSON: %d %v, want %d {error: %q}", status, out, tc.status, tc.message)
			}
			if c.session() != "" {
				t.Errorf("a failed register set a session cookie")
			}
			// The form post goes back to the form with the message.
			resp := c.post("/auth/user/password/register", tc.form)
			wantRedirect(t, "form", resp, "/register?error="+url.QueryEscape(tc.message))
			a.unchanged(t, tc.name, before)
		})
	}
}

func (a *contractApp) testSignIn(t *testing.T) {
	email := newEmail("signin")
	a.register(t, email)

	c := a.signIn(t, email, contractPassword)
	if !c.signedIn() {
		t.Errorf("the form sign-in's session does not open the live page")
	}
	status, out := a.client(t).postJSON("/auth/user/password/sign_in", url.Values{"email": {email}, "password": {contractPassword}})
	if status != http.StatusOK {
		t.Fatalf("sign in JSON = %d %v", status, out)
	}
	checkUserJSON(t, out, email)

	for _, tc := range []struct {
		name    string
		form    url.Values
		status  int
		message string
	}{
		{"wrong password", url.Values{"email": {email}, "password": {"wrong password"}}, http.StatusUnauthorized, "authentication failed"},
		{"unknown email", url.Values{"email": {newEmail("nobody")}, "password": {contractPassword}}, http.StatusUnauthorized, "authentication failed"},
		{"missing fields", url.Values{}, http.StatusUnprocessableEntity, "email is required; password is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := a.counts(t)
			c := a.client(t)
			status, out := c.postJSON("/auth/user/password/sign_in", tc.form)
			if status != tc.status || out["error"] != tc.message || len(out) != 1 && tc.status == http.StatusUnauthorized {
				t.Errorf("JSON: %d %v, want %d {error: %q}", status, out, tc.status, tc.message)
			}
			wantRedirect(t, "form", c.post("/auth/user/password/sign_in", tc.form), "/sign-in?error="+url.QueryEscape(tc.message))
			if c.session() != "" {
				t.Errorf("a failed sign-in set a session cookie")
			}
			a.unchanged(t, tc.name, before)
		})
	}
}

func (a *contractApp) testChangePassword(t *testing.T) {
	email := newEmail("change")
	a.register(t, email)
	here := a.signIn(t, email, contractPassword)
	other := a.signIn(t, email, contractPassword)
	oldSession := here.session()

	wantRedirect(t, "change", here.post("/auth/user/password/change", url.Values{
		"current_password": {contractPassword}, "password": {contractNewPassword}, "password_confirmation": {contractNewPassword}}), "/")
	if here.session() == oldSession || !here.signedIn() {
		t.Errorf("the changing session did not get a fresh session that works")
	}
	if a.withSession(t, oldSession).signedIn() {
		t.Errorf("the changing session's old cookie still works")
	}
	if other.signedIn() {
		t.Errorf("the other session is still signed in after the password change")
	}
	if status, _ := a.client(t).postJSON("/auth/user/password/sign_in", url.Values{"email": {email}, "password": {contractPassword}}); status != http.StatusUnauthorized {
		t.Errorf("the old password signs in: %d", status)
	}

	// JSON, with the bearer token of a JSON sign-in.
	status, out := a.client(t).postJSON("/auth/user/password/sign_in", url.Values{"email": {email}, "password": {contractNewPassword}})
	if status != http.StatusOK {
		t.Fatalf("sign in with the new password = %d %v", status, out)
	}
	token := checkUserJSON(t, out, email)
	status, out = a.client(t).postJSON("/auth/user/password/change", url.Values{
		"current_password": {contractNewPassword}, "password": {contractPassword}, "password_confirmation": {contractPassword}},
		"Authorization", "Bearer "+token)
	if status != http.StatusOK {
		t.Fatalf("change JSON = %d %v", status, out)
	}
	fresh := checkUserJSON(t, out, email)
	if fresh == token {
		t.Errorf("change answered the old token")
	}
	if here.signedIn() {
		t.Errorf("the first session survived the second password change")
	}
	resp, _ := a.client(t).do(http.MethodGet, "/", nil, http.Header{"Authorization": {"Bearer " + fresh}})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the fresh token from change does not work: %d", resp.StatusCode)
	}
	resp, _ = a.client(t).do(http.MethodGet, "/", nil, http.Header{"Authorization": {"Bearer " + token}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the token the change replaced still works: %d", resp.StatusCode)
	}
}

func (a *contractApp) testChangePasswordErrors(t *testing.T) {
	email := newEmail("changebad")
	a.register(t, email)
	here := a.signIn(t, email, contractPassword)
	other := a.signIn(t, email, contractPassword)
	for _, tc := range []struct {
		name    string
		form    url.Values
		status  int
		message string
	}{
		{"wrong current password", url.Values{"current_password": {"wrong password"}, "password": {contractNewPassword}, "password_confirmation": {contractNewPassword}},
			http.StatusUnprocessableEntity, "current_password is not correct"},
		{"weak password", url.Values{"current_password": {contractPassword}, "password": {"short"}, "password_confirmation": {"short"}},
			http.StatusUnprocessableEntity, "password must be at least 8 characters long"},
		{"mismatched confirmation", url.Values{"current_password": {contractPassword}, "password": {contractNewPassword}, "password_confirmation": {contractPassword}},
			http.StatusUnprocessableEntity, "password_confirmation does not match the password"},
		{"missing fields", url.Values{}, http.StatusUnprocessableEntity, "current_password is required; password is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := a.counts(t)
			status, out := here.postJSON("/auth/user/password/change", tc.form)
			if status != tc.status || out["error"] != tc.message {
				t.Errorf("JSON: %d %v, want %d {error: %q}", status, out, tc.status, tc.message)
			}
			wantRedirect(t, "form", here.post("/auth/user/password/change", tc.form), "/change-password?error="+url.QueryEscape(tc.message))
			a.unchanged(t, tc.name, before)
			if !here.signedIn() || !other.signedIn() {
				t.Errorf("a failed change signed a session out")
			}
		})
	}
	t.Run("signed out", func(t *testing.T) {
		before := a.counts(t)
		form := url.Values{"current_password": {contractPassword}, "password": {contractNewPassword}, "password_confirmation": {contractNewPassword}}
		c := a.client(t)
		if status, out := c.postJSON("/auth/user/password/change", form); status != http.StatusUnauthorized || out["error"] != "not signed in" {
			t.Errorf("JSON: %d %v, want 401 not signed in", status, out)
		}
		wantRedirect(t, "form", c.post("/auth/user/password/change", form), "/change-password?error=not+signed+in")
		a.unchanged(t, "a signed-out change", before)
	})
	if status, _ := a.client(t).postJSON("/auth/user/password/sign_in", url.Values{"email": {email}, "password": {contractPassword}}); status != http.StatusOK {
		t.Errorf("the password changed although every change failed")
	}
}

// resetLink matches a reset link of the development mailbox.
var resetLink = regexp.MustCompile(`<strong>([^<]+)</strong>[^<]*<a href="(/reset\?token=[^"]+)"`)

// mailFor returns the newest reset link the mailbox holds for email.
func (a *contractApp) mailFor(t *testing.T, email string) string {
	t.Helper()
	resp, body := a.client(t).get("/dev/mailbox")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /dev/mailbox = %d", resp.StatusCode)
	}
	for _, m := range resetLink.FindAllStringSubmatch(body, -1) {
		if html.UnescapeString(m[1]) == email {
			return html.UnescapeString(m[2])
		}
	}
	return ""
}

func (a *contractApp) testReset(t *testing.T) {
	email := newEmail("reset")
	a.register(t, email)
	old := a.signIn(t, email, contractPassword)

	// Unknown or known, the answer is the same.
	notice := "/sign-in?notice=" + url.QueryEscape("If the address is known, a reset link is on its way.")
	nobody := newEmail("nobody")
	wantRedirect(t, "reset request (unknown)", a.client(t).post("/auth/user/password/reset_request", url.Values{"email": {nobody}}), notice)
	if a.mailFor(t, nobody) != "" {
		t.Errorf("a mail went to an unknown address")
	}
	wantRedirect(t, "reset request", a.client(t).post("/auth/user/password/reset_request", url.Values{"email": {email}}), notice)
	link := a.mailFor(t, email)
	if link == "" {
		t.Fatalf("no reset mail for %s in /dev/mailbox", email)
	}
	if status, out := a.client(t).postJSON("/auth/user/password/reset_request", url.Values{"email": {email}}); status != http.StatusOK || out["ok"] != true {
		t.Errorf("reset request JSON = %d %v", status, out)
	}
	if newer := a.mailFor(t, email); newer == "" || newer == link {
		t.Errorf("the JSON reset request sent no new mail")
	}

	// The reset page carries the token into its form.
	resp, body := a.client(t).get(link)
	u, _ := url.Parse(link)
	token := u.Query().Get("token")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="reset_token" value="`+html.EscapeString(token)+`"`) {
		t.Fatalf("GET %s = %d, the form lacks the token", link, resp.StatusCode)
	}

	// Bad input writes nothing and leaves the token usable.
	for _, tc := range []struct {
		name    string
		form    url.Values
		message string
	}{
		{"weak password", url.Values{"reset_token": {token}, "password": {"short"}, "password_confirmation": {"short"}}, "password must be at least 8 characters long"},
		{"mismatched confirmation", url.Values{"reset_token": {token}, "password": {contractNewPassword}, "password_confirmation": {contractPassword}}, "password_confirmation does not match the password"},
	} {
		before := a.counts(t)
		if status, out := a.client(t).postJSON("/auth/user/password/reset", tc.form); status != http.StatusUnprocessableEntity || out["error"] != tc.message {
			t.Errorf("reset, %s: %d %v, want 422 %q", tc.name, status, out, tc.message)
		}
		a.unchanged(t, "reset, "+tc.name, before)
	}
	before := a.counts(t)
	status, out := a.client(t).postJSON("/auth/user/password/reset", url.Values{"reset_token": {"not-a-token"}, "password": {contractNewPassword}, "password_confirmation": {contractNewPassword}})
	if status < 400 || status >= 500 || out["error"] == nil {
		t.Errorf("reset with a bad token = %d %v, want a 4xx with an error", status, out)
	}
	a.unchanged(t, "reset with a bad token", before)

	c := a.client(t)
	wantRedirect(t, "reset", c.post("/auth/user/password/reset", url.Values{
		"reset_token": {token}, "password": {contractNewPassword}, "password_confirmation": {contractNewPassword}}), "/")
	if !c.signedIn() {
		t.Errorf("the reset did not sign in")
	}
	if status, _ := a.client(t).postJSON("/auth/user/password/sign_in", url.Values{"email": {email}, "password": {contractNewPassword}}); status != http.StatusOK {
		t.Errorf("the new password does not sign in: %d", status)
	}
	if status, _ := a.client(t).postJSON("/auth/user/password/sign_in", url.Values{"email": {email}, "password": {contractPassword}}); status != http.StatusUnauthorized {
		t.Errorf("the old password still signs in: %d", status)
	}
	if old.signedIn() {
		t.Errorf("a session from before the reset is still signed in")
	}
	// The token is single-use.
	status, out = a.client(t).postJSON("/auth/user/password/reset", url.Values{
		"reset_token": {token}, "password": {contractPassword}, "password_confirmation": {contractPassword}})
	if status < 400 || status >= 500 || out["error"] == nil {
		t.Errorf("a second reset with the same token = %d %v, want a 4xx", status, out)
	}

	// JSON: a reset answers the token and the user, signed in.
	wantRedirect(t, "reset request", a.client(t).post("/auth/user/password/reset_request", url.Values{"email": {email}}), notice)
	u, _ = url.Parse(a.mailFor(t, email))
	status, out = a.client(t).postJSON("/auth/user/password/reset", url.Values{
		"reset_token": u.Query()["token"], "password": {contractPassword}, "password_confirmation": {contractPassword}})
	if status != http.StatusOK {
		t.Fatalf("reset JSON = %d %v", status, out)
	}
	checkUserJSON(t, out, email)
	if c.signedIn() {
		t.Errorf("the session of the first reset survived the second")
	}
}

func (a *contractApp) testLogOutEverywhere(t *testing.T) {
	email := newEmail("everywhere")
	bystander := a.register(t, newEmail("bystander"))
	a.register(t, email)
	one := a.signIn(t, email, contractPassword)
	two := a.signIn(t, email, contractPassword)
	status, out := a.client(t).postJSON("/auth/user/password/sign_in", url.Values{"email": {email}, "password": {contractPassword}})
	if status != http.StatusOK {
		t.Fatalf("sign in: %d %v", status, out)
	}
	bearer := checkUserJSON(t, out, email)

	resp := one.post("/auth/user/log_out_everywhere", nil)
	wantRedirect(t, "log out everywhere", resp, "/sign-in")
	if one.session() != "" {
		t.Errorf("log out everywhere left the session cookie")
	}
	if two.signedIn() {
		t.Errorf("the other session is still signed in")
	}
	resp, _ = a.client(t).do(http.MethodGet, "/", nil, http.Header{"Authorization": {"Bearer " + bearer}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the bearer token still works after log out everywhere: %d", resp.StatusCode)
	}
	if !bystander.signedIn() {
		t.Errorf("another user was signed out")
	}

	// JSON, with a bearer token.
	status, out = a.client(t).postJSON("/auth/user/password/sign_in", url.Values{"email": {email}, "password": {contractPassword}})
	if status != http.StatusOK {
		t.Fatalf("sign in: %d %v", status, out)
	}
	bearer = checkUserJSON(t, out, email)
	three := a.signIn(t, email, contractPassword)
	if status, out := a.client(t).postJSON("/auth/user/log_out_everywhere", nil, "Authorization", "Bearer "+bearer); status != http.StatusOK || out["ok"] != true {
		t.Errorf("log out everywhere JSON = %d %v", status, out)
	}
	if three.signedIn() {
		t.Errorf("a session survived log out everywhere (JSON)")
	}

	// Signed out: nothing to do.
	before := a.counts(t)
	if status, out := a.client(t).postJSON("/auth/user/log_out_everywhere", nil); status != http.StatusUnauthorized || out["error"] != "not signed in" {
		t.Errorf("signed-out log out everywhere = %d %v, want 401", status, out)
	}
	a.unchanged(t, "a signed-out log out everywhere", before)
}

func (a *contractApp) testSignOut(t *testing.T) {
	email := newEmail("signout")
	a.register(t, email)
	one := a.signIn(t, email, contractPassword)
	two := a.signIn(t, email, contractPassword)
	oldSession := one.session()

	wantRedirect(t, "sign out", one.post("/sign-out", nil), "/sign-in")
	if one.session() != "" {
		t.Errorf("sign-out left the session cookie")
	}
	if a.withSession(t, oldSession).signedIn() {
		t.Errorf("the signed-out session's cookie still works: its token was not revoked")
	}
	if !two.signedIn() {
		t.Errorf("signing one session out signed the other out")
	}

	// A bearer token is revoked by sign-out too.
	status, out := a.client(t).postJSON("/auth/user/password/sign_in", url.Values{"email": {email}, "password": {contractPassword}})
	if status != http.StatusOK {
		t.Fatalf("sign in: %d %v", status, out)
	}
	bearer := checkUserJSON(t, out, email)
	if status, out := a.client(t).postJSON("/sign-out", nil, "Authorization", "Bearer "+bearer); status != http.StatusOK || out["ok"] != true {
		t.Errorf("sign-out JSON = %d %v", status, out)
	}
	resp, _ := a.client(t).do(http.MethodGet, "/", nil, http.Header{"Authorization": {"Bearer " + bearer}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the bearer token works after sign-out: %d", resp.StatusCode)
	}

	// Signing out when signed out just lands on /sign-in.
	wantRedirect(t, "signed-out sign out", a.client(t).post("/sign-out", nil), "/sign-in")
}

// sessionRows matches the rows of the sessions page.
var sessionRows = regexp.MustCompile(`<tr data-jti="([^"]+)"><td>(.*?)</td>`)

// testSubjectOf: the runtime's SubjectOf (tokens revoke --user) finds the
// token subject of an email.
func (a *contractApp) testSubjectOf(t *testing.T) {
	ctx := context.Background()
	email := newEmail("subject")
	a.register(t, email)
	var id string
	if err := a.db.NewSelect().Table("users").Column("id").Where("email = ?", email).Scan(ctx, &id); err != nil {
		t.Fatal(err)
	}
	if sub, err := a.rt.SubjectOf(ctx, email); err != nil || sub != "user?id="+id {
		t.Errorf("SubjectOf(%s) = %q, %v; want user?id=%s", email, sub, err, id)
	}
	if _, err := a.rt.SubjectOf(ctx, newEmail("nobody")); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("SubjectOf an unknown email = %v, want ErrNotFound", err)
	}
}

func (a *contractApp) testSessions(t *testing.T) {
	email := newEmail("sessions")
	a.register(t, email)
	one := a.signIn(t, email, contractPassword)
	two := a.signIn(t, email, contractPassword)
	stranger := a.register(t, newEmail("stranger"))

	rows := func(c *client) map[string]bool {
		t.Helper()
		resp, body := c.get("/sessions")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /sessions = %d", resp.StatusCode)
		}
		out := map[string]bool{}
		for _, m := range sessionRows.FindAllStringSubmatch(body, -1) {
			out[m[1]] = strings.Contains(m[2], "(this session)")
		}
		return out
	}
	jtiOf := func(c *client) string {
		t.Helper()
		for jti, current := range rows(c) {
			if current {
				return jti
			}
		}
		t.Fatal("no row says (this session)")
		return ""
	}
	seen := rows(one)
	if len(seen) != 3 { // the register's and the two sign-ins'
		t.Errorf("the sessions page lists %d sessions, want 3", len(seen))
	}
	oneJTI, twoJTI := jtiOf(one), jtiOf(two)
	if oneJTI == twoJTI || !seen[oneJTI] || seen[twoJTI] {
		t.Errorf("(this session) marks the wrong rows: %v (one %s, two %s)", seen, oneJTI, twoJTI)
	}

	// A stranger cannot revoke someone else's session.
	before := a.counts(t)
	wantRedirect(t, "a stranger's revoke", stranger.post("/sessions/revoke", url.Values{"jti": {twoJTI}}), "/sessions?error=that+session+is+already+gone")
	a.unchanged(t, "a stranger's revoke", before)
	if !two.signedIn() {
		t.Fatal("a stranger revoked a session")
	}

	wantRedirect(t, "revoke", one.post("/sessions/revoke", url.Values{"jti": {twoJTI}}), "/sessions?notice=session+revoked")
	if two.signedIn() {
		t.Errorf("the revoked session is still signed in")
	}
	if !one.signedIn() {
		t.Errorf("the revoking session was signed out")
	}
	if _, ok := rows(one)[twoJTI]; ok {
		t.Errorf("the revoked session is still listed")
	}
	wantRedirect(t, "revoke again", one.post("/sessions/revoke", url.Values{"jti": {twoJTI}}), "/sessions?error=that+session+is+already+gone")

	// Revoking the current session signs it out.
	wantRedirect(t, "revoke this session", one.post("/sessions/revoke", url.Values{"jti": {oneJTI}}), "/sign-in?reason=revoked")
	if one.session() != "" || a.withSession(t, "").signedIn() {
		t.Errorf("revoking this session left it signed in")
	}
}

// dial opens a live socket with header and reads its first frame.
func (a *contractApp) dial(t *testing.T, header http.Header) (*websocket.Conn, live.Frame, int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, resp, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(a.url, "http")+"/live/websocket", header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return nil, live.Frame{}, status, err
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var f live.Frame
	if err := conn.ReadJSON(&f); err != nil {
		return conn, f, http.StatusSwitchingProtocols, err
	}
	return conn, f, http.StatusSwitchingProtocols, nil
}

// waitClose reads until the server closes the socket.
func waitClose(t *testing.T, conn *websocket.Conn) (int, string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Text
			}
			t.Fatalf("the socket ended without a close frame: %v", err)
		}
	}
}

func (a *contractApp) testLiveWebsocket(t *testing.T) {
	email := newEmail("live")
	a.register(t, email)
	c := a.signIn(t, email, contractPassword)
	cookie := http.Header{"Cookie": {"kiln_session=" + c.session()}}

	conn, hello, _, err := a.dial(t, cookie)
	if err != nil {
		t.Fatalf("dial with the session cookie: %v", err)
	}
	var p map[string]string
	if err := json.Unmarshal(hello.Payload, &p); err != nil || hello.Event != "hello" || !strings.HasPrefix(p["socket_id"], "users_sessions:") || len(p) != 1 {
		t.Fatalf("first frame = %s %s, want hello {socket_id: users_sessions:…}", hello.Event, hello.Payload)
	}
	// The clock ticks on it.
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var tick live.Frame
	if err := conn.ReadJSON(&tick); err != nil || tick.Event != "tick" {
		t.Errorf("second frame = %+v, %v; want a tick", tick, err)
	}

	// A bearer token opens a socket too.
	status, out := a.client(t).postJSON("/auth/user/password/sign_in", url.Values{"email": {email}, "password": {contractPassword}})
	if status != http.StatusOK {
		t.Fatalf("sign in: %d %v", status, out)
	}
	bearer := checkUserJSON(t, out, email)
	if _, f, _, err := a.dial(t, http.Header{"Authorization": {"Bearer " + bearer}}); err != nil || f.Event != "hello" {
		t.Errorf("dial with a bearer token: %v, first frame %s", err, f.Event)
	}

	// Nobody: 401.
	if _, _, status, err := a.dial(t, nil); err == nil || status != http.StatusUnauthorized {
		t.Errorf("dial without a session = %d, %v; want 401", status, err)
	}

	// Sign out: the socket closes with 4001, and the session opens no new one.
	session := c.session()
	wantRedirect(t, "sign out", c.post("/sign-out", nil), "/sign-in")
	if code, reason := waitClose(t, conn); code != live.CloseSignedOut || reason != live.ReasonText(revocation.SignedOut) {
		t.Errorf("the socket closed with %d %q, want 4001 %q", code, reason, live.ReasonText(revocation.SignedOut))
	}
	if _, _, status, err := a.dial(t, http.Header{"Cookie": {"kiln_session=" + session}}); err == nil || status != http.StatusUnauthorized {
		t.Errorf("dial with a revoked session = %d, %v; want 401", status, err)
	}

	// A cross-origin upgrade is refused.
	other := a.signIn(t, email, contractPassword)
	if _, _, status, err := a.dial(t, http.Header{"Cookie": {"kiln_session=" + other.session()}, "Origin": {"http://evil.example"}}); err == nil || status != http.StatusForbidden {
		t.Errorf("cross-origin dial = %d, %v; want 403", status, err)
	}
}

func (a *contractApp) testCrossOrigin(t *testing.T) {
	email := newEmail("csrf")
	victim := a.register(t, email)
	evil := http.Header{
		"Content-Type":   {"application/x-www-form-urlencoded"},
		"Origin":         {"http://evil.example"},
		"Sec-Fetch-Site": {"cross-site"},
	}
	for path, form := range map[string]url.Values{
		"/auth/user/password/register":      registerForm(newEmail("csrf"), contractPassword, contractPassword),
		"/auth/user/password/sign_in":       {"email": {email}, "password": {contractPassword}},
		"/auth/user/password/change":        {"current_password": {contractPassword}, "password": {contractNewPassword}, "password_confirmation": {contractNewPassword}},
		"/auth/user/password/reset_request": {"email": {email}},
		"/auth/user/log_out_everywhere":     nil,
		"/sign-out":                         nil,
		"/sessions/revoke":                  {"jti": {"x"}},
		"/auth/user/password/reset":         {"reset_token": {"x"}, "password": {contractNewPassword}, "password_confirmation": {contractNewPassword}},
	} {
		before := a.counts(t)
		resp, _ := victim.do(http.MethodPost, path, strings.NewReader(form.Encode()), evil)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-origin POST %s = %d, want 403", path, resp.StatusCode)
		}
		a.unchanged(t, "cross-origin POST "+path, before)
	}
	if !victim.signedIn() {
		t.Errorf("a cross-origin post signed the victim out")
	}
	// The same post from the same origin goes through.
	same := evil.Clone()
	same.Set("Origin", a.url)
	same.Set("Sec-Fetch-Site", "same-origin")
	resp, _ := victim.do(http.MethodPost, "/sign-out", nil, same)
	wantRedirect(t, "same-origin sign out", resp, "/sign-in")
}
