package live

import "testing"

// parseOrigin normalises case and default ports and refuses anything that
// is not scheme://host[:port] over http or https.
func TestParseOrigin(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want origin // zero: refused
	}{
		{"https://App.Example.com", origin{"https", "app.example.com", "443"}},
		{"https://app.example.com:443/", origin{"https", "app.example.com", "443"}},
		{"HTTP://app.example.com", origin{"http", "app.example.com", "80"}},
		{"http://app.example.com:8080", origin{"http", "app.example.com", "8080"}},
		{"http://[::1]:4000", origin{"http", "::1", "4000"}},
		{"http://[::1]", origin{"http", "::1", "80"}},
		{"http://app.example.com:", origin{}},
		{"http://app.example.com:0", origin{}},
		{"http://app.example.com:65536", origin{}},
		{"http://user:pw@app.example.com", origin{}},
		{"http://app.example.com/x", origin{}},
		{"http://app.example.com?q", origin{}},
		{"http://app.example.com#f", origin{}},
		{"ws://app.example.com", origin{}},
		{"http:app.example.com", origin{}},
		{"app.example.com", origin{}},
		{"null", origin{}},
		{"", origin{}},
		{"http://", origin{}},
	} {
		got, err := parseOrigin(tc.in)
		if (err == nil) != (tc.want != origin{}) || got != tc.want {
			t.Errorf("parseOrigin(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}
