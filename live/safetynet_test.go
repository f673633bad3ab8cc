package live_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource/bunlayer"
	"github.com/kiln-go/kiln/revocation"
	"github.com/kiln-go/kiln/web"
)

// The safety net's tests. Their helpers are named sweep… so as not to
// collide with the package's other tests.

// sweepDatabases are the databases the safety net is tested on; postgres
// skips without KILN_TEST_POSTGRES_URL (and fails without it under CI).
var sweepDatabases = []string{"sqlite", "postgres"}

func forSweepDatabases(t *testing.T, fn func(t *testing.T, db string)) {
	for _, db := range sweepDatabases {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			fn(t, db)
		})
	}
}

// sweepLog is a slog.Handler whose messages tests can wait for.
type sweepLog struct {
	mu   sync.Mutex
	msgs []string
	ch   chan string
}

func newSweepLog() *sweepLog { return &sweepLog{ch: make(chan string, 256)} }

func (l *sweepLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *sweepLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *sweepLog) WithGroup(string) slog.Handler            { return l }
func (l *sweepLog) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		msg += " " + a.String()
		return true
	})
	l.mu.Lock()
	l.msgs = append(l.msgs, msg)
	l.mu.Unlock()
	select {
	case l.ch <- msg:
	default:
	}
	return nil
}

// wait returns the next message that contains s.
func (l *sweepLog) wait(t *testing.T, ctx context.Context, s string) string {
	t.Helper()
	for {
		select {
		case m := <-l.ch:
			if strings.Contains(m, s) {
				return m
			}
		case <-ctx.Done():
			t.Fatalf("nothing logged with %q: %v", s, ctx.Err())
		}
	}
}

// sweepCtx bounds a test's waits: generously, as one test dials 501
// sockets under -race, on two databases at once.
func sweepCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// sweepHarness is a server whose endpoint sweeps every interval once a
// checker is set, logging to log. o's endpoint options come after those.
func sweepHarness(t *testing.T, db string, interval time.Duration, log *sweepLog, o livetest.Options) *livetest.Harness {
	t.Helper()
	if log == nil {
		log = newSweepLog()
	}
	o.EndpointOptions = append([]live.Option{live.WithSweepInterval(interval), live.WithLogger(slog.New(log))}, o.EndpointOptions...)
	return livetest.New(t, db, o)
}

// sweepSession is a token of the harness's user and a socket opened with it.
type sweepSession struct {
	jti, token string
	client     *livetest.Client
}

// sweepOpen issues n session tokens for user and opens a socket with each.
func sweepOpen(t *testing.T, ctx context.Context, h *livetest.Harness, user any, n int) []sweepSession {
	t.Helper()
	out := make([]sweepSession, n)
	for i := range out {
		token, claims, err := h.Auth.Issue(ctx, user, authentication.IssueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = sweepSession{jti: claims.JTI, token: token, client: h.MustDial(t, ctx, livetest.Bearer(token))}
	}
	return out
}

// sweepDB is the harness's database, to change tokens behind the
// notifiers' back, as a lost message would leave them.
func sweepDB(t *testing.T, h *livetest.Harness) *bun.DB {
	t.Helper()
	l, ok := h.Domain.DataLayer().(*bunlayer.Layer)
	if !ok {
		t.Fatalf("data layer is %T", h.Domain.DataLayer())
	}
	return l.DB()
}

func sweepRevokeInDB(t *testing.T, ctx context.Context, h *livetest.Harness, jtis ...string) {
	t.Helper()
	res, err := sweepDB(t, h).NewUpdate().Table("tokens").
		Set("purpose = ?", tokenresource.PurposeRevocation).
		Where("jti IN (?)", bun.List(jtis)).Exec(ctx)
	sweepAffected(t, res, err, len(jtis))
}

func sweepExpireInDB(t *testing.T, ctx context.Context, h *livetest.Harness, jtis ...string) {
	t.Helper()
	res, err := sweepDB(t, h).NewUpdate().Table("tokens").
		Set("expires_at = ?", time.Now().UTC().Add(-time.Minute)).
		Where("jti IN (?)", bun.List(jtis)).Exec(ctx)
	sweepAffected(t, res, err, len(jtis))
}

func sweepDeleteInDB(t *testing.T, ctx context.Context, h *livetest.Harness, jtis ...string) {
	t.Helper()
	res, err := sweepDB(t, h).NewDelete().Table("tokens").
		Where("jti IN (?)", bun.List(jtis)).Exec(ctx)
	sweepAffected(t, res, err, len(jtis))
}

func sweepAffected(t *testing.T, res interface{ RowsAffected() (int64, error) }, err error, want int) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != int64(want) {
		t.Fatalf("changed %d token rows, want %d", n, want)
	}
}

