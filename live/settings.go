package live

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kiln-go/kiln/dsl"
)

// Settings are the endpoint's tunables, settable from Go (WithSettings) or a
// config file's live section. Zero fields take the defaults of
// SettingsSchema.
type Settings struct {
	// SweepInterval is how often the safety net checks sessions' tokens.
	SweepInterval time.Duration
	// AllowedOrigins may open sockets cross-origin.
	AllowedOrigins []string
	// MessageBufferSize is each socket's outbound queue, in frames.
	MessageBufferSize int
	// MaxMessageSize is the largest incoming frame, in bytes.
	MaxMessageSize int
	// WriteWait bounds a write, the close frame's included.
	WriteWait time.Duration
	// CloseGrace is how long a closing socket waits for the client's reply.
	CloseGrace time.Duration
}

// SettingsSchema is the schema of the live section.
var SettingsSchema = &dsl.Section{
	Name:   "live",
	GoType: "live.Settings",
	Doc:    "The live endpoint: the WebSocket sessions that auto sign-out closes.",
	Options: []dsl.Option{
		{Name: "sweep_interval", Field: "SweepInterval", Kind: dsl.Duration, Default: DefaultSweepInterval,
			Doc: "How often the safety net checks every session's token; a lost disconnect waits at most this long.", Rules: "gt=0", Fix: "use a positive duration such as 30s"},
		{Name: "allowed_origins", Field: "AllowedOrigins", Kind: dsl.Strings, Doc: "Origins allowed to open sockets cross-origin. Default: same origin only."},
		{Name: "message_buffer_size", Field: "MessageBufferSize", Kind: dsl.Int, Default: 256,
			Doc: "Each socket's outbound queue, in frames; frames beyond it are dropped (close frames never are).", Rules: "gt=0", Fix: "use a positive size"},
		{Name: "max_message_size", Field: "MaxMessageSize", Kind: dsl.Int, Default: 64 << 10,
			Doc: "The largest incoming frame, in bytes.", Rules: "gt=0", Fix: "use a positive size"},
		{Name: "write_wait", Field: "WriteWait", Kind: dsl.Duration, Default: 5 * time.Second,
			Doc: "How long a write may take, the close frame's included.", Rules: "gt=0", Fix: "use a positive duration"},
		{Name: "close_grace", Field: "CloseGrace", Kind: dsl.Duration, Default: 3 * time.Second,
			Doc: "How long a closing socket waits for the client's close reply.", Rules: "gt=0", Fix: "use a positive duration"},
	},
	GoExample:   `live.New(live.WithSettings(live.Settings{SweepInterval: 10 * time.Second}))`,
	YAMLExample: "live:\n  sweep_interval: 10s\n  allowed_origins: [\"https://app.example.com\"]",
}

// WithSettings applies settings; zero fields keep the defaults.
func WithSettings(s Settings) Option {
	return func(e *Endpoint) {
		SettingsSchema.Defaults(&s)
		e.apply(s)
	}
}

func (e *Endpoint) apply(s Settings) {
	e.sweepEvery = s.SweepInterval
	e.origins = append(e.origins, s.AllowedOrigins...)
	e.m.Config.MessageBufferSize = s.MessageBufferSize
	e.m.Config.MaxMessageSize = int64(s.MaxMessageSize)
	e.m.Config.WriteWait = s.WriteWait
	e.writeWait = s.WriteWait
	e.closeGrace = s.CloseGrace
}

// SettingsFrom reads the live section of a configuration (nil gives the
// defaults), checking every key and value against SettingsSchema.
func SettingsFrom(f *dsl.File) (Settings, error) {
	var s Settings
	if f != nil {
		if m := f.Map("live"); m != nil {
			a := &dsl.Applier{File: f}
			a.Apply(SettingsSchema, &s, m, []string{"live"})
			if len(a.Errors) > 0 {
				errs := make([]error, len(a.Errors))
				for i, e := range a.Errors {
					errs[i] = e
				}
				return s, errors.Join(errs...)
			}
		}
	}
	SettingsSchema.Defaults(&s)
	if problems := SettingsSchema.Check(&s); len(problems) > 0 {
		var errs []error
		for _, p := range problems {
			errs = append(errs, fmt.Errorf("kiln/live: %s: %s; %s", strings.Join(append([]string{"live"}, p.Path...), "."), p.Message, p.Fix))
		}
		return s, errors.Join(errs...)
	}
	return s, nil
}
