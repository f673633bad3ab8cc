package cli

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/kiln-go/kiln/dsl"
	"github.com/kiln-go/kiln/dsl/configfile"
	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// Config is an app's run-time configuration, read from flags, KILN_…
// environment variables and an optional config file (YAML or TOML,
// --config), in that order of precedence, and checked against Schema: one
// rule per setting, whatever its source. A zero field of a Config made in
// Go takes its default where the server is made (NewServer).
type Config struct {
	// Addr is the addr option. Where serve listens, host:port. Default:
	// "127.0.0.1:4000".
	Addr string
	// DataDir is the data_dir option. The folder for the SQLite database
	// and the development secrets. Rules: required. Default: "kiln-data".
	DataDir string
	// DatabaseURL is the database_url option. postgres://user@host:5432/db,
	// or a SQLite path: sqlite:path/to.db, file:path/to.db. Default:
	// sqlite:<data_dir>/accounts.db.
	DatabaseURL string
	// DatabaseMaxConns is the database_max_conns option. The most
	// connections a node opens to a PostgreSQL database_url at once; a
	// query that finds them all in use waits for one. Every node, and every
	// command run beside them, opens up to this many: keep their sum, with
	// the pub/sub connections, under the server's max_connections. At least
	// 2: applying migrations holds a lock on one connection while it
	// migrates on another. No effect on SQLite. Default (unset or 0): twice
	// GOMAXPROCS, from 4 to 16 (bunlayer.DefaultMaxConns). Rules:
	// omitempty,gte=2.
	DatabaseMaxConns int
	// PubSubURL is the pubsub_url option. postgres://…, redis://… or
	// nats://… to connect several nodes' live endpoints, through the
	// transport the app imports (live/pubsub/postgres, redis or nats).
	// Default: the SQLite file's table, else in-process.
	PubSubURL string
	// TokenSigningSecret is the token_signing_secret option. The secret
	// that signs tokens, at least 32 bytes. Default: a development secret.
	TokenSigningSecret string
	// PreviousTokenSigningSecrets is the previous_token_signing_secrets
	// option. Secrets that still verify tokens signed before a rotation,
	// each at least 32 bytes.
	PreviousTokenSigningSecrets []string
	// CookieKeys is the cookie_keys option. Keys that seal session cookies,
	// newest first, each at least 32 bytes. Default: derived from the token
	// signing secret, else a development key.
	CookieKeys []string

	// Dev is the dev option. Development mode: dev-only pages for this
	// machine's browsers; refuses production secrets and a listen address
	// that is not loopback. Default: false.
	Dev bool
	// PublicURL is the public_url option. The URL the app is served at,
	// such as https://accounts.example.com: an absolute http or https URL
	// without a path (https: Secure cookies and HSTS).
	PublicURL string
	// TrustedProxies is the trusted_proxies option. Addresses or CIDR
	// ranges of the proxies whose X-Forwarded-For and X-Forwarded-Proto
	// headers are believed. Default: none.
	TrustedProxies []netip.Prefix
	// RateLimitStore is the rate_limit_store option. Where the brute-force
	// limits count: memory (per node), or postgres://… or redis://…
	// (shared by the nodes). Default: "memory".
	RateLimitStore string
	// MetricsPublic is the metrics_public option. Serves /metrics to every
	// client, not only to this machine's. Default: false.
	MetricsPublic bool
	// ReadTimeout is the read_timeout option. The longest time to read a
	// request, body included. Rules: gte=1s. Default: 30s.
	ReadTimeout time.Duration
	// WriteTimeout is the write_timeout option. The longest time to write a
	// response (live sockets are not bound by it). Rules: gte=1s. Default:
	// 30s.
	WriteTimeout time.Duration
	// IdleTimeout is the idle_timeout option. The longest time a kept-alive
	// connection waits for its next request. Rules: gte=1s. Default: 2m.
	IdleTimeout time.Duration
	// MaxHeaderBytes is the max_header_bytes option. The largest request
	// header, in bytes; a larger one is answered 431. Rules:
	// gte=4096,lte=1048576. Default: 65536.
	MaxHeaderBytes int

	// DevSecrets is true when a development secret or key was used.
	DevSecrets bool
	// DSL holds the sections the app reads on its own (App.Sections, all
	// registered on it): the config file's resources, live and
	// rate_limits sections, say, with the KILN_RESOURCES__…, KILN_LIVE__…
	// and KILN_RATE_LIMITS__… variables, and the top-level sweep_interval
	// as live.sweep_interval. Pass it to resource.WithConfig,
	// live.SettingsFrom and ratelimit.LimitsFrom. Nil for a Config made in
	// Go: every section at its defaults.
	DSL *dsl.File
}

