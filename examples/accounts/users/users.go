// Package users holds the accounts example's resources: the User, who
// registers and signs in with a password and can log out everywhere, and
// the Token store, whose revocations close the user's live sockets. The
// accounts example (examples/accounts) serves them; the blog example
// (examples/blog) reuses them for its authors.
package users

import (
	"time"

	"github.com/google/uuid"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/logouteverywhere"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/extensions/tokenresource/tokenrevocation"
	"github.com/kiln-go/kiln/resource"
)

// User is an account.
type User struct {
	ID             uuid.UUID `bun:",pk,type:uuid" kiln:"default:uuid"`
	Email          string    `bun:",unique,notnull" validate:"required,email,max=254"`
	HashedPassword string    `bun:",notnull"`
	CreatedAt      time.Time `bun:",notnull" kiln:"readonly,default:now"`
}

// Token is the token store's record.
type Token struct {
	tokenresource.Fields
}

// The resources' own actions, declared with typed handles and run through
// them.
var (
	// GetByEmail finds the user of an email, as given (tokens revoke
	// --user). The password strategy adds a get_by_email of its own unless
	// the resource declares one: this is that action, with a handle.
	GetByEmail = resource.DefineGet[User, ByEmail](resource.Read{
		Name:        "get_by_email",
		Description: "Gets a user by email.",
		GetBy:       []string{"email"},
	})
	// SessionsOf lists a user's sessions.
	SessionsOf = resource.DefineRead[Token, BySubject](resource.Read{
		Name:        "sessions_of",
		Description: "The unexpired session tokens of a subject, newest first.",
		Filter: resource.And{
			resource.Eq("subject", resource.FromArg("subject")),
			resource.Eq("purpose", tokenresource.PurposeUser),
			resource.Gt("expires_at", resource.CurrentTime),
		},
		Sort: []resource.Sort{resource.Desc("created_at")},
	})
)

// ByEmail is GetByEmail's input.
type ByEmail struct{ Email string }

// BySubject is SessionsOf's input: a token subject.
type BySubject struct {
	Subject string `validate:"required"`
}

// LiveSocketID is the live socket id template: one id per session token.
func LiveSocketID(s tokenresource.SocketID) string { return "users_sessions:" + s.JTI }

// Config is what the resources need from the app that serves them.
type Config struct {
	// SigningSecret signs tokens; PreviousSecrets still verify the tokens
	// signed before a rotation.
	SigningSecret   authentication.Secret
	PreviousSecrets []authentication.Secret
	// Resettable turns on password resets; give Build the password.Sender
	// that delivers their mails: resource.With(sender). Zero value: no
	// password reset.
	Resettable bool
}

// Declare declares the Token and User resources of the guide's complete
// example: the token store with its socket id template and the
// revocation notifier (the live endpoint it closes sockets on is attached
// to the built domain: Domain.Attach); the user with stored tokens, the password
// strategy on email and log out everywhere on password change.
func Declare(c Config) (*resource.Resource[User], *resource.Resource[Token]) {
	tokens := resource.New[Token]("token",
		resource.Table("tokens"),
		tokenresource.Token{
			LiveSocketIDTemplate: LiveSocketID,
		},
		resource.Notifiers(tokenrevocation.Notifier{}),
		resource.Actions{SessionsOf},
	)
	strategy := password.Password{IdentityField: "email"}
	if c.Resettable {
		strategy.Resettable = &password.Resettable{}
	}
	users := resource.New[User]("user",
		resource.Table("users"),
		resource.Actions{GetByEmail},
		authentication.Authentication{
			Tokens: authentication.Tokens{
				Enabled:                               true,
				TokenResource:                         tokens,
				SigningSecret:                         c.SigningSecret,
				PreviousSecrets:                       c.PreviousSecrets,
				StoreAllTokens:                        true,
				RequireTokenPresenceForAuthentication: true,
			},
			Strategies: []authentication.Strategy{strategy},
			AddOns:     []authentication.AddOn{logouteverywhere.LogOutEverywhere{ApplyOnPasswordChange: true}},
		},
	)
	return users, tokens
}
