package sessionbench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// The client process reads commands on stdin, one a line, and reports on
// stdout, one a line:
//
//	dial <idx> <token>    open a socket with Authorization: Bearer <token>
//	                      → ready <idx>   once the protocol's handshake is done
//	                      → fail <idx> <error>
//	                      later, when the server closes it:
//	                      → close <idx> <unix nanoseconds> <code> <reason>
//	quit                  exit
//
// The close time is taken as soon as the close frame is read.

// Protocol is what a client does on a socket besides waiting for its
// close.
type Protocol struct {
	// Handshake runs once the socket is open; the socket is ready when it
	// returns nil. The read deadline is reset after it.
	Handshake func(conn *websocket.Conn) error
	// Reply, when set, answers a message read after the handshake: a
	// non-nil answer is written back as a text message.
	Reply func(msg []byte) []byte
}

// KilnProtocol reads the hello frame that kiln's endpoint (and the
// melody baseline) sends first.
var KilnProtocol = Protocol{Handshake: func(conn *websocket.Conn) error {
	_, msg, err := conn.ReadMessage()
	if err != nil {
		return fmt.Errorf("no hello: %w", err)
	}
	if !strings.Contains(string(msg), `"hello"`) {
		return fmt.Errorf("first frame is not hello: %s", msg)
	}
	return nil
}}

// RunClients is the client process: it opens sockets to url as the
// commands on in ask, parallel dials in flight at most, and reports on
// out. It returns at quit or at the end of in.
func RunClients(url string, parallel int, p Protocol, in io.Reader, out io.Writer) error {
	// One goroutine writes the reports, flushing when none is waiting: a
	// thousand sockets closed at once cost a few writes, not a thousand,
	// which would take the processor from the sockets still to be read.
	// Reports after RunClients returns are dropped; those queued before
	// are written first.
	lines := make(chan string, 4096)
	done, written := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(written)
		w := bufio.NewWriter(out)
		defer w.Flush()
		for {
			select {
			case line := <-lines:
				_, _ = w.WriteString(line)
				if len(lines) == 0 {
					_ = w.Flush()
				}
			case <-done:
				for len(lines) > 0 {
					_, _ = w.WriteString(<-lines)
				}
				return
			}
		}
	}()
	defer func() {
		close(done)
		<-written
	}()
	emit := func(format string, args ...any) {
		select {
		case lines <- fmt.Sprintf(format+"\n", args...):
		case <-done:
		}
	}
	dialer := &websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024}
	slots := make(chan struct{}, max(parallel, 1))

	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "quit":
			return nil
		case "dial":
			if len(f) != 3 {
				return fmt.Errorf("bad command %q", sc.Text())
			}
			idx, token := f[1], f[2]
			slots <- struct{}{}
			go func() {
				conn, err := dial(dialer, url, token, p)
				<-slots
				if err != nil {
					emit("fail %s %s", idx, strings.ReplaceAll(err.Error(), "\n", " "))
					return
				}
				emit("ready %s", idx)
				// The close frame is read when the close handler is
				// called, before it writes the client's reply.
				var closeAt time.Time
				reply := conn.CloseHandler()
				conn.SetCloseHandler(func(code int, text string) error {
					closeAt = time.Now()
					return reply(code, text)
				})
				for {
					_, msg, err := conn.ReadMessage()
					if err != nil {
						at := closeAt.UnixNano()
						if closeAt.IsZero() { // not a close frame
							at = time.Now().UnixNano()
						}
						code, reason := 0, err.Error()
						var ce *websocket.CloseError
						if errors.As(err, &ce) {
							code, reason = ce.Code, ce.Text
						}
						emit("close %s %d %d %s", idx, at, code, strings.ReplaceAll(reason, "\n", " "))
						conn.Close()
						return
					}
					if p.Reply != nil {
						if answer := p.Reply(msg); answer != nil {
							_ = conn.WriteMessage(websocket.TextMessage, answer)
						}
					}
				}
			}()
		default:
			return fmt.Errorf("unknown command %q", f[0])
		}
	}
	return sc.Err()
}

// dial opens a socket and runs the protocol's handshake.
func dial(d *websocket.Dialer, url, token string, p Protocol) (*websocket.Conn, error) {
	conn, resp, err := d.Dial(url, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w (status %d)", err, resp.StatusCode)
		}
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if p.Handshake != nil {
		if err := p.Handshake(conn); err != nil {
			conn.Close()
			return nil, err
		}
	}
	_ = conn.SetReadDeadline(time.Time{})
	return conn, nil
}

