package live

import (
	"sync"
	"time"

	"github.com/kiln-go/kiln/revocation"
)

var _ revocation.Feed = (*Endpoint)(nil)

// feed is what the endpoint tells those that follow it (revocation.Feed):
// the revocations it hears of, and whether its subscription is up. Its
// lock makes the watchers hear one thing at a time, in the order the
// endpoint learnt them.
type feed struct {
	mu         sync.Mutex
	subscribed bool // the transport's subscription is made
	// stalled is set while a message this endpoint published was not
	// heard back in time (EchoTimeout): the subscription is taken as down
	// until one is.
	stalled  bool
	closed   bool // the endpoint shut down: never up again
	watchers []revocation.Watcher
	// upSignal is closed while the feed is up, and replaced by an open one
	// when it goes down (see whenUp).
	upSignal chan struct{}
	// upSince is when the feed last went up: since then, it has heard
	// every message published.
	upSince time.Time
}

// upLocked reports whether the feed is up; f.mu is held.
func (f *feed) upLocked() bool { return f.subscribed && !f.stalled && !f.closed }

// Follow implements revocation.Feed: w hears of every revocation this
// endpoint hears of — this node's when DisconnectMany sends them, before
// it publishes them, and the other nodes' when their messages arrive,
// before their sockets close here — and of every change of its
// subscription: up once the transport hands it KindSubscribed, down when
// it hands it KindLost and when the endpoint shuts down. The endpoint is
// prompt when its PubSub is a Prompter whose Prompt is true. Attached to a
// domain (Domain.Attach), the endpoint is followed by the token store: the
// token revocation notifier's Attach makes it (tokenresource.Store.Follow).
func (e *Endpoint) Follow(w revocation.Watcher) (prompt bool) {
	e.feed.mu.Lock()
	e.feed.watchers = append(e.feed.watchers, w)
	w.State(e.feed.upLocked())
	e.feed.mu.Unlock()
	if e.prompt {
		e.member()
	}
	return e.prompt
}

// setUp records the subscription's state and tells the watchers; every
// call is a change for them, up or down alike: messages may have been
// lost in between. A subscription made again is no longer stalled.
func (f *feed) setUp(up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subscribed, f.stalled = up, false
	f.tellLocked()
}

// tellLocked tells the watchers the feed's state; f.mu is held.
func (f *feed) tellLocked() {
	up := f.upLocked()
	for _, w := range f.watchers {
		w.State(up)
	}
	if up {
		f.upSince = time.Now() // every call is a change: messages may have been lost
	}
	switch signalled := isClosed(f.signal()); {
	case up && !signalled:
		close(f.upSignal)
	case !up && signalled:
		f.upSignal = make(chan struct{})
	}
}

// signal is upSignal, made on first use; f.mu is held.
func (f *feed) signal() chan struct{} {
	if f.upSignal == nil {
		f.upSignal = make(chan struct{})
	}
	return f.upSignal
}

// whenUp returns a channel closed once the feed is up (at once if it is).
func (f *feed) whenUp() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.signal()
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// close marks the feed down for good: the endpoint shut down, and a
// transport's late KindSubscribed changes nothing.
func (f *feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.tellLocked()
}

// stall marks an up feed stalled, and down for its watchers; it reports
// whether it did.
func (f *feed) stall() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.upLocked() {
		return false
	}
	f.stalled = true
	f.tellLocked()
	return true
}

// unstall marks a stalled feed up again, as a subscription made again
// (messages may have been lost meanwhile); it reports whether it did.
func (f *feed) unstall() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.stalled || f.closed {
		return false
	}
	f.stalled = false
	f.tellLocked()
	return true
}

// isStalled reports whether the feed is stalled.
func (f *feed) isStalled() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stalled
}

// upFor reports how long the feed has been up without a break; 0 when
// it is down.
func (f *feed) upFor() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.upLocked() {
		return 0
	}
	return time.Since(f.upSince)
}

// isUp reports whether the subscription is up.
func (f *feed) isUp() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.upLocked()
}

// revoking tells the watchers of announced revocations.
func (f *feed) revoking(ds []revocation.Disconnect) {
	f.each(func(w revocation.Watcher) { w.Revoking(ds) })
}

// each calls tell with each watcher, one thing at a time.
func (f *feed) each(tell func(revocation.Watcher)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.watchers {
		tell(w)
	}
}

// revoked tells the watchers of revocations.
func (f *feed) revoked(ds []revocation.Disconnect) {
	f.each(func(w revocation.Watcher) { w.Revoked(ds) })
}

// disconnectsOf are the revocations of a disconnect message, in either
// form.
func disconnectsOf(msg Message) []revocation.Disconnect {
	var ds []revocation.Disconnect
	if msg.SocketID != "" {
		ds = append(ds, revocation.Disconnect{SocketID: msg.SocketID, Reason: revocation.Reason(msg.Reason), JTI: msg.JTI, ExpiresAt: unixTime(msg.ExpiresAt)})
	}
	for _, d := range msg.Disconnects {
		ds = append(ds, revocation.Disconnect{SocketID: d.SocketID, Reason: revocation.Reason(d.Reason), JTI: d.JTI, ExpiresAt: unixTime(d.ExpiresAt)})
	}
	return ds
}

// unixTime is the time of Unix seconds s; zero for 0 (no expiry sent).
func unixTime(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

// unixSeconds is t in Unix seconds; 0 for the zero time.
func unixSeconds(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
