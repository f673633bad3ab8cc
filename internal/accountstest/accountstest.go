// Package accountstest declares the accounts of kiln's tests: a User with
// the password strategy and log_out_everywhere, and its token store, built
// on a test database. Tests of the authentication packages, the live
// endpoint and the web glue share it.
package accountstest

import (
	"context"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/logouteverywhere"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
)

// Secret is the tests' signing secret.
const Secret = "kiln-test-signing-secret-0123456789abcdef"

// User is the test user.
type User struct {
	ID             uuid.UUID `bun:",pk,type:uuid" kiln:"default:uuid"`
	Email          string    `bun:",unique,notnull" validate:"required,email"`
	HashedPassword string    `bun:",notnull"`
}

// Token is the test token store's record.
type Token struct {
	tokenresource.Fields
}

// Mailbox records the reset tokens the strategy sends.
type Mailbox struct {
	// Hold, when set, makes each send wait for a value from it.
	Hold   chan struct{}
	mu     sync.Mutex
	tokens map[string][]string
}

// SendResetToken implements password.Sender.
func (m *Mailbox) SendResetToken(_ context.Context, user any, token string) error {
	if m.Hold != nil {
		<-m.Hold
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tokens == nil {
		m.tokens = map[string][]string{}
	}
	email := user.(*User).Email
	m.tokens[email] = append(m.tokens[email], token)
	return nil
}

// Last returns the last token sent to email, or "".
func (m *Mailbox) Last(email string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ts := m.tokens[email]
	if len(ts) == 0 {
		return ""
	}
	return ts[len(ts)-1]
}

// Options adjust the declarations.
type Options struct {
	// Template goes to the token section; the live endpoints are attached
	// to the built domain (Domain.Attach).
	Template func(tokenresource.SocketID) string
	// TokenNotifiers are resource notifiers of the token store.
	TokenNotifiers []resource.Notifier
	// Mailbox receives reset tokens; one is made when nil.
	Mailbox *Mailbox
	// Knowledge goes to the token section.
	Knowledge tokenresource.KnowledgeOptions
}

// Accounts is a built test domain.
type Accounts struct {
	Domain  *resource.Domain
	Users   *resource.Resource[User]
	Tokens  *resource.Resource[Token]
	Auth    *authentication.Auth
	Mailbox *Mailbox
	// Password is the password strategy and LogOutEverywhere the add-on,
	// as built: their methods run their actions.
	Password         password.Password
	LogOutEverywhere logouteverywhere.LogOutEverywhere
}

// Declare declares the two resources. The password strategy is resettable
// when o.Mailbox is set: give it to Build then, resource.With(o.Mailbox).
func Declare(o Options) (*resource.Resource[User], *resource.Resource[Token]) {
	var resettable *password.Resettable
	if o.Mailbox != nil {
		resettable = &password.Resettable{}
	}
	tokens := resource.New[Token]("token",
		resource.Table("tokens"),
		tokenresource.Token{LiveSocketIDTemplate: o.Template, Knowledge: o.Knowledge},
		resource.Notifiers(o.TokenNotifiers...),
	)
	users := resource.New[User]("user",
		resource.Table("users"),
		authentication.Authentication{
			Tokens: authentication.Tokens{
				Enabled:                               true,
				TokenResource:                         tokens,
				SigningSecret:                         authentication.SecretString(Secret),
				StoreAllTokens:                        true,
				RequireTokenPresenceForAuthentication: true,
			},
			Strategies: []authentication.Strategy{password.Password{
				IdentityField: "email",
				HashProvider:  password.Bcrypt{Cost: 4},
				Resettable:    resettable,
			}},
			AddOns: []authentication.AddOn{logouteverywhere.LogOutEverywhere{ApplyOnPasswordChange: true}},
		},
	)
	return users, tokens
}

// Build declares and builds the accounts on the named test database
// ("sqlite", "sqlite-file" or "postgres") and migrates it.
func Build(t testing.TB, db string, o Options) *Accounts {
	t.Helper()
	if o.Mailbox == nil {
		o.Mailbox = &Mailbox{}
	}
	users, tokens := Declare(o)
	var layer interface {
		resource.DataLayer
		Migrate(context.Context) error
	}
	if db == "sqlite-file" {
		layer = testdb.SQLiteFile(t)
	} else {
		layer = testdb.Open(t, db)
	}
	ctx := context.Background()
	d, err := resource.NewDomain("accounts", users, tokens).Build(ctx, layer, resource.With(o.Mailbox))
	if err != nil {
		t.Fatalf("accountstest: build: %v", err)
	}
	if err := layer.Migrate(ctx); err != nil {
		t.Fatalf("accountstest: migrate: %v", err)
	}
	return New(t, d, users, tokens, o.Mailbox)
}

// New returns the accounts of domain d, built from users and tokens: its
// Auth, and its password strategy and add-on as built.
func New(t testing.TB, d *resource.Domain, users *resource.Resource[User], tokens *resource.Resource[Token], mailbox *Mailbox) *Accounts {
	t.Helper()
	auth, err := authentication.For(d, users)
	if err != nil {
		t.Fatalf("accountstest: %v", err)
	}
	pw, err := password.For(auth)
	if err != nil {
		t.Fatalf("accountstest: %v", err)
	}
	lo, err := logouteverywhere.For(auth)
	if err != nil {
		t.Fatalf("accountstest: %v", err)
	}
	return &Accounts{Domain: d, Users: users, Tokens: tokens, Auth: auth, Mailbox: mailbox, Password: pw, LogOutEverywhere: lo}
}

// Register registers a user with password "password123" and returns the
// session.
func (a *Accounts) Register(t testing.TB, email string) *authentication.Session {
	t.Helper()
	s, err := a.Password.Register(context.Background(), a.Domain, password.RegisterInput{
		Identity: email, Password: "password123", PasswordConfirmation: "password123"})
	if err != nil {
		t.Fatalf("accountstest: register %s: %v", email, err)
	}
	return s
}

// SignIn signs in with "password123".
func (a *Accounts) SignIn(t testing.TB, email string) *authentication.Session {
	t.Helper()
	s, err := a.Password.SignIn(context.Background(), a.Domain, password.SignInInput{Identity: email, Password: "password123"})
	if err != nil {
		t.Fatalf("accountstest: sign in %s: %v", email, err)
	}
	return s
}
