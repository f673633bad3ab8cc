package password

import (
	"github.com/kiln-go/kiln/dsl"
	"github.com/kiln-go/kiln/extensions/authentication"
)

// Schema is the schema of the password strategy.
var Schema = dsl.Bind[Password](&dsl.Section{
	Name:   "password",
	GoType: "password.Password",
	Doc:    "The password strategy: register, sign in, sign-in tokens, change and reset passwords.",
	Options: []dsl.Option{
		{Name: "name", Field: "Name", Kind: dsl.String, Default: "password", Doc: "Names the strategy and its actions."},
		{Name: "identity_field", Field: "IdentityField", Kind: dsl.String, Default: "username", Doc: "The attribute users sign in with; must be an identity (unique)."},
		{Name: "hashed_password_field", Field: "HashedPasswordField", Kind: dsl.String, Default: "hashed_password", Doc: "The attribute that holds the hash; marked sensitive and read-only."},
		{Name: "hash_provider", Field: "HashProvider", Kind: dsl.Code, Doc: "Hashes passwords: password.Bcrypt{} (default, cost 10) or password.Argon2id{}."},
		{Name: "case_sensitive_identity", Field: "CaseSensitiveIdentity", Kind: dsl.Bool,
			Doc: "Keeps the identity as typed. Default: false, identities are trimmed and lower-cased when stored and looked up, so Ada@Example.com and ada@example.com are one account."},
		{Name: "confirmation_optional", Field: "ConfirmationOptional", Kind: dsl.Bool, Doc: "Drops the password_confirmation argument. Default: false (required)."},
		{Name: "min_length", Field: "MinLength", Kind: dsl.Int, Default: DefaultMinLength, Doc: "The shortest password, in characters.",
			Rules: "gt=0", Fix: "use a positive length, or leave it out for 8"},
		{Name: "sign_in_token_lifetime", Field: "SignInTokenLifetime", Kind: dsl.Duration, Default: DefaultSignInTokenLifetime,
			Doc: "The lifetime of a one-shot sign-in token.", Rules: "gt=0", Fix: "use a positive duration, or leave it out for 60s"},
		{Name: "resettable", Field: "Resettable", Kind: dsl.Code, Doc: "Enables the reset flow with a Sender; reset tokens live 3 days unless its TokenLifetime says otherwise. Default: no reset."},
	},
	Sections: []*dsl.Section{{
		Name: "actions", Field: "Actions", GoType: "password.ActionNames",
		Doc: "The names of the strategy's actions; a name left empty takes its default, which follows the strategy's name (and identity field).",
		Options: []dsl.Option{
			{Name: "register", Field: "Register", Kind: dsl.String, Doc: "Registers with an identity and a password. Default: register_with_<name>."},
			{Name: "sign_in", Field: "SignIn", Kind: dsl.String, Doc: "Signs in with an identity and a password. Default: sign_in_with_<name>."},
			{Name: "sign_in_with_token", Field: "SignInWithToken", Kind: dsl.String, Doc: "Exchanges a one-shot sign-in token for a session token. Default: sign_in_with_token."},
			{Name: "change", Field: "Change", Kind: dsl.String, Doc: "Changes the password after checking the current one. Default: change_<name>."},
			{Name: "set", Field: "Set", Kind: dsl.String, Doc: "Sets a new password without checking the old one (used by the reset flow). Default: set_<name>."},
			{Name: "get_by_identity", Field: "GetByIdentity", Kind: dsl.String, Doc: "Gets a record by its identity. Default: get_by_<identity_field>."},
			{Name: "request_reset", Field: "RequestReset", Kind: dsl.String, Doc: "Sends a reset token to the user with that identity, if there is one; always succeeds. Default: request_<name>_reset."},
			{Name: "reset", Field: "Reset", Kind: dsl.String, Doc: "Sets a new password with a reset token (used once). Default: reset_with_<name>."},
		},
	}},
	GoExample: `password.Password{
	IdentityField: "email",
	MinLength:     12,
	Resettable:    &password.Resettable{}, // and Build(…, resource.With(mailer))
}`,
	YAMLExample: `resources:
  user:
    authentication:
      strategies:
        password:
          min_length: 12
          sign_in_token_lifetime: 2m`,
})

// ConfigureStrategy applies a config file's strategies.<name> section.
func (p Password) ConfigureStrategy(a *dsl.Applier, values map[string]any, path []string) authentication.Strategy {
	a.Apply(Schema, &p, values, path)
	return p
}

// DescribeOptions prints the options, defaults applied.
func (p Password) DescribeOptions() string { return dsl.Describe(Schema, p.Config()) }
