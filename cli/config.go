package cli

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/kiln-go/kiln/dsl"
	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// Config is an app's run-time configuration, read by viper from flags,
// KILN_… environment variables and an optional config file (YAML or TOML,
// --config), in that order of precedence.
type Config struct {
	// Addr is where serve listens. Default: 127.0.0.1:4000.
	Addr string `mapstructure:"addr"`
	// DataDir holds the SQLite database and development secrets.
	// Default: ./kiln-data.
	DataDir string `mapstructure:"data_dir"`
	// DatabaseURL is postgres://… or a SQLite path (sqlite:…, file:…).
	// Default: sqlite:<data_dir>/accounts.db.
	DatabaseURL string `mapstructure:"database_url"`
	// PubSubURL connects the nodes' live endpoints; empty for a single node.
	PubSubURL string `mapstructure:"pubsub_url"`
	// TokenSigningSecret signs tokens; at least 32 bytes. Default: a
	// development secret kept in DataDir, with a warning.
	TokenSigningSecret string `mapstructure:"token_signing_secret"`
	// PreviousTokenSigningSecrets still verify tokens signed before a
	// rotation of TokenSigningSecret.
	PreviousTokenSigningSecrets []string `mapstructure:"previous_token_signing_secrets"`
	// CookieKeys seal session cookies, newest first (rotation); each at
	// least 32 bytes. Default: derived from TokenSigningSecret when that is
	// set (see DeriveCookieKeys), else a development key kept in DataDir.
	CookieKeys []string `mapstructure:"cookie_keys"`
	// SweepInterval, when set, overrides the live section's sweep_interval
	// (how often the live endpoint checks its sessions' tokens against the
	// store; 30s by default). Zero: not set.
	SweepInterval time.Duration `mapstructure:"sweep_interval"`

	// Dev turns on the development mode: an app may serve dev-only pages
	// (a mailbox of reset links, say), to loopback clients only. The mode
	// refuses production secrets and a listen address that is not loopback.
	// Default: false.
	Dev bool `mapstructure:"dev"`
	// PublicURL is the URL the app is served at, such as
	// https://accounts.example.com behind a TLS proxy: an absolute http or
	// https URL with no path. Under https the app marks its cookies Secure
	// and sends HSTS. Empty: not set.
	PublicURL string `mapstructure:"public_url"`
	// TrustedProxies are the peers (addresses and CIDR ranges) whose
	// X-Forwarded-For and X-Forwarded-Proto headers are believed. Empty: no
	// peer is trusted, and the client address is the connection's.
	TrustedProxies []netip.Prefix `mapstructure:"-"`
	// RateLimitStore keeps the brute-force limits' counters: "memory" (per
	// node, the default), or a postgres://… or redis://… URL to share them
	// between nodes.
	RateLimitStore string `mapstructure:"rate_limit_store"`
	// MetricsPublic serves an app's /metrics to every client; by default
	// only clients on this machine (loopback, not through a proxy) get it.
	MetricsPublic bool `mapstructure:"metrics_public"`
	// ReadTimeout bounds reading a whole request, body included; it also
	// bounds reading its header, up to 10s. Zero: 30s.
	ReadTimeout time.Duration `mapstructure:"read_timeout"`
	// WriteTimeout bounds writing a response, from the end of reading its
	// request's header. A WebSocket clears it when it takes the connection
	// over, so live sockets are not cut. Zero: 30s.
	WriteTimeout time.Duration `mapstructure:"write_timeout"`
	// IdleTimeout is how long a kept-alive connection may wait for its next
	// request. Zero: 120s.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// MaxHeaderBytes bounds a request's header; a larger one is answered
	// 431. Zero: 64 KiB.
	MaxHeaderBytes int `mapstructure:"max_header_bytes"`

	// DevSecrets is true when a development secret or key was used.
	DevSecrets bool `mapstructure:"-"`
	// DSL holds the declaration overrides: the config file's resources,
	// live and rate_limits sections, and KILN_RESOURCES__…, KILN_LIVE__… and
	// KILN_RATE_LIMITS__… variables. Pass it to resource.WithConfig,
	// live.SettingsFrom and ratelimit.LimitsFrom.
	DSL *dsl.File `mapstructure:"-"`
}

