package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kiln-go/kiln/cli"
)

// devApp builds the example from cfg (a SQLite file in a fresh folder is
// added) and serves it behind an httptest server on loopback until t ends.
func devApp(t *testing.T, cfg cli.Config) (string, http.Handler) {
	t.Helper()
	cfg.DatabaseURL = ""
	a, _ := startApp(t, cfg)
	return a.url, a.rt.Handler
}

// askReset registers email and requests a reset mail for it.
func askReset(t *testing.T, base, email string) {
	t.Helper()
	client := &http.Client{Timeout: time.Minute}
	for _, step := range []struct {
		path string
		form url.Values
	}{
		{"/auth/user/password/register", url.Values{"email": {email}, "password": {"password123"}, "password_confirmation": {"password123"}}},
		{"/auth/user/password/reset_request", url.Values{"email": {email}}},
	} {
		req, err := http.NewRequest(http.MethodPost, base+step.path, strings.NewReader(step.form.Encode()))
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
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s = %d %s", step.path, resp.StatusCode, body)
		}
	}
}

// get fetches path and returns its status and body.
func get(t *testing.T, base, path string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: time.Minute}
	resp, err := client.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// The development mailbox shows every user's reset link: it exists only
// in development mode, with development secrets, for this machine's
// browsers.
func TestMailboxIsDevelopmentOnly(t *testing.T) {
	const secret, key = "devmode-test-token-signing-secret-0123456789", "devmode-test-cookie-key-0123456789abcdef"
	for _, tc := range []struct {
		name string
		cfg  cli.Config
	}{
		{"without development mode", cli.Config{TokenSigningSecret: secret, CookieKeys: []string{key}, DevSecrets: true}},
		{"with production secrets", cli.Config{TokenSigningSecret: secret, CookieKeys: []string{key}}},
		{"development mode with production secrets", cli.Config{Dev: true, TokenSigningSecret: secret, CookieKeys: []string{key}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, _ := devApp(t, tc.cfg)
			askReset(t, base, "victim@example.com")
			if status, body := get(t, base, "/dev/mailbox"); status != http.StatusNotFound || strings.Contains(body, "/reset?token=") {
				t.Errorf("GET /dev/mailbox = %d %q, want 404", status, body)
			}
			for _, page := range []string{"/sign-in", "/reset-request"} {
				if _, body := get(t, base, page); strings.Contains(body, "/dev/mailbox") {
					t.Errorf("%s links to the mailbox:\n%s", page, body)
				}
			}
		})
	}

	t.Run("development mode", func(t *testing.T) {
		base, h := devApp(t, cli.Config{Dev: true, TokenSigningSecret: secret, CookieKeys: []string{key}, DevSecrets: true})
		askReset(t, base, "ada@example.com")
		status, body := get(t, base, "/dev/mailbox")
		if status != http.StatusOK || !strings.Contains(body, "ada@example.com") || !strings.Contains(body, "/reset?token=") {
			t.Fatalf("GET /dev/mailbox from loopback = %d, want 200 with the reset mail:\n%s", status, body)
		}
		if _, body := get(t, base, "/sign-in"); !strings.Contains(body, `href="/dev/mailbox"`) {
			t.Errorf("the sign-in page has no mailbox link in development mode")
		}
		// Other machines, and anyone through a proxy, are refused; the
		// forwarding headers are not believed.
		for _, tc := range []struct {
			remote string
			header http.Header
			want   int
			host   string // the Host header; 127.0.0.1:4000 when empty
		}{
			{"127.0.0.1:50000", nil, http.StatusOK, ""},
			{"[::1]:50000", nil, http.StatusOK, ""},
			{"[::ffff:127.0.0.1]:50000", nil, http.StatusOK, ""},
			{"203.0.113.9:50000", nil, http.StatusForbidden, ""},
			{"[2001:db8::9]:50000", nil, http.StatusForbidden, ""},
			{"192.168.1.20:50000", http.Header{"X-Forwarded-For": {"127.0.0.1"}}, http.StatusForbidden, ""},
			{"127.0.0.1:50000", http.Header{"X-Forwarded-For": {"203.0.113.9"}}, http.StatusForbidden, ""},
			{"127.0.0.1:50000", http.Header{"Forwarded": {"for=203.0.113.9"}}, http.StatusForbidden, ""},
			{"127.0.0.1:50000", http.Header{"X-Real-Ip": {"203.0.113.9"}}, http.StatusForbidden, ""},
			{"not an address", nil, http.StatusForbidden, ""},
			{"127.0.0.1:50000", http.Header{"Via": {"1.1 proxy"}}, http.StatusForbidden, ""},
			{"127.0.0.1:50000", http.Header{"True-Client-Ip": {"203.0.113.9"}}, http.StatusForbidden, ""},
			{"127.0.0.1:50000", http.Header{"Cf-Connecting-Ip": {"203.0.113.9"}}, http.StatusForbidden, ""},
			// A page of another site whose name now points at 127.0.0.1
			// (DNS rebinding) sends its own name.
			{"127.0.0.1:50000", nil, http.StatusForbidden, "evil.example:4000"},
			{"127.0.0.1:50000", nil, http.StatusForbidden, "127.0.0.1.nip.io:4000"},
			{"127.0.0.1:50000", nil, http.StatusOK, "localhost:4000"},
			{"127.0.0.1:50000", nil, http.StatusOK, "[::1]:4000"},
		} {
			req := httptest.NewRequest(http.MethodGet, "/dev/mailbox", nil)
			req.Host = "127.0.0.1:4000"
			if tc.host != "" {
				req.Host = tc.host
			}
			req.RemoteAddr = tc.remote
			for k, v := range tc.header {
				req.Header[k] = v
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Errorf("GET /dev/mailbox from %s %v = %d, want %d", tc.remote, tc.header, rec.Code, tc.want)
			}
			if tc.want != http.StatusOK && strings.Contains(rec.Body.String(), "/reset?token=") {
				t.Errorf("a refused request from %s saw a reset link", tc.remote)
			}
		}
	})
}

// Under an https public URL the session cookie is Secure, although the app
// itself is served over plain HTTP (behind a TLS proxy).
func TestSecureCookieUnderHTTPS(t *testing.T) {
	const secret, key = "devmode-test-token-signing-secret-0123456789", "devmode-test-cookie-key-0123456789abcdef"
	for _, tc := range []struct {
		publicURL string
		secure    bool
	}{{"", false}, {"http://127.0.0.1:4000", false}, {"https://accounts.example.com", true}} {
		base, _ := devApp(t, cli.Config{TokenSigningSecret: secret, CookieKeys: []string{key}, PublicURL: tc.publicURL})
		form := url.Values{"email": {"secure@example.com"}, "password": {"password123"}, "password_confirmation": {"password123"}}
		client := &http.Client{Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.PostForm(base+"/auth/user/password/register", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var session *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "kiln_session" {
				session = c
			}
		}
		if session == nil {
			t.Fatalf("public_url %q: no session cookie (%d)", tc.publicURL, resp.StatusCode)
		}
		if session.Secure != tc.secure {
			t.Errorf("public_url %q: the session cookie's Secure is %v, want %v", tc.publicURL, session.Secure, tc.secure)
		}
	}
}
