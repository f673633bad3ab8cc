package main

// Security properties of the example, through its HTTP routes: bad revoke
// forms, the security headers, the brute-force limit and its
// configuration, and a log that holds no secret.

import (
	"bytes"
	"context"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/kiln-go/kiln/cli"
	"github.com/kiln-go/kiln/dsl"
	"github.com/kiln-go/kiln/internal/formtest"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/live"
)

// newSecurityApp is newContractApp with the configuration adjusted by edit
// (nil for none); it also returns the app's log, written at debug level.
func newSecurityApp(t *testing.T, database string, edit func(*cli.Config)) (*contractApp, *lockedBuffer) {
	t.Helper()
	cfg := cli.Config{
		TokenSigningSecret: "security-test-token-signing-secret-0123456789",
		CookieKeys:         []string{"security-test-cookie-key-0123456789abcdef"},
		DSL:                dsl.FromEnv("KILN", []string{"KILN_LIVE__SWEEP_INTERVAL=1m"}),
		Dev:                true,
		DevSecrets:         true,
	}
	if database == "postgres" {
		cfg.DatabaseURL = testdb.PostgresSchemaURL(t)
	}
	if edit != nil {
		edit(&cfg)
	}
	return startApp(t, cfg)
}

// jtis returns the jti of every session the sessions page lists for c,
// and the jti of c's own.
func (c *client) jtis() (all []string, own string) {
	c.t.Helper()
	resp, body := c.get("/sessions")
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET /sessions = %d", resp.StatusCode)
	}
	for _, m := range sessionRows.FindAllStringSubmatch(body, -1) {
		all = append(all, m[1])
		if strings.Contains(m[2], "(this session)") {
			own = m[1]
		}
	}
	return all, own
}

// POST /sessions/revoke answers a form without a jti 400, and a multipart
// body 415 without reading it: no temporary file is left, and nothing is
// revoked.
func TestRevokeSessionRefusesBadForms(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // os.TempDir, where multipart files would go
	a, _ := newSecurityApp(t, "sqlite", nil)
	email := newEmail("revoker")
	a.register(t, email)
	c := a.signIn(t, email, contractPassword)
	other := a.signIn(t, email, contractPassword)
	_, otherJTI := other.jtis()

	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	for _, tc := range []struct {
		name   string
		body   string
		header http.Header
	}{
		{"no body", "", nil},
		{"no jti", "", form},
		{"empty jti", "jti=", form},
		{"another field", "id=" + otherJTI, form},
	} {
		before := a.counts(t)
		resp, body := c.do(http.MethodPost, "/sessions/revoke", strings.NewReader(tc.body), tc.header)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %q, want 400", tc.name, resp.StatusCode, body)
		}
		a.unchanged(t, tc.name, before)
	}

	big, contentType := formtest.BigMultipart(t, "jti", otherJTI, 40<<20)
	resp, answer := c.do(http.MethodPost, "/sessions/revoke", bytes.NewReader(big), http.Header{"Content-Type": {contentType}})
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("a 40 MB multipart revoke: %d %q, want 415", resp.StatusCode, answer)
	}
	var left []string
	if err := filepath.WalkDir(tmp, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if !other.signedIn() {
		t.Fatalf("a refused revoke revoked the session")
	}
	// The same jti in a plain form revokes it.
	wantRedirect(t, "revoke", c.post("/sessions/revoke", url.Values{"jti": {otherJTI}}), "/sessions?notice=session+revoked")
	if other.signedIn() {
		t.Errorf("the revoked session is still signed in")
	}
}

var (
	// cspNonce finds the nonce of the script-src directive.
	cspNonce = regexp.MustCompile(`script-src [^;]*'nonce-([^']+)'`)
	// nonceAttr finds the nonce attributes of a page.
	nonceAttr = regexp.MustCompile(`nonce="([^"]*)"`)
	// inlineTag finds <style> and <script> elements without src.
	inlineTag = regexp.MustCompile(`<(style|script)(\s[^>]*)?>`)
)

