package dsl_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-go/kiln/dsl"
	"github.com/kiln-go/kiln/dsl/configfile"
	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/logouteverywhere"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource"
)

// declare declares the test accounts; tune changes the sections in Go.
func declare(tune func(a *authentication.Authentication, p *password.Password, l *logouteverywhere.LogOutEverywhere, t *tokenresource.Token)) []resource.Ref {
	t := tokenresource.Token{}
	p := password.Password{IdentityField: "email", HashProvider: password.Bcrypt{Cost: 4}}
	l := logouteverywhere.LogOutEverywhere{}
	a := authentication.Authentication{Tokens: authentication.Tokens{
		Enabled: true, SigningSecret: authentication.SecretString(accountstest.Secret),
		StoreAllTokens: true, RequireTokenPresenceForAuthentication: true,
	}}
	if tune != nil {
		tune(&a, &p, &l, &t)
	}
	tokens := resource.New[accountstest.Token]("token", t)
	a.Tokens.TokenResource = tokens
	a.Strategies = []authentication.Strategy{p}
	a.AddOns = []authentication.AddOn{l}
	users := resource.New[accountstest.User]("user", a)
	return []resource.Ref{users, tokens}
}

func describe(t *testing.T, refs []resource.Ref, opts ...resource.Option) string {
	t.Helper()
	d, err := resource.NewDomain("accounts", refs...).Build(context.Background(), testdb.SQLite(t), opts...)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return d.Describe()
}

// inGo declares in Go what the config files below set.
func inGo(a *authentication.Authentication, p *password.Password, l *logouteverywhere.LogOutEverywhere, t *tokenresource.Token) {
	a.Tokens.TokenLifetime = 72 * time.Hour
	a.Tokens.SigningAlgorithm = "HS512"
	p.MinLength = 12
	l.ApplyOnPasswordChange = true
	l.ExcludePurposes = []string{"revocation", "sign_in"}
	t.ExpungeInterval = time.Hour
	t.Knowledge.MaxAge = 30 * time.Second
	t.Knowledge.Disabled = true
}

const yamlConfig = `
resources:
  user:
    authentication:
      tokens:
        token_lifetime: 72h
        signing_algorithm: HS512
      strategies:
        password:
          min_length: 12
      add_ons:
        log_out_everywhere:
          apply_on_password_change: true
          exclude_purposes: [revocation, sign_in]
  token:
    token:
      expunge_interval: 1h
      knowledge:
        max_age: 30s
        disabled: true
`

const tomlConfig = `
[resources.user.authentication.tokens]
token_lifetime = "72h"
signing_algorithm = "HS512"

[resources.user.authentication.strategies.password]
min_length = 12

[resources.user.authentication.add_ons.log_out_everywhere]
apply_on_password_change = true
exclude_purposes = ["revocation", "sign_in"]

[resources.token.token]
expunge_interval = "1h"

[resources.token.token.knowledge]
max_age = "30s"
disabled = true
`

