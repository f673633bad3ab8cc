package live_test

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkIdleSessionMemory measures what an idle live session costs the
// server: n sessions are opened (by internal/benchclient, in a child
// process, so that the clients' memory and open files are not counted
// here), each has read its hello frame, then the heap and stacks in use
// (runtime.MemStats HeapInuse + StackInuse) and the resident set
// (/proc/self/statm) are compared with before the dials, after garbage
// collection. Each op opens and measures n fresh sessions; use
// -benchtime=1x. KILN_IDLE_SESSIONS lists the session counts (default
// 2000,9000).
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
	fx, err := startFixture(bin, "kiln-index", n)
	if err != nil {
		return sessionMemory{}, err
	}
	defer fx.close()
	before, err := memoryInUse()
	if err != nil {
		return sessionMemory{}, err
	}
	if err := fx.dialAll(); err != nil {
		return sessionMemory{}, err
	}
	after, err := memoryInUse()
	if err != nil {
		return sessionMemory{}, err
	}
	per := func(a, b uint64) float64 { return float64(int64(a)-int64(b)) / float64(n) }
	return sessionMemory{
		heap:  per(after.heap, before.heap),
		stack: per(after.stack, before.stack),
		rss:   per(after.rss, before.rss),
	}, nil
}

// memoryUse is the heap and stacks in use and the resident set, in
// bytes.
type memoryUse struct{ heap, stack, rss uint64 }

// memoryInUse collects garbage twice (runtime.GC, then
// debug.FreeOSMemory's, which gives freed memory back to the system; a
// collection halves the stacks that use less than a quarter of theirs)
// and returns what is in use.
func memoryInUse() (memoryUse, error) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	statm, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return memoryUse{}, err
	}
	f := strings.Fields(string(statm))
	if len(f) < 2 {
		return memoryUse{}, fmt.Errorf("/proc/self/statm: %q", statm)
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return memoryUse{}, fmt.Errorf("/proc/self/statm: %w", err)
	}
	return memoryUse{heap: ms.HeapInuse, stack: ms.StackInuse, rss: pages * uint64(os.Getpagesize())}, nil
}
