package live

import (
	"context"
	"time"

	"github.com/kiln-go/kiln/revocation"
)

// DefaultSweepInterval is how often the safety net checks sessions when
// WithSafetyNet is given no interval.
const DefaultSweepInterval = 30 * time.Second

// Checker tells which of the given jtis no longer hold a session, and why.
// It must answer for many jtis in few queries (tokenresource.Store.Check
// reads 500 per query).
type Checker interface {
	CheckSessions(ctx context.Context, jtis []string) (map[string]revocation.Reason, error)
}

// CheckerFunc adapts a function to Checker.
type CheckerFunc func(ctx context.Context, jtis []string) (map[string]revocation.Reason, error)

// CheckSessions calls f.
func (f CheckerFunc) CheckSessions(ctx context.Context, jtis []string) (map[string]revocation.Reason, error) {
	return f(ctx, jtis)
}

// WithSafetyNet checks every session's token with checker every interval
// (DefaultSweepInterval when zero), and at once after each pub/sub
// (re)subscription, closing those revoked or expired with their reason. A
// lost disconnect message then delays the disconnect by at most one
// interval; it never loses it.
func WithSafetyNet(checker Checker, interval time.Duration) Option {
	return func(e *Endpoint) {
		WithSweepInterval(interval)(e)
		e.checker = checker
	}
}

// WithChecker starts the safety net with checker at the sweep interval
// the endpoint has otherwise (the live settings' sweep_interval,
// WithSweepInterval; DefaultSweepInterval by default), whatever the order
// of the options.
func WithChecker(checker Checker) Option { return func(e *Endpoint) { e.checker = checker } }

// WithSweepInterval sets the safety net's interval. Default:
// DefaultSweepInterval.
func WithSweepInterval(interval time.Duration) Option {
	return func(e *Endpoint) {
		if interval > 0 {
			e.sweepEvery = interval
		}
	}
}

// KindSubscribed is the Message a transport hands its subscriber, locally,
// each time it has (re)subscribed: messages may have been lost before it,
// so the endpoint sweeps at once.
const KindSubscribed = "subscribed"

// KindLost is the Message a prompt transport (Prompter) hands its
// subscriber, locally, each time its subscription is lost, before it tries
// to get it back: messages published from then on until the next
// KindSubscribed may never arrive.
const KindLost = "lost"

// runSafetyNet sweeps every interval and when asked, until ctx is done.
func (e *Endpoint) runSafetyNet(ctx context.Context) {
	t := time.NewTicker(e.sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.sweepNow:
		}
		if _, err := e.Sweep(ctx); err != nil && ctx.Err() == nil {
			e.logger.Error("kiln/live: safety net sweep failed", "err", err)
		}
	}
}

// requestSweep asks for a sweep without waiting for it.
func (e *Endpoint) requestSweep() {
	select {
	case e.sweepNow <- struct{}{}:
	default:
	}
}

// Sweep checks the tokens of every session on this node now and closes the
// revoked and expired ones; it returns how many it closed. Its followers
// (Follow) hear of those tokens as revocations first. Without a checker it
// does nothing.
func (e *Endpoint) Sweep(ctx context.Context) (int, error) {
	checker := e.checker
	if checker == nil {
		return 0, nil
	}
	e.metrics.sweeps.Inc()
	byJTI := map[string][]*Conn{}
	for _, c := range e.sockets.all() {
		if c.id.JTI != "" {
			byJTI[c.id.JTI] = append(byJTI[c.id.JTI], c)
		}
	}
	if len(byJTI) == 0 {
		return 0, nil
	}
	jtis := make([]string, 0, len(byJTI))
	for jti := range byJTI {
		jtis = append(jtis, jti)
	}
	gone, err := checker.CheckSessions(ctx, jtis)
	if err != nil {
		return 0, err
	}
	// Those that follow the endpoint (the token store's knowledge) learn
	// what the sweep read, before the sockets close: a revocation whose
	// message never arrived (a stalled link, one written by hand) is then
	// refused from memory too, and a closed client does not find its
	// session still holding.
	var learnt []revocation.Disconnect
	for jti, reason := range gone {
		if cs := byJTI[jti]; len(cs) > 0 {
			learnt = append(learnt, revocation.Disconnect{SocketID: cs[0].id.SocketID, Reason: reason, JTI: jti, ExpiresAt: cs[0].id.ExpiresAt})
		}
	}
	if len(learnt) > 0 {
		e.feed.revoked(learnt)
	}
	closed := 0
	for jti, reason := range gone {
		for _, c := range byJTI[jti] {
			// One closed meanwhile (by a disconnect message, say) is not
			// counted.
			if c.close(CloseSignedOut, ReasonText(reason), time.Time{}) {
				closed++
			}
		}
	}
	e.metrics.swept.Add(float64(closed))
	if closed > 0 {
		e.logger.Info("kiln/live: safety net closed sessions", "count", closed)
	}
	return closed, nil
}
