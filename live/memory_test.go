package live_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/kiln-go/kiln/internal/sessionbench"
)

// BenchmarkIdleSessionMemory measures what an idle live session costs the
// server: n sessions are opened (by internal/benchclient, in a child
// process, so that the clients' memory and open files are not counted
// here), each has read its hello frame, then the heap and stacks in use
// (runtime.MemStats HeapInuse + StackInuse) and the resident set
// (/proc/self/statm) are compared with before the dials, after garbage
// collection (sessionbench.MemoryInUse). Each op opens and measures n
// fresh sessions; use -benchtime=1x. The bench command (bench/) measures
// the same with melody and centrifuge beside kiln. KILN_IDLE_SESSIONS
// lists the session counts (default 2000,9000).
//
//	go test -run '^$' -bench IdleSessionMemory -benchtime=1x -count=3 ./live/
func BenchmarkIdleSessionMemory(b *testing.B) {
	counts := []int{2000, 9000}
	if v := os.Getenv("KILN_IDLE_SESSIONS"); v != "" {
		counts = nil
		for f := range strings.SplitSeq(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("KILN_IDLE_SESSIONS: %q is not a positive count", f)
			}
			counts = append(counts, n)
		}
	}
	bin := buildBenchClient(b)
	for _, n := range counts {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			var sum sessionMemory
			for range b.N {
				m, err := measureIdleSessions(bin, n)
				if err != nil {
					b.Fatal(err)
				}
				sum.heap += m.heap
				sum.stack += m.stack
				sum.rss += m.rss
			}
			per := func(v float64) float64 { return v / float64(b.N) }
			b.ReportMetric(per(sum.heap+sum.stack), "heap+stack-B/session")
			b.ReportMetric(per(sum.heap), "heap-B/session")
			b.ReportMetric(per(sum.stack), "stack-B/session")
			b.ReportMetric(per(sum.rss), "rss-B/session")
			b.ReportMetric(0, "ns/op")
		})
	}
}

type sessionMemory struct{ heap, stack, rss float64 } // bytes per session

// measureIdleSessions opens n sessions and returns what each added.
func measureIdleSessions(bin string, n int) (sessionMemory, error) {
	fx, err := startFixture(bin, sessionbench.Kiln, n)
	if err != nil {
		return sessionMemory{}, err
	}
	defer fx.close()
	before, err := sessionbench.MemoryInUse()
	if err != nil {
		return sessionMemory{}, err
	}
	if err := fx.clients.DialAll(fx.tokens); err != nil {
		return sessionMemory{}, err
	}
	after, err := sessionbench.MemoryInUse()
	if err != nil {
		return sessionMemory{}, err
	}
	var m sessionMemory
	m.heap, m.stack, m.rss = sessionbench.PerSession(before, after, n)
	return m, nil
}
