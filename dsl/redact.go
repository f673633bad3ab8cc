package dsl

import (
	"fmt"
	"strings"
)

// Redact returns a written value as a message may show it: the user
// information of a URL (user:password@) and its query, which may hold
// credentials, replaced by xxxxx, whether the URL parses or not.
// "redis://u:pw@cache:6379/0?password=pw" is shown
// "redis://xxxxx@cache:6379/0?xxxxx"; a value that is no URL is shown as it
// is, but for anything before an @ and after a ?.
//
// Every message about a setting quotes its value through Redact (or
// Quote), the rules of options included; a Secret's value is never shown.
func Redact(s string) string {
	head, rest := "", s
	if i := strings.Index(s, "://"); i >= 0 {
		head, rest = s[:i+len("://")], s[i+len("://"):]
	}
	// The last @ ends the user information: a password may hold / ? or #.
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		rest = "xxxxx" + rest[at:]
	}
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		rest = rest[:q+1] + "xxxxx"
	}
	return head + rest
}

// Quote is Redact(s) in double quotes, as %q writes it.
func Quote(s string) string { return fmt.Sprintf("%q", Redact(s)) }

// Scheme is the scheme of a URL written as s ("redis" in "REDIS://…"),
// lower-cased, or "" when s does not start with one: letters, digits, +,
// - and . (a letter first), then "://".
func Scheme(s string) string {
	scheme, _, ok := strings.Cut(s, "://")
	if !ok || scheme == "" {
		return ""
	}
	for i, c := range scheme {
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || !('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return ""
		}
	}
	return strings.ToLower(scheme)
}
