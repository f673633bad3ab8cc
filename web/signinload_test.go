package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/internal/signinbench"
	"github.com/kiln-go/kiln/web"
	"github.com/kiln-go/kiln/web/ratelimit"
)

// signInLoadClients sign in at once, signInLoadEach times each.
const signInLoadClients, signInLoadEach = 128, 5

// Concurrent sign-ins on a SQLite file all succeed: each issues its token
// in a write transaction, and none waits out the busy timeout behind the
// others and fails with "database is locked" (a 500). The hash is cheap
// (bcrypt cost 4) so that the sign-ins contend for the write lock rather
// than for the cores, and the busy timeout short (1 s): the node's writers
// take the lock in turn, however long their turn takes to come. When they
// polled for it (SQLite's busy handler, before bunlayer lined them up),
// 54 to 110 of these 640 sign-ins failed so.
func TestConcurrentSignInsOnSQLiteFile(t *testing.T) {
	url := "file:" + t.TempDir() + "/accounts.db?_pragma=busy_timeout(1000)"
	limiter, err := ratelimit.New(nil, ratelimit.Limits{Disabled: true})
	if err != nil {
		t.Fatal(err)
	}
	n := livetest.NewNode(t, &livetest.Shared{URL: url}, livetest.NodeOptions{WebOptions: []web.Option{web.WithRateLimiter(limiter)}})
	accounts := signinbench.Accounts("load", signInLoadClients, "password123")
	for _, a := range accounts {
		n.Register(t, a.Identity)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	res, err := signinbench.Run(ctx, signinbench.Options{BaseURL: n.Server.URL, Concurrency: signInLoadClients, PerClient: signInLoadEach, Accounts: accounts})
	if err != nil {
		t.Fatal(err)
	}
	if res.SignIns != signInLoadClients*signInLoadEach {
		t.Errorf("%d of %d concurrent sign-ins succeeded: %s", res.SignIns, signInLoadClients*signInLoadEach, res)
	}
	t.Log(res)
}
