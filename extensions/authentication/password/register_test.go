package password_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/resource"
)

// TestRegister creates the user with a hashed password and returns a
// working, stored session token in the metadata.
func TestRegister(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			a, rec := accounts(t, db)
			ctx := context.Background()
			s, err := register(a, "ada@example.com", pw, pw)
			if err != nil {
				t.Fatal(err)
			}
			u := s.Record.(*accountstest.User)
			if u.Email != "ada@example.com" || !strings.HasPrefix(u.HashedPassword, "$2a$04$") || strings.Contains(u.HashedPassword, pw) {
				t.Errorf("registered %+v", u)
			}
			if s.Claims.Subject != "user?id="+u.ID.String() || s.Claims.Purpose != "user" {
				t.Errorf("claims %+v", s.Claims)
			}
			if c, err := a.Auth.Verify(ctx, s.Token); err != nil || c.JTI != s.Claims.JTI {
				t.Errorf("the registration token does not verify: %v", err)
			}
			if _, err := a.Auth.Tokens().Get(ctx, s.Claims.JTI, "user"); err != nil {
				t.Errorf("the registration token is not stored: %v", err)
			}
			if got := a.Domain.Redact(a.Users, u)["hashed_password"]; got != "**redacted**" {
				t.Errorf("the hash is not sensitive: %v", got)
			}
			if len(rec.revocations()) != 0 {
				t.Errorf("registering revoked %+v", rec.revocations())
			}
			// The hash is not input.
			_, err = a.Domain.Run(ctx, a.Users, "register_with_password", resource.Input{
				"email": "bob@example.com", "password": pw, "password_confirmation": pw, "hashed_password": "x"})
			if ve := validationError(err, "hashed_password"); ve == nil || ve.Message != "is not accepted by this action" {
				t.Errorf("hashed_password as input: %v", err)
			}
		})
	}
}

// TestRegisterRefuses: bad input is refused with a validation error on the
// field, and nothing is written.
func TestRegisterRefuses(t *testing.T) {
	long73 := strings.Repeat("a", 73)
	cases := []struct {
		name, email, password, confirmation string
		field, message                      string
	}{
		{"weak password", "ada@example.com", "short12", "short12", "password", "must be at least 8 characters long"},
		{"seven characters of two bytes", "ada@example.com", "ééééééé", "ééééééé", "password", "must be at least 8 characters long"},
		{"past bcrypt's 72 bytes", "ada@example.com", long73, long73, "password", "must be at most 72 bytes long (the hash would ignore the rest)"},
		{"25 characters, 75 bytes", "ada@example.com", strings.Repeat("語", 25), strings.Repeat("語", 25), "password", "must be at most 72 bytes long (the hash would ignore the rest)"},
		{"mismatched confirmation", "ada@example.com", pw, pw + "4", "password_confirmation", "does not match the password"},
		{"missing confirmation", "ada@example.com", pw, "", "password_confirmation", "does not match the password"},
		{"missing password", "ada@example.com", "", "", "password", "is required"},
		{"bad email", "not-an-email", pw, pw, "email", "must be a valid email address"},
	}
	for _, db := range databases {
		for _, c := range cases {
			t.Run(db+"/"+c.name, func(t *testing.T) {
				a, rec := accounts(t, db)
				_, err := register(a, c.email, c.password, c.confirmation)
				if !errors.Is(err, resource.ErrInvalid) {
					t.Fatalf("register = %v, want ErrInvalid", err)
				}
				ve := validationError(err, c.field)
				if ve == nil || ve.Message != c.message {
					t.Errorf("error %v; want %q on %s", err, c.message, c.field)
				}
				if strings.Contains(err.Error(), c.password) && c.password != "" {
					t.Errorf("the error shows the password: %v", err)
				}
				if n := count(t, a, "users"); n != 0 {
					t.Errorf("%d users written", n)
				}
				if n := count(t, a, "tokens"); n != 0 {
					t.Errorf("%d tokens written", n)
				}
				if rec.Len() != 0 {
					t.Errorf("%d notifications", rec.Len())
				}
			})
		}
	}
}

