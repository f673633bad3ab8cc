package ratelimit_test

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/kiln-go/kiln/web/ratelimit"
)

func TestClientAddr(t *testing.T) {
	proxies, err := ratelimit.ParsePrefixes([]string{"10.0.0.0/8", "127.0.0.1", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, remote string
		xff          []string
		trusted      []netip.Prefix
		want         string
	}{
		{"no proxy", "192.0.2.1:1234", nil, nil, "192.0.2.1"},
		{"spoofed header from an untrusted peer", "192.0.2.1:1234", []string{"203.0.113.5"}, proxies, "192.0.2.1"},
		{"spoofed header, no proxies configured", "10.1.2.3:1234", []string{"203.0.113.5"}, nil, "10.1.2.3"},
		{"trusted proxy", "10.1.2.3:1234", []string{"203.0.113.5"}, proxies, "203.0.113.5"},
		{"client-written left-most entry is not believed", "10.1.2.3:1234", []string{"1.2.3.4, 203.0.113.5"}, proxies, "203.0.113.5"},
		{"chain of trusted proxies", "127.0.0.1:1234", []string{"1.2.3.4, 203.0.113.5, 10.9.9.9"}, proxies, "203.0.113.5"},
		{"several header lines", "10.1.2.3:1234", []string{"1.2.3.4", "203.0.113.5, 10.0.0.2"}, proxies, "203.0.113.5"},
		{"every hop trusted", "10.1.2.3:1234", []string{"10.0.0.9, 10.0.0.2"}, proxies, "10.0.0.9"},
		{"trusted proxy without header", "10.1.2.3:1234", nil, proxies, "10.1.2.3"},
		{"garbage stops at the last trusted hop", "10.1.2.3:1234", []string{"203.0.113.5, not-an-ip"}, proxies, "10.1.2.3"},
		{"garbage beyond the client is not read", "10.1.2.3:1234", []string{"<script>, 203.0.113.5"}, proxies, "203.0.113.5"},
		{"IPv6 peer", "[2001:db8::1]:443", nil, proxies, "2001:db8::1"},
		{"IPv6 trusted proxy", "[fd00::1]:443", []string{"2001:db8::7"}, proxies, "2001:db8::7"},
		{"IPv4-mapped peer", "[::ffff:192.0.2.1]:80", nil, proxies, "192.0.2.1"},
		{"IPv4-mapped proxy is trusted as IPv4", "[::ffff:10.0.0.1]:80", []string{"203.0.113.5"}, proxies, "203.0.113.5"},
		{"entry with a port", "10.1.2.3:1234", []string{"203.0.113.5:5555"}, proxies, "203.0.113.5"},
		{"bare address", "192.0.2.1", nil, proxies, "192.0.2.1"},
		{"no address", "pipe", nil, proxies, "invalid IP"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = c.remote
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := ratelimit.ClientAddr(r, c.trusted).String(); got != c.want {
				t.Fatalf("ClientAddr = %s; want %s", got, c.want)
			}
		})
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := ratelimit.ParsePrefixes([]string{" 10.1.2.3/8", "::1", "::ffff:127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "::1/128", "127.0.0.1/32"}
	for i := range want {
		if got[i].String() != want[i] {
			t.Fatalf("ParsePrefixes = %v; want %v", got, want)
		}
	}
	if _, err := ratelimit.ParsePrefixes([]string{"proxy.internal"}); err == nil ||
		err.Error() != `kiln/ratelimit: trusted proxy "proxy.internal": want an address or a CIDR prefix such as 10.0.0.0/8` {
		t.Fatalf("err = %v", err)
	}
}