// checkHeaders fails t unless resp carries the security headers, with
// Strict-Transport-Security when https, and a page body whose inline
// <script> and <style> elements all carry the policy's nonce. It returns
// the nonce.
func checkHeaders(t *testing.T, what string, resp *http.Response, body string, https bool) string {
	t.Helper()
	h := resp.Header
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("%s: Content-Security-Policy %q", what, csp)
	}
	for name, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s: %s %q, want %q", what, name, got, want)
		}
	}
	hsts := h.Get("Strict-Transport-Security")
	switch {
	case https && !regexp.MustCompile(`^max-age=[1-9][0-9]*`).MatchString(hsts):
		t.Errorf("%s over https: Strict-Transport-Security %q", what, hsts)
	case !https && hsts != "":
		t.Errorf("%s over http: Strict-Transport-Security %q, want none", what, hsts)
	}
	m := cspNonce.FindStringSubmatch(csp)
	if m == nil || len(m[1]) < 16 || !strings.Contains(csp, "style-src 'self' 'nonce-"+m[1]+"'") {
		t.Errorf("%s: no nonce for scripts and styles in %q", what, csp)
		return ""
	}
	nonce := m[1]
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		return nonce
	}
	for _, tag := range inlineTag.FindAllStringSubmatch(body, -1) {
		if strings.Contains(tag[2], "src=") {
			continue
		}
		if a := nonceAttr.FindStringSubmatch(tag[2]); a == nil || html.UnescapeString(a[1]) != nonce {
			t.Errorf("%s: %s without the policy's nonce", what, tag[0])
		}
	}
	if !strings.Contains(body, `<style nonce="`) {
		t.Errorf("%s: the page has no inline style to check", what)
	}
	return nonce
}

// Every answer of the example carries the security headers: a
// Content-Security-Policy without framing whose nonce, fresh for each
// request, is the one on the page's inline scripts and styles;
// nosniff; no referrer; no framing; and Strict-Transport-Security only
// under an https public URL, where the session cookie is Secure too.
func TestSecurityHeaders(t *testing.T) {
	t.Run("http", func(t *testing.T) {
		a, _ := newSecurityApp(t, "sqlite", nil)
		anon := a.client(t)
		email := newEmail("headers")
		user := a.register(t, email)
		pages := []struct {
			c    *client
			path string
		}{
			{anon, "/sign-in"}, {anon, "/register"}, {anon, "/reset-request"}, {anon, "/reset?token=x"},
			{anon, "/"}, {anon, "/no-such-page"}, {anon, "/healthz"}, {anon, "/live/client.js"}, {anon, "/dev/mailbox"},
			{user, "/"}, {user, "/sessions"}, {user, "/change-password"},
		}
		seen := map[string]string{}
		for _, p := range pages {
			resp, body := p.c.get(p.path)
			nonce := checkHeaders(t, "GET "+p.path, resp, body, false)
			if other, ok := seen[nonce]; ok && nonce != "" {
				t.Errorf("GET %s and %s share the nonce %s", p.path, other, nonce)
			}
			seen[nonce] = p.path
		}
		// The live page's inline script, the one that must run.
		_, body := user.get("/")
		if !strings.Contains(body, `<script nonce="`) {
			t.Errorf("the live page has no inline script to check")
		}
		// Answers of the auth routes, JSON and redirects, too.
		resp, body := anon.do(http.MethodPost, "/auth/user/password/sign_in", strings.NewReader(url.Values{"email": {email}, "password": {contractPassword}}.Encode()),
			http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"application/json"}})
		checkHeaders(t, "a JSON sign-in", resp, body, false)
		resp = anon.post("/auth/user/password/sign_in", url.Values{"email": {email}, "password": {contractPassword}})
		checkHeaders(t, "a form sign-in", resp, "", false)
	})

	t.Run("https public URL", func(t *testing.T) {
		a, _ := newSecurityApp(t, "sqlite", func(c *cli.Config) {
			c.PublicURL = "https://accounts.example.com"
			c.Dev, c.DevSecrets = false, false
		})
		c := a.client(t)
		for _, path := range []string{"/sign-in", "/register", "/healthz"} {
			resp, body := c.get(path)
			checkHeaders(t, "GET "+path, resp, body, true)
		}
		resp := c.post("/auth/user/password/register", registerForm(newEmail("https"), contractPassword, contractPassword))
		checkHeaders(t, "a form register", resp, "", true)
		var session *http.Cookie
		for _, ck := range resp.Cookies() {
			if ck.Name == "kiln_session" {
				session = ck
			}
		}
		if session == nil || session.Value == "" {
			t.Fatalf("register answered %d without a session cookie", resp.StatusCode)
		}
		if !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode {
			t.Errorf("the session cookie is Secure %v, HttpOnly %v, SameSite %v; want Secure, HttpOnly, Lax",
				session.Secure, session.HttpOnly, session.SameSite)
		}
	})
}

