package cli_test

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/kiln-go/kiln/cli"
	"github.com/kiln-go/kiln/dsl"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/web/ratelimit"
)

// load parses args as the command line does and loads the configuration.
func load(t *testing.T, args ...string) (*cli.Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	cli.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return cli.LoadConfig(fs, slog.New(slog.DiscardHandler), resource.ConfigSection, live.SettingsSchema.Name, ratelimit.LimitsSchema.Name)
}

// sweepInterval is the live section's sweep interval in cfg.
func sweepInterval(t *testing.T, cfg *cli.Config) time.Duration {
	t.Helper()
	s, err := live.SettingsFrom(cfg.DSL)
	if err != nil {
		t.Fatal(err)
	}
	return s.SweepInterval
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
	badDev := writeFile(t, "kiln.yaml", "dev: maybe\n")
	twice := writeFile(t, "kiln.yaml", "sweep_interval: 1m\nlive:\n  sweep_interval: 2m\n")
	folder := t.TempDir()
	jsonFile := writeFile(t, "kiln.json", `{"addr": "127.0.0.1:4001"}`)
	envFormat := writeFile(t, "kiln.env", "ADDR=127.0.0.1:4001\n")
	noExtension := writeFile(t, "kilnrc", "addr: 127.0.0.1:4001\n")
	// flag is the start of the error of a setting given by its flag.
	flag := func(key string) string {
		return "kiln/dsl: flag --" + strings.ReplaceAll(key, "_", "-") + ": " + key + ": "
	}
	const valid = "valid: addr, cookie_keys, data_dir, database_max_conns, database_url, dev, idle_timeout, live, max_header_bytes, metrics_public, " +
		"previous_token_signing_secrets, public_url, pubsub_url, rate_limit_store, rate_limits, read_timeout, resources, " +
		"sweep_interval, token_signing_secret, trusted_proxies, write_timeout"
	for _, tc := range []struct {
		name string
		args []string
		err  string
	}{
		{"unsupported database", []string{"--database-url", "mysql://db.example/kiln"},
			flag("database_url") + "has an unsupported scheme (mysql); use postgres://user@host:5432/database or a SQLite path (sqlite:path/to.db)"},
		{"bad postgres url", []string{"--database-url", "postgres://"},
			flag("database_url") + "is not a valid PostgreSQL URL; use postgres://user@host:5432/database or a SQLite path (sqlite:path/to.db)"},
		{"short signing secret", []string{"--token-signing-secret", "too-short"},
			flag("token_signing_secret") + "is 9 bytes long, shorter than 32; use at least 32 random bytes (openssl rand -base64 48)"},
		{"short previous secret", []string{"--previous-token-signing-secrets", testSecret + ",old"},
			flag("previous_token_signing_secrets") + "[1] is 3 bytes long, shorter than 32; use at least 32 random bytes"},
		{"short cookie key", []string{"--cookie-keys", "short"},
			flag("cookie_keys") + "[0] is 5 bytes long, shorter than 32; use at least 32 random bytes"},
		{"bad addr", []string{"--addr", "4000"}, flag("addr") + `"4000" is not host:port; use host:port, such as 127.0.0.1:4000`},
		{"port out of range", []string{"--addr", "127.0.0.1:99999"},
			flag("addr") + `"127.0.0.1:99999": the port "99999" is not a number from 0 to 65535; use host:port, such as 127.0.0.1:4000`},
		{"negative port", []string{"--addr", ":-1"}, flag("addr") + `":-1": the port "-1" is not a number from 0 to 65535; use host:port, such as 127.0.0.1:4000`},
		{"pubsub url of another scheme", []string{"--pubsub-url", "amqp://broker:5672"}, flag("pubsub_url") + "has an unsupported scheme (amqp); use postgres://…, redis://… or nats://…"},
		{"bad pubsub url", []string{"--pubsub-url", "redis//localhost"}, flag("pubsub_url") + "is not a valid URL; use postgres://…, redis://… or nats://…"},
		{"every problem at once", []string{"--addr", "4000", "--database-url", "mysql://x", "--token-signing-secret", "short"},
			flag("addr") + `"4000" is not host:port; use host:port, such as 127.0.0.1:4000` + "\n" +
				flag("database_url") + "has an unsupported scheme (mysql); use postgres://user@host:5432/database or a SQLite path (sqlite:path/to.db)\n" +
				flag("token_signing_secret") + "is 5 bytes long, shorter than 32; use at least 32 random bytes (openssl rand -base64 48)"},
		{"bad dev", []string{"--config", badDev}, "kiln/dsl: " + badDev + `:1: dev: want true or false, got "maybe"`},
		{"public url with a path", []string{"--public-url", "https://example.com/accounts"},
			flag("public_url") + `"https://example.com/accounts" is not an absolute http or https URL without a path; use one such as https://accounts.example.com`},
		{"relative public url", []string{"--public-url", "accounts.example.com"},
			flag("public_url") + `"accounts.example.com" is not an absolute http or https URL without a path; use one such as https://accounts.example.com`},
		{"public url of another scheme", []string{"--public-url", "ftp://example.com"},
			flag("public_url") + `"ftp://example.com" is not an absolute http or https URL without a path; use one such as https://accounts.example.com`},
		{"public url with a query", []string{"--public-url", "https://example.com?x=1"},
			flag("public_url") + `"https://example.com?xxxxx" is not an absolute http or https URL without a path; use one such as https://accounts.example.com`},
		{"public url with a user", []string{"--public-url", "https://me@example.com"},
			flag("public_url") + `"https://xxxxx@example.com" is not an absolute http or https URL without a path; use one such as https://accounts.example.com`},
		{"bad trusted proxy", []string{"--trusted-proxies", "10.0.0.1,proxy.internal"},
			flag("trusted_proxies") + `"proxy.internal" is not an IP address or CIDR range; use an address or a range, such as 10.0.0.1 or 10.0.0.0/8`},
		{"bad trusted range", []string{"--trusted-proxies", "10.0.0.0/33"},
			flag("trusted_proxies") + `"10.0.0.0/33" is not an IP address or CIDR range; use an address or a range, such as 10.0.0.1 or 10.0.0.0/8`},
		{"trusted proxy with a zone", []string{"--trusted-proxies", "fe80::1%eth0"},
			flag("trusted_proxies") + `"fe80::1%eth0" is not an IP address or CIDR range; use an address or a range, such as 10.0.0.1 or 10.0.0.0/8`},
		{"unsupported rate limit store", []string{"--rate-limit-store", "memcached://cache:11211"},
			flag("rate_limit_store") + "has an unsupported scheme (memcached); use memory, postgres://… or redis://…"},
		{"rate limit store that is no URL", []string{"--rate-limit-store", "memroy"},
			flag("rate_limit_store") + "is neither memory nor a URL; use memory, postgres://… or redis://…"},
		{"bad rate limit store url", []string{"--rate-limit-store", "redis://"},
			flag("rate_limit_store") + "is not a valid URL; use memory, postgres://… or redis://…"},
		{"bad read timeout", []string{"--read-timeout", "100ms"}, flag("read_timeout") + "must be at least 1s (100ms); use a duration of at least 1s, such as 30s"},
		{"zero read timeout", []string{"--read-timeout", "0s"}, flag("read_timeout") + "must be at least 1s (0s); use a duration of at least 1s, such as 30s"},
		{"bad write timeout", []string{"--write-timeout", "forever"}, flag("write_timeout") + `want a duration such as 90s or 336h, got "forever"`},
		{"bad idle timeout", []string{"--idle-timeout", "-1s"}, flag("idle_timeout") + "must be at least 1s (-1s); use a duration of at least 1s, such as 120s"},
		{"too small a header limit", []string{"--max-header-bytes", "100"}, flag("max_header_bytes") + "must be at least 4096 (100); use a number of bytes from 4096 to 1048576"},
		{"zero header limit", []string{"--max-header-bytes", "0"}, flag("max_header_bytes") + "must be at least 4096 (0); use a number of bytes from 4096 to 1048576"},
		{"bad header limit", []string{"--max-header-bytes", "64k"}, flag("max_header_bytes") + `want an integer, got "64k"`},
		{"empty data folder", []string{"--data-dir", ""}, flag("data_dir") + "is required; name a folder, such as kiln-data"},
		{"unknown key", []string{"--config", unknown}, "kiln/dsl: " + unknown + ":2: colour: unknown option; " + valid},
		{"unknown nested key", []string{"--config", nested}, "kiln/dsl: " + nested + ":1: database: unknown option; " + valid},
		{"a typo", []string{"--config", typo}, "kiln/dsl: " + typo + ":1: adr: unknown option; did you mean addr?"},
		{"one setting by two names", []string{"--config", twice},
			"kiln/dsl: " + twice + ":1: sweep_interval: is another name for live.sweep_interval, which " + twice + ":3 sets too; set one of them"},
		{"config file a folder", []string{"--config", folder}, "kiln: config file " + folder + ": is a folder; name a YAML or TOML file"},
		{"JSON config file", []string{"--config", jsonFile},
			"kiln: config file " + jsonFile + ": is in an unsupported format (.json); use YAML (.yaml, .yml) or TOML (.toml)"},
		{".env config file", []string{"--config", envFormat},
			"kiln: config file " + envFormat + ": is in an unsupported format (.env); use YAML (.yaml, .yml) or TOML (.toml)"},
		{"config file without an extension", []string{"--config", noExtension},
			"kiln: config file " + noExtension + ": has no extension; name a YAML (.yaml, .yml) or TOML (.toml) file"},
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
		want := flag("database_url") + "has an unsupported scheme (mysql); use postgres://user@host:5432/database or a SQLite path (sqlite:path/to.db)"
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
	if cfg.Addr != "127.0.0.1:3333" || sweepInterval(t, cfg) != 22*time.Second || cfg.DatabaseURL != "sqlite:"+filepath.Join(dir, "file.db") || cfg.PubSubURL != "" {
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
	if cfg.Addr != "127.0.0.1:1111" || sweepInterval(t, cfg) != 11*time.Second {
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
	if cfg.Addr != "127.0.0.1:4000" || sweepInterval(t, cfg) != live.DefaultSweepInterval || cfg.DatabaseURL != "sqlite:"+filepath.Join(dir, "accounts.db") {
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

// The development mode: dev-only pages for loopback clients, with
// development secrets only.
func TestConfigDevMode(t *testing.T) {
	clearEnv(t)
	cfg, err := load(t, "--data-dir", t.TempDir(), "--dev")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Dev || !cfg.DevSecrets || !cfg.Development() {
		t.Errorf("--dev: Dev %v, DevSecrets %v, Development() %v; want all true", cfg.Dev, cfg.DevSecrets, cfg.Development())
	}
	for _, addr := range []string{"localhost:4000", "[::1]:4000", "127.0.0.2:4000"} {
		if _, err := load(t, "--data-dir", t.TempDir(), "--dev", "--addr", addr); err != nil {
			t.Errorf("--dev --addr %s: %v", addr, err)
		}
	}
	t.Setenv("KILN_DEV", "true")
	if cfg, err := load(t, "--data-dir", t.TempDir()); err != nil || !cfg.Development() {
		t.Errorf("KILN_DEV=true: %v, %v", cfg, err)
	}
	t.Setenv("KILN_DEV", "")

	// Without --dev there is no development mode, whatever the secrets.
	cfg, err = load(t, "--data-dir", t.TempDir())
	if err != nil || cfg.Dev || !cfg.DevSecrets || cfg.Development() {
		t.Errorf("without --dev: %+v, %v; want development secrets and no development mode", cfg, err)
	}

	// Production secrets refuse the development mode, from any source.
	// The problem is the development mode's, named where it was turned on.
	refused := "dev: development mode refuses production secrets; unset token_signing_secret, previous_token_signing_secrets and cookie_keys " +
		"(KILN_TOKEN_SIGNING_SECRET, KILN_PREVIOUS_TOKEN_SIGNING_SECRETS, KILN_COOKIE_KEYS), or run without --dev"
	devFile := writeFile(t, "kiln.yaml", "dev: true\ntoken_signing_secret: "+testSecret+"\n")
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--dev", "--token-signing-secret", testSecret}, "kiln/dsl: flag --dev: " + refused},
		{[]string{"--dev", "--cookie-keys", testCookieKey}, "kiln/dsl: flag --dev: " + refused},
		{[]string{"--dev", "--previous-token-signing-secrets", testSecret}, "kiln/dsl: flag --dev: " + refused},
		{[]string{"--config", devFile}, "kiln/dsl: " + devFile + ":1: " + refused},
	} {
		args := tc.args
		dir := filepath.Join(t.TempDir(), "data")
		cfg, err := load(t, append([]string{"--data-dir", dir}, args...)...)
		if err == nil || err.Error() != tc.err || cfg != nil {
			t.Errorf("%v: %v, %v; want the error:\n%s", args, cfg, err, tc.err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("--dev %v wrote the data folder before refusing: %v", args, err)
		}
	}
	t.Setenv("KILN_COOKIE_KEYS", testCookieKey)
	t.Setenv("KILN_DEV", "1")
	if _, err := load(t, "--data-dir", t.TempDir()); err == nil || err.Error() != "kiln/dsl: variable KILN_DEV: "+refused {
		t.Errorf("--dev with KILN_COOKIE_KEYS: %v", err)
	}
	t.Setenv("KILN_COOKIE_KEYS", "")
	t.Setenv("KILN_DEV", "")

	// serve refuses too, before opening anything.
	dir := filepath.Join(t.TempDir(), "data")
	if _, _, err := run(t, "serve", "--dev", "--data-dir", dir, "--token-signing-secret", testSecret); err == nil || err.Error() != "kiln/dsl: flag --dev: "+refused {
		t.Errorf("serve --dev with a signing secret: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("serve --dev wrote the data folder before refusing: %v", err)
	}

	// It listens on loopback only.
	for _, addr := range []string{"0.0.0.0:4000", ":4000", "192.0.2.1:4000", "example.com:4000"} {
		want := `kiln/dsl: flag --dev: dev: development mode listens on loopback only; addr "` + addr + `" is not 127.0.0.1, [::1] or localhost`
		if _, err := load(t, "--data-dir", t.TempDir(), "--dev", "--addr", addr); err == nil || err.Error() != want {
			t.Errorf("--dev --addr %s: %v, want %s", addr, err, want)
		}
	}

	// A Config made in code with production secrets is no development one.
	if c := (&cli.Config{Dev: true, TokenSigningSecret: testSecret, CookieKeys: []string{testCookieKey}}); c.Development() {
		t.Errorf("Dev with production secrets reports Development()")
	}
}

func TestConfigPublicURLAndProxies(t *testing.T) {
	clearEnv(t)
	secrets := []string{"--data-dir", t.TempDir(), "--token-signing-secret", testSecret, "--cookie-keys", testCookieKey}
	cfg, err := load(t, secrets...)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PublicURL != "" || cfg.HTTPS() || cfg.TrustedProxies != nil || cfg.RateLimitStore != "memory" {
		t.Errorf("defaults: public_url %q, HTTPS() %v, trusted_proxies %v, rate_limit_store %q; want none, false, none, memory",
			cfg.PublicURL, cfg.HTTPS(), cfg.TrustedProxies, cfg.RateLimitStore)
	}
	if cfg.ReadTimeout != 30*time.Second || cfg.WriteTimeout != 30*time.Second || cfg.IdleTimeout != 120*time.Second || cfg.MaxHeaderBytes != 64<<10 {
		t.Errorf("default timeouts: read %s, write %s, idle %s, header %d", cfg.ReadTimeout, cfg.WriteTimeout, cfg.IdleTimeout, cfg.MaxHeaderBytes)
	}

	t.Setenv("KILN_PUBLIC_URL", "https://accounts.example.com/")
	t.Setenv("KILN_TRUSTED_PROXIES", "10.0.0.7, 192.168.0.0/16,2001:db8::/32, ::ffff:172.16.0.0/108")
	t.Setenv("KILN_RATE_LIMIT_STORE", "redis://cache.internal:6379/1")
	t.Setenv("KILN_READ_TIMEOUT", "5s")
	t.Setenv("KILN_MAX_HEADER_BYTES", "16384")
	cfg, err = load(t, secrets...)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PublicURL != "https://accounts.example.com" || !cfg.HTTPS() {
		t.Errorf("public_url %q, HTTPS() %v; want https://accounts.example.com, true", cfg.PublicURL, cfg.HTTPS())
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.7/32"), netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("172.16.0.0/12")}
	if !slices.Equal(cfg.TrustedProxies, want) {
		t.Errorf("trusted_proxies %v, want %v", cfg.TrustedProxies, want)
	}
	for addr, trusted := range map[string]bool{
		"10.0.0.7": true, "10.0.0.8": false, "192.168.44.1": true, "::ffff:192.168.44.1": true,
		"2001:db8::1": true, "2001:db9::1": false, "172.31.0.1": true, "127.0.0.1": false, "fe80::1%eth0": false,
	} {
		if got := cfg.TrustedProxy(netip.MustParseAddr(addr)); got != trusted {
			t.Errorf("TrustedProxy(%s) = %v, want %v", addr, got, trusted)
		}
	}
	if cfg.RateLimitStore != "redis://cache.internal:6379/1" || cfg.ReadTimeout != 5*time.Second || cfg.MaxHeaderBytes != 16384 {
		t.Errorf("rate_limit_store %q, read_timeout %s, max_header_bytes %d", cfg.RateLimitStore, cfg.ReadTimeout, cfg.MaxHeaderBytes)
	}

	t.Setenv("KILN_PUBLIC_URL", "http://127.0.0.1:4000")
	if cfg, err = load(t, secrets...); err != nil || cfg.HTTPS() {
		t.Errorf("an http public_url: %v, HTTPS() %v", err, cfg.HTTPS())
	}
	// A list in the config file.
	file := writeFile(t, "kiln.yaml", "trusted_proxies:\n  - 10.1.0.0/16\n  - ::1\nrate_limit_store: postgres://db.internal/app\n")
	t.Setenv("KILN_TRUSTED_PROXIES", "")
	t.Setenv("KILN_RATE_LIMIT_STORE", "")
	if cfg, err = load(t, append(secrets, "--config", file)...); err != nil ||
		!slices.Equal(cfg.TrustedProxies, []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("::1/128")}) ||
		cfg.RateLimitStore != "postgres://db.internal/app" {
		t.Errorf("from the file: %v, %v", cfg, err)
	}
}

// An existing development secret that other users may read is refused:
// it may have leaked.
func TestConfigDevelopmentSecretFileMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no such file modes")
	}
	clearEnv(t)
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := load(t, "--data-dir", dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the data folder: %v, mode %v; want 0700", err, fi.Mode())
	}
	for _, name := range []string{"dev-token-signing-secret", "dev-cookie-key"} {
		for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620} {
			path := filepath.Join(dir, name)
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("kiln: development secret %s is open to other users (mode %04o); run chmod 600 %s, or delete it to make a new one", path, mode, path)
			if cfg, err := load(t, "--data-dir", dir); err == nil || err.Error() != want || cfg != nil {
				t.Errorf("%s at %04o: %v, %v; want the error:\n%s", name, mode, cfg, err, want)
			}
		}
		if err := os.Chmod(filepath.Join(dir, name), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := load(t, "--data-dir", dir); err != nil {
			t.Errorf("after chmod 600 %s: %v", name, err)
		}
	}
}

// With only a token signing secret, the cookie key is derived from it
// (HKDF, its own label): two nodes with their own data folders get the same
// key, no development key is written, and the key is not the secret. The
// previous secrets give the older keys. Both set: used as they are.
func TestConfigCookieKeyFromSigningSecret(t *testing.T) {
	clearEnv(t)
	const previous = "cli-test-previous-signing-secret-0123456789abcdef"
	var nodes []*cli.Config
	for range 2 {
		dir := filepath.Join(t.TempDir(), "data")
		cfg, err := load(t, "--data-dir", dir, "--token-signing-secret", testSecret)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.DevSecrets || len(cfg.CookieKeys) != 1 || len(cfg.CookieKeys[0]) < 32 || cfg.CookieKeys[0] == testSecret {
			t.Fatalf("derived cookie key: %+v", cfg)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("the data folder was made although no development secret was needed: %v", err)
		}
		nodes = append(nodes, cfg)
	}
	if !slices.Equal(nodes[0].CookieKeys, nodes[1].CookieKeys) {
		t.Errorf("two nodes with one signing secret derived different cookie keys")
	}
	if keys, err := cli.DeriveCookieKeys(testSecret); err != nil || !slices.Equal(keys, nodes[0].CookieKeys) {
		t.Errorf("DeriveCookieKeys = %v, %v; want the configuration's %v", keys, err, nodes[0].CookieKeys)
	}
	other, err := cli.DeriveCookieKeys(previous)
	if err != nil || other[0] == nodes[0].CookieKeys[0] {
		t.Fatalf("another secret derived %v, %v", other, err)
	}
	rotated, err := load(t, "--data-dir", t.TempDir(), "--token-signing-secret", testSecret, "--previous-token-signing-secrets", previous)
	if err != nil || !slices.Equal(rotated.CookieKeys, []string{nodes[0].CookieKeys[0], other[0]}) {
		t.Errorf("after a rotation the cookie keys are %v, %v; want the current and the previous secret's", rotated.CookieKeys, err)
	}
	both, err := load(t, "--data-dir", t.TempDir(), "--token-signing-secret", testSecret, "--cookie-keys", testCookieKey)
	if err != nil || !slices.Equal(both.CookieKeys, []string{testCookieKey}) {
		t.Errorf("both set: cookie keys %v, %v; want the given one", both.CookieKeys, err)
	}
}

// A setting has one rule, whatever its source: a flag, a variable or a
// file key are refused alike, each error naming where the value was
// written. sweep_interval at the top level is live.sweep_interval under
// another name, checked by live's rule when the app reads its section.
func TestConfigOneRulePerSetting(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	secrets := []string{"--data-dir", dir, "--token-signing-secret", testSecret, "--cookie-keys", testCookieKey}
	topFile := writeFile(t, "kiln.yaml", "addr: 127.0.0.1:4001\nread_timeout: 10ms\nsweep_interval: 1ms\n")
	liveFile := writeFile(t, "kiln.yaml", "live:\n  sweep_interval: 1ms\n")

	const readRule = "read_timeout: must be at least 1s (10ms); use a duration of at least 1s, such as 30s"
	for _, tc := range []struct {
		name, variable string
		args           []string
		source         string
	}{
		{"flag", "", []string{"--read-timeout", "10ms"}, "flag --read-timeout"},
		{"variable", "KILN_READ_TIMEOUT", nil, "variable KILN_READ_TIMEOUT"},
		{"file", "", []string{"--config", topFile}, topFile + ":2"},
	} {
		t.Run("read_timeout from a "+tc.name, func(t *testing.T) {
			if tc.variable != "" {
				t.Setenv(tc.variable, "10ms")
			}
			_, err := load(t, append(slices.Clone(secrets), tc.args...)...)
			if want := "kiln/dsl: " + tc.source + ": " + readRule; err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error:\n%v\nwant it to start with:\n%s", err, want)
			}
		})
	}

	const sweepRule = "live.sweep_interval: must be at least 1s (1ms); use a duration of at least 1s, such as 30s"
	for _, tc := range []struct {
		name, variable string
		args           []string
		source         string
	}{
		{"flag", "", []string{"--sweep-interval", "1ms"}, "flag --sweep-interval"},
		{"top-level variable", "KILN_SWEEP_INTERVAL", nil, "variable KILN_SWEEP_INTERVAL"},
		{"live variable", "KILN_LIVE__SWEEP_INTERVAL", nil, "variable KILN_LIVE__SWEEP_INTERVAL"},
		{"top-level file key", "", []string{"--config", writeFile(t, "kiln.yaml", "sweep_interval: 1ms\n")}, "kiln.yaml:1"},
		{"live file key", "", []string{"--config", liveFile}, "kiln.yaml:2"},
	} {
		t.Run("sweep_interval from a "+tc.name, func(t *testing.T) {
			if tc.variable != "" {
				t.Setenv(tc.variable, "1ms")
			}
			_, _, err := run(t, append([]string{"migrate"}, append(slices.Clone(secrets), tc.args...)...)...)
			want := tc.source + ": " + sweepRule
			if err == nil || !strings.HasPrefix(err.Error(), "kiln/dsl: ") || !strings.HasSuffix(err.Error(), want) {
				t.Errorf("error:\n%v\nwant one ending with:\n%s", err, want)
			}
		})
	}

	// Flags over variables over the file, whichever name each uses.
	t.Setenv("KILN_LIVE__SWEEP_INTERVAL", "7s")
	cfg, err := load(t, append(slices.Clone(secrets), "--config", liveFile)...)
	if err != nil || sweepInterval(t, cfg) != 7*time.Second {
		t.Errorf("KILN_LIVE__SWEEP_INTERVAL over the file: %v, %v", cfg, err)
	}
	if cfg, err = load(t, append(slices.Clone(secrets), "--config", liveFile, "--sweep-interval", "9s")...); err != nil || sweepInterval(t, cfg) != 9*time.Second {
		t.Errorf("--sweep-interval over KILN_LIVE__SWEEP_INTERVAL: %v, %v", cfg, err)
	}
	// One source may not give both names.
	t.Setenv("KILN_SWEEP_INTERVAL", "8s")
	want := "kiln/dsl: variable KILN_SWEEP_INTERVAL: sweep_interval: is another name for live.sweep_interval, which variable KILN_LIVE__SWEEP_INTERVAL sets too; set one of them"
	if _, err = load(t, append(slices.Clone(secrets), "--config", liveFile)...); err == nil || err.Error() != want {
		t.Errorf("KILN_SWEEP_INTERVAL and KILN_LIVE__SWEEP_INTERVAL: %v, want %q", err, want)
	}
	t.Setenv("KILN_LIVE__SWEEP_INTERVAL", "")
	if cfg, err = load(t, append(slices.Clone(secrets), "--config", liveFile)...); err != nil || sweepInterval(t, cfg) != 8*time.Second {
		t.Errorf("KILN_SWEEP_INTERVAL over the file: %v, %v", cfg, err)
	}
	if cfg, err = load(t, append(slices.Clone(secrets), "--config", liveFile, "--sweep-interval", "9s")...); err != nil || sweepInterval(t, cfg) != 9*time.Second {
		t.Errorf("--sweep-interval over the variables: %v, %v", cfg, err)
	}
}

// With problems in its own settings and in the app's sections, the command
// line reports them all at once, each where it was written.
func TestConfigEveryProblemAtOnce(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	file := writeFile(t, "kiln.yaml", "read_timeout: 10ms\nlive:\n  write_wait: 0s\n  sweep_interval: 1ms\n")
	_, _, err := run(t, "migrate", "--data-dir", dir, "--config", file, "--addr", "4000")
	want := []string{
		"kiln/dsl: flag --addr: addr: \"4000\" is not host:port; use host:port, such as 127.0.0.1:4000",
		"kiln/dsl: " + file + ":1: read_timeout: must be at least 1s (10ms); use a duration of at least 1s, such as 30s",
		"kiln/dsl: " + file + ":4: live.sweep_interval: must be at least 1s (1ms); use a duration of at least 1s, such as 30s",
		"kiln/dsl: " + file + ":3: live.write_wait: must be positive (0s); use a positive duration",
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("error:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("checking the sections wrote to the data folder: %v", entries)
	}
}

// No message shows a password written in a setting, whatever the setting
// (every option of cli.Schema, the sweep_interval alias, live's URLs),
// its source (a flag, a variable, the config file) or what is wrong with
// the value: a URL's user information and query are shown as xxxxx, and a
// secret's value not at all.
func TestConfigNeverShowsPasswords(t *testing.T) {
	clearEnv(t)
	const password = "Hunter2SuperSecretPW"
	values := []string{
		"mysql://u:" + password + "@db.example/kiln",     // a scheme no setting takes
		"REDIS://u:" + password + "@",                    // upper case, no host
		" unix://u:" + password + "@/run/redis.sock",     // a leading space
		"https://u:" + password + "@example.com/path",    // a user and a path
		"https://u:" + password + "@[::1",                // a URL that does not parse
		"ftp://example.com/?password=" + password,        // in the query
		"redis://u:pass/word?" + password + "#x@cache:0", // a password holding / ? #
		"u:" + password + "@db.example:99999",            // no scheme
	}
	keys := []string{"sweep_interval"}
	for _, o := range cli.Schema.Options {
		keys = append(keys, o.Name)
	}
	liveKeys := []string{"public_url", "allowed_origins"}
	// Each value breaks at least these settings' rules, each named in the
	// error.
	named := []string{"rate_limit_store", "pubsub_url", "public_url", "live.public_url", "live.allowed_origins"}

	check := func(t *testing.T, what string, args []string, named ...string) {
		t.Helper()
		out, errOut, err := run(t, append([]string{"migrate", "--print"}, args...)...)
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		if strings.Contains(err.Error()+out+errOut, "Hunter2") {
			t.Errorf("%s: the password is shown:\n%v\n%s%s", what, err, out, errOut)
		}
		for _, key := range named {
			if !strings.Contains(err.Error(), " "+key+": ") {
				t.Errorf("%s: no problem with %s:\n%v", what, key, err)
			}
		}
	}
	for i, v := range values {
		t.Run(fmt.Sprintf("value %d", i), func(t *testing.T) {
			// Flags: a bool flag refuses its value when it is parsed,
			// before the configuration is read, so each is given alone.
			var args []string
			for _, key := range keys {
				if o := cli.Schema.Option(key); o != nil && o.Kind == dsl.Bool {
					check(t, "flag --"+key, []string{"--" + strings.ReplaceAll(key, "_", "-") + "=" + v})
					continue
				}
				args = append(args, "--"+strings.ReplaceAll(key, "_", "-"), v)
			}
			check(t, "flags", args, named[:3]...)

			var file strings.Builder
			for _, key := range keys {
				fmt.Fprintf(&file, "%s: %q\n", key, v)
			}
			file.WriteString("live:\n")
			for _, key := range liveKeys {
				fmt.Fprintf(&file, "  %s: %q\n", key, v)
			}
			check(t, "config file", []string{"--config", writeFile(t, "kiln.yaml", file.String())}, named...)

			for _, key := range keys {
				t.Setenv("KILN_"+strings.ToUpper(key), v)
			}
			for _, key := range liveKeys {
				t.Setenv("KILN_LIVE__"+strings.ToUpper(key), v)
			}
			check(t, "variables", nil, named...)
		})
	}
	// A secret too short is shown by its length alone.
	t.Run("short secrets", func(t *testing.T) {
		clearEnv(t)
		check(t, "flags", []string{"--token-signing-secret", password, "--previous-token-signing-secrets", password, "--cookie-keys", password},
			"token_signing_secret", "previous_token_signing_secrets", "cookie_keys")
	})
}

// A URL setting is read without the spaces around it, its scheme in any
// case: REDIS://… is redis://…, and HTTPS://… is served as https.
func TestConfigURLsTrimmedSchemeInAnyCase(t *testing.T) {
	clearEnv(t)
	t.Setenv("KILN_RATE_LIMIT_STORE", " REDIS://cache.internal:6379/0 ")
	t.Setenv("KILN_PUBSUB_URL", "NATS://nats.internal:4222")
	cfg, err := load(t, "--data-dir", t.TempDir(), "--token-signing-secret", testSecret,
		"--public-url", "HTTPS://accounts.example.com", "--database-url", " Postgres://db.internal/accounts", "--addr", " 127.0.0.1:4001")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{
		{cfg.RateLimitStore, "redis://cache.internal:6379/0"},
		{cfg.PubSubURL, "nats://nats.internal:4222"},
		{cfg.PublicURL, "https://accounts.example.com"},
		{cfg.DatabaseURL, "postgres://db.internal/accounts"},
		{cfg.Addr, "127.0.0.1:4001"},
	} {
		if c[0] != c[1] {
			t.Errorf("read %q, want %q", c[0], c[1])
		}
	}
	if !cfg.HTTPS() {
		t.Error("HTTPS://… is not served as https")
	}
	t.Setenv("KILN_RATE_LIMIT_STORE", "Memory")
	if cfg, err = load(t, "--data-dir", t.TempDir(), "--token-signing-secret", testSecret); err != nil || cfg.RateLimitStore != "memory" {
		t.Errorf("Memory: %v, %v", cfg, err)
	}
}
