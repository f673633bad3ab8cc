package logouteverywhere

import (
	"github.com/kiln-go/kiln/dsl"
	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/tokenresource"
)

// Schema is the schema of the log_out_everywhere add-on.
var Schema = dsl.Bind[LogOutEverywhere](&dsl.Section{
	Name:   "log_out_everywhere",
	GoType: "logouteverywhere.LogOutEverywhere",
	Doc:    "Revokes every stored token of a user in one statement — and, with apply_on_password_change, on every password change — so every live session closes.",
	Options: []dsl.Option{
		{Name: "action_name", Field: "ActionName", Kind: dsl.String, Default: "log_out_everywhere", Doc: "The generic action it adds."},
		{Name: "argument_name", Field: "ArgumentName", Kind: dsl.String, Default: "user", Doc: "The action's argument holding the user (*T)."},
		{Name: "include_purposes", Field: "IncludePurposes", Kind: dsl.Strings, Doc: "Revoke only tokens of these purposes. Default: every purpose."},
		{Name: "exclude_purposes", Field: "ExcludePurposes", Kind: dsl.Strings, Default: []string{tokenresource.PurposeRevocation},
			Doc: "Keep tokens of these purposes; revocation rows are never touched either way."},
		{Name: "apply_on_password_change", Field: "ApplyOnPasswordChange", Kind: dsl.Bool,
			Doc: "Revokes every token of the user whenever an update changes the hashed password, in that update's transaction. Default: false."},
		{Name: "hashed_password_field", Field: "HashedPasswordField", Kind: dsl.String,
			Doc: "The attribute apply_on_password_change watches. Default: the password strategy's, or hashed_password."},
	},
	GoExample: `logouteverywhere.LogOutEverywhere{ApplyOnPasswordChange: true}`,
	YAMLExample: `resources:
  user:
    authentication:
      add_ons:
        log_out_everywhere:
          apply_on_password_change: true`,
})

// ConfigureAddOn applies a config file's add_ons.log_out_everywhere section.
func (l LogOutEverywhere) ConfigureAddOn(a *dsl.Applier, values map[string]any, path []string) authentication.AddOn {
	a.Apply(Schema, &l, values, path)
	return l
}

// DescribeOptions prints the options, defaults applied.
func (l LogOutEverywhere) DescribeOptions() string { return dsl.Describe(Schema, l.Config()) }