// A failed sign-in for one identity takes a token of its bucket: after
// sign_in_per_identity.burst wrong passwords (10 by default), even the
// right one is refused with 429 and Retry-After, while another identity
// still signs in. The rate_limits section of the configuration sets the
// burst.
func TestSignInBruteForceLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   []string
		burst int
	}{
		{"default", nil, 10},
		{"rate_limits override", []string{"KILN_RATE_LIMITS__SIGN_IN_PER_IDENTITY__BURST=3"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := newSecurityApp(t, "sqlite", func(c *cli.Config) { c.DSL = dsl.FromEnv("KILN", tc.env) })
			email, bystander := newEmail("guessed"), newEmail("bystander")
			a.register(t, email)
			a.register(t, bystander)
			signIn := func(email, password string) (*http.Response, string) {
				t.Helper()
				return a.client(t).do(http.MethodPost, "/auth/user/password/sign_in",
					strings.NewReader(url.Values{"email": {email}, "password": {password}}.Encode()),
					http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"application/json"}})
			}
			for i := range tc.burst {
				if resp, body := signIn(email, "wrong password "+strconv.Itoa(i)); resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("wrong password %d: %d %s, want 401", i+1, resp.StatusCode, body)
				}
			}
			resp, body := signIn(email, contractPassword)
			if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "too many attempts") {
				t.Fatalf("the right password after %d wrong ones: %d %s, want 429", tc.burst, resp.StatusCode, body)
			}
			if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || secs < 1 {
				t.Errorf("Retry-After %q, want whole seconds", resp.Header.Get("Retry-After"))
			}
			if resp, body := signIn(bystander, contractPassword); resp.StatusCode != http.StatusOK {
				t.Errorf("another identity's sign-in: %d %s, want 200", resp.StatusCode, body)
			}
		})
	}
}

// secret is a value a test must not find in a log, and what it is.
type secret struct{ what, value string }

// secrets collects the secrets of a test.
type secrets []secret

// add keeps value under what; "" is not kept.
func (s *secrets) add(what, value string) {
	if value != "" {
		*s = append(*s, secret{what, value})
	}
}

// token keeps a JWT and, alone, its signature.
func (s *secrets) token(what, jwt string) {
	s.add(what, jwt)
	if parts := strings.Split(jwt, "."); len(parts) == 3 {
		s.add(what+" (signature)", parts[2])
	}
}

