package main

// Sign-ins per second through the example's HTTP contract, with its
// production hash (bcrypt, cost 10) and its brute-force limits off.

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"runtime/metrics"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-go/kiln/internal/signinbench"
	"github.com/kiln-go/kiln/internal/testdb"
)

var signInDuration = flag.Duration("signin.duration", 10*time.Second, "how long each BenchmarkSignInThroughput run signs in")

// BenchmarkSignInThroughput signs in with 16, 64 and 256 clients at once,
// as 64 users at most (a user of its own for each of the first 64), for
// -signin.duration per op. It reports:
//
//   - signins/s: sign-ins answered 200 with a token, per second;
//   - 5xx/op and failures/op: the server errors among the other answers
//     (the log's error lines are printed when there are any), and all of
//     them;
//   - cpu-ms/signin: the CPU time the process spent per sign-in (hash,
//     database, HTTP on both ends): the cores divided by it is the most
//     sign-ins per second the machine could serve;
//   - idle-%: the share of the run during which the Go scheduler had
//     nothing to run: time lost waiting (for a lock, say), not to the
//     machine's other load;
//   - max-conns: the most database connections open at once.
//
// Run with -count 3 (or more) for a range: the machine's other load moves
// signins/s, not cpu-ms/signin or idle-%.
func BenchmarkSignInThroughput(b *testing.B) {
	for _, db := range testdb.Layers() {
		b.Run(db, func(b *testing.B) {
			a, logs := newBenchApp(b, db)
			for _, clients := range []int{16, 64, 256} {
				b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
					ctx := context.Background()
					accounts := signinbench.Accounts(testdb.UniqueName("signin"), min(clients, 64), contractPassword)
					if err := signinbench.Register(ctx, a.url, accounts); err != nil {
						b.Fatal(err)
					}
					b.ResetTimer()
					var total, serverErrors, other, busy, idle, conns float64
					for range b.N {
						before, pool, sched := busyCPU(), a.db.Stats(), schedulerCPU()
						most := watchConnections(a.db.DB)
						res, err := signinbench.Run(ctx, signinbench.Options{BaseURL: a.url, Concurrency: clients,
							Duration: *signInDuration, Accounts: accounts})
						if err != nil {
							b.Fatal(err)
						}
						busyMS := (busyCPU() - before) * 1000 / float64(max(res.SignIns, 1))
						after, schedAfter, mostOpen := a.db.Stats(), schedulerCPU(), most()
						idlePct := 100 * (schedAfter.idle - sched.idle) / (schedAfter.total - sched.total)
						b.Logf("%s; %.1f ms of CPU a sign-in, Ps idle %.0f%%; database connections: at most %d open, %d closed as surplus idle",
							res, busyMS, idlePct, mostOpen, after.MaxIdleClosed-pool.MaxIdleClosed)
						busy += busyMS
						idle += idlePct
						conns += float64(mostOpen)
						total += res.PerSecond
						serverErrors += float64(res.ServerErrors())
						for _, n := range res.Failures {
							other += float64(n)
						}
						for _, n := range res.Errors {
							other += float64(n)
						}
					}
					b.ReportMetric(total/float64(b.N), "signins/s")
					b.ReportMetric(serverErrors/float64(b.N), "5xx/op")
					b.ReportMetric(other/float64(b.N), "failures/op")
					b.ReportMetric(busy/float64(b.N), "cpu-ms/signin")
					b.ReportMetric(idle/float64(b.N), "idle-%")
					b.ReportMetric(conns/float64(b.N), "max-conns")
					if serverErrors > 0 {
						b.Logf("the app's errors:\n%s", errorLines(logs.String()))
					}
				})
			}
		})
	}
}

// busyCPU is the CPU time, in seconds, that the process has used (user
// and system): server and clients, since both run here.
func busyCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// watchConnections samples db's open connections every millisecond until
// the function it returns is called, which returns the most seen.
func watchConnections(db *sql.DB) func() int {
	stop, done := make(chan struct{}), make(chan int)
	go func() {
		most := 0
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			most = max(most, db.Stats().OpenConnections)
			select {
			case <-stop:
				done <- most
				return
			case <-tick.C:
			}
		}
	}()
	return func() int { close(stop); return <-done }
}

// schedulerTimes are the Go scheduler's CPU time estimates, in seconds:
// total, GOMAXPROCS times the time elapsed, and idle, the part of it when a
// P had no goroutine to run.
type schedulerTimes struct{ total, idle float64 }

func schedulerCPU() schedulerTimes {
	s := []metrics.Sample{{Name: "/cpu/classes/total:cpu-seconds"}, {Name: "/cpu/classes/idle:cpu-seconds"}}
	metrics.Read(s)
	return schedulerTimes{total: s[0].Value.Float64(), idle: s[1].Value.Float64()}
}

// errorLines are the distinct lines of log at level ERROR, with how often
// each came.
func errorLines(log string) string {
	seen := map[string]int{}
	var order []string
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "level=ERROR") {
			continue
		}
		// Drop the time, which makes every line distinct.
		if i := strings.Index(line, " level="); i >= 0 {
			line = line[i+1:]
		}
		if seen[line] == 0 {
			order = append(order, line)
		}
		seen[line]++
	}
	var out []string
	for _, line := range order {
		out = append(out, fmt.Sprintf("%d × %s", seen[line], line))
	}
	return strings.Join(out, "\n")
}
