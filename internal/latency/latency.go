// Package latency has the one percentile kiln's benchmarks report
// latencies with.
package latency

import (
	"math"
	"slices"
	"time"
)

// Percentile is the p-th percentile (0 < p ≤ 100) of samples, by nearest
// rank; 0 for none. samples need not be sorted, and are left as they are.
func Percentile(samples []time.Duration, p float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	s := samples
	if !slices.IsSorted(s) {
		s = slices.Sorted(slices.Values(samples))
	}
	i := int(math.Ceil(float64(len(s))*p/100)) - 1
	return s[min(max(i, 0), len(s)-1)]
}
