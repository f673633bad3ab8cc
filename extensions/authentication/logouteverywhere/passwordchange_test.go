package logouteverywhere_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/logouteverywhere"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
)

var errBoom = errors.New("boom")

// extraActions are update actions of the user for these tests: one that
// changes the password and then fails, one that changes the email only.
var extraActions = resource.Actions{
	resource.Update{
		Name:      "set_password_then_fail",
		Arguments: []resource.Argument{{Name: "password", Validate: "required", Sensitive: true}},
		Changes: []resource.Change{
			{Name: "hash", Before: func(_ context.Context, cs *resource.AnyChangeset) error {
				h, err := password.Bcrypt{Cost: 4}.Hash(resource.Arg[string](cs, "password"))
				if err != nil {
					return err
				}
				return cs.Set("hashed_password", h)
			}},
			{Name: "fail", After: func(context.Context, *resource.AnyChangeset, any) error { return errBoom }},
		},
	},
	resource.Update{Name: "change_email", Accept: []string{"email"}},
}

// setPassword runs set_password on user in ctx.
func (e *env) setPassword(ctx context.Context, user *accountstest.User, p string) error {
	_, err := e.password.Set(ctx, e.d, user, password.SetInput{Password: p, PasswordConfirmation: p})
	return err
}

// TestApplyOnPasswordChange: an update that changes the hashed password
// revokes every token of the user, in its transaction, one notification
// each with reason password_changed.
func TestApplyOnPasswordChange(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			e := build(t, db, logouteverywhere.LogOutEverywhere{ApplyOnPasswordChange: true}, extraActions)
			ctx := context.Background()
			ada := e.register(t, "ada@example.com")
			sessions := []*authentication.Session{ada, e.signIn(t, "ada@example.com"), e.signIn(t, "ada@example.com")}
			bob := e.register(t, "bob@example.com")
			e.rec.Reset()

			if err := e.setPassword(ctx, ada.Record.(*accountstest.User), "a-new-password"); err != nil {
				t.Fatal(err)
			}
			got, reasons := e.rec.revoked()
			if want := jtis(sessions...); !reflect.DeepEqual(got, want) {
				t.Errorf("notified %v, want %v", got, want)
			}
			if !reflect.DeepEqual(reasons, map[revocation.Reason]int{revocation.PasswordChanged: 3}) {
				t.Errorf("reasons %v", reasons)
			}
			for i, s := range sessions {
				if e.valid(s.Token) {
					t.Errorf("session %d survived the password change", i)
				}
			}
			if !e.valid(bob.Token) {
				t.Error("bob was signed out")
			}
			s, err := e.trySignIn("ada@example.com", "a-new-password")
			if err != nil {
				t.Fatalf("the new password does not work: %v", err)
			}

			// An update that does not touch the hash revokes nothing.
			e.rec.Reset()
			if _, err := e.d.Run(ctx, e.users, "change_email", resource.Input{"email": "ada@example.org"}, resource.OnRecord(s.Record)); err != nil {
				t.Fatal(err)
			}
			if got, _ := e.rec.revoked(); len(got) != 0 || !e.valid(s.Token) {
				t.Errorf("changing the email revoked %v", got)
			}
		})
	}
}

// TestApplyOnPasswordChangeBulk: a bulk password change revokes the tokens
// of every updated user.
func TestApplyOnPasswordChangeBulk(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			e := build(t, db, logouteverywhere.LogOutEverywhere{ApplyOnPasswordChange: true})
			ctx := context.Background()
			ada, bob, eve := e.register(t, "ada@example.com"), e.register(t, "bob@example.com"), e.register(t, "eve@example.com")
			bob2 := e.signIn(t, "bob@example.com")
			e.rec.Reset()
			updated, err := e.users.BulkUpdate(ctx, e.d, "set_password", resource.In("email", []string{"ada@example.com", "bob@example.com"}),
				resource.Input{"password": "a-new-password", "password_confirmation": "a-new-password"})
			if err != nil || len(updated) != 2 {
				t.Fatalf("bulk set_password = %d, %v", len(updated), err)
			}
			got, reasons := e.rec.revoked()
			if want := jtis(ada, bob, bob2); !reflect.DeepEqual(got, want) {
				t.Errorf("notified %v, want %v", got, want)
			}
			if reasons[revocation.PasswordChanged] != 3 || len(reasons) != 1 {
				t.Errorf("reasons %v", reasons)
			}
			if !e.valid(eve.Token) || e.valid(ada.Token) || e.valid(bob2.Token) {
				t.Error("the wrong sessions were signed out")
			}
		})
	}
}

