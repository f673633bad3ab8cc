package cli

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/kiln-go/kiln/dsl"
	"github.com/kiln-go/kiln/extensions/authentication"
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
	// least 32 bytes. Default: a development key kept in DataDir.
	CookieKeys []string `mapstructure:"cookie_keys"`
	// SweepInterval, when set, overrides the live section's sweep_interval
	// (how often the live endpoint checks its sessions' tokens against the
	// store; 30s by default). Zero: not set.
	SweepInterval time.Duration `mapstructure:"sweep_interval"`

	// DevSecrets is true when a development secret or key was used.
	DevSecrets bool `mapstructure:"-"`
	// DSL holds the declaration overrides: the config file's resources and
	// live sections, under KILN_RESOURCES__…/KILN_LIVE__… variables. Pass it
	// to resource.WithConfig and live.SettingsFrom.
	DSL *dsl.File `mapstructure:"-"`
}

// keys are the configuration keys, their defaults and help.
var keys = []struct {
	name, def, help string
}{
	{"addr", "127.0.0.1:4000", "address to listen on (host:port)"},
	{"data_dir", "kiln-data", "folder for the SQLite database and development secrets"},
	{"database_url", "", "postgres://… or a SQLite path (default sqlite:<data_dir>/accounts.db)"},
	{"pubsub_url", "", "postgres://…, redis://… or nats://… to connect several nodes (default in-process)"},
	{"token_signing_secret", "", "secret that signs tokens, at least 32 bytes (default: a development secret)"},
	{"previous_token_signing_secrets", "", "comma-separated secrets that still verify tokens signed before a rotation"},
	{"cookie_keys", "", "comma-separated keys that seal session cookies, newest first (default: a development key)"},
	{"sweep_interval", "", "how often live sessions are checked against the token store (default: the live section's, 30s)"},
}

// AddFlags declares the configuration flags, and --config.
func AddFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "configuration file (YAML or TOML) [KILN_CONFIG]")
	for _, k := range keys {
		fs.String(strings.ReplaceAll(k.name, "_", "-"), k.def, k.help+" [KILN_"+strings.ToUpper(k.name)+"]")
	}
}

// LoadConfig reads the configuration: flags over KILN_… environment
// variables over the config file over defaults. It validates every value
// and reports all problems at once. Missing secrets are replaced by
// development ones kept in DataDir, with one warning.
func LoadConfig(fs *pflag.FlagSet, logger *slog.Logger) (*Config, error) {
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
			if strings.HasPrefix(k, "resources.") || strings.HasPrefix(k, "live.") {
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
			if k != "resources" && k != "live" {
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
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = "sqlite:" + filepath.Join(cfg.DataDir, "accounts.db")
	}
	problems = append(problems, cfg.validate()...)
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if err := cfg.devSecrets(logger); err != nil {
		return nil, err
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
	return problems
}

// devSecrets fills missing secrets from files in DataDir, creating them.
func (c *Config) devSecrets(logger *slog.Logger) error {
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

func devSecret(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), nil
	}
	raw := make([]byte, 48)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	s := base64.RawURLEncoding.EncodeToString(raw)
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
