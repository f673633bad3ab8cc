// Package authentication is the authentication extension: declared on a
// user resource, it issues JWTs for its records, stores them in a token
// resource (extensions/tokenresource), verifies them, and hosts strategies
// (extensions/authentication/password) and add-ons
// (extensions/authentication/logouteverywhere).
//
//	var Users = resource.New[User]("user",
//		authentication.Authentication{
//			Tokens: authentication.Tokens{
//				Enabled:        true,
//				TokenResource:  Tokens,
//				SigningSecret:  authentication.SecretFromEnv("KILN_TOKEN_SIGNING_SECRET"),
//				StoreAllTokens: true,
//				RequireTokenPresenceForAuthentication: true,
//			},
//			Strategies: []authentication.Strategy{password.Password{IdentityField: "email"}},
//		},
//	)
//
// At run time, For(domain, Users) returns the Auth that issues and verifies
// tokens.
package authentication

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/kiln-go/kiln/resource"
)

// DefaultTokenLifetime is a session token's lifetime when
// Tokens.TokenLifetime is zero.
const DefaultTokenLifetime = 14 * 24 * time.Hour

// MinSecretLength is the shortest signing secret kiln accepts, in bytes.
const MinSecretLength = 32

// Authentication is the section that makes a resource authenticatable.
type Authentication struct {
	// Tokens is the tokens section. JWTs: how they are signed, how long
	// they live, and whether they are stored.
	Tokens Tokens
	// SubjectName is the subject_name option. The first part of a token's
	// subject, "user" in "user?id=…". Default: the resource's name.
	SubjectName string
	// GetBySubjectAction is the get_by_subject_action option. The read
	// action that loads a record from a subject; added when not declared.
	// Default: "get_by_subject".
	GetBySubjectAction string
	// Strategies is the strategies option. The ways to sign in
	// (password.Password), keyed by strategy name in config files
	// (strategies.password.min_length).
	Strategies []Strategy
	// AddOns is the add_ons option. Add-ons
	// (logouteverywhere.LogOutEverywhere), keyed by name in config files
	// (add_ons.log_out_everywhere.…).
	AddOns []AddOn

	// getBySubject is the view of the get-by-subject action, made by
	// Transform for the declaration it builds; nil before.
	getBySubject *resource.View[any, resource.Input]
}

// Tokens configures the JWTs the extension issues.
type Tokens struct {
	// Enabled is the enabled option. Turns tokens on. Default: false.
	Enabled bool
	// TokenResource is the token_resource option. The token store: a
	// resource with the token section (tokenresource.Token). Required when
	// enabled.
	TokenResource resource.Ref
	// SigningSecret is the signing_secret option. Signs and verifies
	// tokens; read at run time, on every use, so it may come from a vault.
	// At least 32 bytes. Required when enabled.
	SigningSecret Secret
	// PreviousSecrets is the previous_secrets option. Still verify tokens
	// signed before a rotation; new tokens are signed with signing_secret
	// only. Default: none.
	PreviousSecrets []Secret
	// SigningAlgorithm is the signing_algorithm option. HS256, HS384 or
	// HS512; tokens signed with any other algorithm, "none" included, are
	// refused. Rules: oneof=HS256 HS384 HS512. Default: "HS256".
	SigningAlgorithm string
	// TokenLifetime is the token_lifetime option. How long a session token
	// is valid. Rules: gt=0. Default: 336h.
	TokenLifetime time.Duration
	// StoreAllTokens is the store_all_tokens option. Stores every issued
	// token, so all of a user's sessions can be listed and revoked.
	// Default: false.
	StoreAllTokens bool
	// RequireTokenPresenceForAuthentication is the
	// require_token_presence_for_authentication option. Accepts a session
	// token only while its stored row exists, so deleting or revoking the
	// row signs it out. Needs store_all_tokens. Default: false.
	RequireTokenPresenceForAuthentication bool
	// SessionIdentifier is the session_identifier option. What a web
	// session keeps: jti (authentication.SessionJTI: the token's jti,
	// looked up in the store) or unsafe (SessionUnsafe: the whole token).
	// Required unless token presence is required, which implies jti. Rules:
	// omitempty,oneof=jti unsafe.
	SessionIdentifier SessionIdentifier
}

// SessionIdentifier says what a web session stores to find its token.
type SessionIdentifier string

