// Package pubsub chooses a live.PubSub transport by URL:
//
//	""                 live.InProcess (a single node)
//	postgres://…       PostgreSQL LISTEN/NOTIFY (live/pubsub/postgres)
//	redis://…          Redis pub/sub (live/pubsub/redis)
//	nats://…           NATS (live/pubsub/nats)
//
// A transport is linked into the app only when the app imports its
// package, which registers its URL schemes here, as a database/sql driver
// registers its name with sql.Register:
//
//	import _ "github.com/kiln-go/kiln/live/pubsub/redis"
//
// This is the one registry kiln keeps, for the reason database/sql keeps
// one: the URL is configuration, read at run time, while what can serve
// it is decided at build time by the imports. Were FromURL to name every
// transport, every app would link every client library (pgx, go-redis,
// nats.go) to use one of them.
//
// A "channel" query parameter names the channel (the subject, for NATS)
// instead of the transport's default, so that several apps can share one
// server: redis://127.0.0.1:6379/0?channel=shop:live. It is removed from
// the URL before the URL is handed to the transport.
//
// Every transport here (and live/pubsub/sqlite) is a prometheus.Collector
// of its metrics, kiln_pubsub_* with a transport label: register what
// FromURL returned when it is one. live.InProcess is not: it has no
// connection to lose.
//
//	if c, ok := ps.(prometheus.Collector); ok {
//		err = registry.Register(c)
//	}
package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/kiln-go/kiln/live"
)

// Options is what FromURL hands a transport besides the URL.
type Options struct {
	// Logger is never nil: FromURL's logger, or slog.Default().
	Logger *slog.Logger
	// Channel is the URL's channel parameter (the subject, for NATS);
	// empty for the transport's default.
	Channel string
}

// OpenFunc opens a transport on rawURL, which has no channel parameter.
type OpenFunc func(ctx context.Context, rawURL string, opts Options) (live.PubSub, error)

// Register makes FromURL open URLs of scheme with open. A transport's
// package calls it from init for each of its schemes. It panics when
// scheme is empty, open is nil or scheme is registered already, as
// sql.Register does: two transports claiming one scheme is a build
// mistake, seen at the program's start.
func Register(scheme string, open OpenFunc) { transports.register(scheme, open) }

// Schemes returns the registered schemes, sorted.
func Schemes() []string { return transports.schemes() }

// kilnTransports are the packages of kiln's own transports, by scheme:
// the import a URL of one needs when none is registered for it.
var kilnTransports = map[string]string{
	"postgres":   "github.com/kiln-go/kiln/live/pubsub/postgres",
	"postgresql": "github.com/kiln-go/kiln/live/pubsub/postgres",
	"redis":      "github.com/kiln-go/kiln/live/pubsub/redis",
	"rediss":     "github.com/kiln-go/kiln/live/pubsub/redis",
	"nats":       "github.com/kiln-go/kiln/live/pubsub/nats",
	"tls":        "github.com/kiln-go/kiln/live/pubsub/nats",
}

// transports is the registry Register fills and FromURL reads.
var transports registry

// registry maps URL schemes to transports.
type registry struct {
	mu    sync.RWMutex
	opens map[string]OpenFunc
}

func (r *registry) register(scheme string, open OpenFunc) {
	if scheme == "" || strings.Contains(scheme, ":") {
		panic(fmt.Sprintf("kiln/pubsub: Register: bad scheme %q: want a URL scheme without \"://\", as \"redis\"", scheme))
	}
	if open == nil {
		panic(fmt.Sprintf("kiln/pubsub: Register: nil OpenFunc for scheme %q", scheme))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.opens[scheme]; dup {
		panic(fmt.Sprintf("kiln/pubsub: Register called twice for scheme %q: two transports claim it", scheme))
	}
	if r.opens == nil {
		r.opens = map[string]OpenFunc{}
	}
	r.opens[scheme] = open
}

func (r *registry) lookup(scheme string) OpenFunc {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.opens[scheme]
}

func (r *registry) schemes() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := make([]string, 0, len(r.opens))
	for scheme := range r.opens {
		s = append(s, scheme)
	}
	slices.Sort(s)
	return s
}

// want says which URLs the registry opens, for an error message.
func (r *registry) want() string {
	s := r.schemes()
	if len(s) == 0 {
		return "no transport is registered: import one, as _ \"github.com/kiln-go/kiln/live/pubsub/redis\""
	}
	return "want " + strings.Join(s, "://…, ") + "://…"
}

// unknown is the error for a URL of scheme, which no transport registered.
func (r *registry) unknown(scheme string) error {
	registered := "none"
	if s := r.schemes(); len(s) > 0 {
		registered = strings.Join(s, ", ")
	}
	if pkg, ok := kilnTransports[scheme]; ok {
		return fmt.Errorf("kiln/pubsub: no transport registered for scheme %q (registered: %s); add import _ %q to the app", scheme, registered, pkg)
	}
	return fmt.Errorf("kiln/pubsub: unsupported scheme %q (registered: %s); a transport registers its schemes when its package is imported, as _ \"github.com/kiln-go/kiln/live/pubsub/redis\"", scheme, registered)
}

// FromURL returns the transport for rawURL: live.InProcess when it is
// empty, else the one registered for its scheme. A nil logger means
// slog.Default().
func FromURL(ctx context.Context, rawURL string, logger *slog.Logger) (live.PubSub, error) {
	return transports.fromURL(ctx, rawURL, logger)
}

func (r *registry) fromURL(ctx context.Context, rawURL string, logger *slog.Logger) (live.PubSub, error) {
	if rawURL == "" {
		return &live.InProcess{}, nil
	}
	if logger == nil {
		logger = slog.Default()
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// Not the URL itself: it may hold a password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("kiln/pubsub: bad URL (%w); %s", err, r.want())
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("kiln/pubsub: the URL has no scheme; %s", r.want())
	}
	open := r.lookup(u.Scheme)
	if open == nil {
		return nil, r.unknown(u.Scheme)
	}
	q := u.Query()
	opts := Options{Logger: logger, Channel: q.Get("channel")}
	if q.Has("channel") {
		if opts.Channel == "" {
			return nil, fmt.Errorf("kiln/pubsub: the channel parameter of %s://… is empty", u.Scheme)
		}
		// Cut it from the text, leaving the rest as written: a NATS URL
		// may list several servers, which url.URL does not round-trip.
		q.Del("channel")
		rawURL = rawURL[:strings.IndexByte(rawURL, '?')]
		if len(q) > 0 {
			rawURL += "?" + q.Encode()
		}
	}
	return open(ctx, rawURL, opts)
}
