package authentication

import (
	"slices"
	"strings"

	"github.com/kiln-go/kiln/dsl"
	"github.com/kiln-go/kiln/resource"
)

// TokensSchema is the schema of the tokens section.
var TokensSchema = dsl.Bind[Tokens](&dsl.Section{
	Name: "tokens", Field: "Tokens", GoType: "authentication.Tokens",
	Doc: "JWTs: how they are signed, how long they live, and whether they are stored.",
	Options: []dsl.Option{
		{Name: "enabled", Field: "Enabled", Kind: dsl.Bool, Doc: "Turns tokens on. Default: false."},
		{Name: "token_resource", Field: "TokenResource", Kind: dsl.Resource, Doc: "The token store: a resource with the token section (tokenresource.Token). Required when enabled."},
		{Name: "signing_secret", Field: "SigningSecret", Kind: dsl.Secret, Doc: "Signs and verifies tokens; read at run time, on every use, so it may come from a vault. At least 32 bytes. Required when enabled."},
		{Name: "previous_secrets", Field: "PreviousSecrets", Kind: dsl.Secrets, Doc: "Still verify tokens signed before a rotation; new tokens are signed with signing_secret only. Default: none."},
		{Name: "signing_algorithm", Field: "SigningAlgorithm", Kind: dsl.String, Default: "HS256",
			Doc: "HS256, HS384 or HS512; tokens signed with any other algorithm, \"none\" included, are refused.", Rules: "oneof=HS256 HS384 HS512", Fix: "use HS256, HS384 or HS512"},
		{Name: "token_lifetime", Field: "TokenLifetime", Kind: dsl.Duration, Default: DefaultTokenLifetime,
			Doc: "How long a session token is valid.", Rules: "gt=0", Fix: "use a positive duration, or leave it out for 14 days"},
		{Name: "store_all_tokens", Field: "StoreAllTokens", Kind: dsl.Bool, Doc: "Stores every issued token, so all of a user's sessions can be listed and revoked. Default: false."},
		{Name: "require_token_presence_for_authentication", Field: "RequireTokenPresenceForAuthentication", Kind: dsl.Bool,
			Doc: "Accepts a session token only while its stored row exists, so deleting or revoking the row signs it out. Needs store_all_tokens. Default: false."},
		{Name: "session_identifier", Field: "SessionIdentifier", Kind: dsl.String,
			Doc:   "What a web session keeps: jti (authentication.SessionJTI: the token's jti, looked up in the store) or unsafe (SessionUnsafe: the whole token). Required unless token presence is required, which implies jti.",
			Rules: "omitempty,oneof=jti unsafe", Fix: "use authentication.SessionJTI or authentication.SessionUnsafe"},
	},
	GoExample: `authentication.Tokens{
	Enabled:        true,
	TokenResource:  Tokens,
	SigningSecret:  authentication.SecretFromEnv("KILN_TOKEN_SIGNING_SECRET"),
	StoreAllTokens: true,
	RequireTokenPresenceForAuthentication: true,
}`,
	YAMLExample: `resources:
  user:
    authentication:
      tokens:
        token_lifetime: 72h
        signing_algorithm: HS512`,
})

// Schema is the schema of the authentication section.
var Schema = dsl.Bind[Authentication](&dsl.Section{
	Name:   "authentication",
	GoType: "authentication.Authentication",
	Doc:    "Makes a resource authenticatable: tokens, strategies (password) and add-ons (log_out_everywhere).",
	Options: []dsl.Option{
		{Name: "subject_name", Field: "SubjectName", Kind: dsl.String, Doc: "The first part of a token's subject, \"user\" in \"user?id=…\". Default: the resource's name."},
		{Name: "get_by_subject_action", Field: "GetBySubjectAction", Kind: dsl.String, Default: "get_by_subject",
			Doc: "The read action that loads a record from a subject; added when not declared."},
		{Name: "strategies", Field: "Strategies", Kind: dsl.Code, Doc: "The ways to sign in (password.Password), keyed by strategy name in config files (strategies.password.min_length)."},
		{Name: "add_ons", Field: "AddOns", Kind: dsl.Code, Doc: "Add-ons (logouteverywhere.LogOutEverywhere), keyed by name in config files (add_ons.log_out_everywhere.…)."},
	},
	Sections: []*dsl.Section{TokensSchema},
	GoExample: `authentication.Authentication{
	Tokens:     authentication.Tokens{…},
	Strategies: []authentication.Strategy{password.Password{IdentityField: "email"}},
	AddOns:     []authentication.AddOn{logouteverywhere.LogOutEverywhere{ApplyOnPasswordChange: true}},
}`,
	YAMLExample: `resources:
  user:
    authentication:
      subject_name: user
      tokens:
        store_all_tokens: true
      strategies:
        password:
          min_length: 12
      add_ons:
        log_out_everywhere:
          apply_on_password_change: true`,
})

