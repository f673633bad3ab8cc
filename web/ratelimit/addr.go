package ratelimit

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// ClientAddr is the address of the client that sent r. It is the peer's
// address (r.RemoteAddr) unless the peer is in trusted: then the
// X-Forwarded-For entries are read from right to left, each appended by
// the hop before it, and the first address not in trusted is the
// client's. The left-most entries, which the client itself may have
// written, are never believed past an untrusted hop. An entry that is not
// an address ends the walk at the last trusted hop. The zero Addr means
// RemoteAddr holds no address.
func ClientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if !peer.IsValid() || !contains(trusted, peer) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		entries := strings.Split(hops[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			a := parseAddr(strings.TrimSpace(entries[j]))
			if !a.IsValid() {
				return peer
			}
			peer = a
			if !contains(trusted, a) {
				return a
			}
		}
	}
	return peer
}

// parseAddr reads "host:port", "[v6]:port" or a bare address, unmapping
// IPv4-mapped IPv6 addresses and dropping zones.
func parseAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return a.Unmap().WithZone("")
	}
	return netip.Addr{}
}

func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParsePrefixes reads trusted proxies as written in configuration: CIDR
// prefixes ("10.0.0.0/8", "fd00::/8") or single addresses ("127.0.0.1").
func ParsePrefixes(values []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(values))
	for _, v := range values {
		v = strings.TrimSpace(v)
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("kiln/ratelimit: trusted proxy %q: want an address or a CIDR prefix such as 10.0.0.0/8", v)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// addrKey is the part of a client address a limit counts by: the IPv4
// address, or the IPv6 /64 (one host's usual allocation, which it can
// spread over 2^64 addresses).
func addrKey(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "unknown"
	case a.Is4():
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}
