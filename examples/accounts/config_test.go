package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigEverySectionAtOnce: a config file with a bad key in every
// section — the command line's own, live, rate_limits, resources — and a
// bad variable report every problem at once, each where it was written.
// With a bad top-level key the sections are checked on a sandbox; without
// one, by the example's own build.
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