// keys are the configuration keys, their defaults and help; a boolean one
// is a flag without a value (--dev).
var keys = []struct {
	name, def, help string
	boolean         bool
}{
	{"addr", "127.0.0.1:4000", "address to listen on (host:port)", false},
	{"data_dir", "kiln-data", "folder for the SQLite database and development secrets", false},
	{"database_url", "", "postgres://… or a SQLite path (default sqlite:<data_dir>/accounts.db)", false},
	{"pubsub_url", "", "postgres://…, redis://… or nats://… to connect several nodes (default in-process)", false},
	{"token_signing_secret", "", "secret that signs tokens, at least 32 bytes (default: a development secret)", false},
	{"previous_token_signing_secrets", "", "comma-separated secrets that still verify tokens signed before a rotation", false},
	{"cookie_keys", "", "comma-separated keys that seal session cookies, newest first (default: derived from the token signing secret, else a development key)", false},
	{"sweep_interval", "", "how often live sessions are checked against the token store (default: the live section's, 30s)", false},
	{"dev", "false", "development mode: dev-only pages for loopback clients; refuses production secrets", true},
	{"public_url", "", "URL the app is served at, such as https://accounts.example.com (https: Secure cookies and HSTS)", false},
	{"trusted_proxies", "", "comma-separated proxy addresses or CIDR ranges whose X-Forwarded-For/-Proto headers are believed", false},
	{"rate_limit_store", "memory", "where brute-force limit counters live: memory (per node), postgres://… or redis://… (shared)", false},
	{"read_timeout", "30s", "longest time to read a request, body included", false},
	{"write_timeout", "30s", "longest time to write a response (live sockets are not bound by it)", false},
	{"idle_timeout", "120s", "longest time a kept-alive connection waits for its next request", false},
	{"max_header_bytes", "65536", "largest request header, in bytes (a larger one is answered 431)", false},
	{"metrics_public", "false", "serve /metrics to every client, not only to this machine's", true},
}

// AddFlags declares the configuration flags, and --config.
func AddFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "configuration file (YAML or TOML) [KILN_CONFIG]")
	for _, k := range keys {
		name, help := strings.ReplaceAll(k.name, "_", "-"), k.help+" [KILN_"+strings.ToUpper(k.name)+"]"
		if k.boolean {
			fs.Bool(name, false, help)
			continue
		}
		fs.String(name, k.def, help)
	}
}

// LoadConfig reads the configuration: flags over KILN_… environment
// variables over the config file over defaults. It validates every value
// and reports all problems at once. Missing secrets are replaced by
// development ones kept in DataDir, with one warning.
func LoadConfig(fs *pflag.FlagSet, logger *slog.Logger) (*Config, error) {
	cfg, err := readConfig(fs)
	if err != nil {
		return nil, err
	}
	if err := cfg.devSecrets(logger); err != nil {
		return nil, err
	}
	return cfg, nil
}