// TestRegisterLimits: 8 characters are enough whatever their bytes, and 72
// bytes are accepted by bcrypt.
func TestRegisterLimits(t *testing.T) {
	a, _ := accounts(t, "sqlite")
	for i, p := range []string{"日本語日本語日本", strings.Repeat("a", 72), "abcdefgh"} {
		email := []string{"a@example.com", "b@example.com", "c@example.com"}[i]
		if _, err := register(a, email, p, p); err != nil {
			t.Errorf("register with %d bytes: %v", len(p), err)
			continue
		}
		if _, err := signIn(a, email, p); err != nil {
			t.Errorf("sign in with %d bytes: %v", len(p), err)
		}
	}
	// The 72nd byte counts.
	if _, err := signIn(a, "b@example.com", strings.Repeat("a", 71)+"b"); !errors.Is(err, authentication.ErrAuthenticationFailed) {
		t.Errorf("sign in with another 72nd byte = %v", err)
	}
}

// TestRegisterDuplicate: a second registration of one email is a conflict
// and writes nothing: no user, no token, no notification.
func TestRegisterDuplicate(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			a, rec := accounts(t, db)
			first := a.Register(t, "ada@example.com")
			users, tokens := count(t, a, "users"), count(t, a, "tokens")
			rec.Reset()
			_, err := register(a, "ada@example.com", "another-password", "another-password")
			if !errors.Is(err, resource.ErrConflict) {
				t.Fatalf("second register = %v, want ErrConflict", err)
			}
			var ce *resource.ConflictError
			if !errors.As(err, &ce) || ce.Identity != "unique_email" {
				t.Errorf("conflict %#v", ce)
			}
			if count(t, a, "users") != users || count(t, a, "tokens") != tokens {
				t.Errorf("the failed registration wrote: %d users, %d tokens", count(t, a, "users"), count(t, a, "tokens"))
			}
			if rec.Len() != 0 {
				t.Errorf("the failed registration notified %d times", rec.Len())
			}
			// The first user's password is unchanged.
			if _, err := signIn(a, "ada@example.com", pw); err != nil {
				t.Errorf("the first user cannot sign in: %v", err)
			}
			if _, err := signIn(a, "ada@example.com", "another-password"); !errors.Is(err, authentication.ErrAuthenticationFailed) {
				t.Errorf("the second password works: %v", err)
			}
			if !valid(a, first.Token) {
				t.Error("the first session was signed out")
			}
		})
	}
}

// TestIdentityIsCaseInsensitive: identities are stored trimmed and
// lower-cased, so another case of a taken email is taken too, and any
// case signs in, resets and finds the user.
func TestIdentityIsCaseInsensitive(t *testing.T) {
	a, _ := accounts(t, "sqlite")
	ctx := context.Background()
	s := a.Register(t, "ada@example.com")
	if _, err := register(a, "ADA@Example.com", pw, pw); !errors.Is(err, resource.ErrConflict) {
		t.Fatalf("register another case of a taken email: %v, want a conflict", err)
	}
	other, err := register(a, "Bob@Example.COM", pw, pw)
	if err != nil {
		t.Fatal(err)
	}
	if got := other.Record.(*accountstest.User).Email; got != "bob@example.com" {
		t.Errorf("stored email %q, want it lower-cased", got)
	}
	signed, err := signIn(a, "  ADA@EXAMPLE.COM", pw)
	if err != nil || signed.Claims.Subject != s.Claims.Subject {
		t.Fatalf("sign in with another case: %v", err)
	}
	if err := a.Password.RequestReset(ctx, a.Domain, "Ada@Example.com"); err != nil {
		t.Fatal(err)
	}
	if a.Mailbox.Last("ada@example.com") == "" {
		t.Error("a reset request with another case sent no mail")
	}
}
