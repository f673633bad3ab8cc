// Package metricstest reads Prometheus metrics for tests: a registry's
// samples by name and labels, and a wait for values that an event moves
// on another goroutine.
package metricstest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Values gathers g into name{label="value",…} → value, the labels sorted
// by name as the text format has them; a histogram gives its sample count
// under name_count.
func Values(t testing.TB, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			name := mf.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[name] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[name] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[mf.GetName()+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// Diff lists, sorted, the metrics of want that got lacks or has another
// value of.
func Diff(got, want map[string]float64) []string {
	var diff []string
	for name, v := range want {
		g, ok := got[name]
		switch {
		case !ok:
			diff = append(diff, name+" is missing")
		case g != v:
			diff = append(diff, fmt.Sprintf("%s = %v, want %v", name, g, v))
		}
	}
	sort.Strings(diff)
	return diff
}

// Wait waits until every metric of want has its value in g, and returns
// g's values then; it fails t with the differences when ctx ends first.
func Wait(t testing.TB, ctx context.Context, g prometheus.Gatherer, want map[string]float64) map[string]float64 {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		got := Values(t, g)
		diff := Diff(got, want)
		if len(diff) == 0 {
			return got
		}
		select {
		case <-ctx.Done():
			t.Fatalf("metrics:\n%s", strings.Join(diff, "\n"))
		case <-tick.C:
		}
	}
}
