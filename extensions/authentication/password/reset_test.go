package password_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/revocation"
)

// TestResetFlow: request, refuse the reset token as a session, reset once,
// sign the old sessions out with reason password_changed.
func TestResetFlow(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			a, rec := accounts(t, db)
			ctx := context.Background()
			first := a.Register(t, "ada@example.com")
			second := a.SignIn(t, "ada@example.com")
			bob := a.Register(t, "bob@example.com")

			// A request for an unknown email answers OK and sends nothing.
			if err := a.Password.RequestReset(ctx, a.Domain, "nobody@example.com"); err != nil {
				t.Fatalf("request for an unknown email: %v", err)
			}
			if a.Mailbox.Last("nobody@example.com") != "" || a.Mailbox.Last("ada@example.com") != "" || a.Mailbox.Last("bob@example.com") != "" {
				t.Fatal("a request for an unknown email sent a token")
			}
			tokensBefore := count(t, a, "tokens")
			if err := a.Password.RequestReset(ctx, a.Domain, "ada@example.com"); err != nil {
				t.Fatalf("request: %v", err)
			}
			reset := a.Mailbox.Last("ada@example.com")
			if reset == "" {
				t.Fatal("no reset token sent")
			}
			if count(t, a, "tokens") != tokensBefore+1 {
				t.Error("the reset token is not stored")
			}
			c, err := a.Auth.VerifyPurpose(ctx, reset, password.PurposePasswordReset, "reset_with_password")
			if err != nil {
				t.Fatalf("the reset token: %v", err)
			}
			if c.Act != "reset_with_password" || c.ExpiresAt.Sub(c.IssuedAt) != 3*24*time.Hour || c.Subject != first.Claims.Subject {
				t.Errorf("reset claims %+v", c)
			}
			// It is not a session.
			if valid(a, reset) {
				t.Error("the reset token verifies as a session")
			}
			if _, _, err := a.Auth.Authenticate(ctx, reset); !errors.Is(err, authentication.ErrInvalidToken) {
				t.Errorf("Authenticate(reset) = %v", err)
			}
			if _, err := a.Password.SignInWithToken(ctx, a.Domain, password.SignInWithTokenInput{Token: reset}); err == nil {
				t.Error("the reset token was exchanged for a session")
			}

			// A weak new password is refused and leaves the token usable.
			_, err = a.Password.Reset(ctx, a.Domain, password.ResetInput{ResetToken: reset, Password: "short", PasswordConfirmation: "short"})
			if ve := validationError(err, "password"); ve == nil {
				t.Errorf("weak reset password = %v", err)
			}

			rec.Reset()
			s, err := a.Password.Reset(ctx, a.Domain, password.ResetInput{ResetToken: reset, Password: "a-new-password", PasswordConfirmation: "a-new-password"})
			if err != nil {
				t.Fatalf("reset: %v", err)
			}
			if !valid(a, s.Token) || s.Record.(*accountstest.User).Email != "ada@example.com" {
				t.Errorf("the reset's session %+v does not verify", s.Claims)
			}
			if valid(a, first.Token) || valid(a, second.Token) {
				t.Error("an old session survived the reset")
			}
			if !valid(a, bob.Token) {
				t.Error("another user's session was signed out")
			}
			want := []string{first.Claims.JTI, second.Claims.JTI}
			slices.Sort(want)
			if got := rec.byReason(revocation.PasswordChanged); !reflect.DeepEqual(got, want) {
				t.Errorf("password_changed notifications for %v, want %v", got, want)
			}
			if got := rec.byReason(revocation.Revoked); !reflect.DeepEqual(got, []string{c.JTI}) {
				t.Errorf("revoked notifications for %v, want the reset token %s", got, c.JTI)
			}
			if n := len(rec.revocations()); n != 3 {
				t.Errorf("%d revocation notifications, want 3", n)
			}
			if _, err := signIn(a, "ada@example.com", pw); !errors.Is(err, authentication.ErrAuthenticationFailed) {
				t.Errorf("the old password still works: %v", err)
			}
			if _, err := signIn(a, "ada@example.com", "a-new-password"); err != nil {
				t.Errorf("the new password does not work: %v", err)
			}

			// Twice: refused, and the password stays.
			_, err = a.Password.Reset(ctx, a.Domain, password.ResetInput{ResetToken: reset, Password: "a-third-password", PasswordConfirmation: "a-third-password"})
			if ve := validationError(err, "reset_token"); ve == nil || ve.Message != "is invalid or expired" {
				t.Errorf("second reset = %v", err)
			}
			if _, err := signIn(a, "ada@example.com", "a-third-password"); err == nil {
				t.Error("the second reset changed the password")
			}
		})
	}
}

