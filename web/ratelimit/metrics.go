package ratelimit

import "github.com/prometheus/client_golang/prometheus"

// WithMetrics registers the limiter's Prometheus metric with reg; nil
// registers none. New returns the registration's error (two limiters on
// one registry collide). The metric:
//
//   - kiln_ratelimit_refused_total{rule} (counter): attempts a rule
//     refused (answered 429), by the rule's name ("sign_in_per_identity").
//     Attempts refused because the store failed are not counted.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(l *Limiter) { l.registry = reg }
}

// newRefused is the counter of refused attempts.
func newRefused() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kiln_ratelimit_refused_total",
		Help: "Attempts refused by a rate limit, by rule.",
	}, []string{"rule"})
}
