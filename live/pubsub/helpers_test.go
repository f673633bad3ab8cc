package pubsub_test

import (
	"bufio"
	"context"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	natsgo "github.com/nats-io/nats.go"
	goredis "github.com/redis/go-redis/v9"

	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/live/pubsub/nats"
	"github.com/kiln-go/kiln/live/pubsub/postgres"
	"github.com/kiln-go/kiln/live/pubsub/redis"
)

// transport is one way for nodes to talk, with what the tests need to
// break it and to write on it behind its back.
type transport struct {
	name string
	// open opens a node's own connection on channel; node names the
	// connection on the server (application_name, client name) so that
	// kill finds it. It skips t when the server is not configured.
	open func(t testing.TB, channel, node string, logger *slog.Logger) live.PubSub
	// kill breaks the subscription connection of node (ps is node's
	// transport) from the server side; nil when the transport has none.
	kill func(t testing.TB, channel, node string, ps live.PubSub)
	// raw publishes payload on channel as is, bypassing the codec.
	raw func(t testing.TB, channel string, payload []byte)
}

// transports are the cross-node transports, each against its real server.
func transports() []transport {
	return []transport{
		{name: "postgres", open: openPostgres, kill: killPostgres, raw: rawPostgres},
		{name: "redis", open: openRedis, kill: killRedis, raw: rawRedis},
		{name: "nats", open: openNATS, kill: killNATS, raw: rawNATS},
	}
}

// inProcess is the baseline: every node of the test shares one InProcess
// per channel, as the endpoints of one process would.
var inProcess = transport{
	name: "inprocess",
	open: func(t testing.TB, channel, _ string, _ *slog.Logger) live.PubSub {
		inProcessMu.Lock()
		defer inProcessMu.Unlock()
		ps := inProcessBus[channel]
		if ps == nil {
			ps = &live.InProcess{}
			inProcessBus[channel] = ps
			t.Cleanup(func() {
				inProcessMu.Lock()
				delete(inProcessBus, channel)
				inProcessMu.Unlock()
			})
		}
		return ps
	},
}

var (
	inProcessMu  sync.Mutex
	inProcessBus = map[string]*live.InProcess{}
)

// withParam adds a query parameter to a URL.
func withParam(t testing.TB, raw, key, value string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func openPostgres(t testing.TB, channel, node string, logger *slog.Logger) live.PubSub {
	t.Helper()
	u := withParam(t, testdb.PostgresURL(t), "application_name", node)
	ps, err := postgres.New(t.Context(), u, postgres.WithChannel(channel), postgres.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ps.Close(); err != nil {
			t.Error(err)
		}
	})
	return ps
}

