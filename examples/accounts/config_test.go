package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-go/kiln/cli"
)

// TestConfigEverySectionAtOnce: a config file with a bad key in every
// section — the command line's own, live, rate_limits, resources — and a
// bad variable report every problem at once, each where it was written.
// With or without a bad top-level key the sections are checked on a
// sandbox, before the example's own build.
func TestConfigEverySectionAtOnce(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "KILN_") && !strings.HasPrefix(k, "KILN_TEST_") {
			t.Setenv(k, "")
		}
	}
	t.Setenv("KILN_RESOURCES__USER__AUTHENTICATION__TOKENS__TOKEN_LIFETIME", "0s")
	const sections = `live:
  sweep_interval: 1ms
rate_limits:
  sign_in_per_identity:
    burst: 0
resources:
  token:
    token:
      expunge_interval: 0s
  tokns:
    table: tokns
`
	sectionProblems := func(file string) []string {
		return []string{
			"kiln/dsl: " + file + ":3: live.sweep_interval: must be at least 1s (1ms); use a duration of at least 1s, such as 30s",
			"kiln/dsl: " + file + ":6: rate_limits.sign_in_per_identity.burst: must be positive (0); use a positive number of attempts",
			`kiln/resource: resource "token": token -> expunge_interval: must be positive (0s); use a positive duration, or leave it out for 12h (kiln.yaml:10)`,
			`kiln/resource: resource "tokns": unknown resource; did you mean token? (kiln.yaml:11)`,
			`kiln/resource: resource "user": authentication -> tokens -> token_lifetime: must be positive (0s); use a positive duration, or leave it out for 14 days ` +
				"(variable KILN_RESOURCES__USER__AUTHENTICATION__TOKENS__TOKEN_LIFETIME)",
		}
	}
	for _, tc := range []struct {
		name, top string
		want      func(file string) []string
	}{
		{"with a bad top-level key", "read_timeout: 10ms\n", func(file string) []string {
			return append([]string{"kiln/dsl: " + file + ":1: read_timeout: must be at least 1s (10ms); use a duration of at least 1s, such as 30s"},
				sectionProblems(file)...)
		}},
		{"the sections alone", "metrics_public: false\n", sectionProblems},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(t.TempDir(), "kiln.yaml")
			if err := os.WriteFile(file, []byte(tc.top+sections), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := accounts().Command()
			var out, errOut bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&errOut)
			cmd.SetArgs([]string{"migrate", "--data-dir", dir, "--config", file,
				"--token-signing-secret", "config-test-token-signing-secret-0123456789", "--cookie-keys", "config-test-cookie-key-0123456789abcdef"})
			err := cmd.ExecuteContext(t.Context())
			want := strings.Join(tc.want(file), "\n")
			if err == nil || err.Error() != want {
				t.Fatalf("migrate:\n%v\nwant:\n%s", err, want)
			}
			if strings.Contains(out.String(), "migrated") {
				t.Errorf("migrate ran with a bad configuration: %q", out.String())
			}
		})
	}
}

// TestConfigCheckedBeforeAnythingIsMade: a bad key of the live,
// rate_limits or resources section, or a bad sweep_interval by its flag or
// variable, stops every command before it makes the data folder, a
// development secret or the database, or connects to PostgreSQL; it exits
// 1 with every problem.
func TestConfigCheckedBeforeAnythingIsMade(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "KILN_") && !strings.HasPrefix(k, "KILN_TEST_") {
			t.Setenv(k, "")
		}
	}
	file := filepath.Join(t.TempDir(), "kiln.yaml")
	if err := os.WriteFile(file, []byte("live:\n  write_wait: 0s\nrate_limits:\n  register_per_address:\n    window: 0s\nresources:\n  tokns:\n    table: tokns\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sections := []string{
		"kiln/dsl: " + file + ":2: live.write_wait: must be positive (0s); use a positive duration",
		"kiln/dsl: " + file + ":5: rate_limits.register_per_address.window: must be positive (0s); use a positive duration such as 15m",
		`kiln/resource: resource "tokns": unknown resource; did you mean token? (` + filepath.Base(file) + ":7)",
	}
	sweep := func(source string) []string {
		return []string{"kiln/dsl: " + source + ": live.sweep_interval: must be at least 1s (1ms); use a duration of at least 1s, such as 30s"}
	}
	for _, tc := range []struct {
		name string
		env  string // KILN_SWEEP_INTERVAL
		args []string
		want []string
	}{
		{"sections of the config file", "", []string{"--config", file}, sections},
		{"sweep_interval by its variable", "1ms", nil, sweep("variable KILN_SWEEP_INTERVAL")},
		{"sweep_interval by its flag", "", []string{"--sweep-interval", "1ms"}, sweep("flag --sweep-interval")},
		{"all of them", "", []string{"--config", file, "--sweep-interval", "1ms"}, append(sweep("flag --sweep-interval"), sections...)},
	} {
		for _, command := range [][]string{{"serve"}, {"migrate"}, {"tokens", "expunge"}, {"tokens", "revoke", "--user", "ada@example.com"}} {
			t.Run(tc.name+"/"+strings.Join(command, " "), func(t *testing.T) {
				t.Setenv("KILN_SWEEP_INTERVAL", tc.env)
				for _, database := range []string{"", "postgres://kiln@127.0.0.1:1/nothing-listens?sslmode=disable"} {
					dir := filepath.Join(t.TempDir(), "data")
					args := append(append(slices.Clone(command), "--data-dir", dir), tc.args...)
					if database != "" {
						args = append(args, "--database-url", database)
					}
					cmd := accounts().Command()
					var out, errOut bytes.Buffer
					cmd.SetOut(&out)
					cmd.SetErr(&errOut)
					cmd.SetArgs(args)
					err := cmd.ExecuteContext(t.Context())
					if want := strings.Join(tc.want, "\n"); err == nil || err.Error() != want {
						t.Fatalf("%v:\n%v\nwant:\n%s", args, err, want)
					}
					if code := cli.ExitCode(err); code != cli.ExitError {
						t.Errorf("%v: exit code %d, want %d", args, code, cli.ExitError)
					}
					if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("%v made the data folder %s: %v", args, dir, err)
					}
				}
			})
		}
	}
}
