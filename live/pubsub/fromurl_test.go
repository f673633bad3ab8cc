package pubsub_test

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/live/pubsub"
	"github.com/kiln-go/kiln/live/pubsub/nats"
	"github.com/kiln-go/kiln/live/pubsub/postgres"
	"github.com/kiln-go/kiln/live/pubsub/redis"
)

// withScheme replaces the scheme of a URL.
func withScheme(raw, scheme string) string {
	_, rest, _ := strings.Cut(raw, "://")
	return scheme + "://" + rest
}

// TestFromURL: each scheme gives its transport, connected.
func TestFromURL(t *testing.T) {
	cases := []struct {
		name string
		url  func(t *testing.T) string
		want live.PubSub
	}{
		{"empty", func(*testing.T) string { return "" }, (*live.InProcess)(nil)},
		{"postgres", func(t *testing.T) string { return testdb.PostgresURL(t) }, (*postgres.PubSub)(nil)},
		{"postgresql", func(t *testing.T) string { return withScheme(testdb.PostgresURL(t), "postgresql") }, (*postgres.PubSub)(nil)},
		{"redis", func(t *testing.T) string { return testdb.RedisURL(t) }, (*redis.PubSub)(nil)},
		{"nats", func(t *testing.T) string { return testdb.NATSURL(t) }, (*nats.PubSub)(nil)},
		{"nats cluster", func(t *testing.T) string { return testdb.NATSURL(t) + "," + testdb.NATSURL(t) }, (*nats.PubSub)(nil)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.url(t)
			if raw != "" { // a channel of the test's own (TestFromURLChannel checks it is used)
				raw += "?channel=" + testdb.UniqueName("kiln_test_")
				if strings.Count(raw, "?") > 1 {
					raw = strings.Replace(raw, "?channel=", "&channel=", 1)
				}
			}
			ps, err := pubsub.FromURL(t.Context(), raw, nil) // a nil logger is slog.Default()
			if err != nil {
				t.Fatal(err)
			}
			defer ps.Close()
			if reflect.TypeOf(ps) != reflect.TypeOf(tc.want) {
				t.Fatalf("got %T, want %T", ps, tc.want)
			}
			// It works, logging included.
			in := inbox(t, t.Context(), ps)
			msg := live.Message{Kind: live.KindDisconnect, SocketID: "from-url"}
			if err := ps.Publish(t.Context(), msg); err != nil {
				t.Fatal(err)
			}
			for m := next(t, in); !reflect.DeepEqual(m, msg); m = next(t, in) {
				if m.Kind != live.KindSubscribed {
					t.Fatalf("got %+v", m)
				}
			}
		})
	}
}

// TestFromURLErrors: an unknown scheme or a bad URL fails at once, saying
// what to use, without connecting anywhere.
func TestFromURLErrors(t *testing.T) {
	const want = "want nats://…, postgres://…, postgresql://…, redis://…, rediss://…, tls://…"
	const registered = "(registered: nats, postgres, postgresql, redis, rediss, tls)"
	cases := []struct{ url, want string }{
		{"mqtt://127.0.0.1:1883", `kiln/pubsub: unsupported scheme "mqtt" ` + registered},
		{"localhost:4222", `kiln/pubsub: unsupported scheme "localhost"`},
		{"redis.internal/0", "kiln/pubsub: the URL has no scheme; " + want},
		{"amqp://guest@localhost/", `unsupported scheme "amqp"`},
		{"postgres://kiln:s3cret@%zz/db", `kiln/pubsub: bad URL (invalid URL escape "%zz"); ` + want},
		{"redis://127.0.0.1:6379/0?channel=", "kiln/pubsub: the channel parameter of redis://… is empty"},
	}
	for _, tc := range cases {
		ps, err := pubsub.FromURL(t.Context(), tc.url, nil)
		if err == nil {
			ps.Close()
			t.Errorf("%s: no error", tc.url)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %q, want it to contain %q", tc.url, err, tc.want)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the password: %q", tc.url, err)
		}
	}
}

// TestRegisterTwice: a second transport claiming a scheme that an
// imported one registered panics, naming the scheme.
func TestRegisterTwice(t *testing.T) {
	defer func() {
		const want = `kiln/pubsub: Register called twice for scheme "redis": two transports claim it`
		if got := recover(); got != want {
			t.Errorf("panicked with %v, want %q", got, want)
		}
	}()
	pubsub.Register("redis", func(context.Context, string, pubsub.Options) (live.PubSub, error) {
		return &live.InProcess{}, nil
	})
}

