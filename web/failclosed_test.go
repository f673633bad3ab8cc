package web_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// lockedNode is a node whose database gives up on a held lock quickly, and
// a way to hold the token table's write lock from another connection.
type lockedNode struct {
	*livetest.Node
	url string
	db  string
}

// newLockedNode starts a node on a fresh database of kind db ("sqlite": a
// file, "postgres": a schema) whose writes give up waiting for a lock after
// SQLite's 10 s busy timeout (bunlayer's) or PostgreSQL's lock_timeout, set
// to 200 ms.
func newLockedNode(t *testing.T, db string) *lockedNode {
	t.Helper()
	var url, appURL string
	switch db {
	case "sqlite":
		url = "file:" + t.TempDir() + "/accounts.db"
		appURL = url
	case "postgres":
		url = testdb.PostgresSchemaURL(t)
		appURL = url + "&lock_timeout=200"
	}
	n := livetest.NewNode(t, &livetest.Shared{URL: appURL}, livetest.NodeOptions{EndpointOptions: []live.Option{subscribeUser()}})
	return &lockedNode{Node: n, url: url, db: db}
}

// holdWriteLock takes the token table's write lock in a transaction of
// another connection, as a long write would, and returns its release.
// Reads still go through: the node still authenticates.
func (n *lockedNode) holdWriteLock(t *testing.T, ctx context.Context) (release func()) {
	t.Helper()
	other, err := bunlayer.Open(ctx, n.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	tx, err := other.DB().BeginTx(ctx, &sql.TxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stmt := "UPDATE tokens SET jti = jti WHERE 1 = 0" // a write: SQLite's write lock
	if n.db == "postgres" {
		stmt = "LOCK TABLE tokens IN EXCLUSIVE MODE" // blocks writes, not reads
	}
	if _, err := tx.ExecContext(ctx, stmt); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
	}
}

// When the revocation fails (the database is locked), sign-out and log out
// everywhere say so with 503 and leave the session and its cookie alone:
// the token still authenticates and its socket stays open. Once the lock is
// gone, the same request signs out. Each case is a user of its own; their
// first requests run together, since on SQLite each waits out the busy
// timeout.
func TestSignOutFailsClosed(t *testing.T) {
	type signOutCase struct {
		path, reason, via string
		auth              http.Header
		socket            *livetest.Client
		topic             string
		status            int
		body              string
		cookie            *http.Cookie
		retryAfter        string
	}
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			n := newLockedNode(t, db)
			ctx := testCtx(t)
			var cases []*signOutCase
			for path, reason := range map[string]string{"/sign-out": "signed out", "/auth/user/log_out_everywhere": "signed out everywhere"} {
				for _, via := range []string{"cookie-form", "cookie-json", "bearer-json"} {
					c := &signOutCase{path: path, reason: reason, via: via}
					email := fmt.Sprintf("user%d@example.com", len(cases))
					c.topic = userTopic(n.Register(t, email).Claims.Subject)
					if via == "bearer-json" {
						c.auth = livetest.Bearer(n.SignIn(t, email).Token)
					} else {
						c.auth = livetest.CookieHeader(n.SignInCookie(t, email))
					}
					c.socket = n.MustDial(t, ctx, c.auth)
					cases = append(cases, c)
				}
			}
			post := func(c *signOutCase) {
				hd := c.auth.Clone()
				if strings.HasSuffix(c.via, "json") {
					hd.Set("Accept", "application/json")
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.Server.URL+c.path, nil)
				if err != nil {
					panic(err)
				}
				req.Header = hd
				resp, err := n.HTTPClient().Do(req)
				if err != nil {
					c.status, c.body = 0, err.Error()
					return
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				c.status, c.body, c.cookie, c.retryAfter = resp.StatusCode, string(b), n.SessionCookie(resp), resp.Header.Get("Retry-After")
			}

			release := n.holdWriteLock(t, ctx)
			var wg sync.WaitGroup
			for _, c := range cases {
				wg.Go(func() { post(c) })
			}
			wg.Wait()
			for _, c := range cases {
				if c.status != http.StatusServiceUnavailable || c.retryAfter == "" {
					t.Fatalf("%s %s with the database locked: %d (Retry-After %q): %s", c.via, c.path, c.status, c.retryAfter, c.body)
				}
				if strings.HasSuffix(c.via, "json") && !strings.Contains(c.body, `"error":"the session could not be signed out and is still signed in; try again"`) {
					t.Fatalf("%s %s: JSON answer %s", c.via, c.path, c.body)
				}
				if !strings.HasSuffix(c.via, "json") && !strings.Contains(c.body, "still signed in") {
					t.Fatalf("%s %s: page %s", c.via, c.path, c.body)
				}
				if c.cookie != nil {
					t.Fatalf("%s %s: a failed sign-out touched the session cookie: %v", c.via, c.path, c.cookie)
				}
				expectOpen(t, ctx, n.Harness, c.socket, c.topic)
				n.MustDial(t, ctx, c.auth) // the token still authenticates
			}

			release()
			for _, c := range cases {
				post(c)
				if c.status != http.StatusSeeOther && c.status != http.StatusOK {
					t.Fatalf("%s %s: the retry answered %d: %s", c.via, c.path, c.status, c.body)
				}
				if c.via != "bearer-json" && (c.cookie == nil || c.cookie.MaxAge >= 0) {
					t.Fatalf("%s %s: the retry did not clear the session cookie: %v", c.via, c.path, c.cookie)
				}
				expectClose(t, ctx, c.socket, c.reason)
				expectRefused(t, ctx, n.Harness, c.auth, http.StatusUnauthorized)
			}
		})
	}
}