// sweepExpectClose waits for c to be closed with 4001 and reason.
func sweepExpectClose(t *testing.T, ctx context.Context, c *livetest.Client, reason string) {
	t.Helper()
	code, text, err := c.WaitClose(ctx)
	if err != nil {
		t.Fatalf("socket %s: waiting for its close: %v", c.SocketID, err)
	}
	if code != live.CloseSignedOut || text != reason {
		t.Fatalf("socket %s closed with %d %q, want %d %q", c.SocketID, code, text, live.CloseSignedOut, reason)
	}
}

// sweepExpectOpen checks that c is open: the endpoint answers a frame of
// an unknown event with an error frame, which a closed socket cannot.
func sweepExpectOpen(t *testing.T, ctx context.Context, c *livetest.Client) {
	t.Helper()
	if err := c.Send("kiln-test-ping", nil); err != nil {
		t.Fatalf("socket %s: %v", c.SocketID, err)
	}
	if _, err := c.WaitEvent(ctx, "error"); err != nil {
		t.Fatalf("socket %s should be open: %v", c.SocketID, err)
	}
}

// TestSweepClosesSessionsChangedInTheDatabase: tokens revoked, expired or
// deleted straight in the database (no notification, as when a message is
// lost) keep their sockets open until Endpoint.Sweep, which closes exactly
// those, every socket of a token included, each with its reason.
func TestSweepClosesSessionsChangedInTheDatabase(t *testing.T) {
	forSweepDatabases(t, func(t *testing.T, db string) {
		ctx := sweepCtx(t)
		h := sweepHarness(t, db, time.Hour, nil, livetest.Options{Checker: livetest.SessionChecker})
		user := h.Register(t, "sweep@example.com").Record
		s := sweepOpen(t, ctx, h, user, 4)
		twin := h.MustDial(t, ctx, livetest.Bearer(s[0].token)) // a second socket of token 0

		sweepRevokeInDB(t, ctx, h, s[0].jti)
		sweepExpireInDB(t, ctx, h, s[1].jti)
		sweepDeleteInDB(t, ctx, h, s[2].jti) // token presence is required: gone means signed out
		sweepExpectOpen(t, ctx, s[0].client) // nothing told the endpoint

		closed, err := h.Endpoint.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if closed != 4 {
			t.Errorf("Sweep closed %d sockets, want 4", closed)
		}
		sweepExpectClose(t, ctx, s[0].client, "revoked")
		sweepExpectClose(t, ctx, twin, "revoked")
		sweepExpectClose(t, ctx, s[1].client, "expired")
		sweepExpectClose(t, ctx, s[2].client, "revoked")
		sweepExpectOpen(t, ctx, s[3].client)
		if n := h.Endpoint.Len(); n != 1 {
			t.Errorf("%d sockets left, want 1", n)
		}
		if closed, err := h.Endpoint.Sweep(ctx); err != nil || closed != 0 {
			t.Errorf("second Sweep closed %d (%v), want 0", closed, err)
		}
	})
}

// sweepCounter counts the statements run with its mark in their context.
type sweepCounter struct{ n atomic.Int64 }