// readConfig reads and validates the configuration, leaving missing
// secrets empty.
func readConfig(fs *pflag.FlagSet) (*Config, error) {
	v := viper.New()
	v.SetEnvPrefix("KILN")
	v.AutomaticEnv()
	for _, k := range keys {
		v.SetDefault(k.name, k.def)
		if f := fs.Lookup(strings.ReplaceAll(k.name, "_", "-")); f != nil {
			if err := v.BindPFlag(k.name, f); err != nil {
				return nil, err
			}
		}
	}
	path := configPath(fs)
	var fileDSL *dsl.File
	if path != "" {
		v.SetConfigFile(path)
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("kiln: config file %s: %w", path, err)
		}
		var known []string
		for _, k := range keys {
			known = append(known, k.name)
		}
		for _, k := range v.AllKeys() {
			if strings.HasPrefix(k, "resources.") || strings.HasPrefix(k, "live.") || strings.HasPrefix(k, "rate_limits.") {
				continue // the declaration overrides: see Config.DSL
			}
			if !slices.Contains(known, k) {
				msg := fmt.Sprintf("kiln: config file %s: unknown key %q", path, k)
				if near := dsl.Nearest(k, known); near != "" {
					msg += "; did you mean " + near + "?"
				}
				return nil, errors.New(msg)
			}
		}
		df, err := dsl.LoadFile(path)
		if err != nil {
			return nil, err
		}
		for k := range df.Values {
			if k != "resources" && k != "live" && k != "rate_limits" {
				delete(df.Values, k)
			}
		}
		fileDSL = df
	}
	cfg := &Config{
		DSL:                dsl.Merge(fileDSL, dsl.FromEnv("KILN", os.Environ())),
		Addr:               v.GetString("addr"),
		DataDir:            v.GetString("data_dir"),
		DatabaseURL:        v.GetString("database_url"),
		PubSubURL:          v.GetString("pubsub_url"),
		TokenSigningSecret: v.GetString("token_signing_secret"),
	}
	cfg.CookieKeys = listValue(v, "cookie_keys")
	cfg.PreviousTokenSigningSecrets = listValue(v, "previous_token_signing_secrets")
	var problems []error
	if s := v.GetString("sweep_interval"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Second {
			problems = append(problems, fmt.Errorf("sweep_interval %q: want a duration of at least 1s, such as 30s", s))
		}
		cfg.SweepInterval = d
	}
	if s := v.GetString("dev"); s != "" {
		dev, err := strconv.ParseBool(s)
		if err != nil {
			problems = append(problems, fmt.Errorf("dev %q: want true or false", s))
		}
		cfg.Dev = dev
	}
	cfg.PublicURL = strings.TrimSuffix(v.GetString("public_url"), "/")
	cfg.RateLimitStore = v.GetString("rate_limit_store")
	if public, err := strconv.ParseBool(v.GetString("metrics_public")); err != nil {
		problems = append(problems, fmt.Errorf("metrics_public %q: want true or false", v.GetString("metrics_public")))
	} else {
		cfg.MetricsPublic = public
	}
	for _, item := range listValue(v, "trusted_proxies") {
		p, err := parseProxy(item)
		if err != nil {
			problems = append(problems, fmt.Errorf("trusted_proxies: %q is not an IP address or CIDR range, such as 10.0.0.1 or 10.0.0.0/8", item))
			continue
		}
		cfg.TrustedProxies = append(cfg.TrustedProxies, p)
	}
	for _, t := range []struct {
		key string
		to  *time.Duration
	}{{"read_timeout", &cfg.ReadTimeout}, {"write_timeout", &cfg.WriteTimeout}, {"idle_timeout", &cfg.IdleTimeout}} {
		s := v.GetString(t.key)
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Second {
			problems = append(problems, fmt.Errorf("%s %q: want a duration of at least 1s, such as 30s", t.key, s))
		}
		*t.to = d
	}
	if s := v.GetString("max_header_bytes"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < minHeaderBytes || n > maxHeaderBytes {
			problems = append(problems, fmt.Errorf("max_header_bytes %q: want a number of bytes from %d to %d", s, minHeaderBytes, maxHeaderBytes))
		}
		cfg.MaxHeaderBytes = n
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = "sqlite:" + filepath.Join(cfg.DataDir, "accounts.db")
	}
	problems = append(problems, cfg.validate()...)
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return cfg, nil
}

