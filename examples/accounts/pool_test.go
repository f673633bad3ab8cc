package main

// On PostgreSQL the example opens at most database_max_conns connections.
// At the floor, 2, every flow of the contract still completes (none holds
// a connection while it waits for another), and a burst of socket dials,
// each of which loads its user from the database, waits for the two
// connections instead of opening more.

import (
	"database/sql"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"

	"github.com/kiln-go/kiln/dsl"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource/bunlayer"
	"github.com/kiln-go/kiln/revocation"
)

// poolBurst is how many sockets dial at once.
const poolBurst = 48

func TestContractOnTheSmallestPool(t *testing.T) {
	name := testdb.UniqueName("kiln_accounts_")
	u, err := url.Parse(testdb.PostgresSchemaURL(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", name) // the app's connections, in pg_stat_activity
	u.RawQuery = q.Encode()
	cfg := contractConfig()
	// The burst is of one session's sockets.
	cfg.DSL = dsl.FromEnv("KILN", []string{"KILN_LIVE__SWEEP_INTERVAL=1m", "KILN_LIVE__MAX_SOCKETS_PER_SESSION=" + strconv.Itoa(poolBurst)})
	cfg.DatabaseURL = u.String()
	cfg.DatabaseMaxConns = bunlayer.MinMaxConns
	a, _ := startApp(t, cfg)
	if got := a.db.Stats().MaxOpenConnections; got != bunlayer.MinMaxConns {
		t.Fatalf("database_max_conns %d: the pool opens at most %d connections", bunlayer.MinMaxConns, got)
	}

	t.Run("contract", a.testContract)
	t.Run("socket burst", func(t *testing.T) { a.testSocketBurst(t, name) })
}

// testSocketBurst dials poolBurst sockets with one session at once: every
// one opens, while the server never has more of the app's connections than
// its pool's bound; the session's sign-out closes them all.
func (a *contractApp) testSocketBurst(t *testing.T, name string) {
	email := newEmail("burst")
	a.register(t, email)
	c := a.signIn(t, email, contractPassword)
	cookie := http.Header{"Cookie": {"kiln_session=" + c.session()}}

	admin, err := sql.Open("pgx", testdb.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	// The server's count of the app's connections, read over and over
	// until the burst is over.
	stop, most := make(chan struct{}), make(chan int, 1)
	go func() {
		high := 0
		defer func() { most <- high }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			var n int
			if err := admin.QueryRow("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", name).Scan(&n); err != nil {
				t.Errorf("pg_stat_activity: %v", err)
				return
			}
			high = max(high, n)
		}
	}()

	var wg sync.WaitGroup
	closes := make(chan closeEvent, poolBurst)
	failed := make(chan string, poolBurst)
	for range poolBurst {
		wg.Go(func() {
			conn, hello, status, err := a.dial(t, cookie)
			if err != nil || hello.Event != "hello" {
				failed <- http.StatusText(status) + ": " + errString(err) + ", first frame " + hello.Event
				return
			}
			go func() { closes <- readUntilClose(conn) }()
		})
	}
	wg.Wait()
	close(stop)
	high := <-most
	close(failed)
	n := 0
	for f := range failed {
		if n++; n <= 3 {
			t.Errorf("a dial of the burst: %s", f)
		}
	}
	if n > 0 {
		t.Fatalf("%d of %d dials failed", n, poolBurst)
	}
	if high > bunlayer.MinMaxConns {
		t.Errorf("the server had %d of the app's connections during the burst; want at most %d", high, bunlayer.MinMaxConns)
	}
	t.Logf("%d sockets opened; at most %d of the app's connections seen; %d waits for a connection so far",
		poolBurst, high, a.db.Stats().WaitCount)

	// /metrics shows the pool: its bound, and its waits.
	m := scrape(t, t.Context(), a.url)
	if got := m[`go_sql_max_open_connections{db_name="accounts"}`]; got != bunlayer.MinMaxConns {
		t.Errorf("go_sql_max_open_connections = %v, want %d", got, bunlayer.MinMaxConns)
	}
	if got, ok := m[`go_sql_wait_count_total{db_name="accounts"}`]; !ok || got > float64(a.db.Stats().WaitCount) {
		t.Errorf("go_sql_wait_count_total = %v (%v), want at most the pool's %d", got, ok, a.db.Stats().WaitCount)
	}

	wantRedirect(t, "sign out", c.post("/sign-out", nil), "/sign-in")
	for range poolBurst {
		ev := <-closes
		if ev.err != nil || ev.code != live.CloseSignedOut || ev.reason != live.ReasonText(revocation.SignedOut) {
			t.Fatalf("a socket of the burst closed with %d %q, %v; want %d %q", ev.code, ev.reason, ev.err, live.CloseSignedOut, live.ReasonText(revocation.SignedOut))
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
