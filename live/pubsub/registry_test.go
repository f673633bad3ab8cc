package pubsub

import (
	"context"
	"reflect"
	"testing"

	"github.com/kiln-go/kiln/live"
)

// opened records what a registered OpenFunc was handed.
type opened struct {
	rawURL string
	opts   Options
}

// recorder returns an OpenFunc that records its call in got and opens a
// live.InProcess.
func recorder(got *opened) OpenFunc {
	return func(_ context.Context, rawURL string, opts Options) (live.PubSub, error) {
		*got = opened{rawURL, opts}
		return &live.InProcess{}, nil
	}
}

// panicMessage returns what f panicked with, or fails t.
func panicMessage(t *testing.T, f func()) (msg any) {
	t.Helper()
	defer func() { msg = recover() }()
	f()
	t.Fatal("no panic")
	return nil
}

// TestRegisterMistakes: a scheme registered twice, an empty or bad scheme
// and a nil OpenFunc panic at once, naming the mistake.
func TestRegisterMistakes(t *testing.T) {
	var got opened
	cases := []struct {
		name string
		f    func(r *registry)
		want string
	}{
		{"twice", func(r *registry) {
			r.register("redis", recorder(&got))
			r.register("redis", recorder(&got))
		}, `kiln/pubsub: Register called twice for scheme "redis": two transports claim it`},
		{"empty scheme", func(r *registry) { r.register("", recorder(&got)) },
			`kiln/pubsub: Register: bad scheme "": want a URL scheme without "://", as "redis"`},
		{"scheme with ://", func(r *registry) { r.register("redis://", recorder(&got)) },
			`kiln/pubsub: Register: bad scheme "redis://": want a URL scheme without "://", as "redis"`},
		{"nil OpenFunc", func(r *registry) { r.register("redis", nil) },
			`kiln/pubsub: Register: nil OpenFunc for scheme "redis"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r registry
			if msg := panicMessage(t, func() { tc.f(&r) }); msg != tc.want {
				t.Errorf("panicked with %q, want %q", msg, tc.want)
			}
		})
	}
}

// TestUnregisteredScheme: a URL no imported transport registered fails at
// once, listing what is registered and, for one of kiln's transports, the
// import that links it.
func TestUnregisteredScheme(t *testing.T) {
	var got opened
	var onlyPostgres, none registry
	onlyPostgres.register("postgres", recorder(&got))
	onlyPostgres.register("postgresql", recorder(&got))
	cases := []struct {
		r         *registry
		url, want string
	}{
		{&onlyPostgres, "redis://127.0.0.1:6379/0",
			`kiln/pubsub: no transport registered for scheme "redis" (registered: postgres, postgresql); add import _ "github.com/kiln-go/kiln/live/pubsub/redis" to the app`},
		{&onlyPostgres, "tls://nats.internal:4222",
			`kiln/pubsub: no transport registered for scheme "tls" (registered: postgres, postgresql); add import _ "github.com/kiln-go/kiln/live/pubsub/nats" to the app`},
		{&none, "postgres://127.0.0.1/app",
			`kiln/pubsub: no transport registered for scheme "postgres" (registered: none); add import _ "github.com/kiln-go/kiln/live/pubsub/postgres" to the app`},
		{&onlyPostgres, "mqtt://127.0.0.1:1883",
			`kiln/pubsub: unsupported scheme "mqtt" (registered: postgres, postgresql); a transport registers its schemes when its package is imported, as _ "github.com/kiln-go/kiln/live/pubsub/redis"`},
		{&onlyPostgres, "redis.internal/0",
			`kiln/pubsub: the URL has no scheme; want postgres://…, postgresql://…`},
		{&none, "redis.internal/0",
			`kiln/pubsub: the URL has no scheme; no transport is registered: import one, as _ "github.com/kiln-go/kiln/live/pubsub/redis"`},
	}
	for _, tc := range cases {
		ps, err := tc.r.fromURL(t.Context(), tc.url, nil)
		if err == nil {
			t.Errorf("%s: got %T, no error", tc.url, ps)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("%s:\ngot  %q\nwant %q", tc.url, err, tc.want)
		}
	}
	if got != (opened{}) {
		t.Errorf("a transport was opened: %+v", got)
	}
}

// TestOpenGetsOptions: the registered OpenFunc gets the URL without its
// channel parameter, the channel and the logger (slog.Default() for nil).
func TestOpenGetsOptions(t *testing.T) {
	var got opened
	var r registry
	r.register("redis", recorder(&got))
	ps, err := r.fromURL(t.Context(), "redis://127.0.0.1:6379/0?client_name=node1&channel=shop:live", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ps.(*live.InProcess); !ok {
		t.Errorf("got %T, want what the OpenFunc returned", ps)
	}
	if got.rawURL != "redis://127.0.0.1:6379/0?client_name=node1" || got.opts.Channel != "shop:live" || got.opts.Logger == nil {
		t.Errorf("the OpenFunc got %+v", got)
	}
	if _, err := r.fromURL(t.Context(), "redis://127.0.0.1:6379/0", nil); err != nil {
		t.Fatal(err)
	}
	if got.rawURL != "redis://127.0.0.1:6379/0" || got.opts.Channel != "" {
		t.Errorf("without a channel, the OpenFunc got %+v", got)
	}
	if s := r.schemes(); !reflect.DeepEqual(s, []string{"redis"}) {
		t.Errorf("schemes: %q", s)
	}
}
