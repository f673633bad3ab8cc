package live

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/kiln-go/kiln/revocation"
)

// The kinds of Message that make the token store's knowledge exact across
// nodes (see Endpoint.Announce and Endpoint.Fence). Both carry a Fence id,
// which the node that published the message waits to hear back on its own
// subscription; every other node ignores a fence, and learns the tokens of
// a revoking message.
const (
	// KindRevoking announces the tokens (JTIs) a transaction is about to
	// revoke, before it commits.
	KindRevoking = "revoking"
	// KindFence carries nothing but its Fence id.
	KindFence = "fence"
)

// EchoTimeout is how long Announce and Fence wait, at most, to hear their
// message back on this node's subscription, publishing included; for
// Announce, it bounds as well the wait for a fresh subscription to hear
// every member and for the members' acknowledgements (see LeaseTerm). Past it,
// they fail — Fence's callers read the database, and a revocation that
// cannot be announced fails (see Announce) — and the subscription is
// taken as down until a probe is
// heard back (see ProbeInterval): the token store stops trusting what it
// knows of tokens being good, and reads the database at once.
const EchoTimeout = 2 * time.Second

// errNotSubscribed is Fence's and Announce's error while the endpoint's
// subscription is down: what they publish would not be heard back.
var errNotSubscribed = errors.New("kiln/live: the pub/sub subscription is down")

// errNotPrompt is Fence's error on a transport that is not prompt.
var errNotPrompt = errors.New("kiln/live: the pub/sub transport is not prompt")

// echoes are the messages this endpoint published and waits to hear back,
// and its fences in flight.
type echoes struct {
	node string // this endpoint's prefix of Fence ids

	mu      sync.Mutex
	seq     uint64
	waiting map[string]chan error // by Fence id: told nil when heard back
	flying  *flight               // the fence published, not yet heard back
	next    *flight               // the fence to publish once flying lands
}

// flight is one fence message and the callers of Fence that wait for it.
type flight struct {
	done chan struct{}
	err  error // set before done is closed
}

func newEchoes() echoes {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return echoes{node: hex.EncodeToString(b[:]) + ".", waiting: map[string]chan error{}}
}

// newID returns a new Fence id.
func (es *echoes) newID() string {
	es.mu.Lock()
	defer es.mu.Unlock()
	es.seq++
	return es.node + strconv.FormatUint(es.seq, 36)
}

// register returns the channel told when the message of Fence id is
// heard back (or lost).
func (es *echoes) register(id string) chan error {
	es.mu.Lock()
	defer es.mu.Unlock()
	ch := make(chan error, 1)
	es.waiting[id] = ch
	return ch
}

// waits reports whether a message of Fence id is waited for: published
// by this endpoint, and not heard back yet.
func (es *echoes) waits(id string) bool {
	es.mu.Lock()
	defer es.mu.Unlock()
	_, ok := es.waiting[id]
	return ok
}

func (es *echoes) forget(id string) {
	es.mu.Lock()
	delete(es.waiting, id)
	es.mu.Unlock()
}

// heard tells the waiter of id, if it is this endpoint's, that its
// message came back.
func (es *echoes) heard(id string) {
	es.mu.Lock()
	ch, ok := es.waiting[id]
	delete(es.waiting, id)
	es.mu.Unlock()
	if ok {
		ch <- nil
	}
}

// lost fails every message waiting to be heard back: the subscription was
// lost, and it may never come.
func (es *echoes) lost() {
	es.mu.Lock()
	waiting := es.waiting
	es.waiting = map[string]chan error{}
	es.mu.Unlock()
	for _, ch := range waiting {
		ch <- errNotSubscribed
	}
}

// errNotHeardBack is publishAndWait's error when a message is not heard
// back within EchoTimeout.
var errNotHeardBack = fmt.Errorf("kiln/live: not heard back from the pub/sub within %s", EchoTimeout)

// echo publishes msgs, each with a Fence id of its own (given one when
// it has none), and returns once
// every one has been heard back on this endpoint's subscription: by then
// the transport has handed them to every node's subscription. One not
// heard back in time stalls the feed (see stalled).
func (e *Endpoint) echo(ctx context.Context, msgs []Message) error {
	if !e.feed.isUp() {
		return errNotSubscribed
	}
	err := e.publishAndWait(ctx, msgs)
	if errors.Is(err, errNotHeardBack) {
		e.stalled()
	}
	return err
}

