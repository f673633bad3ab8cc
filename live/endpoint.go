// Package live is kiln's live endpoint: WebSocket sessions (on
// github.com/olahol/melody) tied to authentication tokens, which
// Disconnect closes at once, on every node, with close code 4001 and the
// reason, when their tokens are revoked.
//
//	domain, err := resource.NewDomain("app", Users, Tokens).Build(ctx, layer)
//	… the web glue, from the built domain …
//	ep, err := live.New(live.WithAuthenticator(glue.LiveAuthenticator()), live.WithChecker(glue.SessionChecker()))
//	err = domain.Attach(ep) // the token revocation notifier closes sockets on it
//	mux.Handle("GET /live/websocket", ep)
//	mux.Handle("GET /live/client.js", live.ClientJS())
//
// Every socket is registered under its socket id in a sharded index, so a
// disconnect touches only the matching sessions. Disconnect and Broadcast go
// through a PubSub (InProcess by default) so that every node acts on them.
package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-go/kiln/revocation"
	"github.com/olahol/melody"
	"github.com/prometheus/client_golang/prometheus"
)

// Authenticator authenticates a socket's HTTP request: a session cookie or
// an Authorization: Bearer token. An error refuses the upgrade with 401.
// The endpoint calls it again once the socket is registered, so that a
// revocation racing the registration still closes it.
type Authenticator interface {
	AuthenticateSocket(r *http.Request) (*Identity, error)
}

