package ratelimit_test

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kiln-go/kiln/web/ratelimit"
)

func TestDeny(t *testing.T) {
	exceeded := &ratelimit.Exceeded{Rule: "sign_in_per_identity", RetryAfter: 41*time.Second + time.Millisecond}
	for _, c := range []struct {
		name, accept string
		err          error
		status       int
		retryAfter   string
		contentType  string
		body         string
	}{
		{"json", "application/json", exceeded, 429, "42", "application/json", `{"error":"too many attempts, retry in 42 s"}` + "\n"},
		{"text", "text/html", exceeded, 429, "42", "text/plain; charset=utf-8", "too many attempts, retry in 42 s\n"},
		{"wrapped", "", fmt.Errorf("sign in: %w", exceeded), 429, "42", "text/plain; charset=utf-8", "too many attempts, retry in 42 s\n"},
		{"store down", "application/json", fmt.Errorf("%w: boom", ratelimit.ErrUnavailable), 503, "", "application/json", `{"error":"attempts cannot be counted now, retry later"}` + "\n"},
		{"other error", "", errors.New("boom"), 503, "", "text/plain; charset=utf-8", "attempts cannot be counted now, retry later\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", nil)
			r.Header.Set("Accept", c.accept)
			w := httptest.NewRecorder()
			ratelimit.Deny(w, r, c.err)
			if w.Code != c.status || w.Header().Get("Retry-After") != c.retryAfter || w.Header().Get("Content-Type") != c.contentType || w.Body.String() != c.body {
				t.Fatalf("got %d, Retry-After %q, %q, %q", w.Code, w.Header().Get("Retry-After"), w.Header().Get("Content-Type"), w.Body.String())
			}
		})
	}
}

func TestRetryAfterSecondsRoundsUp(t *testing.T) {
	for d, want := range map[time.Duration]int64{time.Microsecond: 1, time.Second: 1, time.Second + 1: 2, 90 * time.Second: 90, 0: 1} {
		if got := ratelimit.RetryAfterSeconds(d); got != want {
			t.Errorf("RetryAfterSeconds(%v) = %d; want %d", d, got, want)
		}
	}
}
