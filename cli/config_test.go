package cli_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/kiln-go/kiln/cli"
)

// load parses args as the command line does and loads the configuration.
func load(t *testing.T, args ...string) (*cli.Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	cli.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return cli.LoadConfig(fs, slog.New(slog.DiscardHandler))
}

// writeFile writes a config file in a fresh folder and returns its path.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigErrors(t *testing.T) {
	clearEnv(t)
	secrets := []string{"--data-dir", t.TempDir(), "--token-signing-secret", testSecret, "--cookie-keys", testCookieKey}
	unknown := writeFile(t, "kiln.yaml", "addr: 127.0.0.1:4001\ncolour: blue\n")
	nested := writeFile(t, "kiln.yaml", "database:\n  url: sqlite:x.db\n")
	typo := writeFile(t, "kiln.yaml", "adr: 127.0.0.1:4001\n")
	broken := writeFile(t, "kiln.yaml", "addr: [unclosed\n")
	for _, tc := range []struct {
		name string
		args []string
		err  string
	}{
		{"unsupported database", []string{"--database-url", "mysql://db.example/kiln"},
			"database_url: unsupported scheme; use postgres://… or a SQLite path (sqlite:path/to.db)"},
		{"bad postgres url", []string{"--database-url", "postgres://"},
			"database_url: not a valid PostgreSQL URL; want postgres://user@host:5432/database"},
		{"short signing secret", []string{"--token-signing-secret", "too-short"},
			"token_signing_secret: 9 bytes is too short; use at least 32 random bytes (openssl rand -base64 48)"},
		{"short previous secret", []string{"--previous-token-signing-secrets", testSecret + ",old"},
			"previous_token_signing_secrets[1]: 3 bytes is too short; use at least 32 random bytes"},
		{"short cookie key", []string{"--cookie-keys", "short"},
			"cookie_keys[0]: 5 bytes is too short; use at least 32 random bytes"},
		{"bad addr", []string{"--addr", "4000"}, `addr "4000": want host:port, such as 127.0.0.1:4000`},
		{"bad sweep interval", []string{"--sweep-interval", "soon"}, `sweep_interval "soon": want a duration of at least 1s, such as 30s`},
		{"too short a sweep interval", []string{"--sweep-interval", "10ms"}, `sweep_interval "10ms": want a duration of at least 1s, such as 30s`},
		{"bad pubsub url", []string{"--pubsub-url", "redis//localhost"}, "pubsub_url: not a valid URL; want postgres://…, redis://… or nats://…"},
		{"every problem at once", []string{"--addr", "4000", "--database-url", "mysql://x", "--token-signing-secret", "short"},
			`addr "4000": want host:port, such as 127.0.0.1:4000` + "\n" +
				"database_url: unsupported scheme; use postgres://… or a SQLite path (sqlite:path/to.db)\n" +
				"token_signing_secret: 5 bytes is too short; use at least 32 random bytes (openssl rand -base64 48)"},
		{"unknown key", []string{"--config", unknown}, "kiln: config file " + unknown + `: unknown key "colour"`},
		{"unknown nested key", []string{"--config", nested}, "kiln: config file " + nested + `: unknown key "database.url"; did you mean database_url?`},
		{"a typo", []string{"--config", typo}, "kiln: config file " + typo + `: unknown key "adr"; did you mean addr?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := load(t, append(slices.Clone(secrets), tc.args...)...)
			if err == nil || err.Error() != tc.err {
				t.Errorf("error:\n%v\nwant:\n%s", err, tc.err)
			}
			if cfg != nil {
				t.Errorf("a configuration came back with the error: %+v", cfg)
			}
		})
	}
	t.Run("unreadable file", func(t *testing.T) {
		for _, path := range []string{broken, filepath.Join(t.TempDir(), "missing.yaml")} {
			if _, err := load(t, append(slices.Clone(secrets), "--config", path)...); err == nil || !strings.HasPrefix(err.Error(), "kiln: config file "+path+": ") {
				t.Errorf("config file %s: %v", path, err)
			}
		}
	})
	// The commands report the same errors, on stderr, before opening
	// anything.
	t.Run("command", func(t *testing.T) {
		dir := t.TempDir()
		out, errOut, err := run(t, "migrate", "--data-dir", dir, "--database-url", "mysql://x")
		want := "database_url: unsupported scheme; use postgres://… or a SQLite path (sqlite:path/to.db)"
		if err == nil || err.Error() != want || out != "" || !strings.Contains(errOut, "Error: "+want) {
			t.Errorf("migrate with a bad database: %v; printed %q and %q", err, out, errOut)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("a failed configuration wrote to the data folder: %v", entries)
		}
	})
}

func TestConfigPrecedence(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	file := writeFile(t, "kiln.yaml", strings.Join([]string{
		"addr: 127.0.0.1:1111",
		"sweep_interval: 11s",
		"database_url: sqlite:" + filepath.Join(dir, "file.db"),
		"data_dir: " + dir,
		"token_signing_secret: " + testSecret,
		"cookie_keys:",
		"  - " + testCookieKey,
		"  - " + testCookieKey + "-older",
	}, "\n")+"\n")

	// Flags over environment over file over defaults.
	t.Setenv("KILN_ADDR", "127.0.0.1:2222")
	t.Setenv("KILN_SWEEP_INTERVAL", "22s")
	cfg, err := load(t, "--config", file, "--addr", "127.0.0.1:3333")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:3333" || cfg.SweepInterval != 22*time.Second || cfg.DatabaseURL != "sqlite:"+filepath.Join(dir, "file.db") || cfg.PubSubURL != "" {
		t.Errorf("flag > env > file > default: %+v", cfg)
	}
	if !slices.Equal(cfg.CookieKeys, []string{testCookieKey, testCookieKey + "-older"}) || cfg.TokenSigningSecret != testSecret || cfg.DevSecrets {
		t.Errorf("the file's secrets: %+v", cfg)
	}

	cfg, err = load(t, "--config", file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:2222" {
		t.Errorf("env over file: addr %s", cfg.Addr)
	}

	t.Setenv("KILN_ADDR", "")
	t.Setenv("KILN_SWEEP_INTERVAL", "")
	t.Setenv("KILN_COOKIE_KEYS", testCookieKey+"-env, "+testCookieKey+"-env-older")
	cfg, err = load(t, "--config", file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:1111" || cfg.SweepInterval != 11*time.Second {
		t.Errorf("file over defaults: %+v", cfg)
	}
	if !slices.Equal(cfg.CookieKeys, []string{testCookieKey + "-env", testCookieKey + "-env-older"}) {
		t.Errorf("a comma-separated list from the environment: %q", cfg.CookieKeys)
	}

	t.Setenv("KILN_COOKIE_KEYS", "")
	cfg, err = load(t, "--data-dir", dir, "--token-signing-secret", testSecret, "--cookie-keys", testCookieKey)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:4000" || cfg.SweepInterval != 0 || cfg.DatabaseURL != "sqlite:"+filepath.Join(dir, "accounts.db") {
		t.Errorf("defaults: %+v", cfg)
	}

	// A TOML file works the same.
	toml := writeFile(t, "kiln.toml", "addr = \"127.0.0.1:4444\"\ndata_dir = \""+dir+"\"\ncookie_keys = [\""+testCookieKey+"\"]\n")
	cfg, err = load(t, "--config", toml, "--token-signing-secret", testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:4444" || !slices.Equal(cfg.CookieKeys, []string{testCookieKey}) {
		t.Errorf("TOML: %+v", cfg)
	}
}

func TestConfigDevelopmentSecrets(t *testing.T) {
	clearEnv(t)
	dir := filepath.Join(t.TempDir(), "data")
	cfg, err := load(t, "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.DevSecrets || len(cfg.TokenSigningSecret) < 32 || len(cfg.CookieKeys) != 1 || len(cfg.CookieKeys[0]) < 32 || cfg.TokenSigningSecret == cfg.CookieKeys[0] {
		t.Fatalf("development secrets: %+v", cfg)
	}
	for _, name := range []string{"dev-token-signing-secret", "dev-cookie-key"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want a file only its owner reads", name, err, fi.Mode())
		}
	}
	again, err := load(t, "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.TokenSigningSecret != cfg.TokenSigningSecret || again.CookieKeys[0] != cfg.CookieKeys[0] {
		t.Errorf("the development secrets changed between runs: sessions would not survive a restart")
	}
	// Given secrets are used as they are, and nothing is written.
	other := filepath.Join(t.TempDir(), "data")
	cfg, err = load(t, "--data-dir", other, "--token-signing-secret", testSecret, "--cookie-keys", testCookieKey)
	if err != nil || cfg.DevSecrets || cfg.TokenSigningSecret != testSecret {
		t.Errorf("given secrets: %+v, %v", cfg, err)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("the data folder was made although no development secret was needed: %v", err)
	}
}

// KILN_CONFIG names the config file when --config does not.
func TestConfigFileFromEnvironment(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	file := writeFile(t, "kiln.yaml", "addr: 127.0.0.1:5555\ndata_dir: "+dir+"\ntoken_signing_secret: "+testSecret+"\ncookie_keys: "+testCookieKey+"\n")
	t.Setenv("KILN_CONFIG", file)
	cfg, err := load(t)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:5555" {
		t.Fatalf("addr %q, want the file's 127.0.0.1:5555", cfg.Addr)
	}
	other := writeFile(t, "other.yaml", "addr: 127.0.0.1:6666\ndata_dir: "+dir+"\ntoken_signing_secret: "+testSecret+"\ncookie_keys: "+testCookieKey+"\n")
	if cfg, err = load(t, "--config", other); err != nil || cfg.Addr != "127.0.0.1:6666" {
		t.Fatalf("--config over KILN_CONFIG: %v, %v; want 127.0.0.1:6666", cfg, err)
	}
}
