package live

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/kiln-go/kiln/dsl"
)

// origin is a web origin: scheme, host and port, normalised (lower case,
// the scheme's default port written out), so that two origins are the
// same exactly when they are equal.
type origin struct{ scheme, host, port string }

var defaultPorts = map[string]string{"http": "80", "https": "443"}

// parseOrigin parses an Origin header or a configured allowed origin:
// http or https, a host and an optional port, and nothing after them but
// an optional "/".
func parseOrigin(s string) (origin, error) {
	u, err := url.Parse(s)
	if err != nil {
		return origin{}, errors.New("not a URL")
	}
	o, err := originOf(u)
	if err != nil {
		return o, err
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return origin{}, errors.New("an origin has no path, query or fragment")
	}
	return o, nil
}

// originOf is the origin of an absolute http or https URL.
func originOf(u *url.URL) (origin, error) {
	scheme := strings.ToLower(u.Scheme)
	if defaultPorts[scheme] == "" || u.Opaque != "" {
		return origin{}, errors.New("the scheme must be http or https")
	}
	if u.User != nil {
		return origin{}, errors.New("an origin has no user information")
	}
	return hostOrigin(scheme, u.Host)
}

// hostOrigin is the origin of a host[:port] under scheme (http or https).
func hostOrigin(scheme, hostport string) (origin, error) {
	u := url.URL{Host: hostport}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if host == "" || strings.ContainsAny(host, "/?#@ ") {
		return origin{}, errors.New("no host")
	}
	if port == "" {
		if strings.HasSuffix(hostport, ":") {
			return origin{}, errors.New("empty port")
		}
		port = defaultPorts[scheme]
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return origin{}, fmt.Errorf("bad port %q", port)
	}
	return origin{scheme: scheme, host: host, port: strconv.Itoa(n)}, nil
}

// SameOrigin reports whether origin (an Origin header's value) is the
// origin of u, an absolute http or https URL of which only the scheme, host
// and port count: compared as the endpoint compares them, case ignored and
// default ports filled in. A malformed origin matches nothing.
func SameOrigin(origin string, u *url.URL) bool {
	o, err := parseOrigin(origin)
	if err != nil || u == nil {
		return false
	}
	want, err := originOf(u)
	return err == nil && o == want
}

// requestOrigin is the origin a request was served at: its Host under the
// scheme of its connection (https when it came over TLS).
func requestOrigin(r *http.Request) (origin, error) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return hostOrigin(scheme, r.Host)
}

// originAllowed accepts requests without an Origin (not from a browser),
// same-origin requests, and the allowed origins. Origins are compared by
// scheme, host and port. Same-origin means the public URL's origin when
// one is set (behind a TLS-terminating proxy), else the request's own.
func (e *Endpoint) originAllowed(r *http.Request) bool {
	header := r.Header.Get("Origin")
	if header == "" {
		return true
	}
	o, err := parseOrigin(header)
	if err != nil {
		return false
	}
	for _, allowed := range e.origins {
		if o == allowed {
			return true
		}
	}
	if e.public != nil {
		return o == *e.public
	}
	self, err := requestOrigin(r)
	return err == nil && o == self
}

// originFix is the advice printed with a bad origin or public URL.
const originFix = "write it as scheme://host[:port], such as https://app.example.com"

// parseOrigins parses configured allowed origins; where names the
// setting in the errors.
func parseOrigins(where string, origins []string) ([]origin, []error) {
	var out []origin
	var errs []error
	for i, s := range origins {
		o, err := parseOrigin(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("kiln/live: %s[%d]: %s: %v; %s", where, i, dsl.Quote(s), err, originFix))
			continue
		}
		out = append(out, o)
	}
	return out, errs
}

// publicOrigin is the origin of a public URL (its path is ignored); where
// names the setting in the error.
func publicOrigin(where string, u *url.URL) (origin, error) {
	if u == nil {
		return origin{}, fmt.Errorf("kiln/live: %s: no URL; %s", where, originFix)
	}
	o, err := originOf(u)
	if err != nil {
		return o, fmt.Errorf("kiln/live: %s: %s: %v; %s", where, dsl.Quote(u.String()), err, originFix)
	}
	return o, nil
}

// parsePublicURL parses a configured public URL.
func parsePublicURL(where, s string) (origin, error) {
	o, err := publicURLOrigin(s)
	if err != nil {
		return o, fmt.Errorf("kiln/live: %s: %v; %s", where, err, originFix)
	}
	return o, nil
}

// publicURLOrigin is the origin of a public URL written as a string; its
// error quotes the URL through dsl.Quote: no user information, no query.
func publicURLOrigin(s string) (origin, error) {
	u, err := url.Parse(s)
	if err != nil {
		return origin{}, fmt.Errorf("%s: not a URL", dsl.Quote(s))
	}
	o, err := originOf(u)
	if err != nil {
		return o, fmt.Errorf("%s: %v", dsl.Quote(s), err)
	}
	return o, nil
}
