package ratelimit_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kiln-go/kiln/web/ratelimit"
)

// Every refused attempt counts once under the rule that refused it; the
// attempts let through count nothing.
func TestMetricsCountRefusalsByRule(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := &signInServer{l: newLimiter(t, nil, ratelimit.Limits{
		SignInPerIdentity: ratelimit.Rule{Burst: 2, Window: time.Hour},
		SignInPerAddress:  ratelimit.Rule{Burst: 100, Window: time.Hour},
	}, ratelimit.WithMetrics(reg))}
	for range 5 {
		signIn(s, "198.51.100.7:1234", "victim@example.com", "wrong")
	}
	const want = `
# HELP kiln_ratelimit_refused_total Attempts refused by a rate limit, by rule.
# TYPE kiln_ratelimit_refused_total counter
kiln_ratelimit_refused_total{rule="register_per_address"} 0
kiln_ratelimit_refused_total{rule="reset_request_per_address"} 0
kiln_ratelimit_refused_total{rule="reset_request_per_identity"} 0
kiln_ratelimit_refused_total{rule="sign_in_per_address"} 0
kiln_ratelimit_refused_total{rule="sign_in_per_identity"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kiln_ratelimit_refused_total"); err != nil {
		t.Fatal(err)
	}
	if w := signIn(s, "198.51.100.7:1234", "victim@example.com", "wrong"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", w.Code)
	}
}

// Every rule's series is there before its first refusal, at 0, so that a
// dashboard or an alert on it sees the rule from the start.
func TestMetricsEveryRuleFromTheStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	newLimiter(t, nil, ratelimit.Limits{}, ratelimit.WithMetrics(reg))
	const want = `
# HELP kiln_ratelimit_refused_total Attempts refused by a rate limit, by rule.
# TYPE kiln_ratelimit_refused_total counter
kiln_ratelimit_refused_total{rule="register_per_address"} 0
kiln_ratelimit_refused_total{rule="reset_request_per_address"} 0
kiln_ratelimit_refused_total{rule="reset_request_per_identity"} 0
kiln_ratelimit_refused_total{rule="sign_in_per_address"} 0
kiln_ratelimit_refused_total{rule="sign_in_per_identity"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kiln_ratelimit_refused_total"); err != nil {
		t.Fatal(err)
	}
}

// A second limiter on the same registry is refused by New, not ignored.
func TestMetricsRegisteredTwiceIsAnError(t *testing.T) {
	reg := prometheus.NewRegistry()
	newLimiter(t, nil, ratelimit.Limits{}, ratelimit.WithMetrics(reg))
	_, err := ratelimit.New(nil, ratelimit.Limits{}, ratelimit.WithMetrics(reg))
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Fatalf("err = %v, want AlreadyRegisteredError", err)
	}
}
