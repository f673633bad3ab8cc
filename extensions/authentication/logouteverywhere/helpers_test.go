package logouteverywhere_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/logouteverywhere"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
	"github.com/kiln-go/kiln/resource/notifiertest"
	"github.com/kiln-go/kiln/revocation"
)

// databases are the databases every behaviour must hold on; PostgreSQL
// skips without KILN_TEST_POSTGRES_URL.
var databases = []string{"sqlite", "postgres"}

// concurrentDatabases take several connections.
var concurrentDatabases = []string{"sqlite-file", "postgres"}

const pw = "password123"

// recorder keeps every notification of the token store.
type recorder struct {
	notifiertest.Recorder
	mu sync.Mutex
	// stored, when set, is signalled on each committed store_token.
	stored chan struct{}
}

func (r *recorder) Notify(ctx context.Context, n resource.Notification) error {
	_ = r.Recorder.Notify(ctx, n)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stored != nil && n.Action == "store_token" {
		select {
		case r.stored <- struct{}{}:
		default:
		}
	}
	return nil
}

// onStore makes the recorder signal each committed store_token on a new
// channel, and returns it.
func (r *recorder) onStore() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stored = make(chan struct{}, 1)
	return r.stored
}

// revoked returns the sorted jtis notified with a reason, and the reasons
// seen.
func (r *recorder) revoked() (jtis []string, reasons map[revocation.Reason]int) {
	reasons = map[revocation.Reason]int{}
	for _, n := range r.All() {
		if reason, f, ok := tokenresource.RevocationOf(n); ok {
			reasons[reason]++
			jtis = append(jtis, f.JTI)
		}
	}
	slices.Sort(jtis)
	return jtis, reasons
}

// env is a built accounts domain.
type env struct {
	d      *resource.Domain
	users  *resource.Resource[accountstest.User]
	tokens *resource.Resource[accountstest.Token]
	auth   *authentication.Auth
	// password and logOut are the strategy and the add-on as built.
	password password.Password
	logOut   logouteverywhere.LogOutEverywhere
	layer    *bunlayer.Layer
	rec      *recorder
	// mailbox holds the reset mails.
	mailbox *accountstest.Mailbox
}

// build builds the accounts with this add-on and more user sections, on
// db ("sqlite", "sqlite-file" or "postgres").
func build(t testing.TB, db string, lo logouteverywhere.LogOutEverywhere, more ...resource.Section) *env {
	t.Helper()
	rec := &recorder{}
	mailbox := &accountstest.Mailbox{}
	tokens := resource.New[accountstest.Token]("token", resource.Table("tokens"), tokenresource.Token{}, resource.Notifiers(rec))
	sections := append([]resource.Section{resource.Table("users"), authentication.Authentication{
		Tokens: authentication.Tokens{Enabled: true, TokenResource: tokens, SigningSecret: authentication.SecretString(accountstest.Secret),
			StoreAllTokens: true, RequireTokenPresenceForAuthentication: true},
		Strategies: []authentication.Strategy{password.Password{IdentityField: "email", HashProvider: password.Bcrypt{Cost: 4},
			Resettable: &password.Resettable{}}},
		AddOns: []authentication.AddOn{lo},
	}}, more...)
	users := resource.New[accountstest.User]("user", sections...)
	var l *bunlayer.Layer
	if db == "sqlite-file" {
		l = testdb.SQLiteFile(t)
	} else {
		l = testdb.Open(t, db)
	}
	ctx := context.Background()
	d, err := resource.NewDomain("accounts", users, tokens).Build(ctx, l, resource.With(mailbox))
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	if err := l.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	auth, err := authentication.For(d, users)
	if err != nil {
		t.Fatal(err)
	}
	strategy, err := password.For(auth)
	if err != nil {
		t.Fatal(err)
	}
	addOn, err := logouteverywhere.For(auth)
	if err != nil {
		t.Fatal(err)
	}
	return &env{d: d, users: users, tokens: tokens, auth: auth, password: strategy, logOut: addOn, layer: l, rec: rec, mailbox: mailbox}
}

// register registers a user with pw.
func (e *env) register(t testing.TB, email string) *authentication.Session {
	t.Helper()
	s, err := e.password.Register(context.Background(), e.d, password.RegisterInput{Identity: email, Password: pw, PasswordConfirmation: pw})
	if err != nil {
		t.Fatalf("register %s: %v", email, err)
	}
	return s
}

// signIn signs in with pw.
func (e *env) signIn(t testing.TB, email string) *authentication.Session {
	t.Helper()
	s, err := e.trySignIn(email, pw)
	if err != nil {
		t.Fatalf("sign in %s: %v", email, err)
	}
	return s
}

func (e *env) trySignIn(email, pass string) (*authentication.Session, error) {
	return e.password.SignIn(context.Background(), e.d, password.SignInInput{Identity: email, Password: pass})
}

// trySignInAt signs in as a request that arrived at began.
func (e *env) trySignInAt(began time.Time, email, pass string) (*authentication.Session, error) {
	ctx := authentication.WithRequestBegan(context.Background(), began)
	return e.password.SignIn(ctx, e.d, password.SignInInput{Identity: email, Password: pass})
}

// valid reports whether a session token verifies.
func (e *env) valid(token string) bool {
	_, err := e.auth.Verify(context.Background(), token)
	return err == nil
}

// logOutEverywhere runs the action for user.
func (e *env) logOutEverywhere(ctx context.Context, user *accountstest.User) (int, error) {
	return e.logOut.Run(ctx, e.d, user)
}

// jtis returns the sorted jtis of sessions.
func jtis(sessions ...*authentication.Session) []string {
	out := make([]string, len(sessions))
	for i, s := range sessions {
		out[i] = s.Claims.JTI
	}
	slices.Sort(out)
	return out
}

// here returns "file.go:line" of its caller.
func here() string {
	_, file, line, _ := runtime.Caller(1)
	return fmt.Sprintf("%s:%d", filepath.Base(file), line)
}
