package bunlayer_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// guard bounds every wait for an event in these tests: a guard against
// hangs, not a measure of speed.
const guard = time.Minute

// openFile opens a SQLite file in a fresh folder with the URL's query
// added, and creates the table t.
func openFile(t *testing.T, query string) (*bunlayer.Layer, string) {
	t.Helper()
	url := "file:" + t.TempDir() + "/writes.db"
	l, err := bunlayer.Open(context.Background(), url+query)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if _, err := l.DB().ExecContext(context.Background(), "CREATE TABLE t (n INTEGER)"); err != nil {
		t.Fatal(err)
	}
	return l, url
}

// work is a write that keeps the lock about a millisecond.
const work = "INSERT INTO t SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 1000) SELECT x FROM c)"

// The write transactions of one process take SQLite's write lock in turn:
// in a burst that lasts many times the busy timeout (50 ms), none waits it
// out and fails with "database is locked", however long its turn takes to
// come. Polling for the lock, as SQLite's busy handler does, some of them
// (5 to 20 of 256 in runs without the line) lose every poll for longer and
// fail.
func TestSQLiteWritersTakeTurns(t *testing.T) {
	l, _ := openFile(t, "?_pragma=busy_timeout(50)")
	ctx := context.Background()
	const writers, each = 16, 16
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed []string
	)
	for range writers {
		wg.Go(func() {
			for range each {
				if err := write(ctx, l, work); err != nil {
					mu.Lock()
					failed = append(failed, err.Error())
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d of %d write transactions failed, first: %s", len(failed), writers*each, failed[0])
	}
	var n int
	if err := l.DB().NewSelect().Table("t").ColumnExpr("count(*)").Scan(ctx, &n); err != nil {
		t.Fatal(err)
	}
	if n != writers*each {
		t.Errorf("%d rows; want %d", n, writers*each)
	}
}

// write runs query in a transaction of its own and commits it.
func write(ctx context.Context, l *bunlayer.Layer, query string) error {
	tx, err := l.Begin(ctx)
	if err != nil {
		return err
	}
	if err := bunlayer.ExecIn(ctx, tx, query); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// While another process holds the write lock past the busy timeout, the
// transaction whose turn it is fails with SQLite's "database is locked",
// and the ones that waited their turn meanwhile fail with it rather than
// each wait out the busy timeout again. Once the lock is free, writes go
// through.
func TestSQLiteWritersLockedOutTogether(t *testing.T) {
	l, url := openFile(t, "?_pragma=busy_timeout(2000)")
	ctx := context.Background()
	other, err := bunlayer.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	held, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// One writer takes its turn and waits for the other process's lock;
	// four wait their turn behind it.
	errs := make(chan error, 5)
	for range 5 {
		go func() {
			tx, err := l.Begin(ctx)
			if err == nil {
				_ = tx.Rollback()
			}
			errs <- err
		}()
	}
	waitFor(t, "four writers to wait their turn", func() bool { return bunlayer.WritersWaiting(l) == 4 || len(errs) > 0 })
	if len(errs) > 0 {
		t.Fatalf("a writer ended before four lined up (busy timeout 2 s): %v", <-errs)
	}
	var busy, lockedOut int
	for range 5 {
		select {
		case err := <-errs:
			switch {
			case err == nil:
				t.Error("a writer began while another process held the lock")
			case strings.Contains(err.Error(), "SQLITE_BUSY"):
				busy++
			case strings.Contains(err.Error(), "database is locked: another process held the write lock past the busy timeout while this transaction waited its turn"):
				lockedOut++
			default:
				t.Errorf("a writer: %v; want database is locked", err)
			}
		case <-time.After(guard):
			t.Fatal("a writer went on waiting")
		}
	}
	if busy != 1 || lockedOut != 4 {
		t.Errorf("%d writers waited out the busy timeout and %d failed with them; want 1 and 4", busy, lockedOut)
	}
	if err := held.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := write(ctx, l, work); err != nil {
		t.Fatalf("a write once the lock is free: %v", err)
	}
}

// waitFor polls cond until it holds; only for the write queue, which
// announces no event when a writer joins it.
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

// A transaction waiting for its turn stops waiting when its context ends,
// and takes no turn; Commit and Rollback, even twice, pass the turn on.
func TestSQLiteWriteTurns(t *testing.T) {
	l, _ := openFile(t, "")
	ctx := context.Background()
	open, err := l.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waiting, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		tx, err := l.Begin(waiting)
		if err == nil {
			_ = tx.Rollback()
		}
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("a wait whose context ended: %v; want context.Canceled", err)
		}
	case <-time.After(guard):
		t.Fatal("a wait whose context ended went on")
	}
	if err := open.Commit(); err != nil {
		t.Fatal(err)
	}
	_ = open.Rollback() // after Commit: passes no turn on twice
	for _, end := range []func(resource.Tx) error{resource.Tx.Commit, resource.Tx.Rollback} {
		tx := beginWithin(t, ctx, l)
		if err := bunlayer.ExecIn(ctx, tx, work); err != nil {
			t.Fatal(err)
		}
		if err := end(tx); err != nil {
			t.Fatal(err)
		}
	}
	if err := beginWithin(t, ctx, l).Rollback(); err != nil {
		t.Fatal(err)
	}
}

// beginWithin begins a transaction, failing t when its turn does not come
// within the guard: a turn that was never passed on.
func beginWithin(t *testing.T, ctx context.Context, l *bunlayer.Layer) resource.Tx {
	t.Helper()
	type begun struct {
		tx  resource.Tx
		err error
	}
	got := make(chan begun, 1)
	go func() {
		tx, err := l.Begin(ctx)
		got <- begun{tx, err}
	}()
	select {
	case b := <-got:
		if b.err != nil {
			t.Fatalf("begin: %v", b.err)
		}
		return b.tx
	case <-time.After(guard):
		t.Fatal("no turn came: one was never passed on")
		return nil
	}
}

// With _txlock=deferred a transaction takes the lock at its first write,
// so transactions are not lined up: two that only read are open at once.
func TestSQLiteDeferredTransactionsNotLinedUp(t *testing.T) {
	l, _ := openFile(t, "?_txlock=deferred")
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	a, err := l.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Rollback()
	b, err := l.Begin(ctx)
	if err != nil {
		t.Fatalf("a second deferred transaction: %v", err)
	}
	defer b.Rollback()
}
