// Package logouteverywhere is the log_out_everywhere add-on: an action that
// revokes every stored token of a user in one statement, and, with
// ApplyOnPasswordChange, the same on any update that changes the hashed
// password, inside that update's transaction. Each revoked token sends one
// notification after commit, so every live session closes.
//
// At run time, For(auth) returns the add-on as the domain built it; its Run
// runs the action. The add-on as built also serves it over HTTP (Routes,
// an authroute.Provider), through the web glue.
package logouteverywhere

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
)

// LogOutEverywhere is the add-on. The zero value of every field takes the
// default documented on it.
type LogOutEverywhere struct {
	// ActionName is the action_name option. The generic action it adds.
	// Default: "log_out_everywhere".
	ActionName string
	// ArgumentName is the argument_name option. The action's argument
	// holding the user (*T). Default: "user".
	ArgumentName string
	// IncludePurposes is the include_purposes option. Revoke only tokens of
	// these purposes. Default: every purpose.
	IncludePurposes []string
	// ExcludePurposes is the exclude_purposes option. Keep tokens of these
	// purposes; revocation rows are never touched either way. Default:
	// [revocation].
	ExcludePurposes []string
	// ApplyOnPasswordChange is the apply_on_password_change option. Revokes
	// every token of the user whenever an update changes the hashed
	// password, in that update's transaction. Default: false.
	ApplyOnPasswordChange bool
	// HashedPasswordField is the hashed_password_field option. The
	// attribute apply_on_password_change watches. Default: the password
	// strategy's, or hashed_password.
	HashedPasswordField string

	// action is the view of the action, made by Transform for the
	// declaration it builds; nil before. Its argument is named at build
	// time (ArgumentName): its input is a resource.Input.
	action *resource.View[any, resource.Input]
}

// Errors of Run.
var (
	// ErrNoAddOn: the resource does not declare the add-on.
	ErrNoAddOn = errors.New("kiln/logouteverywhere: the resource has no log_out_everywhere add-on")
	// ErrNotBuilt: Run was called on the add-on as declared, not on the
	// one For returns, which holds the handle on its action.
	ErrNotBuilt = errors.New("kiln/logouteverywhere: the add-on is not built; use the one logouteverywhere.For returns")
)

// For returns the add-on of auth's resource as the domain built it: its
// Run runs the action, by its configured name.
func For(auth *authentication.Auth) (LogOutEverywhere, error) {
	for _, o := range auth.Config().AddOns {
		if l, ok := o.(LogOutEverywhere); ok && l.action != nil {
			return l, nil
		}
	}
	return LogOutEverywhere{}, fmt.Errorf("%w: %q", ErrNoAddOn, auth.Resource().Name())
}

// Run runs the action for user (a *T): it revokes every stored token of
// the user, in one statement, and returns how many.
func (l LogOutEverywhere) Run(ctx context.Context, d *resource.Domain, user any) (int, error) {
	if l.action == nil {
		return 0, ErrNotBuilt
	}
	return resource.CallView[int](ctx, d, l.action, resource.Input{l.ArgumentName: user})
}

// AddOnName implements authentication.AddOn.
func (l LogOutEverywhere) AddOnName() string { return "log_out_everywhere" }

// Config returns the add-on with defaults applied.
func (l LogOutEverywhere) Config() LogOutEverywhere {
	Schema.Defaults(&l)
	return l
}

// hashedField finds the attribute ApplyOnPasswordChange watches.
func (l LogOutEverywhere) hashedField(auth authentication.Authentication) string {
	if l.HashedPasswordField != "" {
		return l.HashedPasswordField
	}
	for _, s := range auth.Strategies {
		if h, ok := s.(authentication.HashedPasswordStrategy); ok {
			return h.HashedPasswordAttribute()
		}
	}
	return "hashed_password"
}

