// Command benchclient holds the client ends of live sockets for kiln's
// disconnect-latency benchmark (live/bench_test.go), in a process of its
// own: a socket with both ends in one process costs two of its open files,
// and the benchmark's largest run holds 9,000 sockets.
//
// It reads commands on stdin, one a line, and reports on stdout, one a
// line:
//
//	dial <idx> <token>    open a socket with Authorization: Bearer <token>
//	                      → ready <idx>   once its first frame (hello) is read
//	                      → fail <idx> <error>
//	                      later, when the server closes it:
//	                      → close <idx> <unix nanoseconds> <code> <reason>
//	quit                  exit
//
// The close time is taken as soon as the close frame is read.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

func main() {
	url := flag.String("url", "", "the live endpoint's ws:// URL")
	parallel := flag.Int("parallel", 64, "dials in flight at most")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "benchclient: -url is required")
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	emit := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
		_ = out.Flush()
	}
	dialer := &websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024}
	slots := make(chan struct{}, *parallel)

	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<10), 1<<20)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "quit":
			return
		case "dial":
			if len(f) != 3 {
				fmt.Fprintf(os.Stderr, "benchclient: bad command %q\n", in.Text())
				os.Exit(2)
			}
			idx, token := f[1], f[2]
			slots <- struct{}{}
			go func() {
				conn, err := dial(dialer, *url, token)
				<-slots
				if err != nil {
					emit("fail %s %s", idx, strings.ReplaceAll(err.Error(), "\n", " "))
					return
				}
				emit("ready %s", idx)
				for {
					if _, _, err := conn.ReadMessage(); err != nil {
						at := time.Now().UnixNano()
						code, reason := 0, err.Error()
						var ce *websocket.CloseError
						if errors.As(err, &ce) {
							code, reason = ce.Code, ce.Text
						}
						emit("close %s %d %d %s", idx, at, code, reason)
						conn.Close()
						return
					}
				}
			}()
		default:
			fmt.Fprintf(os.Stderr, "benchclient: unknown command %q\n", f[0])
			os.Exit(2)
		}
	}
}

// dial opens a socket and reads its hello frame.
func dial(d *websocket.Dialer, url, token string) (*websocket.Conn, error) {
	conn, resp, err := d.Dial(url, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w (status %d)", err, resp.StatusCode)
		}
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, msg, err := conn.ReadMessage()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("no hello: %w", err)
	}
	if !strings.Contains(string(msg), `"hello"`) {
		conn.Close()
		return nil, fmt.Errorf("first frame is not hello: %s", msg)
	}
	_ = conn.SetReadDeadline(time.Time{})
	return conn, nil
}
