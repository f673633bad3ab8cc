// Package crossnode measures auto sign-out across nodes: how long a
// disconnect published by one node takes to close a socket on another.
//
// A Pair is two live endpoints, A and B, as two nodes of one deployment
// have them: each with its own connection to one transport (or sharing a
// live.InProcess, the single-process baseline). B serves WebSockets over
// loopback HTTP; real clients dial it. A Round dials sockets on B and
// disconnects them with one Endpoint.DisconnectMany on A, which is what
// the token revocation notifier calls right after a revocation commits,
// and times each socket from that call to its client reading the close
// frame:
//
//	inProcess, err := crossnode.Open(ctx, "")
//	defer inProcess.Close()
//	nats, err := crossnode.Open(ctx, "nats://127.0.0.1:4222")
//	defer nats.Close()
//	s, err := crossnode.Measure(ctx, crossnode.Options{Rounds: 300, Pause: time.Millisecond}, inProcess, nats)
//	fmt.Println(s[1].Percentile(50), s[1].Percentile(99), float64(s[1].Percentile(50))/float64(s[0].Percentile(50)))
//
// The clients run in the process, each reading its socket on a goroutine
// of its own, as a client in another process would wait on its socket.
package crossnode

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kiln-go/kiln/internal/latency"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/live/pubsub"
	_ "github.com/kiln-go/kiln/live/pubsub/nats"     // Open takes nats:// URLs
	_ "github.com/kiln-go/kiln/live/pubsub/postgres" // and postgres://
	_ "github.com/kiln-go/kiln/live/pubsub/redis"    // and redis://
	"github.com/kiln-go/kiln/revocation"
)

// Pair is endpoints A and B on one transport, B serving WebSockets.
type Pair struct {
	// A disconnects; B has the sockets.
	A, B *live.Endpoint

	wsURL   string // B's socket URL, without the socket id
	srv     *http.Server
	serving chan struct{} // closed when srv.Serve has returned
	opened  []io.Closer   // the transports Open opened
	prefix  string        // of the pair's socket ids
	next    atomic.Int64  // the last socket id's number

	mu         sync.Mutex
	registered map[string]chan struct{} // by socket id, closed once B has the socket
	rounds     map[string]*Round        // by socket id, the rounds not yet disconnected
}

// Open opens two connections to the transport at rawURL, any URL
// pubsub.FromURL takes ("" for one live.InProcess the two endpoints
// share), on a channel of their own (a channel parameter of rawURL is
// replaced), and starts a pair on them. Close closes the connections.
func Open(ctx context.Context, rawURL string) (*Pair, error) {
	if rawURL == "" {
		bus := &live.InProcess{}
		return Start(bus, bus)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("crossnode: transport URL: %w", err)
	}
	q := u.Query()
	q.Set("channel", "kiln_crossnode_"+randomHex())
	u.RawQuery = q.Encode()
	var opened []io.Closer
	var pss [2]live.PubSub
	for i := range pss {
		ps, err := pubsub.FromURL(ctx, u.String(), quiet)
		if err != nil {
			_ = closeAll(opened)
			return nil, fmt.Errorf("crossnode: node %c: %w", 'A'+i, err)
		}
		pss[i] = ps
		opened = append(opened, ps)
	}
	p, err := Start(pss[0], pss[1])
	if err != nil {
		_ = closeAll(opened)
		return nil, err
	}
	p.opened = opened
	return p, nil
}