// publishAndWait is echo, whatever the feed's state. EchoTimeout bounds
// the publishing and the waiting together: a transport whose publish
// blocks (a server that stopped answering) is stalled as much as one
// that drops what it is handed.
func (e *Endpoint) publishAndWait(ctx context.Context, msgs []Message) error {
	chans := make([]chan error, len(msgs))
	for i := range msgs {
		if msgs[i].Fence == "" {
			msgs[i].Fence = e.echoes.newID()
		}
		chans[i] = e.echoes.register(msgs[i].Fence)
		defer e.echoes.forget(msgs[i].Fence)
	}
	timeout, cancel := context.WithTimeoutCause(ctx, EchoTimeout, errNotHeardBack)
	defer cancel()
	for _, msg := range msgs {
		// A PubSub's Publish returns once its ctx is done (kiln's
		// transports do).
		if err := e.pubsub.Publish(timeout, msg); err != nil {
			if timeout.Err() != nil {
				return cause(timeout)
			}
			return err
		}
	}
	for _, ch := range chans {
		select {
		case err := <-ch:
			if err != nil {
				return err
			}
		case <-timeout.Done():
			return cause(timeout)
		case <-e.ctx.Done():
			return errShutDown
		}
	}
	return nil
}

// errShutDown is publishAndWait's error once the endpoint shut down.
var errShutDown = errors.New("kiln/live: the endpoint shut down")

// cause is why ctx ended: errNotHeardBack when EchoTimeout passed, the
// caller's ctx's error otherwise.
func cause(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return ctx.Err()
}

// stalled takes the subscription as down: a message published was not
// heard back in time, so the transport may be stalled without having
// said so (a connection silently cut). Those that follow the endpoint
// are told it is down; every message waiting to be heard back fails; and
// a probe publishes a fence every ProbeInterval until one is heard back,
// then tells them it is up again (messages may have been lost meanwhile).
// A subscription the transport makes again ends the stall too.
func (e *Endpoint) stalled() {
	if !e.feed.stall() {
		return
	}
	e.lease.end()
	e.logger.Warn("kiln/live: the pub/sub did not hand back a message this node published; session tokens are checked in the database until it does",
		"timeout", EchoTimeout)
	e.echoes.lost()
	go e.probe()
}

// ProbeInterval is how often a stalled endpoint publishes a fence to see
// whether its transport hands messages back again (see EchoTimeout).
const ProbeInterval = time.Second

// probe publishes a fence every ProbeInterval while the feed is stalled,
// and marks it up again once one is heard back.
func (e *Endpoint) probe() {
	t := time.NewTicker(ProbeInterval)
	defer t.Stop()
	for e.feed.isStalled() {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
		if err := e.publishAndWait(e.ctx, []Message{{Kind: KindFence}}); err == nil {
			if e.feed.unstall() {
				e.logger.Info("kiln/live: the pub/sub hands messages back again; session tokens are checked from memory again")
			}
			return
		}
	}
}