type sweepMark struct{}

func (c *sweepCounter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}
func (c *sweepCounter) AfterQuery(ctx context.Context, _ *bun.QueryEvent) {
	if ctx.Value(sweepMark{}) != nil {
		c.n.Add(1)
	}
}

// TestSweepBatchesItsQueries: the safety net checks N sessions in
// ceil(N/500) statements, never one per session: counted with a bun query
// hook, for real sockets up to 501 and, beyond, for the checker the sweep
// hands all its jtis to at once.
func TestSweepBatchesItsQueries(t *testing.T) {
	forSweepDatabases(t, func(t *testing.T, db string) {
		ctx := sweepCtx(t)
		// One user holds all 501 sessions: raise the per-user limit.
		h := sweepHarness(t, db, time.Hour, nil, livetest.Options{Checker: livetest.SessionChecker, EndpointOptions: []live.Option{
			live.WithSettings(live.Settings{MaxSocketsPerSubject: 501}),
		}})
		counter := &sweepCounter{}
		sweepDB(t, h).AddQueryHook(counter) // before any sweep: the first tick is an hour away
		marked := context.WithValue(ctx, sweepMark{}, true)
		want := func(n int) int64 { return int64((n + tokenresource.CheckBatch - 1) / tokenresource.CheckBatch) }
		user := h.Register(t, "batch@example.com").Record
		var sessions []sweepSession
		for _, n := range []int{0, 1, 500, 501} {
			sessions = append(sessions, sweepOpen(t, ctx, h, user, n-len(sessions))...)
			before := counter.n.Load()
			closed, err := h.Endpoint.Sweep(marked)
			if err != nil || closed != 0 {
				t.Fatalf("%d sessions: Sweep closed %d (%v), want 0", n, closed, err)
			}
			if got := counter.n.Load() - before; got != want(n) {
				t.Errorf("%d sessions: Sweep ran %d statements, want %d", n, got, want(n))
			}
		}

		jtis := make([]string, 0, 1501)
		for _, s := range sessions {
			jtis = append(jtis, s.jti)
		}
		for len(jtis) < cap(jtis) {
			jtis = append(jtis, fmt.Sprintf("unknown-%d", len(jtis)))
		}
		for _, n := range []int{1000, 1001, 1500, 1501} {
			before := counter.n.Load()
			gone, err := h.Web.SessionChecker().CheckSessions(marked, jtis[:n])
			if err != nil {
				t.Fatal(err)
			}
			if got := counter.n.Load() - before; got != want(n) {
				t.Errorf("%d sessions: the checker ran %d statements, want %d", n, got, want(n))
			}
			if len(gone) != n-len(sessions) { // token presence is required: unknown jtis are gone
				t.Errorf("%d sessions: %d gone, want %d", n, len(gone), n-len(sessions))
			}
		}
	})
}

// lazyChecker is the harness's checker, for an endpoint made before it.
type lazyChecker struct {
	h atomic.Pointer[livetest.Harness]
}

func (l *lazyChecker) CheckSessions(ctx context.Context, jtis []string) (map[string]revocation.Reason, error) {
	h := l.h.Load()
	if h == nil {
		return nil, errors.New("no harness yet")
	}
	return h.Web.SessionChecker().CheckSessions(ctx, jtis)
}

// TestSafetyNetClosesWithinOneInterval: with WithSafetyNet, a revocation
// nothing announced closes its socket within one sweep interval.
func TestSafetyNetClosesWithinOneInterval(t *testing.T) {
	const interval = time.Second
	forSweepDatabases(t, func(t *testing.T, db string) {
		ctx := sweepCtx(t)
		checker := &lazyChecker{}
		h := sweepHarness(t, db, time.Hour, nil, livetest.Options{EndpointOptions: []live.Option{live.WithSafetyNet(checker, interval)}})
		checker.h.Store(h)
		user := h.Register(t, "interval@example.com").Record
		s := sweepOpen(t, ctx, h, user, 2)
		sweepRevokeInDB(t, ctx, h, s[0].jti)
		revoked := time.Now()
		sweepExpectClose(t, ctx, s[0].client, "revoked")
		// One interval, plus the sweep's own query on a loaded machine.
		if took := time.Since(revoked); took > interval+interval/2 {
			t.Errorf("closed %v after the revocation; want within the %v interval", took, interval)
		}
		sweepExpectOpen(t, ctx, s[1].client)
	})
}

