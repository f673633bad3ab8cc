package authentication_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/logouteverywhere"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
)

// Note is a resource that is not a token store.
type Note struct {
	ID int64 `bun:",pk,autoincrement"`
}

// PasswordUser has what the password strategy needs.
type PasswordUser struct {
	ID             int64  `bun:",pk,autoincrement"`
	Email          string `bun:",unique,notnull"`
	HashedPassword string `bun:",notnull"`
}

// TestBuildErrors pins every build error of the authentication section:
// the resource, the path, the fix and the file:line of the declaration.
func TestBuildErrors(t *testing.T) {
	tokens := resource.New[Token]("token", tokenresource.Token{})
	notes := resource.New[Note]("note")
	good := authentication.SecretString(secret)
	type testCase struct {
		name      string
		resources []resource.Ref
		want      string
	}
	var cases []testCase
	add := func(name, want string, rs ...resource.Ref) {
		cases = append(cases, testCase{name, rs, want})
	}
	const p = `kiln/resource: resource "user": authentication -> `

	users, at := resource.New[User]("user", authentication.Authentication{Tokens: authentication.Tokens{Enabled: true, SessionIdentifier: authentication.SessionUnsafe}}), here()
	add("tokens without resource and secret",
		p+`tokens -> token_resource: is required when tokens are enabled; set TokenResource: Tokens (a resource with the tokenresource.Token section) (`+at+`)`+"\n"+
			p+`tokens -> signing_secret: is required when tokens are enabled; set SigningSecret: authentication.SecretFromEnv("KILN_TOKEN_SIGNING_SECRET") (`+at+`)`,
		users)

	users, at = resource.New[User]("user", authentication.Authentication{Tokens: presence(tokens, good)}), here()
	add("token resource not in the domain",
		p+`tokens -> token_resource: resource "token" is not in domain "accounts"; add it: resource.NewDomain("accounts", …, token) (`+at+`)`,
		users)

	users, at = resource.New[User]("user", authentication.Authentication{Tokens: presence(notes, good)}), here()
	add("not a token resource",
		p+`tokens -> token_resource: resource "note" is not a token resource; declare the tokenresource.Token section on it (`+at+`)`,
		users, notes)

	shortPrevious := presence(tokens, authentication.SecretString("too short"))
	shortPrevious.PreviousSecrets = []authentication.Secret{good, authentication.SecretString("0123456789abcdef0123456789abcde")}
	users, at = resource.New[User]("user", authentication.Authentication{Tokens: shortPrevious}), here()
	add("short secrets",
		p+`tokens -> signing_secret: is 9 bytes long, shorter than 32; use a random secret of at least 32 bytes (openssl rand -base64 48) (`+at+`)`+"\n"+
			p+`tokens -> previous_secrets -> 1: is 31 bytes long, shorter than 32; use a random secret of at least 32 bytes (openssl rand -base64 48) (`+at+`)`,
		users, tokens)

	rs256 := presence(tokens, good)
	rs256.SigningAlgorithm = "RS256"
	users, at = resource.New[User]("user", authentication.Authentication{Tokens: rs256}), here()
	add("unknown algorithm",
		p+`tokens -> signing_algorithm: must be one of HS256, HS384, HS512 (RS256); use HS256, HS384 or HS512 (`+at+`)`,
		users, tokens)

	negative := presence(tokens, good)
	negative.TokenLifetime = -time.Hour
	users, at = resource.New[User]("user", authentication.Authentication{Tokens: negative}), here()
	add("negative lifetime",
		p+`tokens -> token_lifetime: must be positive (-1h0m0s); use a positive duration, or leave it out for 14 days (`+at+`)`,
		users, tokens)

	noStore := presence(tokens, good)
	noStore.StoreAllTokens = false
	users, at = resource.New[User]("user", authentication.Authentication{Tokens: noStore}), here()
	add("presence without store-all",
		p+`tokens -> require_token_presence_for_authentication: needs every token stored; add StoreAllTokens: true to authentication.Tokens (`+at+`)`+"\n"+
			p+`tokens -> session_identifier: jti sessions need every token stored, to find the token by its jti; add StoreAllTokens: true to authentication.Tokens (`+at+`)`,
		users, tokens)

	users, at = resource.New[User]("user", authentication.Authentication{Tokens: authentication.Tokens{Enabled: true, TokenResource: tokens, SigningSecret: good}}), here()
	add("no session identifier",
		p+`tokens -> session_identifier: is not set; add SessionIdentifier: authentication.SessionJTI (or RequireTokenPresenceForAuthentication: true) to authentication.Tokens (`+at+`)`,
		users, tokens)

	users, at = resource.New[User]("user", authentication.Authentication{Tokens: authentication.Tokens{Enabled: true, TokenResource: tokens, SigningSecret: good, SessionIdentifier: "cookie"}}), here()
	add("unknown session identifier",
		p+`tokens -> session_identifier: must be one of jti, unsafe (cookie); use authentication.SessionJTI or authentication.SessionUnsafe (`+at+`)`,
		users, tokens)

	users, at = resource.New[User]("user", authentication.Authentication{Tokens: authentication.Tokens{Enabled: true, TokenResource: tokens, SigningSecret: good, SessionIdentifier: authentication.SessionJTI}}), here()
	add("jti sessions without store-all",
		p+`tokens -> session_identifier: jti sessions need every token stored, to find the token by its jti; add StoreAllTokens: true to authentication.Tokens (`+at+`)`,
		users, tokens)

	pw := password.Password{IdentityField: "email"}
	pwUsers, at := resource.New[PasswordUser]("user", authentication.Authentication{Tokens: presence(tokens, good), Strategies: []authentication.Strategy{pw, pw}}), here()
	add("duplicate strategy",
		p+`strategies -> password: declared twice; give each strategy its own Name (`+at+`)`,
		pwUsers, tokens)

	pwUsers, at = resource.New[PasswordUser]("user", authentication.Authentication{Strategies: []authentication.Strategy{pw}}), here()
	add("password strategy with tokens disabled",
		p+`strategies -> password: the password strategy needs tokens, which are disabled; add Enabled: true (with TokenResource and SigningSecret) to authentication.Tokens (`+at+`)`,
		pwUsers)

	pwUsers, at = resource.New[PasswordUser]("user", authentication.Authentication{Tokens: presence(tokens, good), Strategies: []authentication.Strategy{nil}}), here()
	add("nil strategy",
		p+`strategies -> 0: is nil; remove it (`+at+`)`,
		pwUsers, tokens)

	lo := logouteverywhere.LogOutEverywhere{}
	users, at = resource.New[User]("user", authentication.Authentication{Tokens: presence(tokens, good), AddOns: []authentication.AddOn{lo, lo}}), here()
	add("duplicate add-on",
		p+`add_ons -> log_out_everywhere: declared twice; declare each add-on once (`+at+`)`,
		users, tokens)

	users, at = resource.New[User]("user", authentication.Authentication{Tokens: presence(tokens, good)}, resource.Actions{resource.Generic{Name: "get_by_subject", Run: func(context.Context, *resource.AnyChangeset) (any, error) { return nil, nil }}}), here()
	add("get_by_subject of a wrong type",
		p+`get_by_subject_action: "get_by_subject" must be a read action that gets one record by primary key; remove your action of that name, or set GetBySubjectAction to another name (`+at+`)`,
		users, tokens)

	users, at = resource.New[User]("user", authentication.Authentication{Tokens: presence(tokens, good)}, authentication.Authentication{}), here()
	add("declared twice",
		`kiln/resource: resource "user": authentication: declared twice; declare each extension once per resource (`+at+`)`,
		users, tokens)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := resource.NewDomain("accounts", c.resources...).Build(context.Background(), testdb.SQLite(t))
			if err == nil {
				t.Fatal("Build succeeded")
			}
			if got := err.Error(); got != c.want {
				t.Errorf("Build error\n%s\nwant\n%s", got, c.want)
			}
			var be *resource.BuildError
			if !errors.As(err, &be) || be.Resource != "user" || be.Fix == "" || be.Location.Line == 0 {
				t.Errorf("not a *BuildError with resource, fix and location: %#v", be)
			}
		})
	}
}