// Announce implements revocation.Announcer: it publishes the jtis of ds —
// tokens a transaction is about to revoke — in as few messages as the
// transport's size limit allows, and returns once it has heard them back
// on its own subscription and every member in its view (see LeaseTerm)
// has acknowledged them. The transport has then handed them to every
// node's subscription, ahead of anything published after: a node's Fence
// that begins later returns only once its followers know that these
// tokens are in doubt, and every member holding a lease knows already. On
// a transport that is not prompt, where no node answers from memory, it
// does nothing.
//
// It first waits, if need be, until its subscription has been up for
// LeaseTerm and a margin, to have heard every member: a process that just
// started waits about a second before its first announcement. While the
// subscription is down (lost and being made again, say) it waits for it
// to be up, and tries again when it is lost meanwhile or a publish fails,
// for EchoTimeout in all; then it fails, and the token revocation
// notifier fails the revocation (revocation.ErrNotAnnounced): other nodes
// could otherwise go on trusting what they read of these tokens. A
// stalled transport (see EchoTimeout) fails it at once: the revocation
// waits in its transaction, holding a connection.
func (e *Endpoint) Announce(ctx context.Context, ds []revocation.Disconnect) error {
	if !e.prompt {
		return nil
	}
	var jtis []string
	for _, d := range ds {
		if d.JTI != "" {
			jtis = append(jtis, d.JTI)
		}
	}
	if len(jtis) == 0 {
		return nil
	}
	chunks := chunkJTIs(jtis, e.payloadLimit())
	deadline := time.NewTimer(EchoTimeout)
	defer deadline.Stop()
	for {
		if err := e.hearMembers(ctx, deadline.C); err != nil {
			return err
		}
		msgs := make([]Message, len(chunks))
		ids := make([]string, len(chunks))
		for i, chunk := range chunks {
			ids[i] = e.echoes.newID()
			msgs[i] = Message{Kind: KindRevoking, JTIs: chunk, Fence: ids[i]}
		}
		acks := e.members.expect(ids)
		err := e.echo(ctx, msgs)
		if err == nil {
			err = e.awaitAcks(ctx, msgs, acks, deadline.C)
		}
		e.members.forget(ids)
		if errors.Is(err, errNotAcknowledged) {
			return err
		}
		var up <-chan struct{}
		var pause <-chan time.Time
		switch {
		case err == nil:
			return nil
		case errors.Is(err, errNotHeardBack), e.feed.isStalled():
			// Stalled: waited for once already; a revocation waiting in
			// its transaction would only hold its connection longer.
			return err
		case errors.Is(err, errNotSubscribed):
			up = e.feed.whenUp()
		default:
			// The publish failed (a connection pool that has not seen
			// the server back yet, say): try again shortly.
			pause = time.After(announceRetryPause)
		}
		select {
		case <-up:
		case <-pause:
		case <-deadline.C:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-e.ctx.Done():
			return errShutDown
		}
	}
}

// announceRetryPause is how long Announce waits before it publishes again
// after a publish failed, within EchoTimeout.
const announceRetryPause = 50 * time.Millisecond

// Fence implements revocation.Feed: it returns once every revocation
// announced or published by any node before the call has reached its
// followers. While this node holds a lease (see LeaseTerm) that is so
// already, and it returns at once. Otherwise it returns once this
// endpoint has heard back a fence message published after the call.
// Callers that wait at the same time share one message: one is in flight
// at a time, and those that call meanwhile wait for the next, published
// as soon as it lands.
func (e *Endpoint) Fence(ctx context.Context) error {
	if !e.prompt {
		return errNotPrompt
	}
	if e.lease.valid() {
		// Every revocation committed before now was acknowledged by this
		// member first (see LeaseTerm).
		return nil
	}
	if !e.feed.isUp() {
		return errNotSubscribed
	}
	es := &e.echoes
	es.mu.Lock()
	if es.next == nil {
		es.next = &flight{done: make(chan struct{})}
	}
	f := es.next
	if es.flying == nil {
		// None in flight: this caller flies it, with no goroutine to start.
		es.flying, es.next = f, nil
		es.mu.Unlock()
		e.land(f)
		return f.err
	}
	es.mu.Unlock()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// land publishes fence f, waits to hear it back and tells its callers,
// then has the next one, if callers wait for it, flown on a goroutine of
// its own.
func (e *Endpoint) land(f *flight) {
	f.err = e.echo(e.ctx, []Message{{Kind: KindFence}})
	close(f.done)
	es := &e.echoes
	es.mu.Lock()
	es.flying, es.next = es.next, nil
	next := es.flying
	es.mu.Unlock()
	if next != nil {
		go e.land(next)
	}
}

// payloadLimit is the size limit of the endpoint's PubSub (see
// PayloadLimiter).
func (e *Endpoint) payloadLimit() int {
	if pl, ok := e.pubsub.(PayloadLimiter); ok {
		return pl.PayloadLimit()
	}
	return DefaultPayloadLimit
}

// revokingOverhead is the JSON of a revoking Message with an empty list of
// jtis and the longest Fence id: 16 hex digits, a dot, and 13 base-36
// digits of a sequence number.
var revokingOverhead = len(`{"kind":"revoking","jtis":[],"fence":"0123456789abcdef.3w5e11264sgsf"}`)

// chunkJTIs splits jtis into lists whose revoking Messages encode to at
// most limit bytes (no limit when 0).
func chunkJTIs(jtis []string, limit int) [][]string {
	return chunkJSON(jtis, revokingOverhead, limit)
}