func (c *Config) validate() []error {
	var problems []error
	if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
		problems = append(problems, fmt.Errorf("addr %q: want host:port, such as 127.0.0.1:4000", c.Addr))
	}
	if c.DataDir == "" {
		problems = append(problems, errors.New("data_dir: must not be empty"))
	}
	switch {
	case strings.HasPrefix(c.DatabaseURL, "postgres://"), strings.HasPrefix(c.DatabaseURL, "postgresql://"):
		if u, err := url.Parse(c.DatabaseURL); err != nil || u.Host == "" {
			problems = append(problems, fmt.Errorf("database_url: not a valid PostgreSQL URL; want postgres://user@host:5432/database"))
		}
	case strings.Contains(c.DatabaseURL, "://"):
		problems = append(problems, fmt.Errorf("database_url: unsupported scheme; use postgres://… or a SQLite path (sqlite:path/to.db)"))
	}
	if c.PubSubURL != "" {
		u, err := url.Parse(c.PubSubURL)
		if err != nil || u.Host == "" {
			problems = append(problems, fmt.Errorf("pubsub_url: not a valid URL; want postgres://…, redis://… or nats://…"))
		}
	}
	if s := c.TokenSigningSecret; s != "" && len(s) < authentication.MinSecretLength {
		problems = append(problems, fmt.Errorf("token_signing_secret: %d bytes is too short; use at least %d random bytes (openssl rand -base64 48)", len(s), authentication.MinSecretLength))
	}
	for i, s := range c.PreviousTokenSigningSecrets {
		if len(s) < authentication.MinSecretLength {
			problems = append(problems, fmt.Errorf("previous_token_signing_secrets[%d]: %d bytes is too short; use at least %d random bytes", i, len(s), authentication.MinSecretLength))
		}
	}
	for i, k := range c.CookieKeys {
		if len(k) < 32 {
			problems = append(problems, fmt.Errorf("cookie_keys[%d]: %d bytes is too short; use at least 32 random bytes", i, len(k)))
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			problems = append(problems, fmt.Errorf("public_url %q: want an absolute http or https URL without a path, such as https://accounts.example.com", c.PublicURL))
		}
	}
	switch s := c.RateLimitStore; {
	case s == "" || s == "memory":
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"), strings.HasPrefix(s, "redis://"), strings.HasPrefix(s, "rediss://"):
		if u, err := url.Parse(s); err != nil || u.Host == "" {
			problems = append(problems, errors.New("rate_limit_store: not a valid URL; want memory, postgres://… or redis://…"))
		}
	default:
		problems = append(problems, errors.New("rate_limit_store: unsupported store; want memory, postgres://… or redis://…"))
	}
	if c.Dev {
		if c.TokenSigningSecret != "" || len(c.CookieKeys) > 0 || len(c.PreviousTokenSigningSecrets) > 0 {
			problems = append(problems, errors.New("dev: development mode refuses production secrets; unset token_signing_secret, previous_token_signing_secrets and cookie_keys (KILN_TOKEN_SIGNING_SECRET, KILN_PREVIOUS_TOKEN_SIGNING_SECRETS, KILN_COOKIE_KEYS), or run without --dev"))
		}
		if host, _, err := net.SplitHostPort(c.Addr); err == nil && !loopbackHost(host) {
			problems = append(problems, fmt.Errorf("dev: development mode listens on loopback only; addr %q is not 127.0.0.1, [::1] or localhost", c.Addr))
		}
	}
	return problems
}

// minHeaderBytes and maxHeaderBytes bound max_header_bytes.
const (
	minHeaderBytes = 4 << 10
	maxHeaderBytes = 1 << 20
)

// loopbackHost reports whether a listen host is a loopback address or
// localhost (an empty host listens on every interface).
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// parseProxy parses a trusted proxy: an address (a one-address range) or a
// CIDR range, without a zone.
func parseProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("an address with a zone")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// HTTPS reports whether PublicURL is an https URL: the app is served over
// TLS, by itself or by a proxy in front of it.
func (c *Config) HTTPS() bool { return strings.HasPrefix(c.PublicURL, "https://") }

// Development reports whether dev-only pages may be served: Dev is set and
// the secrets are development ones. LoadConfig refuses Dev with production
// secrets; this also holds for a Config made in code.
func (c *Config) Development() bool { return c.Dev && c.DevSecrets }