// A whole flow, every route and a live socket, leaves no secret in the
// app's log: no password, right or wrong, nor its hash; no token, session
// cookie or reset token; neither the signing secret nor the cookie key.
func TestSecretsAreNeverLogged(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			var cfg cli.Config
			a, logs := newSecurityApp(t, db, func(c *cli.Config) { cfg = *c })
			// What the app's parts log to the default logger, and the log
			// package, goes to the same log.
			def := slog.Default()
			slog.SetDefault(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
			t.Cleanup(func() { slog.SetDefault(def) })
			var s secrets
			s.add("the token signing secret", cfg.TokenSigningSecret)
			s.add("the cookie key", cfg.CookieKeys[0])
			const wrongPassword, changedPassword, resetPassword = "wrong horse battery", "changed horse battery", "reset horse battery"
			for _, pw := range []string{contractPassword, wrongPassword, changedPassword, resetPassword} {
				s.add("a password", pw)
			}
			email := newEmail("secrets")

			// Register and sign in, over JSON and forms, wrongly first.
			status, out := a.client(t).postJSON("/auth/user/password/register", registerForm(email, contractPassword, contractPassword))
			if status != http.StatusOK {
				t.Fatalf("register: %d %v", status, out)
			}
			s.token("the register token", checkUserJSON(t, out, email))
			wrong := a.client(t)
			if status, _ := wrong.postJSON("/auth/user/password/sign_in", url.Values{"email": {email}, "password": {wrongPassword}}); status != http.StatusUnauthorized {
				t.Fatalf("a wrong password: %d", status)
			}
			wantRedirect(t, "a wrong password", wrong.post("/auth/user/password/sign_in", url.Values{"email": {email}, "password": {wrongPassword}}),
				"/sign-in?error=authentication+failed")
			status, out = a.client(t).postJSON("/auth/user/password/sign_in", url.Values{"email": {email}, "password": {contractPassword}})
			if status != http.StatusOK {
				t.Fatalf("sign in: %d %v", status, out)
			}
			bearer := checkUserJSON(t, out, email)
			s.token("a sign-in token", bearer)
			browser := a.signIn(t, email, contractPassword)
			other := a.signIn(t, email, contractPassword)
			s.add("a session cookie", browser.session())
			s.add("another session cookie", other.session())

			// A request to the live endpoint that is no upgrade, with a
			// session (the endpoint logs the failed upgrade).
			if resp, _ := other.get("/live/websocket"); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("a plain GET of the live endpoint: %d, want 400", resp.StatusCode)
			}
			// A live socket, closed by the password change.
			conn, hello, _, err := a.dial(t, http.Header{"Cookie": {"kiln_session=" + other.session()}})
			if err != nil || hello.Event != "hello" {
				t.Fatalf("dial: %v, first frame %q", err, hello.Event)
			}
			wantRedirect(t, "change", browser.post("/auth/user/password/change", url.Values{
				"current_password": {contractPassword}, "password": {changedPassword}, "password_confirmation": {changedPassword}}), "/")
			s.add("the changed session's cookie", browser.session())
			if code, _ := waitClose(t, conn); code != live.CloseSignedOut {
				t.Errorf("the socket closed with %d, want %d", code, live.CloseSignedOut)
			}

			// A reset, through the development mailbox.
			wantRedirect(t, "reset request", a.client(t).post("/auth/user/password/reset_request", url.Values{"email": {email}}),
				"/sign-in?notice="+url.QueryEscape("If the address is known, a reset link is on its way."))
			link := a.mailFor(t, email)
			u, err := url.Parse(link)
			if link == "" || err != nil {
				t.Fatalf("no reset link in the mailbox: %q", link)
			}
			resetToken := u.Query().Get("token")
			s.token("the reset token", resetToken)
			if resp, _ := a.client(t).get(link); resp.StatusCode != http.StatusOK {
				t.Fatalf("GET the reset link: %d", resp.StatusCode)
			}
			reset := a.client(t)
			wantRedirect(t, "reset", reset.post("/auth/user/password/reset", url.Values{
				"reset_token": {resetToken}, "password": {resetPassword}, "password_confirmation": {resetPassword}}), "/")
			s.add("the reset session's cookie", reset.session())
			// A used reset token, sent again.
			if status, _ := a.client(t).postJSON("/auth/user/password/reset", url.Values{
				"reset_token": {resetToken}, "password": {contractPassword}, "password_confirmation": {contractPassword}}); status < 400 || status >= 500 {
				t.Errorf("a used reset token: %d, want a 4xx", status)
			}

			// Sign out, log out everywhere, revoke from /sessions; and
			// revoked credentials sent again.
			wantRedirect(t, "sign out", reset.post("/sign-out", nil), "/sign-in")
			status, out = a.client(t).postJSON("/auth/user/password/sign_in", url.Values{"email": {email}, "password": {resetPassword}})
			if status != http.StatusOK {
				t.Fatalf("sign in: %d %v", status, out)
			}
			bearer = checkUserJSON(t, out, email)
			s.token("another sign-in token", bearer)
			if status, out := a.client(t).postJSON("/auth/user/log_out_everywhere", nil, "Authorization", "Bearer "+bearer); status != http.StatusOK {
				t.Fatalf("log out everywhere: %d %v", status, out)
			}
			if resp, _ := a.client(t).do(http.MethodGet, "/", nil, http.Header{"Authorization": {"Bearer " + bearer}}); resp.StatusCode != http.StatusSeeOther {
				t.Errorf("a revoked bearer token: %d, want 303", resp.StatusCode)
			}
			one := a.signIn(t, email, resetPassword)
			two := a.signIn(t, email, resetPassword)
			s.add("a session cookie", one.session())
			s.add("another session cookie", two.session())
			_, twoJTI := two.jtis()
			wantRedirect(t, "revoke", one.post("/sessions/revoke", url.Values{"jti": {twoJTI}}), "/sessions?notice=session+revoked")
			if two.signedIn() {
				t.Errorf("the revoked session is still signed in")
			}

			var hash string
			if err := a.db.NewSelect().Table("users").Column("hashed_password").Where("email = ?", email).Scan(context.Background(), &hash); err != nil {
				t.Fatal(err)
			}
			s.add("the password hash", hash)

			log := logs.String()
			if log == "" {
				t.Fatal("the app logged nothing: the check would prove nothing")
			}
			for _, sec := range s {
				for _, form := range []string{sec.value, url.QueryEscape(sec.value)} {
					if strings.Contains(log, form) {
						t.Errorf("the log holds %s (%q)", sec.what, form)
					}
				}
			}
			t.Logf("%d log lines checked for %d secrets", strings.Count(log, "\n"), len(s))
		})
	}
}
