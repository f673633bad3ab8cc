package ratelimit

import "github.com/prometheus/client_golang/prometheus"

// WithMetrics registers the limiter's Prometheus metric with reg; nil
// registers none. New returns the registration's error (two limiters on
// one registry collide). The metric:
//
//   - kiln_ratelimit_refused_total{rule} (counter): attempts a rule
//     refused (answered 429), by the rule's name ("sign_in_per_identity").
//     Attempts refused because the store failed are not counted. Every
//     rule of LimitsSchema is there from the start, at 0, so that a
//     dashboard or an alert sees the series before the first refusal.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(l *Limiter) { l.registry = reg }
}

// newRefused is the counter of refused attempts, one series per rule
// (each a section of LimitsSchema), at 0.
func newRefused() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kiln_ratelimit_refused_total",
		Help: "Attempts refused by a rate limit, by rule.",
	}, []string{"rule"})
	for _, rule := range LimitsSchema.Sections {
		c.WithLabelValues(rule.Name)
	}
	return c
}