// breakReads makes the token table unreadable from the node: on SQLite it
// is renamed away, on PostgreSQL locked against reads (the node gives up
// after its lock_timeout). It returns the repair.
func (n *lockedNode) breakReads(t *testing.T, ctx context.Context) (repair func()) {
	t.Helper()
	other, err := bunlayer.Open(ctx, n.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	if n.db == "sqlite" {
		if _, err := other.DB().ExecContext(ctx, "ALTER TABLE tokens RENAME TO tokens_away"); err != nil {
			t.Fatal(err)
		}
		return func() {
			if _, err := other.DB().ExecContext(ctx, "ALTER TABLE tokens_away RENAME TO tokens"); err != nil {
				t.Fatal(err)
			}
		}
	}
	tx, err := other.DB().BeginTx(ctx, &sql.TxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "LOCK TABLE tokens IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
	}
}

// When the token store cannot even be read, a request with a session
// cookie goes on as signed out but keeps its cookie, and sign-out answers
// 503 without touching it: once the store is back, the session is there
// and signs out.
func TestStoreOutageKeepsTheSessionCookie(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			n := newLockedNode(t, db)
			ctx := testCtx(t)
			n.Register(t, "ada@example.com")
			cookie := livetest.CookieHeader(n.SignInCookie(t, "ada@example.com"))
			socket := n.MustDial(t, ctx, cookie)

			repair := n.breakReads(t, ctx)
			for _, path := range []string{"/sign-out", "/auth/user/password/change"} {
				resp, body := n.PostForm(t, path, nil, cookie)
				if path == "/sign-out" && resp.StatusCode != http.StatusServiceUnavailable {
					t.Fatalf("sign-out with the store down: %d %s", resp.StatusCode, body)
				}
				if c := n.SessionCookie(resp); c != nil {
					t.Fatalf("%s with the store down touched the session cookie: %v", path, c)
				}
			}
			repair()

			n.MustDial(t, ctx, cookie)
			resp, body := n.PostForm(t, "/sign-out", nil, cookie)
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("sign-out: %d %s", resp.StatusCode, body)
			}
			expectClose(t, ctx, socket, "signed out")
		})
	}
}