// TestSchemes: importing the three transports registers their schemes.
func TestSchemes(t *testing.T) {
	want := []string{"nats", "postgres", "postgresql", "redis", "rediss", "tls"}
	if got := pubsub.Schemes(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestOneTransportLinksOne: an app importing the PostgreSQL transport
// alone links neither go-redis nor nats.go, and live/pubsub by itself no
// client library at all; a Redis URL in that app says what to import.
func TestOneTransportLinksOne(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	deps := func(pkg string) []string {
		out, err := exec.Command(goTool, "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		return strings.Fields(string(out))
	}
	linked := func(deps []string, prefix string) bool {
		return slices.ContainsFunc(deps, func(p string) bool { return strings.HasPrefix(p, prefix) })
	}
	app := deps("./testdata/onlypostgres")
	if !linked(app, "github.com/jackc/pgx/v5") {
		t.Errorf("the app does not link pgx: %q", app)
	}
	for _, lib := range []string{"github.com/redis/go-redis", "github.com/nats-io/"} {
		if linked(app, lib) {
			t.Errorf("an app importing only the PostgreSQL transport links %s", lib)
		}
	}
	bare := deps("github.com/kiln-go/kiln/live/pubsub")
	for _, lib := range []string{"github.com/jackc/pgx", "github.com/redis/go-redis", "github.com/nats-io/"} {
		if linked(bare, lib) {
			t.Errorf("live/pubsub links %s", lib)
		}
	}

	if testing.Short() {
		return
	}
	out, err := exec.Command(goTool, "run", "./testdata/onlypostgres", "redis://127.0.0.1:6379/0").CombinedOutput()
	const want = `kiln/pubsub: no transport registered for scheme "redis" (registered: postgres, postgresql); add import _ "github.com/kiln-go/kiln/live/pubsub/redis" to the app`
	if err == nil || !strings.Contains(string(out), want) {
		t.Errorf("go run: %v, output:\n%s\nwant it to contain %q", err, out, want)
	}
}

// TestFromURLChannel: a channel parameter picks the channel (the subject,
// for NATS) and is not handed to the driver, which would refuse it
// (go-redis) or send it to the server as a setting (pgx).
func TestFromURLChannel(t *testing.T) {
	cases := []struct {
		name string
		url  func(t *testing.T) string
		// direct opens the transport on channel without FromURL.
		direct func(t *testing.T, channel string) live.PubSub
	}{
		{"postgres", func(t *testing.T) string { return testdb.PostgresURL(t) }, func(t *testing.T, ch string) live.PubSub {
			return openPostgres(t, ch, testdb.UniqueName("kiln_a_"), quiet())
		}},
		{"redis with options", func(t *testing.T) string { return withParam(t, testdb.RedisURL(t), "client_name", "kiln_test") }, func(t *testing.T, ch string) live.PubSub {
			return openRedis(t, ch, testdb.UniqueName("kiln_a_"), quiet())
		}},
		{"nats cluster", func(t *testing.T) string { return testdb.NATSURL(t) + "," + testdb.NATSURL(t) }, func(t *testing.T, ch string) live.PubSub {
			return openNATS(t, ch, testdb.UniqueName("kiln_a_"), quiet())
		}},
		{"redis", func(t *testing.T) string { return testdb.RedisURL(t) }, func(t *testing.T, ch string) live.PubSub {
			return openRedis(t, ch, testdb.UniqueName("kiln_a_"), quiet())
		}},
		{"nats", func(t *testing.T) string { return testdb.NATSURL(t) }, func(t *testing.T, ch string) live.PubSub {
			return openNATS(t, ch, testdb.UniqueName("kiln_a_"), quiet())
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			channel := testdb.UniqueName("kiln_test_")
			raw := tc.url(t)
			if strings.Contains(raw, "?") {
				raw += "&channel=" + url.QueryEscape(channel)
			} else {
				raw += "?channel=" + url.QueryEscape(channel)
			}
			ps, err := pubsub.FromURL(t.Context(), raw, quiet())
			if err != nil {
				t.Fatal(err)
			}
			defer ps.Close()
			in := inbox(t, t.Context(), tc.direct(t, channel))
			for i := range 2 {
				msg := live.Message{Kind: live.KindDisconnect, SocketID: fmt.Sprint("on-channel-", i)}
				if err := ps.Publish(t.Context(), msg); err != nil {
					t.Fatal(err)
				}
				m := next(t, in)
				for m.Kind == live.KindSubscribed {
					m = next(t, in)
				}
				if !reflect.DeepEqual(m, msg) {
					t.Fatalf("got %+v, want %+v", m, msg)
				}
			}
		})
	}
}