// Event is a line of the client process.
type Event struct {
	Kind string // ready, fail, close
	Idx  int
	// At is when the close frame was read; Code and Text are its code
	// and reason (Text is the error of a fail).
	At   time.Time
	Code int
	Text string
}

// Clients is a running client process.
type Clients struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan Event
	// Wait bounds each wait for an event.
	Wait time.Duration
	// Reopen makes the clients reopen, as a browser's client does, a
	// socket the server drops (see dropped): Next skips
	// the drop and the reopened socket's ready, and Reopened counts them.
	// Next still returns a drop it waits for (a close of that socket).
	Reopen   bool
	Reopened int

	tokens    map[int]string // the last token each client dialed with
	reopening map[int]bool   // reopened, whose ready is yet to come
}

// StartClients starts cmd, a client process (RunClients, or
// internal/benchclient), whose stdin and stdout it takes; its stderr goes
// to this process's.
func StartClients(cmd *exec.Cmd) (*Clients, error) {
	c := &Clients{cmd: cmd, events: make(chan Event, 1024), Wait: time.Minute, tokens: map[int]string{}, reopening: map[int]bool{}}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("sessionbench: start the client process: %w", err)
	}
	go readEvents(stdout, c.events)
	return c, nil
}

func readEvents(r io.Reader, events chan<- Event) {
	defer close(events)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 5)
		ev := Event{Kind: f[0]}
		if len(f) > 1 {
			ev.Idx, _ = strconv.Atoi(f[1])
		}
		switch {
		case ev.Kind == "close" && len(f) >= 4:
			ns, _ := strconv.ParseInt(f[2], 10, 64)
			ev.At = time.Unix(0, ns)
			ev.Code, _ = strconv.Atoi(f[3])
			if len(f) == 5 {
				ev.Text = f[4]
			}
		case ev.Kind == "fail" && len(f) >= 3:
			ev.Text = strings.Join(f[2:], " ")
		}
		events <- ev
	}
}

// Dial asks for a socket with token, as client idx.
func (c *Clients) Dial(idx int, token string) error {
	c.tokens[idx] = token
	_, err := fmt.Fprintf(c.stdin, "dial %d %s\n", idx, token)
	return err
}

// DialAll opens a socket with each token (client i with tokens[i]) and
// waits until every one is ready.
func (c *Clients) DialAll(tokens []string) error {
	w := bufio.NewWriter(c.stdin)
	for i, token := range tokens {
		c.tokens[i] = token
		fmt.Fprintf(w, "dial %d %s\n", i, token)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for range tokens {
		if _, err := c.Next("ready", -1); err != nil {
			return err
		}
	}
	return nil
}

// Next waits for the next event, which must be of kind (for client idx,
// unless idx is -1).
func (c *Clients) Next(kind string, idx int) (Event, error) {
	timer := time.NewTimer(c.Wait)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-c.events:
			switch {
			case !ok:
				return ev, errors.New("sessionbench: the client process exited")
			case c.Reopen && ev.Kind == "ready" && c.reopening[ev.Idx]:
				delete(c.reopening, ev.Idx)
				continue
			case c.Reopen && ev.Kind == "close" && dropped(ev) && !(kind == "close" && ev.Idx == idx):
				c.Reopened++
				c.reopening[ev.Idx] = true
				if _, err := fmt.Fprintf(c.stdin, "dial %d %s\n", ev.Idx, c.tokens[ev.Idx]); err != nil {
					return ev, err
				}
				continue
			case ev.Kind == "fail":
				return ev, fmt.Errorf("sessionbench: socket %d: %s", ev.Idx, ev.Text)
			case ev.Kind != kind || (idx >= 0 && ev.Idx != idx):
				return ev, fmt.Errorf("sessionbench: got %s %d (%d %q), want %s %d", ev.Kind, ev.Idx, ev.Code, ev.Text, kind, idx)
			}
			return ev, nil
		case <-timer.C:
			return Event{}, fmt.Errorf("sessionbench: no %s event in %s", kind, c.Wait)
		}
	}
}

// dropped reports whether a close event is a drop: the socket ended
// without a close frame (1006, or 0 for a reset), or with a transport's
// code below the applications' 4000–4999 (centrifuge's 3012 "no pong").
// kiln's own codes, 4001 and 4029, are never drops.
func dropped(ev Event) bool { return ev.Code < 4000 }

// Close ends the client process; its sockets close with it.
func (c *Clients) Close() {
	_, _ = io.WriteString(c.stdin, "quit\n")
	_ = c.stdin.Close()
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}