// Transform adds the action and, with ApplyOnPasswordChange, the change on
// every update. It returns the add-on as built, whose Run runs the action.
func (l LogOutEverywhere) Transform(_ *resource.BuildContext, d *resource.Declaration, auth authentication.Authentication) authentication.AddOn {
	l = l.Config()
	l.action = resource.NewView[any, resource.Input](resource.Generic{
		Name:        l.ActionName,
		Description: "Revokes every stored token of the user; each live session closes.",
		Arguments:   []resource.Argument{{Name: l.ArgumentName, Type: reflect.PointerTo(d.Type), Validate: "required"}},
		Run: func(ctx context.Context, cs *resource.AnyChangeset) (any, error) {
			return l.revokeAll(ctx, cs, cs.Argument(l.ArgumentName), revocation.LogOutEverywhere)
		},
	})
	d.AddAction(l.action)
	if l.ApplyOnPasswordChange {
		field := l.hashedField(auth)
		d.AddChange(resource.Change{
			Name: "log_out_everywhere_on_password_change",
			On:   []resource.ActionType{resource.UpdateAction},
			// One record: revoke before the write, in its transaction.
			Before: func(ctx context.Context, cs *resource.AnyChangeset) error {
				if cs.Bulk() || !cs.Changing(field) {
					return nil
				}
				_, err := l.revokeAll(ctx, cs, cs.Old(), revocation.PasswordChanged)
				return err
			},
			// Bulk: revoke for each updated record.
			After: func(ctx context.Context, cs *resource.AnyChangeset, rec any) error {
				if !cs.Bulk() || !cs.Changing(field) {
					return nil
				}
				_, err := l.revokeAll(ctx, cs, rec, revocation.PasswordChanged)
				return err
			},
		})
	}
	return l
}

func (l LogOutEverywhere) revokeAll(ctx context.Context, cs *resource.AnyChangeset, user any, reason revocation.Reason) (int, error) {
	auth, err := authentication.For(cs.Domain(), cs.ResourceRef())
	if err != nil {
		return 0, err
	}
	subject, err := auth.Subject(user)
	if err != nil {
		return 0, err
	}
	return auth.Tokens().RevokeAllForSubject(ctx, subject, reason, tokenresource.RevokeAllOptions{
		IncludePurposes: l.IncludePurposes, ExcludePurposes: l.ExcludePurposes})
}

// Verify fails the build, with the exact lines to add, when tokens,
// store-all or token presence are missing.
func (l LogOutEverywhere) Verify(_ *resource.BuildContext, d *resource.Declaration, auth authentication.Authentication) {
	var missing []string
	if !auth.Tokens.Enabled {
		missing = append(missing, "Enabled: true,")
	}
	if !auth.Tokens.StoreAllTokens {
		missing = append(missing, "StoreAllTokens: true,")
	}
	if !auth.Tokens.RequireTokenPresenceForAuthentication {
		missing = append(missing, "RequireTokenPresenceForAuthentication: true,")
	}
	if len(missing) > 0 {
		d.Problem(d.Location, []string{"authentication", "add_ons", "log_out_everywhere"},
			"needs tokens enabled, every token stored and token presence required",
			"add to authentication.Tokens{…}: "+strings.Join(missing, " "))
	}
	l = l.Config()
	if l.ApplyOnPasswordChange {
		if field := l.hashedField(auth); d.Attribute(field) == nil {
			d.Problem(d.Location, []string{"authentication", "add_ons", "log_out_everywhere", "apply_on_password_change"},
				fmt.Sprintf("watches attribute %q, which the resource does not have", field), "set HashedPasswordField")
		}
	}
	if a := d.Action(l.ActionName); a != nil && a.Type != resource.GenericAction {
		d.Problem(a.Location(), []string{"actions", l.ActionName}, fmt.Sprintf("is %s action; log_out_everywhere adds a generic action of that name", a.Type.Article()),
			"rename your action, or set ActionName")
	}
}
