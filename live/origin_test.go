package live_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kiln-go/kiln/dsl/configfile"
	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
)

// dialFrom dials with the Origin header set (none when origin is empty)
// and returns the upgrade's status: 101 when the socket opened.
func dialFrom(t *testing.T, h *livetest.Harness, token, origin string) int {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	hd := livetest.Bearer(token)
	if origin != "" {
		hd.Set("Origin", origin)
	}
	c, status, err := h.Dial(ctx, hd)
	if err == nil {
		c.Conn.Close()
	}
	return status
}

type originCase struct {
	origin string
	want   int
}

func checkOrigins(t *testing.T, h *livetest.Harness, token string, cases []originCase) {
	t.Helper()
	for _, tc := range cases {
		if got := dialFrom(t, h, token, tc.origin); got != tc.want {
			t.Errorf("Origin %q: upgrade answered %d, want %d", tc.origin, got, tc.want)
		}
	}
}

// serverHostPort is the test server's 127.0.0.1:port.
func serverHostPort(h *livetest.Harness) string {
	u, _ := url.Parse(h.Server.URL)
	return u.Host
}

// otherPort is a port that is not the server's.
func otherPort(h *livetest.Harness) string {
	u, _ := url.Parse(h.Server.URL)
	if u.Port() == "4444" {
		return "4445"
	}
	return "4444"
}

// Same-origin means the same scheme, host and port: a page served over
// http cannot open a socket on the https site of the same host, nor one on
// another port, and the other way round.
func TestOriginComparesSchemeHostAndPort(t *testing.T) {
	t.Run("http", func(t *testing.T) {
		h := livetest.New(t, "sqlite", livetest.Options{})
		ada := h.Register(t, "ada@example.com")
		hp := serverHostPort(h)
		checkOrigins(t, h, ada.Token, []originCase{
			{"", http.StatusSwitchingProtocols}, // not a browser
			{"http://" + hp, http.StatusSwitchingProtocols},
			{"HTTP://" + strings.ToUpper(hp), http.StatusSwitchingProtocols},
			{"https://" + hp, http.StatusForbidden},
			{"http://127.0.0.1:" + otherPort(h), http.StatusForbidden},
			{"http://localhost:" + strings.Split(hp, ":")[1], http.StatusForbidden},
			{"http://127.0.0.1", http.StatusForbidden}, // port 80
			{"null", http.StatusForbidden},
			{"http://" + hp + "/path", http.StatusForbidden},
			{"ws://" + hp, http.StatusForbidden},
		})
	})
	t.Run("https", func(t *testing.T) {
		h := livetest.New(t, "sqlite", livetest.Options{TLS: true})
		ada := h.Register(t, "ada@example.com")
		hp := serverHostPort(h)
		checkOrigins(t, h, ada.Token, []originCase{
			{"https://" + hp, http.StatusSwitchingProtocols},
			{"http://" + hp, http.StatusForbidden},
			{"https://127.0.0.1:" + otherPort(h), http.StatusForbidden},
		})
	})
}

// Allowed origins match by scheme, host and port, with default ports
// normalised and case ignored.
func TestAllowedOriginsCompareSchemeHostAndPort(t *testing.T) {
	h := livetest.New(t, "sqlite", livetest.Options{EndpointOptions: []live.Option{
		live.WithAllowedOrigins("https://app.example.com", "http://admin.example.com:8080/"),
	}})
	ada := h.Register(t, "ada@example.com")
	checkOrigins(t, h, ada.Token, []originCase{
		{"https://app.example.com", http.StatusSwitchingProtocols},
		{"https://APP.example.com:443", http.StatusSwitchingProtocols},
		{"http://app.example.com", http.StatusForbidden},
		{"http://app.example.com:443", http.StatusForbidden},
		{"https://app.example.com:8443", http.StatusForbidden},
		{"https://evil.app.example.com", http.StatusForbidden},
		{"http://admin.example.com:8080", http.StatusSwitchingProtocols},
		{"http://admin.example.com", http.StatusForbidden},
		{"https://admin.example.com:8080", http.StatusForbidden},
	})
}

// Behind a proxy that terminates TLS the endpoint gets plain HTTP; with a
// public URL, same-origin means that URL's origin, and the request's own
// Host and scheme no longer open sockets.
func TestPublicURLIsTheSameOrigin(t *testing.T) {
	public, _ := url.Parse("https://app.example.com/some/path")
	for name, opt := range map[string]live.Option{
		"option":   live.WithPublicURL(public),
		"settings": live.WithSettings(live.Settings{PublicURL: "https://app.example.com"}),
	} {
		t.Run(name, func(t *testing.T) {
			h := livetest.New(t, "sqlite", livetest.Options{EndpointOptions: []live.Option{opt}})
			ada := h.Register(t, "ada@example.com")
			checkOrigins(t, h, ada.Token, []originCase{
				{"https://app.example.com", http.StatusSwitchingProtocols},
				{"https://app.example.com:443", http.StatusSwitchingProtocols},
				{"http://app.example.com", http.StatusForbidden},
				{"https://app.example.com:8443", http.StatusForbidden},
				{"http://" + serverHostPort(h), http.StatusForbidden},
			})
		})
	}
}

// A bad allowed origin or public URL fails New, and SettingsFrom for a
// config file, naming the setting and the fix.
func TestBadOriginSettingsAreRefused(t *testing.T) {
	const fix = "write it as scheme://host[:port], such as https://app.example.com"
	_, err := live.New(quiet(), live.WithAllowedOrigins("https://ok.example.com", "app.example.com", "https://x.example.com/path"),
		live.WithPublicURL(&url.URL{Scheme: "ftp", Host: "example.com"}))
	want := []string{
		`kiln/live: WithAllowedOrigins[1]: "app.example.com": the scheme must be http or https; ` + fix,
		`kiln/live: WithAllowedOrigins[2]: "https://x.example.com/path": an origin has no path, query or fragment; ` + fix,
		`kiln/live: WithPublicURL: "ftp://example.com": the scheme must be http or https; ` + fix,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("New: %v\nwant:\n%s", err, strings.Join(want, "\n"))
	}

	f, err := configfile.Parse("kiln.yaml", "yaml", []byte("live:\n  allowed_origins: [\"https://ok.example.com\", \"https://a.example.com:99999\"]\n  public_url: \"//app.example.com\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = live.SettingsFrom(f)
	want = []string{
		`kiln/dsl: kiln.yaml:2: live.allowed_origins: [1] "https://a.example.com:99999": bad port "99999"; ` + fix,
		`kiln/dsl: kiln.yaml:3: live.public_url: "//app.example.com": the scheme must be http or https; ` + fix,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("SettingsFrom: %v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}
