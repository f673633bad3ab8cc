package password_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// guard bounds every wait for an event in these tests: a guard against
// hangs, not a measure of speed.
const guard = time.Minute

// waitFor polls cond until it holds; only for the limiter's queue, which
// announces no event when a caller joins it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

// A limiter runs as many callers at once as it has slots, and the others
// in the order they came, as slots free up.
func TestHashLimiterQueuesInOrder(t *testing.T) {
	l := password.NewHashLimiter(2)
	ctx := context.Background()
	var running, most atomic.Int32
	release := make(chan struct{})
	entered := make(chan int, 10)
	var wg sync.WaitGroup
	call := func(i int) {
		defer wg.Done()
		err := l.Do(ctx, func() {
			n := running.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			entered <- i
			<-release
			running.Add(-1)
		})
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	for i := range 2 {
		wg.Add(1)
		go call(i)
	}
	for range 2 {
		<-entered
	}
	for i := 2; i < 10; i++ {
		wg.Add(1)
		go call(i)
		waitFor(t, fmt.Sprintf("caller %d to queue", i), func() bool { return l.Stats().Waiting == i-1 })
	}
	if got := l.Stats(); got != (password.HashLimiterStats{Limit: 2, Running: 2, Waiting: 8}) {
		t.Fatalf("stats with 2 running and 8 queued: %+v", got)
	}
	for want := 2; want < 10; want++ {
		release <- struct{}{}
		if got := <-entered; got != want {
			t.Fatalf("caller %d ran before caller %d", got, want)
		}
	}
	close(release)
	wg.Wait()
	if m := most.Load(); m != 2 {
		t.Errorf("%d callers ran at once; want 2", m)
	}
	if got := l.Stats(); got != (password.HashLimiterStats{Limit: 2}) {
		t.Errorf("stats once all are done: %+v", got)
	}
}

// A caller whose context ends while it waits gives up its place, with the
// context's error, and never runs; the callers behind it move up.
func TestHashLimiterWaitEndsWithContext(t *testing.T) {
	l := password.NewHashLimiter(1)
	release := make(chan struct{})
	held := make(chan struct{})
	go func() {
		_ = l.Do(context.Background(), func() { close(held); <-release })
	}()
	<-held
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ran := false
	go func() { done <- l.Do(ctx, func() { ran = true }) }()
	waitFor(t, "the caller to queue", func() bool { return l.Stats().Waiting == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled wait returned %v; want context.Canceled", err)
	}
	if ran {
		t.Fatal("a cancelled caller ran")
	}
	if got := l.Stats(); got.Waiting != 0 || got.Running != 1 {
		t.Fatalf("stats after the cancelled wait: %+v", got)
	}
	close(release)
	if err := l.Do(context.Background(), func() {}); err != nil {
		t.Fatal(err)
	}
	if err := l.Do(ctx, func() { t.Error("ran with an ended context") }); !errors.Is(err, context.Canceled) {
		t.Errorf("an ended context returned %v; want context.Canceled", err)
	}
}

// Under -race: callers that come and give up at random leave no slot
// taken and no place held; every caller that was let through ran.
func TestHashLimiterCancellationsLeakNoSlot(t *testing.T) {
	l := password.NewHashLimiter(3)
	var ran, admitted, most, running atomic.Int32
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if i%2 == 1 {
				go cancel() // races the wait, the grant and the run
			}
			err := l.Do(ctx, func() {
				n := running.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				ran.Add(1)
				runtime.Gosched()
				running.Add(-1)
			})
			if err == nil {
				admitted.Add(1)
			} else if !errors.Is(err, context.Canceled) {
				t.Errorf("Do: %v", err)
			}
		}()
	}
	wg.Wait()
	if ran.Load() != admitted.Load() {
		t.Errorf("%d callers ran, %d were let through", ran.Load(), admitted.Load())
	}
	if ran.Load() < 100 {
		t.Errorf("only %d of the 100 callers that kept their context ran", ran.Load())
	}
	if m := most.Load(); m > 3 {
		t.Errorf("%d callers ran at once; the limit is 3", m)
	}
	if got := l.Stats(); got != (password.HashLimiterStats{Limit: 3}) {
		t.Errorf("stats once all are done: %+v", got)
	}
}

// NewHashLimiter(0), and the limiter of a domain given none, has a slot
// per GOMAXPROCS.
func TestHashLimiterDefaultSize(t *testing.T) {
	if got, want := password.NewHashLimiter(0).Stats().Limit, runtime.GOMAXPROCS(0); got != want {
		t.Errorf("NewHashLimiter(0) has %d slots; want GOMAXPROCS, %d", got, want)
	}
	if got, want := password.NewHashLimiter(-3).Stats().Limit, runtime.GOMAXPROCS(0); got != want {
		t.Errorf("NewHashLimiter(-3) has %d slots; want GOMAXPROCS, %d", got, want)
	}
}

// concurrentHash is Bcrypt (cost 4) that counts the hashes and checks in
// progress and remembers the most at once.
type concurrentHash struct {
	password.Bcrypt
	running, most atomic.Int32
}

func (h *concurrentHash) track() func() {
	n := h.running.Add(1)
	for m := h.most.Load(); n > m && !h.most.CompareAndSwap(m, n); m = h.most.Load() {
	}
	return func() { h.running.Add(-1) }
}

func (h *concurrentHash) Hash(p string) (string, error) {
	defer h.track()()
	return h.Bcrypt.Hash(p)
}

func (h *concurrentHash) Valid(p, hash string) bool {
	defer h.track()()
	return h.Bcrypt.Valid(p, hash)
}

func (h *concurrentHash) SimulateValid() {
	defer h.track()()
	h.Bcrypt.SimulateValid()
}

