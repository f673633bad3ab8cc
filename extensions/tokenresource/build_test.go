package tokenresource_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/resource"
)

// NoFields is a token record that forgot to embed tokenresource.Fields.
type NoFields struct {
	ID string `bun:",pk"`
}

// ExtraKey embeds the fields but declares a second key.
type ExtraKey struct {
	tokenresource.Fields
	ID int64 `bun:",pk"`
}

// TestBuildErrors pins every build error of the token section: the
// resource, the path, the fix and the place of the declaration.
func TestBuildErrors(t *testing.T) {
	var cases []struct {
		name string
		r    resource.Ref
		want string
	}
	add := func(name string, r resource.Ref, want string) {
		cases = append(cases, struct {
			name string
			r    resource.Ref
			want string
		}{name, r, want})
	}

	var r resource.Ref
	var at string
	r, at = resource.New[NoFields]("token", tokenresource.Token{}), here()
	add("record without Fields", r,
		`kiln/resource: resource "token": token: record type tokenresource_test.NoFields does not embed tokenresource.Fields; type Token struct{ tokenresource.Fields } (`+at+`)`)

	r, at = resource.New[ExtraKey]("token", tokenresource.Token{}), here()
	add("second primary key", r,
		`kiln/resource: resource "token": token -> attributes -> jti: jti must be the only primary key; embed tokenresource.Fields and declare no other pk (`+at+`)`)

	r, at = resource.New[Token]("token", tokenresource.Token{ExpungeInterval: -5 * time.Minute}), here()
	add("negative expunge interval", r,
		`kiln/resource: resource "token": token -> expunge_interval: must be positive (-5m0s); use a positive duration, or leave it out for 12h (`+at+`)`)

	r, at = resource.New[Token]("token", tokenresource.Token{Knowledge: tokenresource.KnowledgeOptions{MaxAge: -time.Minute, MaxEntries: -1}}), here()
	add("negative knowledge bounds", r,
		`kiln/resource: resource "token": token -> knowledge -> max_age: must be positive (-1m0s); use a positive duration up to 1h, or leave it out for 1m (`+at+`)`+"\n"+
			`kiln/resource: resource "token": token -> knowledge -> max_entries: must be positive (-1); use a positive number, or leave it out for 100000 (`+at+`)`)

	r, at = resource.New[Token]("token", tokenresource.Token{Knowledge: tokenresource.KnowledgeOptions{MaxAge: 2 * time.Hour}}), here()
	add("knowledge trusted too long", r,
		`kiln/resource: resource "token": token -> knowledge -> max_age: must be at most 1h (2h0m0s); use a positive duration up to 1h, or leave it out for 1m (`+at+`)`)

	r, at = resource.New[Token]("token", tokenresource.Token{}, resource.Actions{resource.Read{Name: "revoke_token"}}), here()
	add("store action of a wrong type", r,
		`kiln/resource: resource "token": actions -> revoke_token: is a read action; the token store needs a generic action of that name; rename your action, or name the token store's action otherwise in Token.Actions (`+at+`)`)

	r, at = resource.New[Token]("token", tokenresource.Token{Actions: tokenresource.ActionNames{ExpungeExpired: "purge"}}, resource.Actions{resource.Update{Name: "purge"}}), here()
	add("renamed store action of a wrong type", r,
		`kiln/resource: resource "token": actions -> purge: is an update action; the token store needs a destroy action of that name; rename your action, or name the token store's action otherwise in Token.Actions (`+at+`)`)

	r, at = resource.New[Token]("token", tokenresource.Token{}, tokenresource.Token{}), here()
	add("declared twice", r,
		`kiln/resource: resource "token": token: declared twice; declare each extension once per resource (`+at+`)`)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := resource.NewDomain("accounts", c.r).Build(context.Background(), open(t, "sqlite"))
			if err == nil {
				t.Fatal("Build succeeded")
			}
			if got := err.Error(); got != c.want {
				t.Errorf("Build error\n%s\nwant\n%s", got, c.want)
			}
			var be *resource.BuildError
			if !errors.As(err, &be) || be.Resource != "token" || be.Fix == "" {
				t.Errorf("not a *BuildError with resource and fix: %#v", be)
			}
		})
	}
}

// TestUserActionOfTheRightTypeIsKept: an action the user declares under a
// store action's name, of the right type, is the user's.
func TestUserActionOfTheRightTypeIsKept(t *testing.T) {
	tokens := resource.New[Token]("token", tokenresource.Token{}, resource.Actions{
		resource.Read{Name: "read_expired", Description: "mine", Filter: resource.Le("expires_at", resource.CurrentTime)},
	})
	d, err := resource.NewDomain("accounts", tokens).Build(context.Background(), open(t, "sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Declaration(tokens).Action("read_expired").Description; got != "mine" {
		t.Errorf("read_expired is %q, not the user's", got)
	}
}