// TestBuildDefaults: a minimal section builds, with the documented
// defaults.
func TestBuildDefaults(t *testing.T) {
	tokens := resource.New[Token]("token", tokenresource.Token{})
	users := resource.New[User]("user", authentication.Authentication{Tokens: authentication.Tokens{
		Enabled: true, TokenResource: tokens, SigningSecret: authentication.SecretString(secret),
		StoreAllTokens: true, RequireTokenPresenceForAuthentication: true}})
	d, err := resource.NewDomain("accounts", users, tokens).Build(context.Background(), testdb.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := authentication.For(d, users)
	if err != nil {
		t.Fatal(err)
	}
	cfg := auth.Config()
	if cfg.SubjectName != "user" || cfg.GetBySubjectAction != "get_by_subject" || cfg.Tokens.SigningAlgorithm != "HS256" ||
		cfg.Tokens.TokenLifetime != 14*24*time.Hour || cfg.Tokens.SessionIdentifier != authentication.SessionJTI {
		t.Errorf("defaults %+v", cfg)
	}
	if a := d.Declaration(users).Action("get_by_subject"); a == nil || a.Type != resource.ReadAction || !a.Get {
		t.Errorf("get_by_subject = %+v", a)
	}
	if zero := (authentication.Authentication{}).Config("member"); zero.Tokens.SessionIdentifier != "" || zero.SubjectName != "member" {
		t.Errorf("zero config %+v", zero)
	}
}

// presence is a valid token configuration over tokens.
func presence(tokens resource.Ref, s authentication.Secret) authentication.Tokens {
	return authentication.Tokens{Enabled: true, TokenResource: tokens, SigningSecret: s, StoreAllTokens: true, RequireTokenPresenceForAuthentication: true}
}
