package live

import (
	"errors"
	"fmt"
	"time"

	"github.com/kiln-go/kiln/dsl"
)

// Settings are the endpoint's tunables, settable from Go (WithSettings) or a
// config file's live section. Zero fields take the defaults of
// SettingsSchema.
type Settings struct {
	// SweepInterval is the sweep_interval option. How often the safety net
	// checks every session's token against the store; a lost disconnect
	// waits at most this long. At least 1s: each sweep reads the tokens of
	// every open session. The command line's top-level sweep_interval
	// (--sweep-interval, KILN_SWEEP_INTERVAL) is another name for it.
	// Rules: gte=1s. Default: 30s.
	SweepInterval time.Duration
	// AllowedOrigins is the allowed_origins option. Origins allowed to open
	// sockets cross-origin, as scheme://host[:port] (http or https, no
	// path); compared by scheme, host and port. Default: same origin only.
	AllowedOrigins []string
	// PublicURL is the public_url option. Where the app is served as
	// browsers see it (https://app.example.com behind a TLS proxy): an
	// absolute http or https URL; same-origin then means this URL's scheme,
	// host and port. Default: the request's own (https only over TLS).
	PublicURL string
	// MessageBufferSize is the message_buffer_size option. Each socket's
	// outbound queue, in frames; frames beyond it are dropped (close frames
	// never are). Each slot costs every socket 40 bytes. Rules: gt=0.
	// Default: 16.
	MessageBufferSize int
	// MaxMessageSize is the max_message_size option. The largest incoming
	// frame, in bytes. Rules: gt=0. Default: 65536.
	MaxMessageSize int
	// WriteWait is the write_wait option. How long a write may take, the
	// close frame's included. Rules: gt=0. Default: 5s.
	WriteWait time.Duration
	// CloseGrace is the close_grace option. How long a closing socket waits
	// for the client's close reply. Rules: gt=0. Default: 3s.
	CloseGrace time.Duration
	// MaxSocketsPerSession is the max_sockets_per_session option. The most
	// sockets one session (one token: a browser's tabs) may have open on a
	// node; one more is closed at once with 4029 "too many sockets for this
	// session". Rules: gt=0. Default: 16.
	MaxSocketsPerSession int
	// MaxSocketsPerSubject is the max_sockets_per_subject option. The most
	// sockets one user (one token subject, all sessions together) may have
	// open on a node; one more is closed at once with 4029 "too many
	// sockets for this user". Rules: gt=0. Default: 64.
	MaxSocketsPerSubject int
	// DisableLeases is the disable_leases option. Keeps this node from
	// being a member: its token store fences every check it answers from
	// memory through the pub/sub, and other nodes' revocations do not wait
	// for its acknowledgement (live.WithLeases(false); see the checks from
	// memory in docs/auto-signout.md). For a rolling upgrade from a version
	// without leases, or many nodes. Default: false.
	DisableLeases bool
}