// Schema is the schema of the command line's own settings: each is a flag
// (--data-dir), a variable (KILN_DATA_DIR) and a key at the top of the
// config file (data_dir), checked by the one rule here whatever its source.
var Schema = dsl.Bind[Config](&dsl.Section{
	Name:   "cli",
	GoType: "cli.Config",
	Doc: "The command line's own settings, at the top level of a config file; each also has a flag (--data-dir) and a variable (KILN_DATA_DIR). " +
		"sweep_interval (--sweep-interval, KILN_SWEEP_INTERVAL) is another name for live.sweep_interval, checked by its rule.",
	Options: []dsl.Option{
		{Name: "addr", Field: "Addr", Kind: dsl.String, Default: "127.0.0.1:4000",
			Doc: "Where serve listens, host:port.", Parse: trim, Verify: verifyHostPort, Fix: "use host:port, such as 127.0.0.1:4000"},
		{Name: "data_dir", Field: "DataDir", Kind: dsl.String, Default: "kiln-data",
			Doc: "The folder for the SQLite database and the development secrets.", Rules: "required", Fix: "name a folder, such as kiln-data"},
		{Name: "database_url", Field: "DatabaseURL", Kind: dsl.String,
			Doc:   "postgres://user@host:5432/db, or a SQLite path: sqlite:path/to.db, file:path/to.db. Default: sqlite:<data_dir>/accounts.db.",
			Parse: cleanURL, Verify: verifyDatabaseURL, Fix: "use postgres://user@host:5432/database or a SQLite path (sqlite:path/to.db)"},
		{Name: "database_max_conns", Field: "DatabaseMaxConns", Kind: dsl.Int,
			Doc: "The most connections a node opens to a PostgreSQL database_url at once; a query that finds them all in use waits for one. " +
				"Every node, and every command run beside them, opens up to this many: keep their sum, with the pub/sub connections, under the server's max_connections. " +
				"At least 2: applying migrations holds a lock on one connection while it migrates on another. No effect on SQLite. " +
				"Default (unset or 0): twice GOMAXPROCS, from 4 to 16 (bunlayer.DefaultMaxConns).",
			Rules: "omitempty,gte=2", Fix: "use at least 2 connections, such as 10, or 0 for the default"},
		{Name: "pubsub_url", Field: "PubSubURL", Kind: dsl.String,
			Doc:   "postgres://…, redis://… or nats://… to connect several nodes' live endpoints, through the transport the app imports (live/pubsub/postgres, redis or nats). Default: the SQLite file's table, else in-process.",
			Parse: cleanURL, Verify: verifyPubSubURL, Fix: "use postgres://…, redis://… or nats://…"},
		{Name: "token_signing_secret", Field: "TokenSigningSecret", Kind: dsl.Secret,
			Doc:    "The secret that signs tokens, at least 32 bytes. Default: a development secret.",
			Verify: verifySecret, Fix: "use at least 32 random bytes (openssl rand -base64 48)"},
		{Name: "previous_token_signing_secrets", Field: "PreviousTokenSigningSecrets", Kind: dsl.Secrets,
			Doc:    "Secrets that still verify tokens signed before a rotation, each at least 32 bytes.",
			Verify: verifySecrets, Fix: "use at least 32 random bytes"},
		{Name: "cookie_keys", Field: "CookieKeys", Kind: dsl.Secrets,
			Doc:    "Keys that seal session cookies, newest first, each at least 32 bytes. Default: derived from the token signing secret, else a development key.",
			Verify: verifySecrets, Fix: "use at least 32 random bytes"},
		{Name: "dev", Field: "Dev", Kind: dsl.Bool,
			Doc: "Development mode: dev-only pages for this machine's browsers; refuses production secrets and a listen address that is not loopback. Default: false."},
		{Name: "public_url", Field: "PublicURL", Kind: dsl.String,
			Doc:   "The URL the app is served at, such as https://accounts.example.com: an absolute http or https URL without a path (https: Secure cookies and HSTS).",
			Parse: cleanURL, Verify: verifyPublicURL, Fix: "use one such as https://accounts.example.com"},
		{Name: "trusted_proxies", Field: "TrustedProxies", Kind: dsl.Strings, Parse: parseProxy,
			Doc: "Addresses or CIDR ranges of the proxies whose X-Forwarded-For and X-Forwarded-Proto headers are believed. Default: none.",
			Fix: "use an address or a range, such as 10.0.0.1 or 10.0.0.0/8"},
		{Name: "rate_limit_store", Field: "RateLimitStore", Kind: dsl.String, Default: "memory",
			Doc:   "Where the brute-force limits count: memory (per node), or postgres://… or redis://… (shared by the nodes).",
			Parse: cleanStore, Verify: verifyRateLimitStore, Fix: "use memory, postgres://… or redis://…"},
		{Name: "read_timeout", Field: "ReadTimeout", Kind: dsl.Duration, Default: 30 * time.Second,
			Doc: "The longest time to read a request, body included.", Rules: "gte=1s", Fix: "use a duration of at least 1s, such as 30s"},
		{Name: "write_timeout", Field: "WriteTimeout", Kind: dsl.Duration, Default: 30 * time.Second,
			Doc: "The longest time to write a response (live sockets are not bound by it).", Rules: "gte=1s", Fix: "use a duration of at least 1s, such as 30s"},
		{Name: "idle_timeout", Field: "IdleTimeout", Kind: dsl.Duration, Default: 120 * time.Second,
			Doc: "The longest time a kept-alive connection waits for its next request.", Rules: "gte=1s", Fix: "use a duration of at least 1s, such as 120s"},
		{Name: "max_header_bytes", Field: "MaxHeaderBytes", Kind: dsl.Int, Default: 64 << 10,
			Doc: "The largest request header, in bytes; a larger one is answered 431.", Rules: "gte=4096,lte=1048576", Fix: "use a number of bytes from 4096 to 1048576"},
		{Name: "metrics_public", Field: "MetricsPublic", Kind: dsl.Bool,
			Doc: "Serves /metrics to every client, not only to this machine's. Default: false."},
	},
	YAMLExample: "addr: 0.0.0.0:8080\ndatabase_url: postgres://accounts@db.internal:5432/accounts\nsweep_interval: 15s   # live.sweep_interval\ntrusted_proxies: [10.0.0.0/8]",
})

