package main

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/kiln-go/kiln/addons/logouteverywhere"
	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/notifiers/tokenrevocation"
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

// The example's own actions, declared with typed handles and run through
// them.
var (
	// getByEmail finds the user of an email, as given (tokens revoke
	// --user). The password strategy adds a get_by_email of its own unless
	// the resource declares one: this is that action, with a handle.
	getByEmail = resource.DefineGet[User, byEmail](resource.Read{
		Name:        "get_by_email",
		Description: "Gets a user by email.",
		GetBy:       []string{"email"},
	})
	// sessionsOf lists the sessions page.
	sessionsOf = resource.DefineRead[Token, bySubject](resource.Read{
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

// byEmail is getByEmail's input.
type byEmail struct{ Email string }

// bySubject is sessionsOf's input: a token subject.
type bySubject struct {
	Subject string `validate:"required"`
}

// liveSocketID is the live socket id template: one id per session token.
func liveSocketID(s tokenresource.SocketID) string { return "users_sessions:" + s.JTI }

// declare declares the Token and User resources of the guide's complete
// example: the token store with the live endpoint, its socket id template
// and the revocation notifier; the user with stored tokens, the password
// strategy on email and log out everywhere on password change.
func declare(endpoint tokenresource.Endpoint, secret authentication.Secret, previous []authentication.Secret, sender password.Sender) (*resource.Resource[User], *resource.Resource[Token]) {
	tokens := resource.New[Token]("token",
		resource.Table("tokens"),
		tokenresource.Token{
			Endpoints:            []tokenresource.Endpoint{endpoint},
			LiveSocketIDTemplate: liveSocketID,
		},
		resource.Notifiers(tokenrevocation.Notifier{}),
		resource.Actions{sessionsOf},
	)
	users := resource.New[User]("user",
		resource.Table("users"),
		resource.Actions{getByEmail},
		authentication.Authentication{
			Tokens: authentication.Tokens{
				Enabled:                               true,
				TokenResource:                         tokens,
				SigningSecret:                         secret,
				PreviousSecrets:                       previous,
				StoreAllTokens:                        true,
				RequireTokenPresenceForAuthentication: true,
			},
			Strategies: []authentication.Strategy{password.Password{
				IdentityField: "email",
				Resettable:    &password.Resettable{Sender: sender},
			}},
			AddOns: []authentication.AddOn{logouteverywhere.LogOutEverywhere{ApplyOnPasswordChange: true}},
		},
	)
	return users, tokens
}

// Mail is a message the development mailbox holds.
type Mail struct {
	To   string
	Sent time.Time
	Link string
}

// Mailbox is the example's password.Sender: it keeps reset mails for
// /dev/mailbox instead of sending them.
type Mailbox struct {
	mu    sync.Mutex
	mails []Mail
}

// SendResetToken implements password.Sender.
func (m *Mailbox) SendResetToken(_ context.Context, user any, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mails = append(m.mails, Mail{To: user.(*User).Email, Sent: time.Now(), Link: "/reset?token=" + token})
	return nil
}

// Mails returns the mails, newest first.
func (m *Mailbox) Mails() []Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Mail, len(m.mails))
	for i, mail := range m.mails {
		out[len(m.mails)-1-i] = mail
	}
	return out
}
