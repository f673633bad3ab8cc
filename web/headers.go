package web

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// DefaultContentSecurityPolicy is the policy SecurityHeaders sends unless
// told otherwise: everything from the page's own origin only, inline
// <script> and <style> elements only with the request's nonce, no framing,
// no <base>, forms posted to the same origin only. "{nonce}" stands for the
// request's nonce (CSPNonce).
const DefaultContentSecurityPolicy = "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'; " +
	"object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// HeaderOptions configure SecurityHeaders. The zero value sends the
// defaults, without Strict-Transport-Security.
type HeaderOptions struct {
	// HTTPS says the app is served over https (its public URL's scheme is
	// https), which adds Strict-Transport-Security. Browsers ignore that
	// header over plain http, and once seen it refuses plain http for
	// StrictTransportSecurityMaxAge: set it only for an https deployment.
	HTTPS bool
	// StrictTransportSecurityMaxAge is HSTS's max-age. Default: 365 days.
	StrictTransportSecurityMaxAge time.Duration
	// ContentSecurityPolicy replaces DefaultContentSecurityPolicy; each
	// "{nonce}" in it is replaced by the request's nonce.
	ContentSecurityPolicy string
	// ReferrerPolicy replaces the default "no-referrer".
	ReferrerPolicy string
}

type nonceKey struct{}

// SecurityHeaders sets on every response of next:
//
//	Content-Security-Policy: DefaultContentSecurityPolicy, with a fresh nonce per request
//	X-Content-Type-Options: nosniff
//	X-Frame-Options: DENY
//	Referrer-Policy: no-referrer
//	Strict-Transport-Security: max-age=31536000 (only with HeaderOptions.HTTPS)
//	Cache-Control: no-store (a handler may set its own)
//
// no-store keeps signed-in pages and answers that carry a token out of
// shared and browser caches.
//
// A page allows its inline <script> and <style> elements by giving each
// the request's nonce: <script nonce="{{.Nonce}}"> with Nonce set from
// CSPNonce(r.Context()). Scripts and stylesheets loaded from the app's own
// origin (src="/live/client.js") need nothing.
func SecurityHeaders(next http.Handler, o HeaderOptions) http.Handler {
	csp := o.ContentSecurityPolicy
	if csp == "" {
		csp = DefaultContentSecurityPolicy
	}
	referrer := o.ReferrerPolicy
	if referrer == "" {
		referrer = "no-referrer"
	}
	hsts := ""
	if o.HTTPS {
		age := o.StrictTransportSecurityMaxAge
		if age <= 0 {
			age = 365 * 24 * time.Hour
		}
		hsts = fmt.Sprintf("max-age=%d", int64(age/time.Second))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		nonce := ""
		if strings.Contains(csp, "{nonce}") {
			nonce = newNonce()
			r = r.WithContext(context.WithValue(r.Context(), nonceKey{}, nonce))
		}
		h.Set("Content-Security-Policy", strings.ReplaceAll(csp, "{nonce}", nonce))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", referrer)
		if hsts != "" {
			h.Set("Strict-Transport-Security", hsts)
		}
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// CSPNonce is the nonce SecurityHeaders put in the request's
// Content-Security-Policy, for the nonce attribute of the page's inline
// <script> and <style> elements; "" outside SecurityHeaders.
func CSPNonce(ctx context.Context) string {
	n, _ := ctx.Value(nonceKey{}).(string)
	return n
}

// newNonce returns 128 random bits, base64-encoded.
func newNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.StdEncoding.EncodeToString(b)
}