// SettingsSchema is the schema of the live section.
var SettingsSchema = dsl.Bind[Settings](&dsl.Section{
	Name:   "live",
	GoType: "live.Settings",
	Doc:    "The live endpoint: the WebSocket sessions that auto sign-out closes.",
	Options: []dsl.Option{
		{Name: "sweep_interval", Field: "SweepInterval", Kind: dsl.Duration, Default: DefaultSweepInterval,
			Doc: "How often the safety net checks every session's token against the store; a lost disconnect waits at most this long. " +
				"At least 1s: each sweep reads the tokens of every open session. The command line's top-level sweep_interval " +
				"(--sweep-interval, KILN_SWEEP_INTERVAL) is another name for it.",
			Rules: "gte=1s", Fix: "use a duration of at least 1s, such as 30s"},
		{Name: "allowed_origins", Field: "AllowedOrigins", Kind: dsl.Strings, Verify: verifyOrigins, Fix: originFix,
			Doc: "Origins allowed to open sockets cross-origin, as scheme://host[:port] (http or https, no path); compared by scheme, host and port. Default: same origin only."},
		{Name: "public_url", Field: "PublicURL", Kind: dsl.String, Verify: verifyPublicURL, Fix: originFix,
			Doc: "Where the app is served as browsers see it (https://app.example.com behind a TLS proxy): an absolute http or https URL; same-origin then means this URL's scheme, host and port. Default: the request's own (https only over TLS)."},
		{Name: "message_buffer_size", Field: "MessageBufferSize", Kind: dsl.Int, Default: 16,
			Doc: "Each socket's outbound queue, in frames; frames beyond it are dropped (close frames never are). Each slot costs every socket 40 bytes.", Rules: "gt=0", Fix: "use a positive size"},
		{Name: "max_message_size", Field: "MaxMessageSize", Kind: dsl.Int, Default: 64 << 10,
			Doc: "The largest incoming frame, in bytes.", Rules: "gt=0", Fix: "use a positive size"},
		{Name: "write_wait", Field: "WriteWait", Kind: dsl.Duration, Default: 5 * time.Second,
			Doc: "How long a write may take, the close frame's included.", Rules: "gt=0", Fix: "use a positive duration"},
		{Name: "close_grace", Field: "CloseGrace", Kind: dsl.Duration, Default: 3 * time.Second,
			Doc: "How long a closing socket waits for the client's close reply.", Rules: "gt=0", Fix: "use a positive duration"},
		{Name: "max_sockets_per_session", Field: "MaxSocketsPerSession", Kind: dsl.Int, Default: 16,
			Doc: "The most sockets one session (one token: a browser's tabs) may have open on a node; one more is closed at once with 4029 \"too many sockets for this session\".", Rules: "gt=0", Fix: "use a positive count"},
		{Name: "max_sockets_per_subject", Field: "MaxSocketsPerSubject", Kind: dsl.Int, Default: 64,
			Doc: "The most sockets one user (one token subject, all sessions together) may have open on a node; one more is closed at once with 4029 \"too many sockets for this user\".", Rules: "gt=0", Fix: "use a positive count"},
		{Name: "disable_leases", Field: "DisableLeases", Kind: dsl.Bool,
			Doc: "Keeps this node from being a member: its token store fences every check it answers from memory through the pub/sub, " +
				"and other nodes' revocations do not wait for its acknowledgement (live.WithLeases(false); see the checks from memory " +
				"in docs/auto-signout.md). For a rolling upgrade from a version without leases, or many nodes. Default: false."},
	},
	GoExample:   `live.New(live.WithSettings(live.Settings{SweepInterval: 10 * time.Second}))`,
	YAMLExample: "live:\n  sweep_interval: 10s\n  public_url: https://app.example.com\n  allowed_origins: [\"https://admin.example.com\"]\n  max_sockets_per_session: 16",
})

// WithSettings applies settings; zero fields keep the defaults. New
// returns an error for a bad allowed origin or public URL.
func WithSettings(s Settings) Option {
	return func(e *Endpoint) {
		SettingsSchema.Defaults(&s)
		e.apply(s)
	}
}

func (e *Endpoint) apply(s Settings) {
	e.sweepEvery = s.SweepInterval
	allowed, errs := parseOrigins("live.allowed_origins", s.AllowedOrigins)
	e.origins = append(e.origins, allowed...)
	e.errs = append(e.errs, errs...)
	if s.PublicURL != "" {
		o, err := parsePublicURL("live.public_url", s.PublicURL)
		if err != nil {
			e.errs = append(e.errs, err)
		} else {
			e.public = &o
		}
	}
	e.m.Config.MessageBufferSize = s.MessageBufferSize
	e.m.Config.MaxMessageSize = int64(s.MaxMessageSize)
	e.m.Config.WriteWait = s.WriteWait
	e.writeWait = s.WriteWait
	e.closeGrace = s.CloseGrace
	e.limits.perSession = s.MaxSocketsPerSession
	e.limits.perSubject = s.MaxSocketsPerSubject
	if s.DisableLeases {
		e.noLeases = true
	}
}

// SettingsFrom reads the live section of a configuration (nil gives the
// defaults), checking every key and value against SettingsSchema. It
// reports every problem at once, each with where it was written, and
// returns the settings with the defaults in place of the values it
// refused.
func SettingsFrom(f *dsl.File) (Settings, error) {
	var s Settings
	err := dsl.Read(f, SettingsSchema, &s)
	SettingsSchema.Defaults(&s)
	return s, err
}

// verifyOrigins is the rule of allowed_origins: each one an origin.
func verifyOrigins(v any) error {
	var errs []error
	for i, s := range v.([]string) {
		if _, err := parseOrigin(s); err != nil {
			errs = append(errs, fmt.Errorf("[%d] %s: %v", i, dsl.Quote(s), err))
		}
	}
	return errors.Join(errs...)
}

// verifyPublicURL is the rule of public_url: empty, or an absolute http or
// https URL.
func verifyPublicURL(v any) error {
	if s := v.(string); s != "" {
		_, err := publicURLOrigin(s)
		return err
	}
	return nil
}
