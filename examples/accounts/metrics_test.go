package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiln-go/kiln/cli"
	"github.com/kiln-go/kiln/dsl"
	"github.com/kiln-go/kiln/live"
)

func newMetricsApp(t *testing.T, public bool) *contractApp {
	t.Helper()
	a, _ := startApp(t, cli.Config{
		TokenSigningSecret: "contract-test-token-signing-secret-0123456789",
		CookieKeys:         []string{"contract-test-cookie-key-0123456789abcdef"},
		DSL:                dsl.FromEnv("KILN", []string{"KILN_LIVE__SWEEP_INTERVAL=1m"}),
		MetricsPublic:      public,
	})
	return a
}

// scrape reads the app's /metrics, as Prometheus on this machine would,
// into sample → value.
func scrape(t *testing.T, ctx context.Context, baseURL string) map[string]float64 {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d, %v\n%s", resp.StatusCode, err, body)
	}
	samples := map[string]float64{}
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(line[i+1:]), 64); err == nil {
			samples[line[:i]] = v
		}
	}
	return samples
}

// /metrics, scraped during a sign-out, shows the socket closed with 4001
// "signed out", the gauge of open sockets back to 0, the disconnect's
// latency, the token store's revocation counter moved by the sign-out and
// the SQLite transport connected, with the disconnect published and
// received; the Go and process collectors are there too.
func TestMetricsScrapedDuringARevocation(t *testing.T) {
	a := newMetricsApp(t, false)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	hc := noRedirectClient()
	const email = "metrics@example.com"
	if err := registerUser(hc, a.url, email); err != nil {
		t.Fatal(err)
	}
	session, err := signInSession(hc, a.url, email, contractPassword)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := dialLive(a.url, session)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closes := make(chan closeEvent, 1)
	go func() { closes <- readUntilClose(conn) }()
	before := scrape(t, ctx, a.url)
	if got := before["kiln_live_sockets"]; got != 1 {
		t.Fatalf("kiln_live_sockets = %v with one socket open, want 1", got)
	}
	if got, ok := before[`kiln_tokens_revoked_total{reason="signed_out"}`]; !ok || got != 0 {
		t.Fatalf("kiln_tokens_revoked_total{reason=\"signed_out\"} = %v (%v) before the sign-out, want 0", got, ok)
	}

	if code, err := postSignOut(hc, a.url, session); err != nil || code != http.StatusSeeOther {
		t.Fatalf("sign-out: %d, %v", code, err)
	}
	ev, ok := awaitClose(closes)
	if !ok || ev.code != live.CloseSignedOut || ev.reason != "signed out" {
		t.Fatalf("socket closed with %d %q (%v), want 4001 \"signed out\"", ev.code, ev.reason, ev.err)
	}

	// The histogram is observed once the close frame is written, which the
	// client may read first: scrape until it is there.
	want := map[string]float64{
		`kiln_live_closed_total{code="4001",reason="signed out"}`: 1,
		`kiln_live_sockets`:                                                 0,
		`kiln_live_opened_total`:                                            1,
		`kiln_live_disconnect_seconds_count`:                                1,
		`kiln_tokens_revoked_total{reason="signed_out"}`:                    1,
		`kiln_pubsub_connected{transport="sqlite"}`:                         1,
		`kiln_pubsub_published_total{kind="disconnect",transport="sqlite"}`: 1,
		`kiln_pubsub_received_total{kind="disconnect",transport="sqlite"}`:  1,
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		got := scrape(t, ctx, a.url)
		var diff []string
		for name, v := range want {
			if got[name] != v {
				diff = append(diff, fmt.Sprintf("%s = %v, want %v", name, got[name], v))
			}
		}
		if _, ok := got["go_goroutines"]; !ok {
			diff = append(diff, "go_goroutines missing")
		}
		if _, ok := got["process_open_fds"]; !ok {
			diff = append(diff, "process_open_fds missing")
		}
		if len(diff) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("/metrics after the sign-out:\n%s", strings.Join(diff, "\n"))
		case <-tick.C:
		}
	}
}

// /metrics answers clients on this machine alone, unless metrics_public
// is set: a peer that is not loopback, a request through a proxy and a
// Host that is not this machine's (DNS rebinding) are refused with 403.
func TestMetricsOnlyForThisMachine(t *testing.T) {
	get := func(a *contractApp, remote, host string, header http.Header) int {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		r.RemoteAddr, r.Host = remote, host
		for k, v := range header {
			r.Header[k] = v
		}
		w := httptest.NewRecorder()
		a.rt.Handler.ServeHTTP(w, r)
		return w.Code
	}
	private := newMetricsApp(t, false)
	for _, tc := range []struct {
		name, remote, host string
		header             http.Header
		want               int
	}{
		{"loopback", "127.0.0.1:50000", "127.0.0.1:4000", nil, http.StatusOK},
		{"loopback IPv6", "[::1]:50000", "localhost:4000", nil, http.StatusOK},
		{"another machine", "203.0.113.9:50000", "127.0.0.1:4000", nil, http.StatusForbidden},
		{"through a proxy", "127.0.0.1:50000", "127.0.0.1:4000", http.Header{"X-Forwarded-For": {"203.0.113.9"}}, http.StatusForbidden},
		{"a rebound name", "127.0.0.1:50000", "attacker.example:4000", nil, http.StatusForbidden},
	} {
		if got := get(private, tc.remote, tc.host, tc.header); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	public := newMetricsApp(t, true)
	if got := get(public, "203.0.113.9:50000", "accounts.example.com", nil); got != http.StatusOK {
		t.Errorf("metrics_public, another machine: %d, want 200", got)
	}
}