// killPostgres terminates the backend that LISTENs for node.
func killPostgres(t testing.TB, channel, node string, _ live.PubSub) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testdb.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var killed int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = $1 AND query = $2) AS k`, node, "LISTEN "+pgx.Identifier{channel}.Sanitize()).Scan(&killed)
	if err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d LISTEN backends of %s, want 1", killed, node)
	}
}

func rawPostgres(t testing.TB, channel string, payload []byte) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testdb.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_notify($1, $2)", channel, string(payload)); err != nil {
		t.Fatal(err)
	}
}

func openRedis(t testing.TB, channel, node string, logger *slog.Logger) live.PubSub {
	t.Helper()
	u := withParam(t, testdb.RedisURL(t), "client_name", node)
	ps, err := redis.New(t.Context(), u, redis.WithChannel(channel), redis.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ps.Close(); err != nil {
			t.Error(err)
		}
	})
	return ps
}

// redisAdmin is a client of the test server for the tests' own commands.
func redisAdmin(t testing.TB) *goredis.Client {
	t.Helper()
	o, err := goredis.ParseURL(testdb.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// killRedis kills node's pub/sub connection by its id (CLIENT KILL TYPE
// pubsub would kill every test's).
func killRedis(t testing.TB, _ string, node string, _ live.PubSub) {
	t.Helper()
	ctx := context.Background()
	admin := redisAdmin(t)
	list, err := admin.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	sc := bufio.NewScanner(strings.NewReader(list))
	for sc.Scan() {
		fields := map[string]string{}
		for _, f := range strings.Fields(sc.Text()) {
			if k, v, ok := strings.Cut(f, "="); ok {
				fields[k] = v
			}
		}
		if fields["name"] == node && fields["sub"] != "0" && fields["sub"] != "" {
			ids = append(ids, fields["id"])
		}
	}
	if len(ids) != 1 {
		t.Fatalf("found %d pub/sub connections of %s, want 1:\n%s", len(ids), node, list)
	}
	if err := admin.Do(ctx, "CLIENT", "KILL", "ID", ids[0]).Err(); err != nil {
		t.Fatal(err)
	}
}

func rawRedis(t testing.TB, channel string, payload []byte) {
	t.Helper()
	if err := redisAdmin(t).Publish(context.Background(), channel, payload).Err(); err != nil {
		t.Fatal(err)
	}
}

func openNATS(t testing.TB, channel, node string, logger *slog.Logger) live.PubSub {
	t.Helper()
	ps, err := nats.New(t.Context(), testdb.NATSURL(t), nats.WithSubject(channel), nats.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ps.Close(); err != nil {
			t.Error(err)
		}
	})
	return ps
}

// killNATS drops node's connection and makes it reconnect (the shared
// server is not restarted).
func killNATS(t testing.TB, _, _ string, ps live.PubSub) {
	t.Helper()
	if err := ps.(*nats.PubSub).Conn().ForceReconnect(); err != nil {
		t.Fatal(err)
	}
}

func rawNATS(t testing.TB, channel string, payload []byte) {
	t.Helper()
	nc, err := natsgo.Connect(testdb.NATSURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish(channel, payload); err != nil {
		t.Fatal(err)
	}
	// Flushed: the server has routed it before anything published later.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// observed wraps a transport and hands every message its subscriber gets
// to a channel too, so that tests can wait for a resubscription.
type observed struct {
	live.PubSub
	msgs chan live.Message
	// held, when set, holds the subscriber on each revoking message
	// until the channel is closed.
	held atomic.Pointer[chan struct{}]
	// onPublish, when set, is told of each message published.
	onPublish atomic.Pointer[func(live.Message)]
}

func (o *observed) Publish(ctx context.Context, m live.Message) error {
	if f := o.onPublish.Load(); f != nil {
		(*f)(m)
	}
	return o.PubSub.Publish(ctx, m)
}

func observe(ps live.PubSub) *observed {
	return &observed{PubSub: ps, msgs: make(chan live.Message, 1024)}
}

// Prompt is the transport's: an observed transport is as prompt as it is.
func (o *observed) Prompt() bool {
	p, ok := o.PubSub.(live.Prompter)
	return ok && p.Prompt()
}

func (o *observed) Subscribe(ctx context.Context, fn func(live.Message)) error {
	return o.PubSub.Subscribe(ctx, func(m live.Message) {
		if held := o.held.Load(); held != nil && m.Kind == live.KindRevoking {
			<-*held
		}
		fn(m)
		select {
		case o.msgs <- m:
		default:
		}
	})
}

// wait returns the next message of kind, failing t when none comes before
// ctx ends.
func (o *observed) wait(t testing.TB, ctx context.Context, kind string) live.Message {
	t.Helper()
	for {
		select {
		case m := <-o.msgs:
			if m.Kind == kind {
				return m
			}
		case <-ctx.Done():
			t.Fatalf("no %s message: %v", kind, ctx.Err())
			return live.Message{}
		}
	}
}

// logRecorder is a slog.Handler that keeps the messages logged, so that
// tests can count them.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	r.mu.Lock()
	r.msgs = append(r.msgs, b.String())
	r.mu.Unlock()
	return nil
}

// count counts the messages that contain s.
func (r *logRecorder) count(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if strings.Contains(m, s) {
			n++
		}
	}
	return n
}

func (r *logRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.msgs, "\n")
}

// waitFor polls cond until it holds, failing t after timeout; only for
// states no event announces (a server dropping a subscription).
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// expectClose waits for the server to close c and checks the code and
// that the reason is one of reasons.
func expectClose(t testing.TB, c *livetest.Client, timeout time.Duration, code int, reasons ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	gotCode, reason, err := c.WaitClose(ctx)
	if err != nil {
		t.Fatalf("socket %s not closed: %v", c.SocketID, err)
	}
	if gotCode != code {
		t.Fatalf("socket %s closed with %d %q, want %d", c.SocketID, gotCode, reason, code)
	}
	for _, r := range reasons {
		if r == reason {
			return reason
		}
	}
	t.Fatalf("socket %s closed with reason %q, want one of %q", c.SocketID, reason, reasons)
	return ""
}

// expectOpen checks that c is still open: the endpoint answers a frame of
// an unknown event with an error frame, which a closed socket cannot.
func expectOpen(t testing.TB, c *livetest.Client) {
	t.Helper()
	if err := c.Send("ping", nil); err != nil {
		t.Fatalf("socket %s: send: %v", c.SocketID, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.WaitEvent(ctx, "error"); err != nil {
		t.Fatalf("socket %s is not open: %v", c.SocketID, err)
	}
}