// The session identifiers.
const (
	SessionJTI    SessionIdentifier = "jti"
	SessionUnsafe SessionIdentifier = "unsafe"
)

// Secret gives the signing secret at run time.
type Secret interface {
	Secret(ctx context.Context) (string, error)
}

// SecretString is a fixed secret.
type SecretString string

// Secret returns s.
func (s SecretString) Secret(context.Context) (string, error) { return string(s), nil }

// SecretFunc reads the secret when it is needed.
type SecretFunc func(ctx context.Context) (string, error)

// Secret calls f.
func (f SecretFunc) Secret(ctx context.Context) (string, error) { return f(ctx) }

// SecretFromEnv reads the secret from an environment variable at each use.
func SecretFromEnv(name string) Secret {
	return SecretFunc(func(context.Context) (string, error) {
		v := os.Getenv(name)
		if v == "" {
			return "", fmt.Errorf("kiln/authentication: %s is not set", name)
		}
		return v, nil
	})
}

// Strategy is a way to sign in. Its Transform and Verify run inside the
// authentication section's, with the section (defaults applied).
//
// Transform adds the strategy's actions, each through a resource.View, and
// returns the strategy as built: the value that holds those views and runs
// the actions through them. The built domain's section (Auth.Config) keeps
// it in place of the declared one.
type Strategy interface {
	StrategyName() string
	Transform(b *resource.BuildContext, d *resource.Declaration, auth Authentication) Strategy
	Verify(b *resource.BuildContext, d *resource.Declaration, auth Authentication)
}

// AddOn adds behaviour to an authenticated resource. Like a Strategy's,
// its Transform returns the add-on as built, with the views of the actions
// it added.
type AddOn interface {
	AddOnName() string
	Transform(b *resource.BuildContext, d *resource.Declaration, auth Authentication) AddOn
	Verify(b *resource.BuildContext, d *resource.Declaration, auth Authentication)
}

// HashedPasswordStrategy is a strategy that keeps a password hash in an
// attribute of the resource (password.Password). An add-on that acts when
// the password changes (log_out_everywhere's apply_on_password_change)
// finds the attribute through it, without importing the strategy.
type HashedPasswordStrategy interface {
	Strategy
	// HashedPasswordAttribute is the name of the attribute holding the
	// hash.
	HashedPasswordAttribute() string
}

// ExtensionName is "authentication".
func (Authentication) ExtensionName() string { return "authentication" }

// Declare implements resource.Section.
func (a Authentication) Declare(d *resource.Declaration) { d.AddExtension(a) }

// Config returns the section with defaults applied for resource name.
func (a Authentication) Config(resourceName string) Authentication {
	Schema.Defaults(&a)
	if a.SubjectName == "" {
		a.SubjectName = resourceName
	}
	if a.Tokens.SessionIdentifier == "" && a.Tokens.RequireTokenPresenceForAuthentication {
		a.Tokens.SessionIdentifier = SessionJTI
	}
	return a
}

// Transform adds the get-by-subject action, then runs the strategies' and
// add-ons' transforms. The section, holding the view of that action and the
// strategies and add-ons as built, then replaces the declared one in d:
// For finds it there.
func (a Authentication) Transform(b *resource.BuildContext, d *resource.Declaration) {
	cfg := a.Config(d.Name)
	var pk []string
	for _, attr := range d.PrimaryKey() {
		pk = append(pk, attr.Name)
	}
	if len(pk) > 0 {
		// The keys are the primary key's attributes, known at build time
		// only: the view's input is a resource.Input.
		a.getBySubject = resource.NewView[any, resource.Input](resource.Read{
			Name: cfg.GetBySubjectAction, Description: "Gets the record a token's subject names.", GetBy: pk})
		d.AddAction(a.getBySubject)
	}
	a.Strategies = slices.Clone(a.Strategies)
	for i, s := range a.Strategies {
		if s != nil {
			a.Strategies[i] = s.Transform(b, d, cfg)
		}
	}
	a.AddOns = slices.Clone(a.AddOns)
	for i, o := range a.AddOns {
		if o != nil {
			a.AddOns[i] = o.Transform(b, d, cfg)
		}
	}
	for i, e := range d.Extensions {
		if e.ExtensionName() == a.ExtensionName() {
			d.Extensions[i] = a
		}
	}
}

