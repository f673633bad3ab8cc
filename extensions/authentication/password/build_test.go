package password_test

import (
	"context"
	"errors"
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
			p + `resettable: no password.Sender to deliver the reset tokens; give Build one: resource.With(sender), a password.Sender such as password.SenderFunc (` + at + `)` + "\n" +
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

// TestConfirmationOptionalIgnoresConfirmation: the methods do not pass a
// confirmation the action does not take.
func TestConfirmationOptionalIgnoresConfirmation(t *testing.T) {
	d, _, _, p := customAccounts(t, password.Password{IdentityField: "email", ConfirmationOptional: true, HashProvider: password.Bcrypt{Cost: 4}})
	ctx := context.Background()
	s, err := p.Register(ctx, d, password.RegisterInput{Identity: "ada@example.com", Password: pw, PasswordConfirmation: "something else"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Change(ctx, d, s.Record, password.ChangeInput{CurrentPassword: pw, Password: "a-new-password"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.SignIn(ctx, d, password.SignInInput{Identity: "ada@example.com", Password: "a-new-password"}); err != nil {
		t.Error(err)
	}
}

// TestRenamedActions: the methods run the actions under their configured
// names.
func TestRenamedActions(t *testing.T) {
	mailbox := &accountstest.Mailbox{}
	d, users, auth, p := customAccounts(t, password.Password{IdentityField: "email", HashProvider: password.Bcrypt{Cost: 4},
		Resettable: &password.Resettable{},
		Actions: password.ActionNames{Register: "sign_up", SignIn: "log_in", SignInWithToken: "redeem", Change: "change",
			Set: "set", GetByIdentity: "find", RequestReset: "forgot", Reset: "reset"}}, mailbox)
	decl := d.Declaration(users)
	for _, name := range []string{"sign_up", "log_in", "redeem", "change", "set", "find", "forgot", "reset"} {
		if decl.Action(name) == nil {
			t.Errorf("no action %q", name)
		}
	}
	if decl.Action("register_with_password") != nil {
		t.Error("the default register action is there too")
	}
	ctx := context.Background()
	s, err := p.Register(ctx, d, password.RegisterInput{Identity: "ada@example.com", Password: pw, PasswordConfirmation: pw})
	if err != nil {
		t.Fatal(err)
	}
	one, err := p.SignIn(ctx, d, password.SignInInput{Identity: "Ada@Example.com", Password: pw, SignInToken: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.SignInWithToken(ctx, d, password.SignInWithTokenInput{Token: one.Token}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Change(ctx, d, s.Record, password.ChangeInput{CurrentPassword: pw, Password: "changed-password", PasswordConfirmation: "changed-password"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Set(ctx, d, s.Record, password.SetInput{Password: "set-password", PasswordConfirmation: "set-password"}); err != nil {
		t.Fatal(err)
	}
	if u, err := p.GetByIdentity(ctx, d, " ADA@example.com"); err != nil || u.(*accountstest.User).ID != s.Record.(*accountstest.User).ID {
		t.Fatalf("GetByIdentity = %v, %v", u, err)
	}
	if err := p.RequestReset(ctx, d, "ada@example.com"); err != nil {
		t.Fatal(err)
	}
	reset, err := p.Reset(ctx, d, password.ResetInput{ResetToken: mailbox.Last("ada@example.com"), Password: "reset-password", PasswordConfirmation: "reset-password"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Verify(ctx, reset.Token); err != nil {
		t.Errorf("the reset's session: %v", err)
	}
}

// TestFor: For finds the built strategy; the declared one, a resource
// without the strategy and a strategy without Resettable say so.
func TestFor(t *testing.T) {
	ctx := context.Background()
	declared := password.Password{IdentityField: "email"}
	if _, err := declared.SignIn(ctx, nil, password.SignInInput{Identity: "ada@example.com", Password: pw}); !errors.Is(err, password.ErrNotBuilt) ||
		err.Error() != "kiln/password: the strategy is not built; use the one password.For returns" {
		t.Errorf("SignIn on the declared strategy = %v", err)
	}
	d, _, _, p := customAccounts(t, password.Password{IdentityField: "email", HashProvider: password.Bcrypt{Cost: 4}})
	if err := p.RequestReset(ctx, d, "ada@example.com"); !errors.Is(err, password.ErrNotResettable) {
		t.Errorf("RequestReset without Resettable = %v", err)
	}
	if _, err := p.Reset(ctx, d, password.ResetInput{ResetToken: "x", Password: pw, PasswordConfirmation: pw}); !errors.Is(err, password.ErrNotResettable) {
		t.Errorf("Reset without Resettable = %v", err)
	}

	tokens := resource.New[accountstest.Token]("token", tokenresource.Token{})
	users := resource.New[accountstest.User]("user", authentication.Authentication{Tokens: authentication.Tokens{Enabled: true, TokenResource: tokens,
		SigningSecret: authentication.SecretString(accountstest.Secret), StoreAllTokens: true, RequireTokenPresenceForAuthentication: true}})
	plain, err := resource.NewDomain("accounts", users, tokens).Build(ctx, testdb.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := authentication.For(plain, users)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := password.For(auth); !errors.Is(err, password.ErrNoStrategy) || err.Error() != `kiln/password: the resource has no password strategy: "user"` {
		t.Errorf("For without the strategy = %v", err)
	}
}