// TestPasswordChangeRolledBack: when the password change does not commit
// (an After change fails, or an outer transaction returns an error), no
// token is revoked and nothing is notified.
func TestPasswordChangeRolledBack(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			e := build(t, db, logouteverywhere.LogOutEverywhere{ApplyOnPasswordChange: true}, extraActions)
			ctx := context.Background()
			ada := e.register(t, "ada@example.com")
			sessions := []*authentication.Session{ada, e.signIn(t, "ada@example.com")}
			user := ada.Record.(*accountstest.User)
			check := func(what string) {
				t.Helper()
				if n := e.rec.Len(); n != 0 {
					got, _ := e.rec.revoked()
					t.Errorf("%s: %d notifications (revoked %v)", what, n, got)
				}
				for i, s := range sessions {
					if !e.valid(s.Token) {
						t.Errorf("%s: session %d was revoked", what, i)
					}
				}
				if _, err := e.trySignIn("ada@example.com", pw); err != nil {
					t.Errorf("%s: the password changed: %v", what, err)
				}
				e.rec.Reset() // the sign-in's store notification
			}
			e.rec.Reset()

			// The revocation runs, and is seen, inside the transaction…
			err := e.d.InTransaction(ctx, func(ctx context.Context) error {
				if err := e.setPassword(ctx, user, "a-new-password"); err != nil {
					return err
				}
				if _, err := e.auth.Verify(ctx, sessions[0].Token); err == nil {
					return errors.New("the session still verifies inside the transaction")
				}
				return errBoom
			})
			if !errors.Is(err, errBoom) {
				t.Fatalf("outer transaction: %v", err)
			}
			// …and goes with its rollback.
			check("outer transaction")

			_, err = e.d.Run(ctx, e.users, "set_password_then_fail", resource.Input{"password": "a-new-password"}, resource.OnRecord(user))
			if !errors.Is(err, errBoom) {
				t.Fatalf("failing change: %v", err)
			}
			check("failing After change")

			// The control: the same change without the failure revokes.
			if err := e.setPassword(ctx, user, "a-new-password"); err != nil {
				t.Fatal(err)
			}
			if got, _ := e.rec.revoked(); len(got) < 2 {
				t.Errorf("the committed change revoked %v", got)
			}
		})
	}
}

// TestNoApplyOnPasswordChange: without the option a password change
// revokes nothing.
func TestNoApplyOnPasswordChange(t *testing.T) {
	e := build(t, "sqlite", logouteverywhere.LogOutEverywhere{})
	ada := e.register(t, "ada@example.com")
	e.rec.Reset()
	if err := e.setPassword(context.Background(), ada.Record.(*accountstest.User), "a-new-password"); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.rec.revoked(); len(got) != 0 || !e.valid(ada.Token) {
		t.Errorf("revoked %v", got)
	}
}

// TestChangePasswordKeepsTheFreshToken: change_password revokes the old
// sessions before it issues the new one, which stays valid.
func TestChangePasswordKeepsTheFreshToken(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			e := build(t, db, logouteverywhere.LogOutEverywhere{ApplyOnPasswordChange: true})
			ctx := context.Background()
			ada := e.register(t, "ada@example.com")
			e.rec.Reset()
			s, err := e.password.Change(ctx, e.d, ada.Record, password.ChangeInput{
				CurrentPassword: pw, Password: "a-new-password", PasswordConfirmation: "a-new-password"})
			if err != nil {
				t.Fatal(err)
			}
			if !e.valid(s.Token) || e.valid(ada.Token) {
				t.Errorf("fresh valid %v, old valid %v", e.valid(s.Token), e.valid(ada.Token))
			}
			got, _ := e.rec.revoked()
			if !reflect.DeepEqual(got, []string{ada.Claims.JTI}) || slices.Contains(got, s.Claims.JTI) {
				t.Errorf("revoked %v", got)
			}
		})
	}
}
