package password_test

import (
	"context"
	"testing"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
)

// PlainUser's email is no identity and its hash no string.
type PlainUser struct {
	ID             int64  `bun:",pk,autoincrement"`
	Email          string `bun:",notnull"`
	HashedPassword int
}

// TestBuildErrors pins the password strategy's build errors.
func TestBuildErrors(t *testing.T) {
	tokens := resource.New[accountstest.Token]("token", tokenresource.Token{})
	tk := authentication.Tokens{Enabled: true, TokenResource: tokens, SigningSecret: authentication.SecretString(accountstest.Secret),
		StoreAllTokens: true, RequireTokenPresenceForAuthentication: true}
	with := func(p password.Password) authentication.Authentication {
		return authentication.Authentication{Tokens: tk, Strategies: []authentication.Strategy{p}}
	}
	const p = `kiln/resource: resource "user": authentication -> strategies -> password -> `
	type testCase struct {
		name string
		r    resource.Ref
		want string
	}
	var cases []testCase

	r, at := resource.New[accountstest.User]("user", with(password.Password{})), here()
	cases = append(cases, testCase{"default identity field missing", r,
		p + `identity_field: unknown attribute "username"; add a field for it to the record struct, or set IdentityField; use one of: id, email, hashed_password (` + at + `)`})

	r2, at := resource.New[PlainUser]("user", with(password.Password{IdentityField: "email"})), here()
	cases = append(cases, testCase{"identity that is not unique, hash that is no string", r2,
		p + `identity_field: attribute "email" is not an identity; tag its field ` + "`" + `bun:",unique"` + "`" + ` or declare a resource.Identity on it (` + at + `)` + "\n" +
			p + `hashed_password_field: attribute "hashed_password" is a int, not a string; make it a string (` + at + `)`})

	r, at = resource.New[accountstest.User]("user", with(password.Password{IdentityField: "email", HashedPasswordField: "secret", MinLength: 80})), here()
	cases = append(cases, testCase{"hash field missing, min length past bcrypt", r,
		p + `hashed_password_field: unknown attribute "secret"; add HashedPassword string ` + "`" + `bun:",notnull"` + "`" + ` to the record struct, or set HashedPasswordField (` + at + `)` + "\n" +
			p + `min_length: 80 is more than the 72 bytes the hash provider takes; lower it (` + at + `)`})

	negative := password.Password{IdentityField: "email", MinLength: -1, SignInTokenLifetime: -1, Resettable: &password.Resettable{TokenLifetime: -1}}
	r, at = resource.New[accountstest.User]("user", with(negative)), here()
	cases = append(cases, testCase{"negative options, no sender", r,
		p + `min_length: must be positive (-1); use a positive length, or leave it out for 8 (` + at + `)` + "\n" +
			p + `sign_in_token_lifetime: must be positive (-1ns); use a positive duration, or leave it out for 60s (` + at + `)` + "\n" +
			p + `resettable -> sender: is required; set Sender to something that delivers the reset token (password.SenderFunc) (` + at + `)` + "\n" +
			p + `resettable -> token_lifetime: is negative; use a positive duration, or 0 for the default of 3 days (` + at + `)`})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := resource.NewDomain("accounts", c.r, tokens).Build(context.Background(), testdb.SQLite(t))
			if err == nil {
				t.Fatal("Build succeeded")
			}
			if got := err.Error(); got != c.want {
				t.Errorf("Build error\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

// TestDefaults: the zero strategy's options and the actions it adds.
func TestDefaults(t *testing.T) {
	c := password.Password{}.Config()
	if c.Name != "password" || c.IdentityField != "username" || c.HashedPasswordField != "hashed_password" || c.MinLength != 8 ||
		c.SignInTokenLifetime.Seconds() != 60 || c.Resettable != nil || c.ConfirmationOptional {
		t.Errorf("defaults %+v", c)
	}
	if _, ok := c.HashProvider.(password.Bcrypt); !ok {
		t.Errorf("default provider %T", c.HashProvider)
	}
	want := password.ActionNames{Register: "register_with_password", SignIn: "sign_in_with_password", SignInWithToken: "sign_in_with_token",
		Change: "change_password", Set: "set_password", GetByIdentity: "get_by_username", RequestReset: "request_password_reset", Reset: "reset_with_password"}
	if c.Actions != want {
		t.Errorf("action names %+v", c.Actions)
	}
	r := password.Password{Resettable: &password.Resettable{}}.Config().Resettable
	if r.TokenLifetime.Hours() != 72 {
		t.Errorf("reset token lifetime %s", r.TokenLifetime)
	}
	a, _ := accounts(t, "sqlite")
	decl := a.Domain.Declaration(a.Users)
	for name, typ := range map[string]resource.ActionType{
		"register_with_password": resource.CreateAction, "sign_in_with_password": resource.GenericAction, "sign_in_with_token": resource.GenericAction,
		"change_password": resource.UpdateAction, "set_password": resource.UpdateAction, "get_by_email": resource.ReadAction,
		"request_password_reset": resource.GenericAction, "reset_with_password": resource.GenericAction, "log_out_everywhere": resource.GenericAction,
	} {
		if act := decl.Action(name); act == nil || act.Type != typ {
			t.Errorf("action %s: %+v, want a %s action", name, act, typ)
		}
	}
	if h := decl.Attribute("hashed_password"); !h.Sensitive || !h.ReadOnly {
		t.Errorf("hashed_password is not sensitive and read-only: %+v", h)
	}
}

// TestConfirmationOptional drops the confirmation argument.
func TestConfirmationOptional(t *testing.T) {
	d, users, auth, p := customAccounts(t, password.Password{IdentityField: "email", ConfirmationOptional: true, HashProvider: password.Bcrypt{Cost: 4}})
	s, err := p.Register(context.Background(), d, password.RegisterInput{Identity: "ada@example.com", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Verify(context.Background(), s.Token); err != nil {
		t.Error(err)
	}
	_, err = d.Run(context.Background(), users, "register_with_password", resource.Input{"email": "bob@example.com", "password": pw, "password_confirmation": pw})
	if validationError(err, "password_confirmation") == nil {
		t.Errorf("the confirmation is still an argument: %v", err)
	}
}