// ConfigurableStrategy is a Strategy whose options a config file may set
// (strategies.<name>.…).
type ConfigurableStrategy interface {
	Strategy
	ConfigureStrategy(a *dsl.Applier, values map[string]any, path []string) Strategy
}

// ConfigurableAddOn is an AddOn whose options a config file may set
// (add_ons.<name>.…).
type ConfigurableAddOn interface {
	AddOn
	ConfigureAddOn(a *dsl.Applier, values map[string]any, path []string) AddOn
}

// Configure applies a config file's authentication section, its
// strategies and add-ons included; see resource.Configurable. Secrets
// from config become SecretString values.
func (a Authentication) Configure(ap *dsl.Applier, values map[string]any, path []string) resource.Extension {
	prev := ap.Convert
	ap.Convert = map[dsl.Kind]func(string) any{dsl.Secret: func(s string) any { return SecretString(s) }}
	defer func() { ap.Convert = prev }()
	ap.Apply(Schema, &a, values, path, "strategies", "add_ons")
	if raw, ok := values["strategies"]; ok {
		a.Strategies = slices.Clone(a.Strategies)
		configureList(ap, raw, append(slices.Clone(path), "strategies"), "strategy", len(a.Strategies),
			func(i int) string { return a.Strategies[i].StrategyName() },
			func(i int, m map[string]any, p []string) bool {
				cs, ok := a.Strategies[i].(ConfigurableStrategy)
				if ok {
					a.Strategies[i] = cs.ConfigureStrategy(ap, m, p)
				}
				return ok
			})
	}
	if raw, ok := values["add_ons"]; ok {
		a.AddOns = slices.Clone(a.AddOns)
		configureList(ap, raw, append(slices.Clone(path), "add_ons"), "add-on", len(a.AddOns),
			func(i int) string { return a.AddOns[i].AddOnName() },
			func(i int, m map[string]any, p []string) bool {
				ca, ok := a.AddOns[i].(ConfigurableAddOn)
				if ok {
					a.AddOns[i] = ca.ConfigureAddOn(ap, m, p)
				}
				return ok
			})
	}
	return a
}

// configureList applies a mapping keyed by strategy or add-on name to the
// declared ones; a name not declared in Go is an error (config overrides,
// it does not declare).
func configureList(ap *dsl.Applier, raw any, path []string, what string, n int, name func(int) string, apply func(int, map[string]any, []string) bool) {
	m, ok := raw.(map[string]any)
	if !ok {
		ap.Fail(path, "want a mapping by %s name", what)
		return
	}
	var names []string
	for i := 0; i < n; i++ {
		if name != nil {
			names = append(names, name(i))
		}
	}
	for _, key := range dsl.Keys(m) {
		p := append(slices.Clone(path), key)
		i := slices.Index(names, key)
		sub, isMap := m[key].(map[string]any)
		switch {
		case i < 0:
			ap.Unknown(p, what+" (declare it in Go first)", names)
		case !isMap:
			ap.Fail(p, "want a mapping of options")
		case !apply(i, sub, p):
			ap.Fail(p, "this %s has no options to configure", what)
		}
	}
}

// OptionsDescriber is a Strategy or AddOn that prints its options,
// defaults applied, for Domain.Describe.
type OptionsDescriber interface {
	DescribeOptions() string
}

// DescribeOptions prints the options, defaults applied, then each
// strategy's and add-on's (those that are OptionsDescribers).
func (a Authentication) DescribeOptions(d *resource.Declaration) string {
	parts := []string{dsl.Describe(Schema, a.Config(d.Name))}
	for _, s := range a.Strategies {
		if od, ok := s.(OptionsDescriber); ok {
			parts = append(parts, "strategies."+s.StrategyName()+"{"+od.DescribeOptions()+"}")
		}
	}
	for _, o := range a.AddOns {
		if od, ok := o.(OptionsDescriber); ok {
			parts = append(parts, "add_ons."+o.AddOnName()+"{"+od.DescribeOptions()+"}")
		}
	}
	return strings.Join(parts, " ")
}
