package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kiln-go/kiln/extensions/authentication"
)

// TestRoutesStampTheirRequestsArrival: a strategy's or add-on's route sees
// when its request arrived (authentication.RequestBegan), the same time
// however late in the handler it asks, not the time of asking.
func TestRoutesStampTheirRequestsArrival(t *testing.T) {
	mux := http.NewServeMux()
	rt := router{mux: mux, prefix: "/auth/user/"}
	var first, later time.Time
	rt.Handle("POST", "probe", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first = authentication.RequestBegan(r.Context())
		for time.Since(first) <= 0 { // until the clock has moved
		}
		later = authentication.RequestBegan(r.Context())
	}))
	before := time.Now()
	mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/auth/user/probe", nil))
	if first.IsZero() || !first.Equal(later) || first.Before(before) {
		t.Fatalf("the route saw its request begin at %v, then at %v (served from %v): want one time, the request's arrival", first, later, before)
	}
}
