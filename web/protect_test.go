package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/web"
)

// TestProtectComparesTheScheme: behind an https public URL, a form post
// whose Origin has the right host but the http scheme (or another port) is
// refused, which net/http's check alone (Origin against Host) lets
// through; the public origin itself and requests without Origin pass.
func TestProtectComparesTheScheme(t *testing.T) {
	public, _ := url.Parse("https://app.example.com")
	h := livetest.New(t, "sqlite", livetest.Options{WebOptions: []web.Option{web.WithPublicURL(public)}})
	h.Register(t, "ada@example.com")
	post := func(origin string) int {
		form := url.Values{"email": {"ada@example.com"}, "password": {"password123"}}
		req, err := http.NewRequest(http.MethodPost, h.Server.URL+"/auth/user/password/sign_in", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "app.example.com"
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := h.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for origin, want := range map[string]int{
		"http://app.example.com":       http.StatusForbidden,
		"https://app.example.com:8443": http.StatusForbidden,
		"https://evil.example":         http.StatusForbidden,
		"https://app.example.com":      http.StatusOK,
		"":                             http.StatusOK,
	} {
		if got := post(origin); got != want {
			t.Errorf("Origin %q: %d, want %d", origin, got, want)
		}
	}
}

// TestPagesAreNotCached: every answer under SecurityHeaders says
// Cache-Control: no-store, unless its handler says otherwise.
func TestPagesAreNotCached(t *testing.T) {
	h := web.SecurityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/static.js" {
			w.Header().Set("Cache-Control", "no-cache")
		}
	}), web.HeaderOptions{})
	for path, want := range map[string]string{"/": "no-store", "/static.js": "no-cache"} {
		rec := &recorder{header: http.Header{}}
		req, _ := http.NewRequest(http.MethodGet, path, nil)
		h.ServeHTTP(rec, req)
		if got := rec.header.Get("Cache-Control"); got != want {
			t.Errorf("%s: Cache-Control %q, want %q", path, got, want)
		}
	}
}

type recorder struct{ header http.Header }

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(p []byte) (int, error) { return len(p), nil }
func (r *recorder) WriteHeader(int)             {}