// TestResetRefusesOtherTokens: a session token, a forged act and an
// expired reset token do not reset.
func TestResetRefusesOtherTokens(t *testing.T) {
	a, _ := accounts(t, "sqlite")
	ctx := context.Background()
	s := a.Register(t, "ada@example.com")
	expired, _, err := a.Auth.Issue(ctx, s.Record, authentication.IssueOptions{Purpose: password.PurposePasswordReset, Act: "reset_with_password", Lifetime: -time.Minute, Store: true})
	if err != nil {
		t.Fatal(err)
	}
	otherAct, _, err := a.Auth.Issue(ctx, s.Record, authentication.IssueOptions{Purpose: password.PurposePasswordReset, Act: "something_else", Store: true})
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"session": s.Token, "expired": expired, "other act": otherAct, "garbage": "garbage"} {
		_, err := a.Password.Reset(ctx, a.Domain, password.ResetInput{ResetToken: tok, Password: "a-new-password", PasswordConfirmation: "a-new-password"})
		if ve := validationError(err, "reset_token"); ve == nil || ve.Message != "is invalid or expired" {
			t.Errorf("%s: %v", name, err)
		}
	}
	if !valid(a, s.Token) {
		t.Error("a refused reset signed the session out")
	}
	if _, err := signIn(a, "ada@example.com", pw); err != nil {
		t.Errorf("a refused reset changed the password: %v", err)
	}
}

// TestChangePassword: a wrong current password changes and revokes
// nothing; the right one signs every other session out and returns a
// fresh, working token.
func TestChangePassword(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			a, rec := accounts(t, db)
			ctx := context.Background()
			first := a.Register(t, "ada@example.com")
			second := a.SignIn(t, "ada@example.com")
			bob := a.Register(t, "bob@example.com")
			user := first.Record.(*accountstest.User)
			rec.Reset()

			_, err := a.Password.Change(ctx, a.Domain, user, password.ChangeInput{
				CurrentPassword: "wrong-password", Password: "a-new-password", PasswordConfirmation: "a-new-password"})
			if ve := validationError(err, "current_password"); ve == nil || ve.Message != "is not correct" {
				t.Fatalf("wrong current password = %v", err)
			}
			if rec.Len() != 0 {
				t.Errorf("a refused change notified %+v", rec.revocations())
			}
			if !valid(a, first.Token) || !valid(a, second.Token) {
				t.Error("a refused change signed a session out")
			}
			third, err := signIn(a, "ada@example.com", pw)
			if err != nil {
				t.Fatalf("a refused change changed the password: %v", err)
			}
			rec.Reset()

			// Mismatched confirmation: refused before anything runs.
			_, err = a.Password.Change(ctx, a.Domain, user, password.ChangeInput{
				CurrentPassword: pw, Password: "a-new-password", PasswordConfirmation: "another"})
			if validationError(err, "password_confirmation") == nil || rec.Len() != 0 {
				t.Errorf("mismatched confirmation = %v, %d notifications", err, rec.Len())
			}

			s, err := a.Password.Change(ctx, a.Domain, user, password.ChangeInput{
				CurrentPassword: pw, Password: "a-new-password", PasswordConfirmation: "a-new-password"})
			if err != nil {
				t.Fatalf("change: %v", err)
			}
			if !valid(a, s.Token) {
				t.Error("the fresh token does not verify")
			}
			if _, _, err := a.Auth.Authenticate(ctx, s.Token); err != nil {
				t.Errorf("the fresh token does not authenticate: %v", err)
			}
			if valid(a, first.Token) || valid(a, second.Token) || valid(a, third.Token) {
				t.Error("an old session survived the change")
			}
			if !valid(a, bob.Token) {
				t.Error("another user's session was signed out")
			}
			want := []string{first.Claims.JTI, second.Claims.JTI, third.Claims.JTI}
			slices.Sort(want)
			if got := rec.byReason(revocation.PasswordChanged); !reflect.DeepEqual(got, want) {
				t.Errorf("password_changed notifications for %v, want %v", got, want)
			}
			if n := len(rec.revocations()); n != 3 {
				t.Errorf("%d revocation notifications, want 3", n)
			}
			if _, err := signIn(a, "ada@example.com", "a-new-password"); err != nil {
				t.Errorf("the new password does not work: %v", err)
			}
			if _, err := signIn(a, "ada@example.com", pw); !errors.Is(err, authentication.ErrAuthenticationFailed) {
				t.Errorf("the old password still works: %v", err)
			}
		})
	}
}

// TestResetRefusesUnstoredToken: a reset token that verifies (right key,
// act and purpose) but whose jti was never stored is refused, as a forged
// session token is: tokens of every purpose but "user" need their row.
func TestResetRefusesUnstoredToken(t *testing.T) {
	a, _ := accounts(t, "sqlite")
	ctx := context.Background()
	s := a.Register(t, "ada@example.com")
	now := time.Now()
	forged, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": s.Claims.Subject, "jti": "never-stored", "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"iss": authentication.Issuer, "aud": authentication.Audience, "purpose": password.PurposePasswordReset, "act": "reset_with_password",
	}).SignedString([]byte(accountstest.Secret))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Auth.Parse(ctx, forged); err != nil {
		t.Fatalf("the forged token does not even parse: %v", err)
	}
	_, err = a.Password.Reset(ctx, a.Domain, password.ResetInput{ResetToken: forged, Password: "a-new-password", PasswordConfirmation: "a-new-password"})
	if ve := validationError(err, "reset_token"); ve == nil || ve.Message != "is invalid or expired" {
		t.Fatalf("reset with an unstored token: %v", err)
	}
	if _, err := signIn(a, "ada@example.com", pw); err != nil {
		t.Errorf("the refused reset changed the password: %v", err)
	}
}