// Start starts endpoints A on a and B on b (the same live.InProcess for
// the single-process baseline). A socket's id is its URL's socket_id
// parameter; nothing is logged. Close does not close a and b.
func Start(a, b live.PubSub) (*Pair, error) {
	p := &Pair{
		prefix:     "crossnode:" + randomHex() + ":",
		registered: map[string]chan struct{}{},
		rounds:     map[string]*Round{},
	}
	auth := live.AuthenticatorFunc(func(r *http.Request) (*live.Identity, error) {
		id := r.URL.Query().Get("socket_id")
		if id == "" {
			return nil, errors.New("crossnode: no socket_id parameter")
		}
		return &live.Identity{SocketID: id}, nil
	})
	var err error
	if p.A, err = live.New(live.WithAuthenticator(auth), live.WithLogger(quiet), live.WithPubSub(a)); err != nil {
		return nil, fmt.Errorf("crossnode: endpoint A: %w", err)
	}
	p.B, err = live.New(live.WithAuthenticator(auth), live.WithLogger(quiet),
		live.WithPubSub(&arrivals{PubSub: b, p: p}), live.OnOpen(p.onOpenB))
	if err != nil {
		_ = p.shutdown(p.A)
		return nil, fmt.Errorf("crossnode: endpoint B: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = p.shutdown(p.A, p.B)
		return nil, fmt.Errorf("crossnode: listen: %w", err)
	}
	p.wsURL = "ws://" + ln.Addr().String() + "/live/websocket?socket_id="
	p.srv = &http.Server{Handler: p.B, ReadHeaderTimeout: 10 * time.Second}
	p.serving = make(chan struct{})
	go func() {
		defer close(p.serving)
		_ = p.srv.Serve(ln)
	}()
	return p, nil
}

// arrivals is B's transport, noting when each round's disconnect reaches
// B's subscriber.
type arrivals struct {
	live.PubSub
	p *Pair
}

// PayloadLimit implements live.PayloadLimiter as the transport does, so
// that B splits a DisconnectMany as it would on the bare transport.
func (a *arrivals) PayloadLimit() int {
	if pl, ok := a.PubSub.(live.PayloadLimiter); ok {
		return pl.PayloadLimit()
	}
	return live.DefaultPayloadLimit
}

// Subscribe implements live.PubSub.
func (a *arrivals) Subscribe(ctx context.Context, fn func(live.Message)) error {
	return a.PubSub.Subscribe(ctx, func(m live.Message) {
		if m.Kind == live.KindDisconnect {
			now := int64(time.Since(epoch))
			a.p.arrived(m.SocketID, now)
			for _, d := range m.Disconnects {
				a.p.arrived(d.SocketID, now)
			}
		}
		fn(m)
	})
}

// epoch is the origin of the arrival times, read on the monotonic clock.
var epoch = time.Now()

// arrived notes that a disconnect of socketID reached B at now (since
// epoch): the first for its round is the round's.
func (p *Pair) arrived(socketID string, now int64) {
	p.mu.Lock()
	r := p.rounds[socketID]
	p.mu.Unlock()
	if r != nil {
		r.arrived.CompareAndSwap(0, now)
	}
}

// quiet discards what the endpoints and transports log.
var quiet = slog.New(slog.DiscardHandler)

func randomHex() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

func closeAll(cs []io.Closer) error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// onOpenB is B's OnOpen: the socket is registered, a disconnect from now
// on finds it.
func (p *Pair) onOpenB(c *live.Conn) {
	p.mu.Lock()
	ch := p.registered[c.Identity().SocketID]
	delete(p.registered, c.Identity().SocketID)
	p.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

func (p *Pair) shutdown(eps ...*live.Endpoint) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, ep := range eps {
		if err := ep.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("crossnode: shut down an endpoint: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Close shuts the endpoints down (closing the sockets still open), stops
// B's server and closes the transports Open opened.
func (p *Pair) Close() error {
	err := p.shutdown(p.A, p.B)
	err = errors.Join(err, p.srv.Close())
	<-p.serving
	return errors.Join(err, closeAll(p.opened))
}

// Round is sockets open on B, each read by a client goroutine until it
// closes.
type Round struct {
	p       *Pair
	ids     []string
	conns   []*websocket.Conn
	closed  chan closed  // one per socket, when its client reads an error
	arrived atomic.Int64 // when its first disconnect reached B, since epoch
	started bool
}

// closed is what a client read last: the close frame, or another error.
type closed struct {
	at  time.Time
	err error
}

// Dial opens n sockets on B, each with a socket id of its own, and returns
// once B has them all registered: a disconnect from then on closes them.
func (p *Pair) Dial(ctx context.Context, n int) (*Round, error) {
	r := &Round{p: p, closed: make(chan closed, n)}
	for range n {
		id := p.prefix + strconv.FormatInt(p.next.Add(1), 10)
		if err := r.dial(ctx, id); err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

func (r *Round) dial(ctx context.Context, id string) error {
	reg := make(chan struct{})
	r.p.mu.Lock()
	r.p.registered[id] = reg
	r.p.mu.Unlock()
	defer func() {
		r.p.mu.Lock()
		delete(r.p.registered, id)
		r.p.mu.Unlock()
	}()
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, r.p.wsURL+url.QueryEscape(id), nil)
	if err != nil {
		return fmt.Errorf("crossnode: dial B: %w", err)
	}
	r.ids = append(r.ids, id)
	r.conns = append(r.conns, conn)
	// The hello frame comes first; reading it proves the socket is up.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetReadDeadline(dl)
	}
	_, data, err := conn.ReadMessage()
	if err != nil {
		return fmt.Errorf("crossnode: socket %s: no hello: %w", id, err)
	}
	var f live.Frame
	if err := json.Unmarshal(data, &f); err != nil || f.Event != "hello" {
		return fmt.Errorf("crossnode: socket %s: first frame %q is not hello", id, data)
	}
	_ = conn.SetReadDeadline(time.Time{})
	select {
	case <-reg:
	case <-ctx.Done():
		return fmt.Errorf("crossnode: socket %s not registered on B: %w", id, ctx.Err())
	}
	// The close frame is read when the close handler is called; the
	// handler then writes the client's reply, which is the client's
	// business, not the disconnect's.
	var closeAt time.Time
	reply := conn.CloseHandler()
	conn.SetCloseHandler(func(code int, text string) error {
		closeAt = time.Now()
		return reply(code, text)
	})
	go func() {
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				at := closeAt
				if at.IsZero() { // not a close frame
					at = time.Now()
				}
				r.closed <- closed{at: at, err: err}
				return
			}
		}
	}()
	return nil
}

// Result is what one Round.Disconnect measured.
type Result struct {
	// Latencies are, for each socket, the time from the call to
	// DisconnectMany on A to its client reading the close frame.
	Latencies []time.Duration
	// Publish is how long DisconnectMany took to return: the message had
	// left A by then.
	Publish time.Duration
	// Received is the time from the call to the first of the round's
	// disconnect messages reaching B's subscriber: the transport's part.
	Received time.Duration
}

// Disconnect closes the round's sockets with one DisconnectMany on A
// (revocation.SignedOut) and waits until every client has read its close
// frame (code live.CloseSignedOut), or until ctx is done. A Round is
// disconnected once.
func (r *Round) Disconnect(ctx context.Context) (Result, error) {
	if r.started {
		return Result{}, errors.New("crossnode: the round was disconnected already")
	}
	r.started = true
	ds := make([]revocation.Disconnect, len(r.ids))
	r.p.mu.Lock()
	for i, id := range r.ids {
		ds[i] = revocation.Disconnect{SocketID: id, Reason: revocation.SignedOut}
		r.p.rounds[id] = r
	}
	r.p.mu.Unlock()
	defer func() {
		r.p.mu.Lock()
		for _, id := range r.ids {
			delete(r.p.rounds, id)
		}
		r.p.mu.Unlock()
	}()
	start := time.Now()
	err := r.p.A.DisconnectMany(ctx, ds)
	res := Result{Publish: time.Since(start), Latencies: make([]time.Duration, 0, len(ds))}
	if err != nil {
		return res, fmt.Errorf("crossnode: disconnect on A: %w", err)
	}
	for range ds {
		select {
		case c := <-r.closed:
			var ce *websocket.CloseError
			if !errors.As(c.err, &ce) || ce.Code != live.CloseSignedOut {
				return res, fmt.Errorf("crossnode: a socket ended with %v, want close code %d", c.err, live.CloseSignedOut)
			}
			res.Latencies = append(res.Latencies, c.at.Sub(start))
		case <-ctx.Done():
			return res, fmt.Errorf("crossnode: %d of %d sockets closed: %w", len(res.Latencies), len(ds), ctx.Err())
		}
	}
	// B closed the sockets once a message reached it.
	res.Received = time.Duration(r.arrived.Load()) - start.Sub(epoch)
	return res, nil
}

// Ended reports how many of the round's sockets have ended, as their
// clients saw it, that Disconnect has not waited for: on a round never
// disconnected, how many ended.
func (r *Round) Ended() int { return len(r.closed) }

// Close closes the round's client connections.
func (r *Round) Close() {
	for _, c := range r.conns {
		_ = c.Close()
	}
}

// Options are what Measure does.
type Options struct {
	// Rounds is the number of rounds. Default: 100.
	Rounds int
	// Batch is the number of sockets each round disconnects with one
	// DisconnectMany. Default: 1, a sign-out.
	Batch int
	// Idle is the number of sockets that stay open on B throughout,
	// which no disconnect is for. Default: none.
	Idle int
	// Pause is how long each round waits between its sockets opening and
	// their disconnect, long enough for the process to go idle, as a
	// server whose sockets were opened long before a revocation is. Zero
	// disconnects at once, while the process is still busy with the
	// sockets opening. Default: none.
	Pause time.Duration
	// Beside are timed in turn with the pairs' rounds, one call a round,
	// each handed Pause to wait before it times anything: a server's bare
	// link, say, which is then measured under the same load as the pairs.
	// Their latencies follow the pairs' samples in Measure's result.
	Beside []func(ctx context.Context, pause time.Duration) (time.Duration, error)
}

// Samples are what Measure measured, each sorted: the latencies of
// every socket it disconnected, and the Publish and Received times of
// every round (see Result).
type Samples struct {
	Latencies []time.Duration
	Publish   []time.Duration
	Received  []time.Duration
}

// Percentile is the p-th percentile (nearest rank) of the latencies.
func (s Samples) Percentile(p float64) time.Duration { return latency.Percentile(s.Latencies, p) }

// Sample dials batch sockets on B, waits pause, and disconnects them
// (Round.Disconnect): one latency per socket.
func (p *Pair) Sample(ctx context.Context, batch int, pause time.Duration) (Result, error) {
	r, err := p.Dial(ctx, batch)
	if err != nil {
		return Result{}, err
	}
	defer r.Close()
	time.Sleep(pause)
	return r.Disconnect(ctx)
}

// Add appends a round's result to s, unsorted; Sort sorts s.
func (s *Samples) Add(res Result) {
	s.Latencies = append(s.Latencies, res.Latencies...)
	s.Publish = append(s.Publish, res.Publish)
	s.Received = append(s.Received, res.Received)
}

// Sort sorts the samples, for Percentile.
func (s *Samples) Sort() {
	slices.Sort(s.Latencies)
	slices.Sort(s.Publish)
	slices.Sort(s.Received)
}

// Measure runs o.Rounds rounds (Pair.Sample) on each pair, with o.Idle
// sockets open on each B all along (it fails if one of them closes), and
// returns each pair's samples, sorted, then those of o.Beside (their
// Latencies only). The pairs and o.Beside take turns, a round each, in a
// random order every turn, so that a load that comes and goes while they
// run (the machine is shared) weighs on them alike: compare transports
// in one Measure, the in-process baseline among them.
func Measure(ctx context.Context, o Options, pairs ...*Pair) ([]Samples, error) {
	rounds, batch := o.Rounds, o.Batch
	if rounds <= 0 {
		rounds = 100
	}
	if batch <= 0 {
		batch = 1
	}
	samples := make([]Samples, len(pairs)+len(o.Beside))
	idle := make([]*Round, len(pairs))
	defer func() {
		for _, r := range idle {
			if r != nil {
				r.Close()
			}
		}
	}()
	for i, p := range pairs {
		var err error
		if idle[i], err = p.Dial(ctx, o.Idle); err != nil {
			return nil, err
		}
	}
	if err := TakeTurns(rounds, len(samples), func(i int) error {
		if i >= len(pairs) {
			d, err := o.Beside[i-len(pairs)](ctx, o.Pause)
			if err == nil {
				samples[i].Latencies = append(samples[i].Latencies, d)
			}
			return err
		}
		res, err := pairs[i].Sample(ctx, batch, o.Pause)
		if err == nil {
			samples[i].Add(res)
		}
		return err
	}); err != nil {
		return nil, err
	}
	for _, r := range idle {
		if n := r.Ended(); n > 0 {
			return nil, fmt.Errorf("crossnode: %d of %d idle sockets closed, which no disconnect was for", n, o.Idle)
		}
	}
	for i := range samples {
		samples[i].Sort()
	}
	return samples, nil
}

// TakeTurns calls do(i) for each i of 0…n-1, in a random order every
// round, rounds times: what is measured side by side takes turns, so that
// a load that comes and goes weighs on each alike. It stops at do's first
// error and returns it.
func TakeTurns(rounds, n int, do func(i int) error) error {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	for range rounds {
		mathrand.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			if err := do(i); err != nil {
				return err
			}
		}
	}
	return nil
}
