package password_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/accountstest"
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

// revoked is what a notification of the token store says.
type revoked struct {
	JTI     string
	Subject string
	Reason  revocation.Reason
}

// recorder keeps every notification of the token store.
type recorder struct{ notifiertest.Recorder }

// revocations returns the notifications that carry a reason.
func (r *recorder) revocations() []revoked {
	var out []revoked
	for _, n := range r.All() {
		if reason, f, ok := tokenresource.RevocationOf(n); ok {
			out = append(out, revoked{JTI: f.JTI, Subject: f.Subject, Reason: reason})
		}
	}
	return out
}

// byReason returns the sorted jtis notified with reason.
func (r *recorder) byReason(reason revocation.Reason) []string {
	var jtis []string
	for _, rv := range r.revocations() {
		if rv.Reason == reason {
			jtis = append(jtis, rv.JTI)
		}
	}
	slices.Sort(jtis)
	return jtis
}

// accounts builds the shared test accounts on db with a recorder on the
// token store.
func accounts(t testing.TB, db string) (*accountstest.Accounts, *recorder) {
	t.Helper()
	rec := &recorder{}
	return accountstest.Build(t, db, accountstest.Options{TokenNotifiers: []resource.Notifier{rec}}), rec
}

// layer is the accounts' data layer.
func layer(a *accountstest.Accounts) *bunlayer.Layer { return a.Domain.DataLayer().(*bunlayer.Layer) }

// count counts the rows of a table.
func count(t testing.TB, a *accountstest.Accounts, table string) int {
	t.Helper()
	n, err := layer(a).DB().NewSelect().TableExpr(table).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// register runs register_with_password.
func register(a *accountstest.Accounts, email, pass, confirmation string) (*authentication.Session, error) {
	return a.Password.Register(context.Background(), a.Domain, password.RegisterInput{Identity: email, Password: pass, PasswordConfirmation: confirmation})
}

// signIn runs sign_in_with_password.
func signIn(a *accountstest.Accounts, email, pass string) (*authentication.Session, error) {
	return a.Password.SignIn(context.Background(), a.Domain, password.SignInInput{Identity: email, Password: pass})
}

// valid reports whether a session token verifies.
func valid(a *accountstest.Accounts, token string) bool {
	_, err := a.Auth.Verify(context.Background(), token)
	return err == nil
}

// validationError returns the *ValidationError of err on field, or nil.
func validationError(err error, field string) *resource.ValidationError {
	for _, e := range flatten(err) {
		var ve *resource.ValidationError
		if errors.As(e, &ve) && ve.Field == field {
			return ve
		}
	}
	return nil
}

// flatten unwraps joined errors.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// here returns "file.go:line" of its caller.
func here() string {
	_, file, line, _ := runtime.Caller(1)
	return fmt.Sprintf("%s:%d", filepath.Base(file), line)
}
