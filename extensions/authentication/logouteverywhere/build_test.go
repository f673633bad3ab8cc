package logouteverywhere_test

import (
	"context"
	"errors"
	"testing"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/logouteverywhere"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
)

// Account has no hashed password.
type Account struct {
	ID    int64  `bun:",pk,autoincrement"`
	Email string `bun:",unique,notnull"`
}

// TestBuildErrors pins the add-on's build errors: the lines to add to
// authentication.Tokens when tokens, store-all or presence are missing.
func TestBuildErrors(t *testing.T) {
	tokens := resource.New[accountstest.Token]("token", tokenresource.Token{})
	secret := authentication.SecretString(accountstest.Secret)
	lo := []authentication.AddOn{logouteverywhere.LogOutEverywhere{}}
	const p = `kiln/resource: resource "user": authentication -> add_ons -> log_out_everywhere`
	type testCase struct {
		name string
		r    resource.Ref
		want string
	}
	var cases []testCase

	r, at := resource.New[accountstest.User]("user", authentication.Authentication{AddOns: lo}), here()
	cases = append(cases, testCase{"tokens disabled", r,
		p + `: needs tokens enabled, every token stored and token presence required; add to authentication.Tokens{…}: Enabled: true, StoreAllTokens: true, RequireTokenPresenceForAuthentication: true, (` + at + `)`})

	unsafe := authentication.Tokens{Enabled: true, TokenResource: tokens, SigningSecret: secret, SessionIdentifier: authentication.SessionUnsafe}
	r, at = resource.New[accountstest.User]("user", authentication.Authentication{Tokens: unsafe, AddOns: lo}), here()
	cases = append(cases, testCase{"nothing stored", r,
		p + `: needs tokens enabled, every token stored and token presence required; add to authentication.Tokens{…}: StoreAllTokens: true, RequireTokenPresenceForAuthentication: true, (` + at + `)`})

	storeAll := authentication.Tokens{Enabled: true, TokenResource: tokens, SigningSecret: secret, StoreAllTokens: true, SessionIdentifier: authentication.SessionJTI}
	r, at = resource.New[accountstest.User]("user", authentication.Authentication{Tokens: storeAll, AddOns: lo}), here()
	cases = append(cases, testCase{"presence not required", r,
		p + `: needs tokens enabled, every token stored and token presence required; add to authentication.Tokens{…}: RequireTokenPresenceForAuthentication: true, (` + at + `)`})

	presence := authentication.Tokens{Enabled: true, TokenResource: tokens, SigningSecret: secret, StoreAllTokens: true, RequireTokenPresenceForAuthentication: true}
	a, at := resource.New[Account]("user", authentication.Authentication{Tokens: presence, AddOns: []authentication.AddOn{logouteverywhere.LogOutEverywhere{ApplyOnPasswordChange: true}}}), here()
	cases = append(cases, testCase{"no hashed password to watch", a,
		p + ` -> apply_on_password_change: watches attribute "hashed_password", which the resource does not have; set HashedPasswordField (` + at + `)`})

	r, at = resource.New[accountstest.User]("user", authentication.Authentication{Tokens: presence, AddOns: lo}, resource.Actions{resource.Read{Name: "log_out_everywhere"}}), here()
	cases = append(cases, testCase{"action of a wrong type", r,
		`kiln/resource: resource "user": actions -> log_out_everywhere: is a read action; log_out_everywhere adds a generic action of that name; rename your action, or set ActionName (` + at + `)`})

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

// TestFor: For finds the built add-on; Run on the declared one, and For on
// a resource without the add-on, say so.
func TestFor(t *testing.T) {
	ctx := context.Background()
	if _, err := (logouteverywhere.LogOutEverywhere{}).Run(ctx, nil, &accountstest.User{}); !errors.Is(err, logouteverywhere.ErrNotBuilt) ||
		err.Error() != "kiln/logouteverywhere: the add-on is not built; use the one logouteverywhere.For returns" {
		t.Errorf("Run on the declared add-on = %v", err)
	}
	tokens := resource.New[accountstest.Token]("token", tokenresource.Token{})
	users := resource.New[accountstest.User]("user", authentication.Authentication{Tokens: authentication.Tokens{Enabled: true, TokenResource: tokens,
		SigningSecret: authentication.SecretString(accountstest.Secret), StoreAllTokens: true, RequireTokenPresenceForAuthentication: true}})
	d, err := resource.NewDomain("accounts", users, tokens).Build(ctx, testdb.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := authentication.For(d, users)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := logouteverywhere.For(auth); !errors.Is(err, logouteverywhere.ErrNoAddOn) ||
		err.Error() != `kiln/logouteverywhere: the resource has no log_out_everywhere add-on: "user"` {
		t.Errorf("For without the add-on = %v", err)
	}
}