// limitedAccounts builds the test accounts with hash as the password
// strategy's provider, on db, with parts given to Build.
func limitedAccounts(t *testing.T, db string, hash password.HashProvider, parts ...any) (*resource.Domain, password.Password, *bunlayer.Layer) {
	t.Helper()
	var layer *bunlayer.Layer
	if db == "sqlite-file" {
		layer = testdb.SQLiteFile(t)
	} else {
		layer = testdb.Open(t, db)
	}
	strategy := password.Password{IdentityField: "email", HashProvider: hash, Resettable: &password.Resettable{}}
	d, _, _, p := accountsOn(t, layer, strategy, append([]any{&accountstest.Mailbox{}}, parts...)...)
	return d, p, layer
}

// Every hash and check of a domain's password strategy takes a slot of the
// HashLimiter given to Build: with one slot, registrations and sign-ins
// (right, wrong and unknown) sent at once hash one at a time, and all
// complete.
func TestHashingTakesTheDomainsLimiter(t *testing.T) {
	for _, db := range concurrentDatabases {
		t.Run(db, func(t *testing.T) {
			hash := &concurrentHash{Bcrypt: password.Bcrypt{Cost: 4}}
			d, p, _ := limitedAccounts(t, db, hash, password.NewHashLimiter(1))
			ctx := context.Background()
			var wg sync.WaitGroup
			for i := range 8 {
				email := fmt.Sprintf("user%d@example.com", i)
				wg.Go(func() {
					if _, err := p.Register(ctx, d, password.RegisterInput{Identity: email, Password: pw, PasswordConfirmation: pw}); err != nil {
						t.Errorf("register %s: %v", email, err)
						return
					}
					if _, err := p.SignIn(ctx, d, password.SignInInput{Identity: email, Password: pw}); err != nil {
						t.Errorf("sign in %s: %v", email, err)
					}
					for _, in := range []password.SignInInput{{Identity: email, Password: "wrong-password"}, {Identity: "nobody-" + email, Password: pw}} {
						if _, err := p.SignIn(ctx, d, in); !errors.Is(err, authentication.ErrAuthenticationFailed) {
							t.Errorf("a wrong sign-in as %s: %v", in.Identity, err)
						}
					}
				})
			}
			wg.Wait()
			if m := hash.most.Load(); m != 1 {
				t.Errorf("%d hashes ran at once; the domain's limiter has 1 slot", m)
			}
		})
	}
}

// A domain given no limiter shares the process's, with a slot per
// GOMAXPROCS.
func TestHashingTakesTheProcesssLimiter(t *testing.T) {
	hash := &concurrentHash{Bcrypt: password.Bcrypt{Cost: 4}}
	d, p, _ := limitedAccounts(t, "sqlite-file", hash)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 4 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			if _, err := p.SignIn(ctx, d, password.SignInInput{Identity: fmt.Sprintf("nobody%d@example.com", i), Password: pw}); !errors.Is(err, authentication.ErrAuthenticationFailed) {
				t.Errorf("an unknown identity's sign-in: %v", err)
			}
		})
	}
	wg.Wait()
	if m, limit := hash.most.Load(), runtime.GOMAXPROCS(0); m < 1 || int(m) > limit {
		t.Errorf("%d hashes ran at once; the process's limiter has %d slots", m, limit)
	}
}

// While a register, a sign-in or a password change waits for a hash slot,
// it holds no database connection (nor, so, a transaction): a burst that
// queues for the cores leaves the pool to the requests that need it.
func TestNoConnectionHeldWaitingForAHash(t *testing.T) {
	for _, db := range concurrentDatabases {
		t.Run(db, func(t *testing.T) {
			limiter := password.NewHashLimiter(1)
			d, p, layer := limitedAccounts(t, db, password.Bcrypt{Cost: 4}, limiter)
			ctx := context.Background()
			s, err := p.Register(ctx, d, password.RegisterInput{Identity: "ada@example.com", Password: pw, PasswordConfirmation: pw})
			if err != nil {
				t.Fatal(err)
			}
			ops := []struct {
				name string
				run  func() error
			}{
				{"register", func() error {
					_, err := p.Register(ctx, d, password.RegisterInput{Identity: "bob@example.com", Password: pw, PasswordConfirmation: pw})
					return err
				}},
				{"sign in", func() error {
					_, err := p.SignIn(ctx, d, password.SignInInput{Identity: "ada@example.com", Password: pw})
					return err
				}},
				{"unknown sign in", func() error {
					_, err := p.SignIn(ctx, d, password.SignInInput{Identity: "nobody@example.com", Password: pw})
					if errors.Is(err, authentication.ErrAuthenticationFailed) {
						return nil
					}
					return fmt.Errorf("want ErrAuthenticationFailed: %w", err)
				}},
				{"change", func() error {
					_, err := p.Change(ctx, d, s.Record, password.ChangeInput{CurrentPassword: pw, Password: "changed-password", PasswordConfirmation: "changed-password"})
					return err
				}},
			}
			for _, op := range ops {
				release, held := make(chan struct{}), make(chan struct{})
				go func() { _ = limiter.Do(ctx, func() { close(held); <-release }) }()
				<-held
				done := make(chan error, 1)
				go func() { done <- op.run() }()
				waitFor(t, op.name+" to wait for a hash slot", func() bool { return limiter.Stats().Waiting == 1 })
				if inUse := layer.DB().Stats().InUse; inUse != 0 {
					t.Errorf("%s holds %d database connections while it waits for a hash slot", op.name, inUse)
				}
				close(release)
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("%s: %v", op.name, err)
					}
				case <-time.After(guard):
					t.Fatalf("%s did not end after its hash slot freed", op.name)
				}
			}
		})
	}
}
