package authentication_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// secret is the signing secret of the tests' own domains.
const secret = "auth-test-signing-secret-0123456789abcdef"

// databases are the databases every behaviour must hold on; PostgreSQL
// skips without KILN_TEST_POSTGRES_URL.
var databases = []string{"sqlite", "postgres"}

// User is the authenticated record of the tests' own domains.
type User struct {
	ID    uuid.UUID `bun:",pk,type:uuid" kiln:"default:uuid"`
	Email string    `bun:",unique,notnull"`
}

// Token is their token store's record.
type Token struct {
	tokenresource.Fields
}

// env is a built domain of users and tokens.
type env struct {
	d      *resource.Domain
	users  *resource.Resource[User]
	tokens *resource.Resource[Token]
	auth   *authentication.Auth
	layer  *bunlayer.Layer
}

// declare declares users (with a create action) authenticated with
// section, and their token store; a nil TokenResource is the store.
func declare(section authentication.Authentication) (*resource.Resource[User], *resource.Resource[Token]) {
	tokens := resource.New[Token]("token", resource.Table("tokens"), tokenresource.Token{})
	if section.Tokens.TokenResource == nil {
		section.Tokens.TokenResource = tokens
	}
	users := resource.New[User]("user", resource.Table("users"),
		resource.Actions{resource.Create{Name: "create", Accept: []string{"email"}}},
		section,
	)
	return users, tokens
}

// newEnv builds the domain of declare(section) on db and migrates it.
func newEnv(t testing.TB, db string, section authentication.Authentication) *env {
	t.Helper()
	layer := testdb.Open(t, db)
	users, tokens := declare(section)
	ctx := context.Background()
	d, err := resource.NewDomain("accounts", users, tokens).Build(ctx, layer)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	if err := layer.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	auth, err := authentication.For(d, users)
	if err != nil {
		t.Fatalf("For: %v", err)
	}
	return &env{d: d, users: users, tokens: tokens, auth: auth, layer: layer}
}

// sessionTokens is the configuration of a domain that stores no token and
// keeps whole tokens in sessions.
func sessionTokens(s authentication.Secret) authentication.Tokens {
	return authentication.Tokens{Enabled: true, SigningSecret: s, SessionIdentifier: authentication.SessionUnsafe}
}

// presenceTokens stores every token and requires its row.
func presenceTokens(s authentication.Secret) authentication.Tokens {
	return authentication.Tokens{Enabled: true, SigningSecret: s, StoreAllTokens: true, RequireTokenPresenceForAuthentication: true}
}

// user creates a user.
func (e *env) user(t testing.TB, email string) *User {
	t.Helper()
	u, err := e.users.Create(context.Background(), e.d, "create", resource.Input{"email": email})
	if err != nil {
		t.Fatalf("create %s: %v", email, err)
	}
	return u
}

// issue issues a session token for u.
func (e *env) issue(t testing.TB, u *User, opts authentication.IssueOptions) (string, *authentication.Claims) {
	t.Helper()
	tok, c, err := e.auth.Issue(context.Background(), u, opts)
	if err != nil {
		t.Fatalf("issue: %v", err)
	}
	return tok, c
}

// claims are valid session claims for subject: issued a minute ago, valid
// for an hour.
func claims(subject string) jwt.MapClaims {
	now := time.Now().Unix()
	return jwt.MapClaims{
		"sub": subject, "jti": uuid.NewString(), "iat": now - 60, "nbf": now - 60, "exp": now + 3600,
		"iss": authentication.Issuer, "aud": authentication.Audience, "purpose": tokenresource.PurposeUser,
	}
}

// sign signs claims with method and key.
func sign(t testing.TB, method jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return tok
}

// with returns a copy of c with the changes; a nil value deletes the claim.
func with(c jwt.MapClaims, changes map[string]any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// here returns "file.go:line" of its caller.
func here() string {
	_, file, line, _ := runtime.Caller(1)
	return fmt.Sprintf("%s:%d", filepath.Base(file), line)
}
