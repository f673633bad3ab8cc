// Command benchclient holds the client ends of live sockets for kiln's
// session benchmarks (live/bench_test.go, live/memory_test.go), in a
// process of its own: a socket with both ends in one process costs two of
// its open files, and the benchmarks' largest runs hold 9,000 sockets.
// It speaks sessionbench.RunClients' protocol on stdin and stdout, with
// sessionbench.KilnProtocol on each socket (the hello frame).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/kiln-go/kiln/internal/sessionbench"
)

func main() {
	url := flag.String("url", "", "the live endpoint's ws:// URL")
	parallel := flag.Int("parallel", 64, "dials in flight at most")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "benchclient: -url is required")
		os.Exit(2)
	}
	if err := sessionbench.RunClients(*url, *parallel, sessionbench.KilnProtocol, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchclient:", err)
		os.Exit(2)
	}
}