// Verify checks the options, then runs the strategies' and add-ons'
// verifiers.
func (a Authentication) Verify(b *resource.BuildContext, d *resource.Declaration) {
	cfg := a.Config(d.Name)
	loc := d.Location
	t := cfg.Tokens
	path := func(p ...string) []string { return append([]string{"authentication"}, p...) }
	if t.Enabled {
		switch {
		case t.TokenResource == nil:
			d.Problem(loc, path("tokens", "token_resource"), "is required when tokens are enabled", "set TokenResource: Tokens (a resource with the tokenresource.Token section)")
		case b.Resource(t.TokenResource) == nil:
			d.Problem(loc, path("tokens", "token_resource"), fmt.Sprintf("resource %q is not in domain %q", t.TokenResource.Name(), b.DomainName()),
				fmt.Sprintf("add it: resource.NewDomain(%q, …, %s)", b.DomainName(), t.TokenResource.Name()))
		case !b.Resource(t.TokenResource).HasExtension("token"):
			d.Problem(loc, path("tokens", "token_resource"), fmt.Sprintf("resource %q is not a token resource", t.TokenResource.Name()),
				"declare the tokenresource.Token section on it")
		}
		if t.SigningSecret == nil {
			d.Problem(loc, path("tokens", "signing_secret"), "is required when tokens are enabled",
				`set SigningSecret: authentication.SecretFromEnv("KILN_TOKEN_SIGNING_SECRET")`)
		}
		for i, s := range append([]Secret{t.SigningSecret}, t.PreviousSecrets...) {
			if ss, ok := s.(SecretString); ok && len(ss) < MinSecretLength {
				name := "signing_secret"
				if i > 0 {
					name = fmt.Sprintf("previous_secrets -> %d", i-1)
				}
				d.Problem(loc, path("tokens", name), fmt.Sprintf("is %d bytes long, shorter than %d", len(ss), MinSecretLength),
					"use a random secret of at least 32 bytes (openssl rand -base64 48)")
			}
		}
		d.Check(TokensSchema, t, "authentication", "tokens")
		if t.RequireTokenPresenceForAuthentication && !t.StoreAllTokens {
			d.Problem(loc, path("tokens", "require_token_presence_for_authentication"), "needs every token stored",
				"add StoreAllTokens: true to authentication.Tokens")
		}
		switch t.SessionIdentifier {
		case "":
			d.Problem(loc, path("tokens", "session_identifier"), "is not set",
				"add SessionIdentifier: authentication.SessionJTI (or RequireTokenPresenceForAuthentication: true) to authentication.Tokens")
		case SessionJTI, SessionUnsafe:
			if t.SessionIdentifier == SessionJTI && !t.StoreAllTokens {
				d.Problem(loc, path("tokens", "session_identifier"), "jti sessions need every token stored, to find the token by its jti",
					"add StoreAllTokens: true to authentication.Tokens")
			}
		}
	}
	if len(d.PrimaryKey()) > 0 {
		if act := d.Action(cfg.GetBySubjectAction); act == nil || act.Type != resource.ReadAction || !act.Get {
			d.Problem(loc, path("get_by_subject_action"), fmt.Sprintf("%q must be a read action that gets one record by primary key", cfg.GetBySubjectAction),
				"remove your action of that name, or set GetBySubjectAction to another name")
		}
	}
	seen := map[string]bool{}
	for i, s := range a.Strategies {
		if s == nil {
			d.Problem(loc, path("strategies", fmt.Sprint(i)), "is nil", "remove it")
			continue
		}
		if seen[s.StrategyName()] {
			d.Problem(loc, path("strategies", s.StrategyName()), "declared twice", "give each strategy its own Name")
		}
		seen[s.StrategyName()] = true
		s.Verify(b, d, cfg)
	}
	seen = map[string]bool{}
	for i, o := range a.AddOns {
		if o == nil {
			d.Problem(loc, path("add_ons", fmt.Sprint(i)), "is nil", "remove it")
			continue
		}
		if seen[o.AddOnName()] {
			d.Problem(loc, path("add_ons", o.AddOnName()), "declared twice", "declare each add-on once")
		}
		seen[o.AddOnName()] = true
		o.Verify(b, d, cfg)
	}
}