// aliases are top-level keys that name a setting of a section: the value
// goes there, with where it was written, and is checked by that section's
// rule. One source (the file, the environment, the flags) that sets both
// names is an error.
var aliases = map[string][]string{
	"sweep_interval": {"live", "sweep_interval"},
}

// AddFlags declares the configuration flags, and --config.
func AddFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "configuration file (YAML or TOML) [KILN_CONFIG]")
	for _, o := range Schema.Options {
		help := strings.TrimSuffix(o.Doc, ".") + " [" + envName(o.Name) + "]"
		if o.Kind == dsl.Bool {
			fs.Bool(flagName(o.Name), false, help)
			continue
		}
		fs.String(flagName(o.Name), defaultText(o.Default), help)
	}
	fs.String(flagName("sweep_interval"), "", "How often live sessions are checked against the token store: live.sweep_interval under another name, at least 1s. Default: 30s ["+envName("sweep_interval")+"]")
}

func flagName(key string) string { return strings.ReplaceAll(key, "_", "-") }

func envName(key string) string { return "KILN_" + strings.ToUpper(key) }

// defaultText is a default as a flag shows it.
func defaultText(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// LoadConfig reads the configuration: flags over KILN_… environment
// variables over the config file over defaults. sections are the
// top-level sections of the config file that the app reads on its own
// (App.Sections); any other key that is not a setting is an error. It
// checks every value and reports all problems at once, each with where it
// was written. Missing secrets are replaced by development ones kept in
// DataDir, with one warning.
func LoadConfig(fs *pflag.FlagSet, logger *slog.Logger, sections ...string) (*Config, error) {
	cfg, err := readConfig(fs, defaults{}, sections)
	if err != nil {
		return nil, err
	}
	if err := cfg.devSecrets(logger); err != nil {
		return nil, err
	}
	return cfg, nil
}

// defaults are an app's own defaults of settings (App.DataDir,
// App.DatabaseFile); a zero field leaves Schema's.
type defaults struct {
	dataDir      string
	databaseFile string
}

// readConfig reads and checks the configuration, leaving missing secrets
// empty. With problems it returns them and the configuration with the
// defaults in place of the values it refused; the file that cannot be
// read is the one problem without a configuration.
func readConfig(fs *pflag.FlagSet, def defaults, sections []string) (*Config, error) {
	var file *dsl.File
	if path := configPath(fs); path != "" {
		f, err := configfile.Load(path)
		if err != nil {
			return nil, fmt.Errorf("kiln: config file %s: %w", path, errors.Unwrap(err))
		}
		file = f
	}
	var twice []*dsl.ConfigError
	sources := []*dsl.File{file, envFile(os.Environ()), flagFile(fs)}
	for _, f := range sources {
		twice = append(twice, aliased(f)...)
	}
	all := dsl.Merge(sources...)
	cfg := &Config{DataDir: def.dataDir}
	a := &dsl.Applier{File: all}
	// The aliases, gone to the keys they name, are the caller's: skipped,
	// and listed among the valid keys.
	a.Apply(Schema, cfg, all.Values, nil, append(slices.Sorted(maps.Keys(aliases)), sections...)...)
	a.Errors = append(a.Errors, twice...)
	Schema.Defaults(cfg)
	cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	if cfg.DatabaseURL == "" {
		file := def.databaseFile
		if file == "" {
			file = "accounts.db"
		}
		cfg.DatabaseURL = "sqlite:" + filepath.Join(cfg.DataDir, file)
	}
	for _, p := range cfg.devProblems() {
		a.Errors = append(a.Errors, &dsl.ConfigError{Source: all.Source([]string{"dev"}), Path: []string{"dev"}, Message: p})
	}
	// The app's sections stay, for the app; the rest was read or refused.
	for _, key := range dsl.Keys(all.Values) {
		if !slices.Contains(sections, key) {
			all.Delete([]string{key})
		}
	}
	all.Register(sections...)
	cfg.DSL = all
	return cfg, a.Err()
}

// envFile reads the KILN_… variables: the command line's settings
// (KILN_ADDR) and their aliases by name, the sections' by key path
// (KILN_LIVE__SWEEP_INTERVAL; see dsl.FromEnv). An empty variable is unset.
func envFile(environ []string) *dsl.File {
	f := dsl.FromEnv("KILN", environ)
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if key := strings.ToLower(strings.TrimPrefix(k, "KILN_")); v != "" && envName(key) == k && isSetting(key) {
			f.Set([]string{key}, v, "variable "+k)
		}
	}
	return f
}

