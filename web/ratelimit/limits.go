package ratelimit

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kiln-go/kiln/dsl"
)

// Limits are the brute-force limits of the authentication routes, set
// from Go or a config file's rate_limits section. A zero Rule takes its
// default from LimitsSchema, so Limits{} is every default, limits on.
type Limits struct {
	// Disabled is the disabled option. Turns every limit off. Default:
	// false (limits on).
	Disabled bool
	// FailOpen is the fail_open option. When the store cannot be reached,
	// lets attempts through and logs the error. Default: false (attempts
	// get 503).
	FailOpen bool
	// SignInPerIdentity is the sign_in_per_identity section. Failed
	// sign-ins per identity (the email, normalised), from any address. A
	// sign-in that succeeds does not count.
	SignInPerIdentity Rule
	// SignInPerAddress is the sign_in_per_address section. Failed sign-ins
	// per client address (an IPv6 /64), for any identity. A sign-in that
	// succeeds does not count.
	SignInPerAddress Rule
	// ResetRequestPerIdentity is the reset_request_per_identity section.
	// Password reset requests per identity, known or not.
	ResetRequestPerIdentity Rule
	// ResetRequestPerAddress is the reset_request_per_address section.
	// Password reset requests per client address.
	ResetRequestPerAddress Rule
	// RegisterPerAddress is the register_per_address section. Registrations
	// per client address.
	RegisterPerAddress Rule
}

// The default rules.
var (
	DefaultSignInPerIdentity       = Rule{Burst: 10, Window: 15 * time.Minute}
	DefaultSignInPerAddress        = Rule{Burst: 100, Window: 15 * time.Minute}
	DefaultResetRequestPerIdentity = Rule{Burst: 5, Window: time.Hour}
	DefaultResetRequestPerAddress  = Rule{Burst: 30, Window: time.Hour}
	DefaultRegisterPerAddress      = Rule{Burst: 200, Window: time.Hour}
)

func ruleSection(name, field, doc string, def Rule) *dsl.Section {
	return &dsl.Section{
		Name: name, Field: field, GoType: "ratelimit.Rule", Doc: doc,
		Options: []dsl.Option{
			{Name: "burst", Field: "Burst", Kind: dsl.Int, Default: def.Burst,
				Doc: "Tokens a full bucket holds: attempts let through at once.", Rules: "gt=0", Fix: "use a positive number of attempts"},
			{Name: "window", Field: "Window", Kind: dsl.Duration, Default: def.Window,
				Doc: "How long an empty bucket takes to fill again; one token comes back every window/burst.", Rules: "gt=0", Fix: "use a positive duration such as 15m"},
		},
	}
}

// LimitsSchema is the schema of the rate_limits section.
var LimitsSchema = dsl.Bind[Limits](&dsl.Section{
	Name:   "rate_limits",
	GoType: "ratelimit.Limits",
	Doc: "Brute-force limits on sign-in, password reset requests and registration: a token bucket per identity and per client address. " +
		"A refused attempt gets 429 with Retry-After.",
	Options: []dsl.Option{
		{Name: "disabled", Field: "Disabled", Kind: dsl.Bool, Doc: "Turns every limit off. Default: false (limits on)."},
		{Name: "fail_open", Field: "FailOpen", Kind: dsl.Bool,
			Doc: "When the store cannot be reached, lets attempts through and logs the error. Default: false (attempts get 503)."},
	},
	Sections: []*dsl.Section{
		ruleSection("sign_in_per_identity", "SignInPerIdentity", "Failed sign-ins per identity (the email, normalised), from any address. A sign-in that succeeds does not count.", DefaultSignInPerIdentity),
		ruleSection("sign_in_per_address", "SignInPerAddress", "Failed sign-ins per client address (an IPv6 /64), for any identity. A sign-in that succeeds does not count.", DefaultSignInPerAddress),
		ruleSection("reset_request_per_identity", "ResetRequestPerIdentity", "Password reset requests per identity, known or not.", DefaultResetRequestPerIdentity),
		ruleSection("reset_request_per_address", "ResetRequestPerAddress", "Password reset requests per client address.", DefaultResetRequestPerAddress),
		ruleSection("register_per_address", "RegisterPerAddress", "Registrations per client address.", DefaultRegisterPerAddress),
	},
	GoExample: `ratelimit.New(store, ratelimit.Limits{
	SignInPerIdentity: ratelimit.Rule{Burst: 5, Window: 30 * time.Minute},
})`,
	YAMLExample: "rate_limits:\n  sign_in_per_identity:\n    burst: 5\n    window: 30m\n  register_per_address:\n    burst: 20",
})

// Check applies the defaults to the zero fields of l and checks every
// value against LimitsSchema.
func (l *Limits) Check() error {
	LimitsSchema.Defaults(l)
	var errs []error
	for _, p := range LimitsSchema.Check(l) {
		errs = append(errs, fmt.Errorf("kiln/ratelimit: %s: %s; %s", strings.Join(append([]string{LimitsSchema.Name}, p.Path...), "."), p.Message, p.Fix))
	}
	return errors.Join(errs...)
}

// LimitsFrom reads the rate_limits section of a configuration (nil gives
// the defaults), checking every key and value against LimitsSchema. It
// reports every problem at once, each with where it was written, and
// returns the limits with the defaults in place of the values it refused.
func LimitsFrom(f *dsl.File) (Limits, error) {
	var l Limits
	err := dsl.Read(f, LimitsSchema, &l)
	LimitsSchema.Defaults(&l)
	return l, err
}