func TestCodeAndConfigBuildTheSameDomain(t *testing.T) {
	want := describe(t, declare(inGo))
	if plain := describe(t, declare(nil)); plain == want {
		t.Fatal("the Go declaration changes nothing in the description; the comparison would prove nothing")
	}
	dir := t.TempDir()
	for _, tc := range []struct{ name, body string }{{"accounts.yaml", yamlConfig}, {"accounts.toml", tomlConfig}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := configfile.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(t, declare(nil), resource.WithConfig(f)); got != want {
				t.Fatalf("Go plus %s describes\n%s\nwant (all in Go)\n%s", tc.name, got, want)
			}
		})
	}
	t.Run("environment", func(t *testing.T) {
		env := dsl.FromEnv("KILN", []string{
			"KILN_RESOURCES__USER__AUTHENTICATION__TOKENS__TOKEN_LIFETIME=72h",
			"KILN_RESOURCES__USER__AUTHENTICATION__TOKENS__SIGNING_ALGORITHM=HS512",
			"KILN_RESOURCES__USER__AUTHENTICATION__STRATEGIES__PASSWORD__MIN_LENGTH=12",
			"KILN_RESOURCES__USER__AUTHENTICATION__ADD_ONS__LOG_OUT_EVERYWHERE__APPLY_ON_PASSWORD_CHANGE=true",
			"KILN_RESOURCES__USER__AUTHENTICATION__ADD_ONS__LOG_OUT_EVERYWHERE__EXCLUDE_PURPOSES=revocation,sign_in",
			"KILN_RESOURCES__TOKEN__TOKEN__EXPUNGE_INTERVAL=1h",
			"KILN_RESOURCES__TOKEN__TOKEN__KNOWLEDGE__MAX_AGE=30s",
			"KILN_RESOURCES__TOKEN__TOKEN__KNOWLEDGE__DISABLED=true",
			"KILN_ADDR=ignored:1", // not a declaration override
		})
		if got := describe(t, declare(nil), resource.WithConfig(env)); got != want {
			t.Fatalf("Go plus the environment describes\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("environment over file", func(t *testing.T) {
		f, err := configfile.Parse("accounts.yaml", "yaml", []byte(strings.Replace(yamlConfig, "min_length: 12", "min_length: 9", 1)))
		if err != nil {
			t.Fatal(err)
		}
		env := dsl.FromEnv("KILN", []string{"KILN_RESOURCES__USER__AUTHENTICATION__STRATEGIES__PASSWORD__MIN_LENGTH=12"})
		if got := describe(t, declare(nil), resource.WithConfig(dsl.Merge(f, env))); got != want {
			t.Fatalf("file then environment describes\n%s\nwant\n%s", got, want)
		}
	})
}

func TestConfigOverridesBehaviour(t *testing.T) {
	f, err := configfile.Parse("accounts.yaml", "yaml", []byte("resources:\n  user:\n    authentication:\n      strategies:\n        password:\n          min_length: 12\n"))
	if err != nil {
		t.Fatal(err)
	}
	refs := declare(nil)
	d, err := resource.NewDomain("accounts", refs...).Build(context.Background(), testdb.SQLite(t), resource.WithConfig(f))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.DataLayer().(interface{ Migrate(context.Context) error }).Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err = d.Run(context.Background(), refs[0], "register_with_password", resource.Input{
		"email": "ada@example.com", "password": "tenletters", "password_confirmation": "tenletters"})
	want := "kiln/resource: user.register_with_password: password: must be at least 12 characters long"
	if err == nil || err.Error() != want {
		t.Fatalf("register with a 10-character password: %v, want %q", err, want)
	}
}

func TestBadConfig(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", `
resources:
  user:
    authentication:
      tokens:
        store_all_tokns: true
`, []string{`kiln/resource: resource "user": authentication -> tokens -> store_all_tokns: unknown option; did you mean store_all_tokens? (accounts.yaml:6)`}},
		{"unknown section and resource", `
resources:
  user:
    authentiction:
      tokens: {enabled: true}
  tokns:
    token: {expunge_interval: 1h}
lve:
  sweep_interval: 1s
`, []string{
			`kiln/resource: lve: unknown section; did you mean live? (accounts.yaml:8)`,
			`kiln/resource: resource "tokns": unknown resource; did you mean token? (accounts.yaml:6)`,
			`kiln/resource: resource "user": authentiction: unknown section; did you mean authentication? (accounts.yaml:4)`,
		}},
		{"wrong types", `
resources:
  user:
    authentication:
      tokens:
        token_lifetime: soon
        store_all_tokens: maybe
      strategies:
        password:
          min_length: twelve
`, []string{
			`kiln/resource: resource "user": authentication -> tokens -> store_all_tokens: want true or false, got "maybe" (accounts.yaml:7)`,
			`kiln/resource: resource "user": authentication -> tokens -> token_lifetime: want a duration such as 90s or 336h, got "soon" (accounts.yaml:6)`,
			`kiln/resource: resource "user": authentication -> strategies -> password -> min_length: want an integer, got "twelve" (accounts.yaml:10)`,
		}},
		{"invalid values", `
resources:
  user:
    authentication:
      tokens:
        token_lifetime: -1h
        signing_algorithm: none
        signing_secret: short
  token:
    token:
      expunge_interval: -5m
`, []string{
			// The rules, as the file is applied, then the checks of the build.
			`kiln/resource: resource "token": token -> expunge_interval: must be positive (-5m0s); use a positive duration, or leave it out for 12h (accounts.yaml:11)`,
			`kiln/resource: resource "user": authentication -> tokens -> signing_algorithm: must be one of HS256, HS384, HS512 (none); use HS256, HS384 or HS512 (accounts.yaml:7)`,
			`kiln/resource: resource "user": authentication -> tokens -> token_lifetime: must be positive (-1h0m0s); use a positive duration, or leave it out for 14 days (accounts.yaml:6)`,
			`kiln/resource: resource "user": authentication -> tokens -> signing_secret: is 5 bytes long, shorter than 32; use a random secret of at least 32 bytes (openssl rand -base64 48) (accounts.yaml:8)`,
		}},
		{"zero where the rule says positive", `
resources:
  token:
    token:
      expunge_interval: 0s
  user:
    authentication:
      strategies:
        password:
          min_length: 0
`, []string{
			`kiln/resource: resource "token": token -> expunge_interval: must be positive (0s); use a positive duration, or leave it out for 12h (accounts.yaml:5)`,
			`kiln/resource: resource "user": authentication -> strategies -> password -> min_length: must be positive (0); use a positive length, or leave it out for 8 (accounts.yaml:10)`,
		}},
		{"a reference to a resource that does not exist", `
resources:
  user:
    authentication:
      tokens:
        token_resource: tokns
`, []string{`kiln/resource: resource "user": authentication -> tokens -> token_resource: no resource "tokns" in the domain; did you mean "token"? (accounts.yaml:6)`}},
		{"a strategy not declared in Go", `
resources:
  user:
    authentication:
      strategies:
        magic_link:
          token_lifetime: 10m
`, []string{`kiln/resource: resource "user": authentication -> strategies -> magic_link: unknown strategy (declare it in Go first); valid: password (accounts.yaml:6)`}},
		{"code-only option", `
resources:
  token:
    token:
      live_socket_id_template: "users_sessions:{jti}"
`, []string{`kiln/resource: resource "token": token -> live_socket_id_template: can only be declared in Go code (accounts.yaml:5)`}},
		{"missing required", `
resources:
  user:
    authentication:
      tokens:
        session_identifier: ""
        require_token_presence_for_authentication: false
`, []string{`kiln/resource: resource "user": authentication -> tokens -> session_identifier: is not set; add SessionIdentifier: authentication.SessionJTI (or RequireTokenPresenceForAuthentication: true) to authentication.Tokens (accounts.yaml:6)`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := configfile.Parse("accounts.yaml", "yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			f.Register(live.SettingsSchema.Name) // as an app that reads it does
			_, err = resource.NewDomain("accounts", declare(nil)...).Build(context.Background(), testdb.SQLite(t), resource.WithConfig(f))
			if err == nil {
				t.Fatalf("Build succeeded; want %d problems", len(tc.want))
			}
			var got []string
			for _, be := range resource.BuildErrors(err) {
				if strings.Contains(be.Error(), "log_out_everywhere") && tc.name == "missing required" {
					continue // turning presence off also fails the add-on; pinned in its own tests
				}
				got = append(got, be.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("problems\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestLiveSettingsFromConfig(t *testing.T) {
	f, err := configfile.Parse("app.yaml", "yaml", []byte("live:\n  sweep_interval: 5s\n  allowed_origins: [\"https://a.example\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := live.SettingsFrom(f)
	if err != nil {
		t.Fatal(err)
	}
	if s.SweepInterval != 5*time.Second || len(s.AllowedOrigins) != 1 || s.MessageBufferSize != 16 {
		t.Fatalf("settings = %+v", s)
	}
	bad, err := configfile.Parse("app.yaml", "yaml", []byte("live:\n  sweep_intervall: 5s\n  write_wait: -1s\n"))
	if err != nil {
		t.Fatal(err)
	}
	// Every problem at once, each where it was written; the settings
	// returned keep the defaults of the values refused.
	s, err = live.SettingsFrom(bad)
	want := "kiln/dsl: app.yaml:2: live.sweep_intervall: unknown option; did you mean sweep_interval?\n" +
		"kiln/dsl: app.yaml:3: live.write_wait: must be positive (-1s); use a positive duration"
	if err == nil || err.Error() != want {
		t.Fatalf("SettingsFrom = %v, want %q", err, want)
	}
	if s.WriteWait != 5*time.Second {
		t.Errorf("write_wait %v after a refused value; want the default 5s", s.WriteWait)
	}
	notMap, _ := configfile.Parse("app.yaml", "yaml", []byte("live: 3\n"))
	_, err = live.SettingsFrom(notMap)
	want = "kiln/dsl: app.yaml:1: live: is a section; want a mapping of its options"
	if err == nil || err.Error() != want {
		t.Fatalf("SettingsFrom = %v, want %q", err, want)
	}
}

// FuzzLoad feeds arbitrary bytes to the loader and the build: no input
// may panic.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(yamlConfig))
	f.Add([]byte("resources:\n  user: [1, 2]\n"))
	f.Add([]byte("resources:\n  user:\n    authentication:\n      tokens:\n        token_resource: {a: 1}\n"))
	f.Add([]byte("live: 3\nresources: x\n"))
	f.Add([]byte("resources:\n  token:\n    token:\n      actions:\n        store_token: [a]\n"))
	refs := declare(nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := configfile.Parse("fuzz.yaml", "yaml", data)
		if err != nil {
			return
		}
		_, _ = live.SettingsFrom(file)
		// No data layer: Build reports that, after applying the config,
		// which is what is under test.
		_, _ = resource.NewDomain("accounts", refs...).Build(context.Background(), nil, resource.WithConfig(file))
	})
}

// TestSectionGivenAScalarSaysHowToTurnItOff: "knowledge: off", meant to
// turn the checks from memory off, is refused with the way to say so.
func TestSectionGivenAScalarSaysHowToTurnItOff(t *testing.T) {
	f, err := configfile.Parse("app.yaml", "yaml", []byte("knowledge: off\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := &dsl.Applier{File: f}
	tokenresource.Token{}.Configure(a, f.Values, nil)
	want := "kiln/dsl: app.yaml:1: knowledge: is a section; want a mapping of its options; to turn it off, set knowledge.disabled to true"
	if err := a.Err(); err == nil || err.Error() != want {
		t.Fatalf("Configure = %v, want %q", err, want)
	}
}