// flagFile holds the flags given on the command line, each known by its
// name: "flag --addr".
func flagFile(fs *pflag.FlagSet) *dsl.File {
	f := dsl.NewFile("flags")
	fs.Visit(func(fl *pflag.Flag) {
		if key := strings.ReplaceAll(fl.Name, "-", "_"); isSetting(key) {
			f.Set([]string{key}, fl.Value.String(), "flag --"+fl.Name)
		}
	})
	return f
}

// isSetting reports whether key is a setting of Schema or an alias.
func isSetting(key string) bool {
	_, alias := aliases[key]
	return alias || Schema.Option(key) != nil
}

// aliased moves f's aliases to the keys they name, and returns an error
// for each alias whose key f sets too.
func aliased(f *dsl.File) []*dsl.ConfigError {
	if f == nil {
		return nil
	}
	var twice []*dsl.ConfigError
	for _, key := range slices.Sorted(maps.Keys(aliases)) {
		to := aliases[key]
		v, ok := f.Values[key]
		if !ok {
			continue
		}
		src := f.Source([]string{key})
		if _, set := f.Map(to[:len(to)-1]...)[to[len(to)-1]]; set {
			twice = append(twice, &dsl.ConfigError{Source: src, Path: []string{key},
				Message: fmt.Sprintf("is another name for %s, which %s sets too", strings.Join(to, "."), f.Source(to)),
				Fix:     "set one of them"})
		}
		f.Delete([]string{key})
		f.Set(to, v, src)
	}
	return twice
}

