package dsl_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kiln-go/kiln/cli"
	"github.com/kiln-go/kiln/dsl"
	"github.com/kiln-go/kiln/dsl/configfile"
	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/logouteverywhere"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/web/ratelimit"
)

// buildProblems builds the test accounts with f and returns the build
// problems, one a line.
func buildProblems(t *testing.T, f *dsl.File) string {
	t.Helper()
	_, err := resource.NewDomain("accounts", declare(nil)...).Build(context.Background(), testdb.SQLite(t), resource.WithConfig(f))
	if err == nil {
		t.Fatal("Build succeeded; want problems")
	}
	var lines []string
	for _, be := range resource.BuildErrors(err) {
		lines = append(lines, be.Error())
	}
	return strings.Join(lines, "\n")
}

// A problem names where its key was written, whatever the key: an option,
// a resource name, a section; in a YAML file (its line), a TOML file, a
// variable, or several merged.
func TestProblemsNameWhereTheKeyWasWritten(t *testing.T) {
	yamlFile, err := configfile.Parse("accounts.yaml", "yaml", []byte("resources:\n  user:\n    table: people\n  tokns:\n    table: t\n"))
	if err != nil {
		t.Fatal(err)
	}
	tomlFile, err := configfile.Parse("accounts.toml", "toml", []byte("[resources.tokns]\ntable = \"t\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	const unknown = `kiln/resource: resource "tokns": unknown resource; did you mean token? `
	for _, tc := range []struct {
		name string
		file *dsl.File
		want string
	}{
		{"YAML", yamlFile, unknown + "(accounts.yaml:4)"},
		{"TOML", tomlFile, unknown + "(accounts.toml)"},
		{"variable", dsl.FromEnv("KILN", []string{"KILN_RESOURCES__TOKNS__TABLE=t"}), unknown + "(variable KILN_RESOURCES__TOKNS__TABLE)"},
		// Merged, a resource keeps the source of the first file that
		// named it, not "configuration:0".
		{"YAML and variables", dsl.Merge(yamlFile, dsl.FromEnv("KILN", []string{"KILN_RESOURCES__TOKNS__TOKEN__EXPUNGE_INTERVAL=1h"})),
			unknown + "(accounts.yaml:4)"},
		{"variables and YAML", dsl.Merge(dsl.FromEnv("KILN", []string{"KILN_RESOURCES__TOKNS__TOKEN__EXPUNGE_INTERVAL=1h"}), yamlFile),
			unknown + "(variable KILN_RESOURCES__TOKNS__TOKEN__EXPUNGE_INTERVAL)"},
		// A zero where the rule says positive is refused, named by its
		// variable.
		{"zero from a variable", dsl.FromEnv("KILN", []string{"KILN_RESOURCES__TOKEN__TOKEN__EXPUNGE_INTERVAL=0s"}),
			`kiln/resource: resource "token": token -> expunge_interval: must be positive (0s); use a positive duration, or leave it out for 12h ` +
				"(variable KILN_RESOURCES__TOKEN__TOKEN__EXPUNGE_INTERVAL)"},
		{"unknown section from a variable", dsl.FromEnv("KILN", []string{"KILN_LVE__SWEEP_INTERVAL=5s"}),
			"kiln/resource: lve: unknown section; did you mean live? (variable KILN_LVE__SWEEP_INTERVAL)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.file.Register(live.SettingsSchema.Name)
			if got := buildProblems(t, tc.file); got != tc.want {
				t.Fatalf("problems\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// The environment names each key by its variable; an empty variable is
// unset; later files win key by key, and keep their sources.
func TestFileSources(t *testing.T) {
	file, err := configfile.Parse("app.yaml", "yaml", []byte("live:\n  sweep_interval: 1ms\n  write_wait: 1s\n"))
	if err != nil {
		t.Fatal(err)
	}
	env := dsl.FromEnv("KILN", []string{"KILN_LIVE__SWEEP_INTERVAL=2ms", "KILN_LIVE__CLOSE_GRACE=", "KILN_ADDR=x:1"})
	if _, set := env.Values["addr"]; set || env.Map("live")["close_grace"] != nil {
		t.Errorf("FromEnv read a variable without __ or an empty one: %v", env.Values)
	}
	merged := dsl.Merge(file, env)
	for _, c := range []struct {
		path []string
		want string
	}{
		{[]string{"live", "sweep_interval"}, "variable KILN_LIVE__SWEEP_INTERVAL"},
		{[]string{"live", "write_wait"}, "app.yaml:3"},
		{[]string{"live"}, "app.yaml:1"},
		{[]string{"live", "nothing"}, "app.yaml:1"},
		{[]string{"nothing"}, "configuration"},
	} {
		if got := merged.Source(c.path); got != c.want {
			t.Errorf("Source(%v) = %q, want %q", c.path, got, c.want)
		}
	}
	_, err = live.SettingsFrom(merged)
	want := "kiln/dsl: variable KILN_LIVE__SWEEP_INTERVAL: live.sweep_interval: must be at least 1s (2ms); use a duration of at least 1s, such as 30s"
	if err == nil || err.Error() != want {
		t.Errorf("SettingsFrom = %v\nwant %s", err, want)
	}
}

// Every default passes its own rules: a value left out is never an error.
func TestSchemaDefaultsPassTheirRules(t *testing.T) {
	for _, c := range []struct {
		schema *dsl.Section
		value  any
	}{
		{live.SettingsSchema, &live.Settings{}},
		{ratelimit.LimitsSchema, &ratelimit.Limits{}},
		{tokenresource.Schema, &tokenresource.Token{}},
		{authentication.TokensSchema, &authentication.Tokens{}},
		{password.Schema, &password.Password{}},
		{logouteverywhere.Schema, &logouteverywhere.LogOutEverywhere{}},
		{cli.Schema, &cli.Config{}},
	} {
		c.schema.Defaults(c.value)
		if problems := c.schema.Check(c.value); len(problems) > 0 {
			t.Errorf("%s: the defaults break the rules: %+v", c.schema.Name, problems)
		}
	}
	// And a value of the right type that breaks one is refused, not
	// replaced by the default: from a file, a zero is a value.
	var s live.Settings
	f, err := configfile.Parse("app.yaml", "yaml", []byte("live:\n  max_message_size: 0\n  sweep_interval: 0s\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = dsl.Read(f, live.SettingsSchema, &s)
	want := "kiln/dsl: app.yaml:2: live.max_message_size: must be positive (0); use a positive size\n" +
		"kiln/dsl: app.yaml:3: live.sweep_interval: must be at least 1s (0s); use a duration of at least 1s, such as 30s"
	if err == nil || err.Error() != want {
		t.Errorf("Read = %v\nwant %s", err, want)
	}
	live.SettingsSchema.Defaults(&s)
	if s.SweepInterval != live.DefaultSweepInterval || s.MaxMessageSize != 64<<10 || s.WriteWait != 5*time.Second {
		t.Errorf("after refused values: %+v; want the defaults", s)
	}
}
