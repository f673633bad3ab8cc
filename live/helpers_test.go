package live_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/kiln-go/kiln/live"
)

// databases are the databases every end-to-end test runs on; postgres
// skips without KILN_TEST_POSTGRES_URL (and fails without it under CI).
var databases = []string{"sqlite", "postgres"}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func userTopic(subject string) string { return "user:" + subject }

// subscribeUser subscribes every socket to its user's topic when it opens.
func subscribeUser() live.Option {
	return live.OnOpen(func(c *live.Conn) { c.Subscribe(userTopic(c.Identity().Subject)) })
}

// quiet drops the endpoint's logs.
func quiet() live.Option { return live.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))) }