// devProblems are the development mode's problems with other settings.
func (c *Config) devProblems() []string {
	if !c.Dev {
		return nil
	}
	var problems []string
	if c.TokenSigningSecret != "" || len(c.CookieKeys) > 0 || len(c.PreviousTokenSigningSecrets) > 0 {
		problems = append(problems, "development mode refuses production secrets; unset token_signing_secret, previous_token_signing_secrets and cookie_keys (KILN_TOKEN_SIGNING_SECRET, KILN_PREVIOUS_TOKEN_SIGNING_SECRETS, KILN_COOKIE_KEYS), or run without --dev")
	}
	if host, _, err := net.SplitHostPort(c.Addr); err == nil && !loopbackHost(host) {
		problems = append(problems, fmt.Sprintf("development mode listens on loopback only; addr %s is not 127.0.0.1, [::1] or localhost", dsl.Quote(c.Addr)))
	}
	return problems
}

// trim is the Parse of a setting written with spaces around it by
// mistake: it drops them.
func trim(s string) (any, error) { return strings.TrimSpace(s), nil }

// cleanURL is the Parse of a URL setting: s trimmed, its scheme
// lower-cased ("POSTGRES://…" is "postgres://…", as url.Parse reads it).
func cleanURL(s string) (any, error) {
	s = strings.TrimSpace(s)
	if scheme := dsl.Scheme(s); scheme != "" {
		s = scheme + s[len(scheme):]
	}
	return s, nil
}

// cleanStore is the Parse of rate_limit_store: memory in any case, or a
// URL as cleanURL makes it.
func cleanStore(s string) (any, error) {
	if strings.EqualFold(strings.TrimSpace(s), "memory") {
		return "memory", nil
	}
	return cleanURL(s)
}

// verifyHostPort is the rule of addr: host:port, the host possibly empty
// (every interface), the port a number from 0 to 65535 or a service name
// (http).
func verifyHostPort(v any) error {
	s := v.(string)
	_, port, err := net.SplitHostPort(s)
	if err != nil || port == "" {
		return fmt.Errorf("%s is not host:port", dsl.Quote(s))
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("%s: the port %s is not a number from 0 to 65535", dsl.Quote(s), dsl.Quote(port))
	}
	return nil
}

// A URL setting's rule never quotes its value, which may hold a password:
// it names the scheme at most.

