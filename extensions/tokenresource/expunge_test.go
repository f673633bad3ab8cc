package tokenresource_test

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
)

// TestExpungeExpired removes the expired rows, revocations included, and
// only them; each removed row notifies with reason expired.
func TestExpungeExpired(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			s := newStore(t, db, tokenresource.Token{})
			ctx := context.Background()
			s.put(t, "live", "user?id=1", "user", hour())
			s.put(t, "live-revoked", "user?id=1", "user", hour())
			s.put(t, "old", "user?id=1", "user", past())
			s.put(t, "old-sign-in", "user?id=2", "sign_in", past())
			if err := s.s.Revoke(ctx, signed(t, "old-revoked", "user?id=3", past()), revocation.SignedOut); err != nil {
				t.Fatal(err)
			}
			if err := s.s.RevokeJTI(ctx, "live-revoked", "user?id=1", revocation.SignedOut); err != nil {
				t.Fatal(err)
			}
			s.rec.Reset()

			n, err := s.s.ExpungeExpired(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n != 3 {
				t.Errorf("expunged %d, want 3", n)
			}
			revs := s.rec.revocations(t)
			slices.SortFunc(revs, func(a, b revoked) int {
				if a.JTI < b.JTI {
					return -1
				}
				return 1
			})
			want := []revoked{
				{"expunge_expired", "old", "user?id=1", "user", revocation.Expired},
				{"expunge_expired", "old-revoked", "user?id=3", "revocation", revocation.Expired},
				{"expunge_expired", "old-sign-in", "user?id=2", "sign_in", revocation.Expired},
			}
			if !reflect.DeepEqual(revs, want) {
				t.Errorf("notifications\n%+v\nwant\n%+v", revs, want)
			}
			for _, jti := range []string{"old", "old-sign-in", "old-revoked"} {
				if s.row(t, jti) != nil {
					t.Errorf("%s is still there", jti)
				}
			}
			if s.row(t, "live") == nil || s.row(t, "live-revoked") == nil {
				t.Error("an unexpired row was removed")
			}
			if s.count(t) != 2 {
				t.Errorf("%d rows left, want 2", s.count(t))
			}
			// Nothing left to expunge.
			s.rec.Reset()
			if n, err := s.s.ExpungeExpired(ctx); err != nil || n != 0 {
				t.Errorf("second ExpungeExpired = %d, %v", n, err)
			}
			if len(s.rec.All()) != 0 {
				t.Error("an empty expunge notified")
			}
		})
	}
}

// TestExpungeExpiredAction runs the destroy action in bulk by hand.
func TestExpungeExpiredAction(t *testing.T) {
	s := newStore(t, "sqlite", tokenresource.Token{})
	ctx := context.Background()
	s.put(t, "old", "user?id=1", "user", past())
	s.put(t, "live", "user?id=1", "user", hour())
	s.rec.Reset()
	gone, err := s.tokens.BulkDestroy(ctx, s.d, "expunge_expired", resource.Le("expires_at", time.Now().UTC()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 1 || gone[0].JTI != "old" {
		t.Errorf("destroyed %+v", gone)
	}
	if revs := s.rec.revocations(t); len(revs) != 1 || revs[0].Reason != revocation.Expired {
		t.Errorf("notifications %+v", revs)
	}
}

// TestStart runs the expunger once at once, then every interval, and stops
// it with the context.
func TestStart(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			// An interval long enough that only the immediate run can
			// expunge within the test.
			s := newStore(t, db, tokenresource.Token{ExpungeInterval: time.Hour})
			s.put(t, "old", "user?id=1", "user", past())
			s.put(t, "live", "user?id=1", "user", hour())
			notified := make(chan resource.Notification, 10)
			s.rec.notifyOn(notified)
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := s.s.Start(ctx, logger)
			n := waitFor(t, notified)
			f := n.Record.(tokenresource.Record).TokenFields()
			if f.JTI != "old" || n.Metadata[tokenresource.ReasonKey] != revocation.Expired {
				t.Errorf("the immediate run notified %s with %v", f.JTI, n.Metadata)
			}
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the expunger did not stop when its context was cancelled")
			}
			if s.row(t, "old") != nil || s.row(t, "live") == nil {
				t.Error("the immediate run did not expunge exactly the expired row")
			}
			select {
			case n := <-notified:
				t.Errorf("an extra notification: %+v", n)
			default:
			}
		})
	}
}