// Rechecker is an Authenticator that can check a socket's request again
// without finding everything AuthenticateSocket finds (its user, say):
// once a socket is registered, the endpoint calls RecheckSocket instead of
// AuthenticateSocket, when the authenticator implements it. An error
// closes the socket as revoked. The web glue's LiveAuthenticator
// implements it: it checks the token, from memory where the token store
// can (see tokenresource.Store.Follow), and reads no user.
type Rechecker interface {
	Authenticator
	RecheckSocket(r *http.Request) error
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(r *http.Request) (*Identity, error)

// AuthenticateSocket calls f.
func (f AuthenticatorFunc) AuthenticateSocket(r *http.Request) (*Identity, error) { return f(r) }

// HandlerFunc handles an incoming event of a socket.
type HandlerFunc func(ctx context.Context, c *Conn, payload json.RawMessage)

// Endpoint is the live endpoint; it is an http.Handler that upgrades
// authenticated requests to WebSockets. Safe for concurrent use.
type Endpoint struct {
	m        *melody.Melody
	auth     Authenticator
	pubsub   PubSub
	logger   *slog.Logger
	origins  []origin // allowed cross-origin
	public   *origin  // same-origin, when set (WithPublicURL)
	handlers map[string]HandlerFunc
	onOpen   func(*Conn)
	errs     []error // bad options, returned by New
	registry prometheus.Registerer
	metrics  *metrics

	sockets *index
	topics  *index
	limits  *limits

	writeWait  time.Duration
	closeGrace time.Duration

	checker    Checker
	sweepEvery time.Duration
	sweepNow   chan struct{}

	feed   feed
	prompt bool // the PubSub is a Prompter, and prompt
	echoes echoes

	// The leases (see LeaseTerm): this endpoint's own, once it is a
	// member, and its view of the members.
	noLeases    bool // WithLeases(false)
	lease       lease
	members     members
	memberOnce  sync.Once
	isMember    atomic.Bool
	ackMu       sync.Mutex
	pendingAcks map[string]bool // Fence ids to acknowledge (see acknowledge)
	ackNow      chan struct{}   // wakes acknowledge

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	shutdown bool
	active   sync.WaitGroup // one per request being served
}

var _ revocation.BatchEndpoint = (*Endpoint)(nil)

// Option configures an Endpoint.
type Option func(*Endpoint)

// WithAuthenticator sets how sockets are authenticated. Without one, every
// upgrade is refused. The web glue's LiveAuthenticator needs the built
// domain, so the endpoint is made after it, and attached to it
// (Domain.Attach) for the token revocation notifier.
func WithAuthenticator(a Authenticator) Option { return func(e *Endpoint) { e.auth = a } }

func (e *Endpoint) authenticate(r *http.Request) (*Identity, error) {
	if e.auth == nil {
		return nil, errors.New("kiln/live: no authenticator; pass live.WithAuthenticator to New")
	}
	return e.auth.AuthenticateSocket(r)
}

// recheck checks a registered socket's request again: with RecheckSocket
// when the authenticator is a Rechecker.
func (e *Endpoint) recheck(r *http.Request) error {
	if rc, ok := e.auth.(Rechecker); ok {
		return rc.RecheckSocket(r)
	}
	_, err := e.authenticate(r)
	return err
}

// WithPubSub sets the transport between nodes. Default: an InProcess of the
// endpoint's own.
func WithPubSub(p PubSub) Option { return func(e *Endpoint) { e.pubsub = p } }

// WithLogger sets the logger. Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(e *Endpoint) { e.logger = l } }

// WithAllowedOrigins allows cross-origin upgrades from these origins
// ("https://app.example.com"), compared by scheme, host and port (a
// default port may be left out). Default: same origin only. New returns an
// error for an origin that is not scheme://host[:port].
func WithAllowedOrigins(origins ...string) Option {
	return func(e *Endpoint) {
		allowed, errs := parseOrigins("WithAllowedOrigins", origins)
		e.origins = append(e.origins, allowed...)
		e.errs = append(e.errs, errs...)
	}
}

// WithPublicURL says where the endpoint is served, as browsers see it
// ("https://app.example.com", any path ignored): behind a proxy that
// terminates TLS, the request the endpoint gets is plain HTTP with the
// proxy's Host. When set, a same-origin upgrade is one whose Origin has
// this URL's scheme, host and port; the request's Host and scheme no
// longer count. Default: the request's own origin (https when it came
// over TLS). New returns an error for a URL that is not absolute http or
// https.
func WithPublicURL(u *url.URL) Option {
	return func(e *Endpoint) {
		o, err := publicOrigin("WithPublicURL", u)
		if err != nil {
			e.errs = append(e.errs, err)
			return
		}
		e.public = &o
	}
}

// WithHandler handles the incoming event named event.
func WithHandler(event string, fn HandlerFunc) Option {
	return func(e *Endpoint) { e.handlers[event] = fn }
}

// OnOpen is called for every socket once it is registered and has been
// sent its hello frame.
func OnOpen(fn func(*Conn)) Option { return func(e *Endpoint) { e.onOpen = fn } }

// WithConfig adjusts melody's configuration (buffer sizes, ping period).
func WithConfig(fn func(*melody.Config)) Option { return func(e *Endpoint) { fn(e.m.Config) } }

// New returns an endpoint subscribed to its PubSub. It returns every bad
// option at once (an allowed origin or public URL that does not parse).
func New(opts ...Option) (*Endpoint, error) {
	e := &Endpoint{
		m:        melody.New(),
		logger:   slog.Default(),
		handlers: map[string]HandlerFunc{},
		sockets:  newIndex(),
		topics:   newIndex(),
		limits:   newLimits(),
		sweepNow: make(chan struct{}, 1),
		metrics:  newMetrics(),
		echoes:   newEchoes(),
		lease:    lease{base: time.Now()},
	}
	var defaults Settings
	SettingsSchema.Defaults(&defaults)
	e.apply(defaults)
	for _, o := range opts {
		o(e)
	}
	if len(e.errs) > 0 {
		_ = e.m.Close()
		return nil, errors.Join(e.errs...)
	}
	if e.pubsub == nil {
		e.pubsub = &InProcess{}
	}
	if p, ok := e.pubsub.(Prompter); ok {
		e.prompt = p.Prompt()
	}
	e.m.Upgrader.CheckOrigin = func(*http.Request) bool { return true } // checked before the upgrade
	// No buffers of gorilla's own: the socket reads and writes through the
	// 4 KiB buffers of the hijacked HTTP connection, which net/http keeps
	// for as long as melody's handler runs (the whole session). melody's
	// 1 KiB read and write buffers, or a WriteBufferPool, would come on top.
	e.m.Upgrader.ReadBufferSize, e.m.Upgrader.WriteBufferSize = 0, 0
	e.m.HandleConnect(e.connect)
	e.m.HandleDisconnect(e.disconnected)
	e.m.HandleMessage(e.message)
	e.m.HandleError(e.failed)
	e.ctx, e.cancel = context.WithCancel(context.Background())
	if e.checker != nil {
		go e.runSafetyNet(e.ctx)
	}
	unregister := func() {}
	if e.registry != nil {
		var err error
		if unregister, err = e.metrics.register(e.registry, e); err != nil {
			e.cancel()
			_ = e.m.Close()
			return nil, fmt.Errorf("kiln/live: metrics: %w", err)
		}
	}
	if err := e.pubsub.Subscribe(e.ctx, e.receive); err != nil {
		unregister()
		e.cancel()
		_ = e.m.Close()
		return nil, fmt.Errorf("kiln/live: subscribe: %w", err)
	}
	return e, nil
}

const connKey = "kiln.conn"

// failed counts the frames dropped on a full outbound queue. Only the
// first is logged; the count is logged when the socket closes.
func (e *Endpoint) failed(s *melody.Session, err error) {
	if !errors.Is(err, melody.ErrMessageBufferFull) {
		return
	}
	if c, ok := s.Keys[connKey].(*Conn); ok && c.dropped.Add(1) == 1 {
		e.logger.Warn("kiln/live: outbound queue full, dropping frames (a client that reads too slowly); the count is logged when the socket closes",
			"socket_id", c.id.SocketID)
	}
}

// ServeHTTP checks the Origin (403 when cross-origin), authenticates the
// request (401 when that fails, before any upgrade), and upgrades it. A
// socket over the session's or the user's limit is closed at once with
// CloseTooManySockets and the reason.
func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	if e.shutdown {
		e.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	e.active.Add(1)
	e.mu.Unlock()
	defer e.active.Done()
	if !e.originAllowed(r) {
		http.Error(w, "cross-origin WebSocket refused", http.StatusForbidden)
		return
	}
	id, err := e.authenticate(r)
	if err != nil || id == nil || id.SocketID == "" {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if reason := e.limits.acquire(id); reason != "" {
		e.refuseWithClose(w, r, CloseTooManySockets, reason)
		return
	}
	defer e.limits.release(id) // the socket has ended when HandleRequestWithKeys returns
	c := &Conn{ep: e, id: *id, topics: map[string]bool{}}
	if err := e.m.HandleRequestWithKeys(w, r, map[string]any{connKey: c}); err != nil {
		e.logger.Debug("kiln/live: upgrade failed", "err", err)
	}
}

// connect registers the socket, sends hello, re-checks the token and arms
// the expiry timer.
func (e *Endpoint) connect(s *melody.Session) {
	c := s.Keys[connKey].(*Conn)
	c.session = s
	hello, _ := encodeFrame("hello", map[string]string{"socket_id": c.id.SocketID})
	_ = c.write(hello)
	e.sockets.add(c.id.SocketID, c)
	e.metrics.opened.Inc()
	for _, t := range c.id.Topics {
		c.Subscribe(t)
	}
	// Registered: a revocation committed from now on finds the socket. One
	// committed before is caught by checking the token again.
	if err := e.recheck(s.Request); err != nil {
		c.Close(CloseSignedOut, ReasonText(revocation.Revoked))
		return
	}
	// A Shutdown that began while this socket was being accepted did not
	// see it registered: close it as Shutdown would have.
	e.mu.Lock()
	down := e.shutdown
	e.mu.Unlock()
	if down {
		c.Close(CloseGoingAway, reasonShuttingDown)
		return
	}
	if !c.id.ExpiresAt.IsZero() {
		c.mu.Lock()
		if !c.closing.Load() { // a closed socket's timer would only hold it
			c.timer = time.AfterFunc(time.Until(c.id.ExpiresAt), func() {
				c.Close(CloseSignedOut, ReasonText(revocation.Expired))
			})
		}
		c.mu.Unlock()
	}
	if e.onOpen != nil {
		e.onOpen(c)
	}
}

func (e *Endpoint) disconnected(s *melody.Session) {
	if c, ok := s.Keys[connKey].(*Conn); ok {
		c.mu.Lock()
		if !c.closing.Swap(true) {
			e.metrics.countClientClosed()
		}
		c.mu.Unlock()
		c.unregister()
		if n := c.dropped.Load(); n > 0 {
			e.logger.Warn("kiln/live: socket closed after dropping frames", "socket_id", c.id.SocketID, "dropped", n)
		}
	}
}

func (e *Endpoint) message(s *melody.Session, data []byte) {
	c, ok := s.Keys[connKey].(*Conn)
	if !ok || c.closing.Load() {
		return
	}
	f, err := decodeFrame(data)
	if err != nil {
		_ = c.Send("error", map[string]string{"message": err.Error()})
		return
	}
	h := e.handlers[f.Event]
	if h == nil {
		_ = c.Send("error", map[string]string{"message": "unknown event " + f.Event})
		return
	}
	h(s.Request.Context(), c, f.Payload)
}

// Disconnect closes every session of socketID, on every node, with close
// code 4001 and the reason's text. It implements revocation.Endpoint.
// It names no token, so every node that follows a prompt transport stops
// trusting what it knows of tokens being good (see Follow); the token
// revocation notifier calls DisconnectMany, with the tokens' jtis, instead.
//
// This node's sessions close first, so that they close even when the
// transport is down; the other nodes' follow through the PubSub (or, if
// the message is lost, at their next sweep).
func (e *Endpoint) Disconnect(ctx context.Context, socketID string, reason revocation.Reason) error {
	return e.DisconnectMany(ctx, []revocation.Disconnect{{SocketID: socketID, Reason: reason}})
}

// DisconnectMany closes every session of each socket id, on every node,
// with close code 4001 and its reason's text, as Disconnect does for one:
// this node's first, then the others' through as few PubSub messages as
// the transport's size limit allows (see PayloadLimiter); a message of
// one socket id has the form of Disconnect's. Those that follow the
// endpoint (Follow) hear of the revocations before anything is closed or
// published. It implements revocation.BatchEndpoint.
func (e *Endpoint) DisconnectMany(ctx context.Context, ds []revocation.Disconnect) error {
	if len(ds) == 0 {
		return nil
	}
	e.feed.revoked(ds)
	for _, d := range ds {
		e.DisconnectLocal(d.SocketID, d.Reason)
	}
	var errs []error
	for _, chunk := range chunkDisconnects(ds, e.payloadLimit()) {
		msg := Message{Kind: KindDisconnect, Disconnects: chunk}
		if len(chunk) == 1 {
			// One socket id (a sign-out): the form every version reads.
			d := chunk[0]
			msg = Message{Kind: KindDisconnect, SocketID: d.SocketID, Reason: d.Reason, JTI: d.JTI, ExpiresAt: d.ExpiresAt}
		}
		if err := e.pubsub.Publish(ctx, msg); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// disconnectsOverhead is the JSON of a disconnect Message with an empty
// list of socket ids: {"kind":"disconnect","disconnects":[]}.
var disconnectsOverhead = len(`{"kind":"disconnect","disconnects":[]}`)

// chunkDisconnects splits ds into lists whose disconnect Messages encode
// to at most limit bytes (no limit when 0). A socket id too long for a
// message of its own is a chunk of its own, which the transport refuses.
func chunkDisconnects(ds []revocation.Disconnect, limit int) [][]Disconnected {
	items := make([]Disconnected, len(ds))
	for i, d := range ds {
		items[i] = Disconnected{SocketID: d.SocketID, Reason: string(d.Reason), JTI: d.JTI, ExpiresAt: unixSeconds(d.ExpiresAt)}
	}
	return chunkJSON(items, disconnectsOverhead, limit)
}

// chunkJSON splits items into lists that, as a JSON array in a message of
// overhead bytes besides, encode to at most limit bytes (no limit when
// 0). An item too long for a list of its own is a list of its own, which
// the transport refuses.
func chunkJSON[T any](items []T, overhead, limit int) [][]T {
	var chunks [][]T
	var cur []T
	size := overhead
	for _, item := range items {
		b, _ := json.Marshal(item) // strings and numbers: cannot fail
		n := len(b)
		if len(cur) > 0 {
			n++ // the comma
		}
		if limit > 0 && len(cur) > 0 && size+n > limit {
			chunks = append(chunks, cur)
			cur, size, n = nil, overhead, len(b)
		}
		cur = append(cur, item)
		size += n
	}
	return append(chunks, cur)
}

// Broadcast sends {"event": event, "payload": payload} to every socket
// subscribed to topic, on every node.
func (e *Endpoint) Broadcast(ctx context.Context, topic, event string, payload any) error {
	p, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("kiln/live: broadcast payload: %w", err)
	}
	return e.pubsub.Publish(ctx, Message{Kind: KindBroadcast, Topic: topic, Event: event, Payload: p})
}

// receive acts on a message from the PubSub.
func (e *Endpoint) receive(msg Message) {
	switch msg.Kind {
	case KindSubscribed:
		e.feed.setUp(true)
		e.requestSweep()
	case KindLost:
		e.lease.end()
		e.feed.setUp(false)
		e.echoes.lost()
	case KindRevoking:
		if nodeOf(msg.Fence) == e.echoes.node && !e.echoes.waits(msg.Fence) {
			return // this endpoint's, published again for the members (see awaitAcks)
		}
		ds := make([]revocation.Disconnect, len(msg.JTIs))
		for i, jti := range msg.JTIs {
			ds[i].JTI = jti
		}
		e.feed.revoking(ds)
		e.echoes.heard(msg.Fence)
		e.heardRevoking(msg)
	case KindFence:
		e.echoes.heard(msg.Fence)
	case KindAlive:
		if msg.Node == e.echoes.node {
			e.echoes.heard(msg.Fence)
		} else if msg.Node != "" {
			e.members.alive(msg.Node)
		}
	case KindAck:
		for _, id := range msg.Acks {
			e.members.acked(id, msg.Node)
		}
	case KindLeave:
		e.members.leave(msg.Node)
	case KindDisconnect:
		ds := disconnectsOf(msg)
		e.feed.revoked(ds)
		for _, d := range ds {
			e.DisconnectLocal(d.SocketID, d.Reason)
		}
	case KindBroadcast:
		frame, err := json.Marshal(Frame{Event: msg.Event, Payload: msg.Payload})
		if err != nil {
			e.logger.Warn("kiln/live: bad broadcast ignored", "topic", msg.Topic, "err", err)
			return
		}
		for _, c := range e.topics.get(msg.Topic) {
			_ = c.write(frame)
		}
	default:
		e.logger.Warn("kiln/live: unknown message ignored", "kind", msg.Kind)
	}
}

// DisconnectLocal closes this node's sessions of socketID and returns how
// many it closed.
func (e *Endpoint) DisconnectLocal(socketID string, reason revocation.Reason) int {
	start := time.Now()
	conns := e.sockets.get(socketID)
	for _, c := range conns {
		c.close(CloseSignedOut, ReasonText(reason), start)
	}
	return len(conns)
}

// Len is the number of open sockets on this node.
func (e *Endpoint) Len() int { return e.sockets.len() }

// Conns returns this node's open sockets.
func (e *Endpoint) Conns() []*Conn { return e.sockets.all() }

// Shutdown closes every socket with 1001 (going away; clients reconnect
// elsewhere), refuses new ones, and waits until they are gone or ctx ends.
// A member first tells the other nodes it leaves (see LeaseTerm), so that
// no revocation waits for it. Calling it again does nothing more.
func (e *Endpoint) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	first := !e.shutdown
	e.shutdown = true
	e.mu.Unlock()
	e.lease.end()
	if first {
		e.leave(ctx)
	}
	e.feed.close() // it hears nothing more
	e.cancel()
	for _, c := range e.sockets.all() {
		c.Close(CloseGoingAway, reasonShuttingDown)
	}
	defer e.m.Close()
	done := make(chan struct{})
	go func() {
		e.active.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
