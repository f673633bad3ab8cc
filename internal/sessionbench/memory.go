package sessionbench

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// Memory is this process's heap and stacks in use and its resident set,
// in bytes.
type Memory struct{ Heap, Stack, RSS uint64 }

// MemoryInUse collects garbage twice (runtime.GC, then
// debug.FreeOSMemory's, which gives freed memory back to the system; a
// collection halves the stacks that use less than a quarter of theirs)
// and returns what is in use: runtime.MemStats HeapInuse and StackInuse,
// and /proc/self/statm's resident pages.
func MemoryInUse() (Memory, error) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	statm, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return Memory{}, err
	}
	f := strings.Fields(string(statm))
	if len(f) < 2 {
		return Memory{}, fmt.Errorf("/proc/self/statm: %q", statm)
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return Memory{}, fmt.Errorf("/proc/self/statm: %w", err)
	}
	return Memory{Heap: ms.HeapInuse, Stack: ms.StackInuse, RSS: pages * uint64(os.Getpagesize())}, nil
}

// PerSession is what each of n sessions added between before and after,
// in bytes: heap, stack and resident set.
func PerSession(before, after Memory, n int) (heap, stack, rss float64) {
	per := func(a, b uint64) float64 { return float64(int64(a)-int64(b)) / float64(n) }
	return per(after.Heap, before.Heap), per(after.Stack, before.Stack), per(after.RSS, before.RSS)
}
