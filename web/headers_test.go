package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/web"
)

// serveHeaders answers one request through SecurityHeaders and returns the
// response and the nonce the handler saw.
func serveHeaders(t *testing.T, o web.HeaderOptions) (*http.Response, string) {
	t.Helper()
	var nonce string
	h := web.SecurityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nonce = web.CSPNonce(r.Context())
	}), o)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	return rec.Result(), nonce
}

func TestSecurityHeadersDefaults(t *testing.T) {
	resp, nonce := serveHeaders(t, web.HeaderOptions{})
	if len(nonce) < 22 {
		t.Fatalf("nonce %q", nonce)
	}
	want := map[string]string{
		"Content-Security-Policy": "default-src 'self'; script-src 'self' 'nonce-" + nonce + "'; style-src 'self' 'nonce-" + nonce + "'; " +
			"object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
		"X-Content-Type-Options":    "nosniff",
		"X-Frame-Options":           "DENY",
		"Referrer-Policy":           "no-referrer",
		"Strict-Transport-Security": "",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if _, again := serveHeaders(t, web.HeaderOptions{}); again == nonce {
		t.Fatalf("two requests share the nonce %q", nonce)
	}
	if web.CSPNonce(t.Context()) != "" {
		t.Fatal("a nonce outside SecurityHeaders")
	}
}

// Strict-Transport-Security is sent only for an https app.
func TestSecurityHeadersHSTS(t *testing.T) {
	for _, c := range []struct {
		o    web.HeaderOptions
		want string
	}{
		{web.HeaderOptions{HTTPS: true}, "max-age=31536000"},
		{web.HeaderOptions{HTTPS: true, StrictTransportSecurityMaxAge: time.Hour}, "max-age=3600"},
		{web.HeaderOptions{HTTPS: false, StrictTransportSecurityMaxAge: time.Hour}, ""},
	} {
		resp, _ := serveHeaders(t, c.o)
		if got := resp.Header.Get("Strict-Transport-Security"); got != c.want {
			t.Errorf("%+v: %q, want %q", c.o, got, c.want)
		}
	}
}

func TestSecurityHeadersOptions(t *testing.T) {
	resp, nonce := serveHeaders(t, web.HeaderOptions{ContentSecurityPolicy: "script-src 'nonce-{nonce}' 'nonce-{nonce}'", ReferrerPolicy: "same-origin"})
	if got := resp.Header.Get("Content-Security-Policy"); nonce == "" || got != "script-src 'nonce-"+nonce+"' 'nonce-"+nonce+"'" {
		t.Fatalf("CSP %q (nonce %q)", got, nonce)
	}
	if got := resp.Header.Get("Referrer-Policy"); got != "same-origin" {
		t.Fatalf("Referrer-Policy %q", got)
	}
	resp, nonce = serveHeaders(t, web.HeaderOptions{ContentSecurityPolicy: "default-src 'none'"})
	if got := resp.Header.Get("Content-Security-Policy"); got != "default-src 'none'" || nonce != "" {
		t.Fatalf("CSP %q, nonce %q: a policy without {nonce} has none", got, nonce)
	}
}

// With an https public URL the session cookie is Secure even when the
// request reached the app over plain http (behind a TLS proxy), when set
// and when cleared; with an http one it is not.
func TestPublicURLMakesCookiesSecure(t *testing.T) {
	for _, c := range []struct {
		public string
		secure bool
	}{
		{"https://accounts.example.com", true},
		{"HTTPS://accounts.example.com:8443/app", true},
		{"http://localhost:8080", false},
	} {
		t.Run(c.public, func(t *testing.T) {
			u, err := url.Parse(c.public)
			if err != nil {
				t.Fatal(err)
			}
			h := livetest.New(t, "sqlite", livetest.Options{WebOptions: []web.Option{web.WithPublicURL(u)}})
			h.Register(t, "ada@example.com")
			cookie := h.SignInCookie(t, "ada@example.com")
			if cookie.Secure != c.secure || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode {
				t.Fatalf("session cookie: Secure %v, HttpOnly %v, SameSite %v", cookie.Secure, cookie.HttpOnly, cookie.SameSite)
			}
			resp, _ := h.PostForm(t, "/sign-out", nil, livetest.CookieHeader(cookie))
			cleared := h.SessionCookie(resp)
			if cleared == nil || cleared.MaxAge >= 0 || cleared.Secure != c.secure {
				t.Fatalf("cleared cookie %+v", cleared)
			}
			var raw string
			for _, sc := range resp.Header.Values("Set-Cookie") {
				if strings.HasPrefix(sc, cookie.Name+"=") {
					raw = sc
				}
			}
			if strings.Contains(raw, "; Secure") != c.secure {
				t.Fatalf("Set-Cookie %q", raw)
			}
		})
	}
}