// TrustedProxy reports whether a peer is one of TrustedProxies, whose
// X-Forwarded-For and X-Forwarded-Proto headers may be believed.
func (c *Config) TrustedProxy(peer netip.Addr) bool {
	peer = peer.Unmap().WithZone("")
	for _, p := range c.TrustedProxies {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// cookieKeyLabel is the HKDF label (info) that derives a cookie key from a
// token signing secret. A new label would make new keys, signing every
// session out.
const cookieKeyLabel = "kiln cookie key v1"

// DeriveCookieKeys derives cookie keys from token signing secrets with
// HKDF-SHA256 under the label "kiln cookie key v1", one key per secret in
// the same order: the current secret's first, then the previous secrets'
// (so a cookie sealed before a rotation still opens). Nodes that share
// their signing secrets derive the same keys; a cookie key is never a
// signing secret, and knowing one does not give the other.
func DeriveCookieKeys(signing string, previous ...string) ([]string, error) {
	var keys []string
	for _, s := range append([]string{signing}, previous...) {
		k, err := hkdf.Key(sha256.New, []byte(s), nil, cookieKeyLabel, 48)
		if err != nil {
			return nil, fmt.Errorf("kiln: derive cookie key: %w", err)
		}
		keys = append(keys, base64.RawURLEncoding.EncodeToString(k))
	}
	return keys, nil
}

// devSecrets fills missing secrets: cookie keys derived from a given
// signing secret, else development secrets from files in DataDir, creating
// them.
func (c *Config) devSecrets(logger *slog.Logger) error {
	if c.TokenSigningSecret != "" && len(c.CookieKeys) == 0 {
		keys, err := DeriveCookieKeys(c.TokenSigningSecret, c.PreviousTokenSigningSecrets...)
		if err != nil {
			return err
		}
		c.CookieKeys = keys
	}
	if c.TokenSigningSecret != "" && len(c.CookieKeys) > 0 {
		return nil
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("kiln: data_dir: %w", err)
	}
	if c.TokenSigningSecret == "" {
		s, err := devSecret(filepath.Join(c.DataDir, "dev-token-signing-secret"))
		if err != nil {
			return err
		}
		c.TokenSigningSecret = s
	}
	if len(c.CookieKeys) == 0 {
		s, err := devSecret(filepath.Join(c.DataDir, "dev-cookie-key"))
		if err != nil {
			return err
		}
		c.CookieKeys = []string{s}
	}
	c.DevSecrets = true
	logger.Warn("kiln: using development secrets kept in the data folder; for development only — set KILN_TOKEN_SIGNING_SECRET and KILN_COOKIE_KEYS in production",
		"data_dir", c.DataDir)
	return nil
}

// throwawaySecrets fills missing secrets with random ones kept nowhere, for
// a command that writes nothing (migrate --print).
func (c *Config) throwawaySecrets() error {
	if c.TokenSigningSecret != "" && len(c.CookieKeys) == 0 {
		keys, err := DeriveCookieKeys(c.TokenSigningSecret, c.PreviousTokenSigningSecrets...)
		if err != nil {
			return err
		}
		c.CookieKeys = keys
	}
	if c.TokenSigningSecret == "" {
		s, err := randomSecret()
		if err != nil {
			return err
		}
		c.TokenSigningSecret, c.DevSecrets = s, true
	}
	if len(c.CookieKeys) == 0 {
		s, err := randomSecret()
		if err != nil {
			return err
		}
		c.CookieKeys, c.DevSecrets = []string{s}, true
	}
	return nil
}

// randomSecret returns 48 random bytes, base64url-encoded.
func randomSecret() (string, error) {
	raw := make([]byte, 48)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// devSecret reads the development secret kept in path, or makes one. A
// kept file that others than its owner may read is refused: its secret may
// have leaked (Windows has no such modes).
func devSecret(path string) (string, error) {
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 && runtime.GOOS != "windows" {
		return "", fmt.Errorf("kiln: development secret %s is open to other users (mode %04o); run chmod 600 %s, or delete it to make a new one", path, fi.Mode().Perm(), path)
	}
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), nil
	}
	s, err := randomSecret()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("kiln: write development secret: %w", err)
	}
	return s, nil
}

// listValue reads a list: a YAML or TOML list in the config file, or a
// comma-separated string (a flag, an environment variable).
func listValue(v *viper.Viper, key string) []string {
	switch items := v.Get(key).(type) {
	case []any:
		var out []string
		for _, item := range items {
			if s := strings.TrimSpace(fmt.Sprint(item)); s != "" {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return splitList(strings.Join(items, ","))
	}
	return splitList(v.GetString(key))
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// configPath is the config file named by --config, or else by KILN_CONFIG.
func configPath(fs *pflag.FlagSet) string {
	if f := fs.Lookup("config"); f != nil && f.Value.String() != "" {
		return f.Value.String()
	}
	return os.Getenv("KILN_CONFIG")
}

// ensureDatabaseDir creates the folder of a SQLite database (0700) when it
// is missing, so an app with production secrets starts on the embedded
// database as it does with development ones.
func (c *Config) ensureDatabaseDir() error {
	path, ok := bunlayer.SQLiteFile(c.DatabaseURL)
	if !ok {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("kiln: database folder: %w", err)
	}
	return nil
}