// TestSweepOnResubscription: a transport's live.KindSubscribed message
// (sent after each reconnection, when messages may have been lost) makes
// the endpoint sweep at once, not at its next tick.
func TestSweepOnResubscription(t *testing.T) {
	forSweepDatabases(t, func(t *testing.T, db string) {
		ctx := sweepCtx(t)
		ps := &live.InProcess{}
		h := sweepHarness(t, db, time.Hour, nil, livetest.Options{PubSub: ps, Checker: livetest.SessionChecker})
		user := h.Register(t, "resub@example.com").Record
		s := sweepOpen(t, ctx, h, user, 2)
		sweepRevokeInDB(t, ctx, h, s[0].jti)
		sweepExpectOpen(t, ctx, s[0].client) // the next tick is an hour away
		if err := ps.Publish(ctx, live.Message{Kind: live.KindSubscribed}); err != nil {
			t.Fatal(err)
		}
		sweepExpectClose(t, ctx, s[0].client, "revoked")
		sweepExpectOpen(t, ctx, s[1].client)
	})
}

// TestSweepFailureIsLoggedAndRetried: when the token store cannot answer,
// the sweep closes nothing, logs the error, and the next sweep does the
// work.
func TestSweepFailureIsLoggedAndRetried(t *testing.T) {
	ctx := sweepCtx(t)
	ps := &live.InProcess{}
	log := newSweepLog()
	var calls atomic.Int64
	h := sweepHarness(t, "sqlite", time.Hour, log, livetest.Options{PubSub: ps, Checker: func(w *web.Web) live.Checker {
		return live.CheckerFunc(func(ctx context.Context, jtis []string) (map[string]revocation.Reason, error) {
			if calls.Add(1) == 1 {
				return nil, errors.New("database unavailable")
			}
			return w.SessionChecker().CheckSessions(ctx, jtis)
		})
	}})
	user := h.Register(t, "failure@example.com").Record
	s := sweepOpen(t, ctx, h, user, 1)
	sweepRevokeInDB(t, ctx, h, s[0].jti)
	if err := ps.Publish(ctx, live.Message{Kind: live.KindSubscribed}); err != nil {
		t.Fatal(err)
	}
	if m := log.wait(t, ctx, "safety net sweep failed"); !strings.Contains(m, "database unavailable") {
		t.Errorf("logged %q", m)
	}
	sweepExpectOpen(t, ctx, s[0].client)
	if err := ps.Publish(ctx, live.Message{Kind: live.KindSubscribed}); err != nil {
		t.Fatal(err)
	}
	sweepExpectClose(t, ctx, s[0].client, "revoked")
	log.wait(t, ctx, "safety net closed sessions count=1")
}

// TestSweepWithoutChecker: without a checker, Sweep does nothing.
func TestSweepWithoutChecker(t *testing.T) {
	ctx := sweepCtx(t)
	h := sweepHarness(t, "sqlite", time.Hour, nil, livetest.Options{})
	user := h.Register(t, "nochecker@example.com").Record
	s := sweepOpen(t, ctx, h, user, 1)
	sweepRevokeInDB(t, ctx, h, s[0].jti)
	if closed, err := h.Endpoint.Sweep(ctx); closed != 0 || err != nil {
		t.Fatalf("Sweep without a checker closed %d (%v)", closed, err)
	}
	sweepExpectOpen(t, ctx, s[0].client)
}