// verifyDatabaseURL is the rule of database_url: a PostgreSQL URL with a
// host, or a SQLite path (no other scheme).
func verifyDatabaseURL(v any) error {
	s := v.(string)
	switch scheme := dsl.Scheme(s); {
	case scheme == "postgres", scheme == "postgresql":
		if u, err := url.Parse(s); err != nil || u.Host == "" {
			return errors.New("is not a valid PostgreSQL URL")
		}
	case scheme != "":
		return fmt.Errorf("has an unsupported scheme (%s)", scheme)
	case strings.Contains(s, "://"):
		return errors.New("is not a valid URL")
	}
	return nil
}

// verifyPubSubURL is the rule of pubsub_url: empty, or a PostgreSQL, Redis
// or NATS URL with a host.
func verifyPubSubURL(v any) error {
	s := v.(string)
	if s == "" {
		return nil
	}
	return verifySchemeURL(s, "postgres", "postgresql", "redis", "rediss", "nats", "tls")
}

// verifySchemeURL checks that s is a URL of one of schemes, with a host.
func verifySchemeURL(s string, schemes ...string) error {
	scheme := dsl.Scheme(s)
	if scheme != "" && !slices.Contains(schemes, scheme) {
		return fmt.Errorf("has an unsupported scheme (%s)", scheme)
	}
	if u, err := url.Parse(s); scheme == "" || err != nil || u.Host == "" {
		return errors.New("is not a valid URL")
	}
	return nil
}

// verifySecret is the rule of a secret: empty (unset), or at least
// authentication.MinSecretLength bytes.
func verifySecret(v any) error {
	if s := v.(string); s != "" && len(s) < authentication.MinSecretLength {
		return fmt.Errorf("is %d bytes long, shorter than %d", len(s), authentication.MinSecretLength)
	}
	return nil
}

// verifySecrets is the rule of a list of secrets: each at least
// authentication.MinSecretLength bytes.
func verifySecrets(v any) error {
	var errs []error
	for i, s := range v.([]string) {
		if len(s) < authentication.MinSecretLength {
			errs = append(errs, fmt.Errorf("[%d] is %d bytes long, shorter than %d", i, len(s), authentication.MinSecretLength))
		}
	}
	return errors.Join(errs...)
}

// verifyPublicURL is the rule of public_url: empty, or an absolute http or
// https URL without user, path (but "/"), query or fragment. A public URL
// holds no password, but one written by mistake is not shown: the message
// quotes it through dsl.Quote.
func verifyPublicURL(v any) error {
	s := v.(string)
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("%s is not an absolute http or https URL without a path", dsl.Quote(s))
	}
	return nil
}

// verifyRateLimitStore is the rule of rate_limit_store: memory, or a
// PostgreSQL or Redis URL with a host.
func verifyRateLimitStore(v any) error {
	s := v.(string)
	if s == "memory" {
		return nil
	}
	if dsl.Scheme(s) == "" {
		return errors.New("is neither memory nor a URL")
	}
	return verifySchemeURL(s, "postgres", "postgresql", "redis", "rediss")
}

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
func parseProxy(s string) (any, error) {
	bad := fmt.Errorf("%s is not an IP address or CIDR range", dsl.Quote(s))
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, bad
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return nil, bad
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

// deriveCookieKeys derives the cookie keys from the signing secrets when
// the signing secret is given and the cookie keys are not.
func (c *Config) deriveCookieKeys() error {
	if c.TokenSigningSecret == "" || len(c.CookieKeys) > 0 {
		return nil
	}
	keys, err := DeriveCookieKeys(c.TokenSigningSecret, c.PreviousTokenSigningSecrets...)
	if err != nil {
		return err
	}
	c.CookieKeys = keys
	return nil
}

// devSecrets fills missing secrets: cookie keys derived from a given
// signing secret, else development secrets from files in DataDir, creating
// them.
func (c *Config) devSecrets(logger *slog.Logger) error {
	if err := c.deriveCookieKeys(); err != nil {
		return err
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
	if err := c.deriveCookieKeys(); err != nil {
		return err
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
