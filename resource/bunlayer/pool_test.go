package bunlayer_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// namedURL is a fresh PostgreSQL schema's URL with an application_name of
// the test's own, by which pg_stat_activity tells its connections apart.
func namedURL(t *testing.T) (rawURL, name string) {
	t.Helper()
	name = testdb.UniqueName("kiln_pool_")
	u, err := url.Parse(testdb.PostgresSchemaURL(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", name)
	u.RawQuery = q.Encode()
	return u.String(), name
}

// serverConns counts the server's connections of the application name,
// as the server sees them, through a connection of its own.
func serverConns(t *testing.T, name string) int {
	t.Helper()
	admin, err := sql.Open("pgx", testdb.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var n int
	if err := admin.QueryRowContext(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Open bounds a PostgreSQL pool by default: twice GOMAXPROCS, from 4 to
// 16, as GOMAXPROCS is when Open is called.
func TestPostgresPoolBoundedByDefault(t *testing.T) {
	u := testdb.PostgresSchemaURL(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, c := range []struct{ procs, want int }{{1, 4}, {2, 4}, {3, 6}, {8, 16}, {64, 16}} {
		runtime.GOMAXPROCS(c.procs)
		if got := bunlayer.DefaultMaxConns(); got != c.want {
			t.Errorf("GOMAXPROCS %d: DefaultMaxConns() = %d, want %d", c.procs, got, c.want)
		}
		l, err := bunlayer.Open(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.DB().Stats().MaxOpenConnections; got != c.want {
			t.Errorf("GOMAXPROCS %d: the pool opens at most %d connections, want %d", c.procs, got, c.want)
		}
		l.Close()
	}
}

// A burst of transactions, eight times the pool's bound, all succeed: the
// ones that find every connection in use wait for one, and the server
// never sees more than the bound. The pool keeps its connections open
// after the burst.
func TestPostgresPoolBurstWaitsForConnections(t *testing.T) {
	u, name := namedURL(t)
	const conns, burst = 3, 24
	l, err := bunlayer.Open(t.Context(), u, bunlayer.WithMaxConns(conns))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := l.DB().Stats().MaxOpenConnections; got != conns {
		t.Fatalf("WithMaxConns(%d): the pool opens at most %d connections", conns, got)
	}

	// The first transactions to get a connection hold it until the pool
	// is full and every other one waits for a connection.
	ctx := t.Context()
	var (
		mu           sync.Mutex
		inside, most int // transactions between their first statement and their commit
		full         = make(chan struct{})
		release      = make(chan struct{})
		errs         = make(chan error, burst)
		wg           sync.WaitGroup
	)
	for range burst {
		wg.Go(func() {
			tx, err := l.Begin(ctx)
			if err != nil {
				errs <- err
				return
			}
			if err := bunlayer.ExecIn(ctx, tx, "SELECT 1"); err != nil {
				_ = tx.Rollback()
				errs <- err
				return
			}
			mu.Lock()
			inside++
			if inside > most {
				most = inside
				if most == conns {
					close(full)
				}
			}
			mu.Unlock()
			<-release
			mu.Lock()
			inside--
			mu.Unlock()
			errs <- tx.Commit()
		})
	}
	select {
	case <-full:
	case err := <-errs:
		t.Fatalf("a transaction ended before the pool was full: %v", err)
	}
	waitFor(t, "the rest of the burst to wait for a connection", func() bool { return l.DB().Stats().WaitCount == burst-conns })
	if s := l.DB().Stats(); s.OpenConnections != conns || s.InUse != conns {
		t.Errorf("with the burst waiting: %d connections open, %d in use; want %d", s.OpenConnections, s.InUse, conns)
	}
	if n := serverConns(t, name); n != conns {
		t.Errorf("with the burst waiting, the server has %d connections of the pool; want %d", n, conns)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a transaction of the burst: %v", err)
		}
	}
	if m := most; m != conns {
		t.Errorf("%d transactions ran at once; want %d", m, conns)
	}
	if n := serverConns(t, name); n != conns {
		t.Errorf("after the burst, the server has %d connections of the pool; want the %d kept open", n, conns)
	}
}

// WithMaxConns refuses a bound under MinMaxConns, whatever the database.
func TestWithMaxConnsRefusesTooFew(t *testing.T) {
	for _, n := range []int{1, -1} {
		_, err := bunlayer.Open(t.Context(), "sqlite::memory:", bunlayer.WithMaxConns(n))
		want := "want at least 2 connections (ApplyMigrations holds its lock on one while it migrates on another), or 0 for the default"
		if err == nil || !strings.HasPrefix(err.Error(), "kiln/bunlayer: WithMaxConns(") || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("WithMaxConns(%d): %v", n, err)
		}
	}
}

// MinMaxConns is the floor because ApplyMigrations holds its lock on one
// connection while it migrates on another: with MinMaxConns connections it
// migrates; on a pool of one it waits for a second connection while it
// holds the only one, until its context ends.
func TestPostgresPoolFloorMigrates(t *testing.T) {
	u := testdb.PostgresSchemaURL(t)
	dir := t.TempDir()
	generate(t, dir, open(t, "sqlite::memory:", v2Refs()...))
	fsys := os.DirFS(dir)

	l, err := bunlayer.Open(t.Context(), u, bunlayer.WithMaxConns(bunlayer.MinMaxConns))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if applied, err := l.ApplyMigrations(t.Context(), fsys); err != nil || len(applied) != 1 {
		t.Fatalf("with %d connections: applied %q, %v", bunlayer.MinMaxConns, applied, err)
	}

	one, err := bunlayer.Open(t.Context(), testdb.PostgresSchemaURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	one.DB().SetMaxOpenConns(1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := one.ApplyMigrations(ctx, fsys)
		done <- err
	}()
	waitFor(t, "ApplyMigrations to wait for a second connection", func() bool {
		s := one.DB().Stats()
		return s.WaitCount > 0 && s.InUse == 1 || len(done) > 0
	})
	if len(done) > 0 {
		t.Fatalf("on a pool of one, ApplyMigrations returned without waiting: %v", <-done)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("on a pool of one, ApplyMigrations ended with %v; want it waiting until its context ends", err)
	}
}
