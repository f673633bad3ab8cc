package ratelimit

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Deny answers a request a Limiter refused with err. An *Exceeded gets
// 429 Too Many Requests with Retry-After in whole seconds, rounded up;
// any other error (the store failed) gets 503 Service Unavailable. The
// body is JSON ({"error": "too many attempts, retry in 42 s"}) when the
// request accepts application/json, else text.
func Deny(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusServiceUnavailable, "attempts cannot be counted now, retry later"
	var ex *Exceeded
	if errors.As(err, &ex) {
		secs := RetryAfterSeconds(ex.RetryAfter)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		status, msg = http.StatusTooManyRequests, fmt.Sprintf("too many attempts, retry in %d s", secs)
	}
	w.Header().Set("Cache-Control", "no-store")
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

// RetryAfterSeconds is d in whole seconds, rounded up, at least 1: the
// value of a Retry-After header.
func RetryAfterSeconds(d time.Duration) int64 {
	return max(int64((d+time.Second-1)/time.Second), 1)
}
