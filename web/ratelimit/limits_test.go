package ratelimit_test

import (
	"testing"
	"time"

	"github.com/kiln-go/kiln/dsl"
	"github.com/kiln-go/kiln/dsl/configfile"
	"github.com/kiln-go/kiln/web/ratelimit"
)

func TestLimitsDefaults(t *testing.T) {
	l, err := ratelimit.LimitsFrom(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := ratelimit.Limits{
		SignInPerIdentity:       ratelimit.Rule{Burst: 10, Window: 15 * time.Minute},
		SignInPerAddress:        ratelimit.Rule{Burst: 100, Window: 15 * time.Minute},
		ResetRequestPerIdentity: ratelimit.Rule{Burst: 5, Window: time.Hour},
		ResetRequestPerAddress:  ratelimit.Rule{Burst: 30, Window: time.Hour},
		RegisterPerAddress:      ratelimit.Rule{Burst: 200, Window: time.Hour},
	}
	if l != want {
		t.Fatalf("defaults = %+v\nwant %+v", l, want)
	}
	// A rule set in part keeps the default of the rest.
	part := ratelimit.Limits{SignInPerIdentity: ratelimit.Rule{Burst: 3}}
	if err := part.Check(); err != nil || part.SignInPerIdentity != (ratelimit.Rule{Burst: 3, Window: 15 * time.Minute}) {
		t.Fatalf("Check = %v, %+v", err, part.SignInPerIdentity)
	}
}

func TestLimitsFromConfig(t *testing.T) {
	f, err := configfile.Parse("app.yaml", "yaml", []byte("rate_limits:\n  fail_open: true\n  sign_in_per_identity:\n    burst: 5\n    window: 30m\n"))
	if err != nil {
		t.Fatal(err)
	}
	env := dsl.FromEnv("KILN", []string{"KILN_RATE_LIMITS__REGISTER_PER_ADDRESS__BURST=20"})
	l, err := ratelimit.LimitsFrom(dsl.Merge(f, env))
	if err != nil {
		t.Fatal(err)
	}
	if !l.FailOpen || l.SignInPerIdentity != (ratelimit.Rule{Burst: 5, Window: 30 * time.Minute}) ||
		l.RegisterPerAddress != (ratelimit.Rule{Burst: 20, Window: time.Hour}) || l.SignInPerAddress.Burst != 100 {
		t.Fatalf("limits = %+v", l)
	}
	for _, c := range []struct{ yaml, want string }{
		{"rate_limits:\n  sign_in_per_identiy:\n    burst: 5\n",
			"kiln/dsl: app.yaml:2: rate_limits.sign_in_per_identiy: unknown option; did you mean sign_in_per_identity?"},
		{"rate_limits:\n  sign_in_per_identity: 5\n",
			"kiln/dsl: app.yaml:2: rate_limits.sign_in_per_identity: is a section; want a mapping of its options"},
		{"rate_limits:\n  reset_request_per_address:\n    window: 0s\n    burst: -2\n",
			"kiln/dsl: app.yaml:4: rate_limits.reset_request_per_address.burst: must be positive (-2); use a positive number of attempts\n" +
				"kiln/dsl: app.yaml:3: rate_limits.reset_request_per_address.window: must be positive (0s); use a positive duration such as 15m"},
	} {
		bad, err := configfile.Parse("app.yaml", "yaml", []byte(c.yaml))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ratelimit.LimitsFrom(bad); err == nil || err.Error() != c.want {
			t.Errorf("LimitsFrom(%q) = %v\nwant %s", c.yaml, err, c.want)
		}
	}
}