// TestStartTicks: after the immediate run, the expunger runs again every
// interval.
func TestStartTicks(t *testing.T) {
	s := newStore(t, "sqlite", tokenresource.Token{ExpungeInterval: time.Millisecond})
	notified := make(chan resource.Notification, 10)
	s.rec.notifyOn(notified)
	s.put(t, "first", "user?id=1", "user", past())
	ctx, cancel := context.WithCancel(context.Background())
	done := s.s.Start(ctx, slog.New(slog.DiscardHandler))
	if f := waitFor(t, notified).Record.(tokenresource.Record).TokenFields(); f.JTI != "first" {
		t.Errorf("first run expunged %s", f.JTI)
	}
	// Inserted after the first run committed: only a later tick can
	// expunge it.
	s.put(t, "second", "user?id=1", "user", past())
	second := waitFor(t, notified)
	if f := second.Record.(tokenresource.Record).TokenFields(); f.JTI != "second" || second.Metadata[tokenresource.ReasonKey] != revocation.Expired {
		t.Errorf("a later run notified %s, %v", f.JTI, second.Metadata)
	}
	cancel()
	<-done
	// Stopped: nothing expunges any more.
	s.rec.notifyOn(nil)
	s.put(t, "third", "user?id=1", "user", past())
	if s.row(t, "third") == nil {
		t.Error("a row expired after the stop was expunged")
	}
}

// TestStartLogsFailures: a failing run is logged, and the expunger goes on.
func TestStartLogsFailures(t *testing.T) {
	s := newStore(t, "sqlite", tokenresource.Token{ExpungeInterval: time.Hour})
	var logs safeBuffer
	if err := s.layer.Close(); err != nil {
		t.Fatal(err)
	}
	logged := make(chan struct{})
	logs.onWrite = func() { close(logged) }
	ctx, cancel := context.WithCancel(context.Background())
	done := s.s.Start(ctx, slog.New(slog.NewTextHandler(&logs, nil)))
	select {
	case <-logged:
	case <-time.After(10 * time.Second):
		t.Fatal("a failed run logged nothing")
	}
	cancel()
	<-done
	if got := logs.String(); !bytes.Contains([]byte(got), []byte("expunging expired tokens failed")) || !bytes.Contains([]byte(got), []byte("resource=token")) {
		t.Errorf("log: %s", got)
	}
}

// waitFor returns the next notification that carries a reason, failing
// the test after a while.
func waitFor(t *testing.T, ch <-chan resource.Notification) resource.Notification {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case n := <-ch:
			if _, ok := n.Metadata[tokenresource.ReasonKey]; ok {
				return n
			}
		case <-timeout:
			t.Fatal("no notification within 10s")
		}
	}
}

// safeBuffer is a log destination for a goroutine; onWrite runs on the
// first write.
type safeBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	onWrite func()
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.onWrite != nil {
		b.onWrite()
		b.onWrite = nil
	}
	return b.buf.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestExpungeJTIs: ExpiredJTIs lists the expired rows, revocations
// included; ExpungeJTIs removes those of the jtis it is given that are
// expired, and no other, each notified with reason expired.
func TestExpungeJTIs(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			s := newStore(t, db, tokenresource.Token{})
			ctx := context.Background()
			s.put(t, "live", "user?id=1", "user", hour())
			s.put(t, "old", "user?id=1", "user", past())
			s.put(t, "old-too", "user?id=2", "user", past())
			if err := s.s.Revoke(ctx, signed(t, "old-revoked", "user?id=3", past()), revocation.SignedOut); err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC()
			jtis, err := s.s.ExpiredJTIs(ctx, now)
			if err != nil || !slices.Equal(slices.Sorted(slices.Values(jtis)), []string{"old", "old-revoked", "old-too"}) {
				t.Fatalf("ExpiredJTIs = %v, %v; want old, old-revoked, old-too", jtis, err)
			}
			s.rec.Reset()
			n, err := s.s.ExpungeJTIs(ctx, []string{"live", "old", "old-revoked"}, now)
			if err != nil || n != 2 {
				t.Fatalf("ExpungeJTIs = %d, %v; want 2", n, err)
			}
			got := s.rec.revocations(t)
			slices.SortFunc(got, func(a, b revoked) int { return strings.Compare(a.JTI, b.JTI) })
			want := []revoked{
				{"expunge_expired", "old", "user?id=1", "user", revocation.Expired},
				{"expunge_expired", "old-revoked", "user?id=3", "revocation", revocation.Expired},
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("notifications\n%+v\nwant\n%+v", got, want)
			}
			if s.row(t, "live") == nil || s.row(t, "old-too") == nil || s.row(t, "old") != nil {
				t.Error("ExpungeJTIs removed a row it was not given, or an unexpired one, or kept an expired one it was given")
			}
			if n, err := s.s.ExpungeJTIs(ctx, nil, now); err != nil || n != 0 {
				t.Errorf("ExpungeJTIs of none = %d, %v", n, err)
			}
		})
	}
}
