package tokenresource_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
	"github.com/kiln-go/kiln/resource/notifiertest"
	"github.com/kiln-go/kiln/revocation"
)

// Token is the record of the token store under test.
type Token struct {
	tokenresource.Fields
}

// databases are the databases every behaviour must hold on; PostgreSQL
// skips without KILN_TEST_POSTGRES_URL.
var databases = []string{"sqlite", "postgres"}

// concurrentDatabases take several connections: SQLite in a file, and
// PostgreSQL.
var concurrentDatabases = []string{"sqlite-file", "postgres"}

// revoked is what a notification of the token store says.
type revoked struct {
	Action  string
	JTI     string
	Subject string
	Purpose string
	Reason  revocation.Reason
}

// recorder keeps every notification (notifiertest.Recorder); with ch set
// it also sends each on ch.
type recorder struct {
	notifiertest.Recorder
	mu sync.Mutex
	ch chan resource.Notification
}

func (r *recorder) Notify(ctx context.Context, n resource.Notification) error {
	_ = r.Recorder.Notify(ctx, n)
	r.mu.Lock()
	ch := r.ch
	r.mu.Unlock()
	if ch != nil {
		ch <- n
	}
	return nil
}

// notifyOn sends every later notification on ch (nil: none).
func (r *recorder) notifyOn(ch chan resource.Notification) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ch = ch
}

// revocations returns the notifications that carry a reason, in order.
func (r *recorder) revocations(t testing.TB) []revoked {
	t.Helper()
	var out []revoked
	for _, n := range r.All() {
		if _, has := n.Metadata[tokenresource.ReasonKey]; !has {
			continue
		}
		reason, f, ok := tokenresource.RevocationOf(n)
		if !ok {
			t.Fatalf("notification of %s.%s carries a %T, not a token record", n.Resource, n.Action, n.Record)
		}
		out = append(out, revoked{Action: n.Action, JTI: f.JTI, Subject: f.Subject, Purpose: f.Purpose, Reason: reason})
	}
	return out
}

// store is a built token store on a test database.
type store struct {
	d      *resource.Domain
	tokens *resource.Resource[Token]
	s      *tokenresource.Store
	layer  *bunlayer.Layer
	rec    *recorder
}

// open opens the named test database.
func open(t testing.TB, db string) *bunlayer.Layer {
	t.Helper()
	if db == "sqlite-file" {
		return testdb.SQLiteFile(t)
	}
	return testdb.Open(t, db)
}

// newStore builds a domain of one token resource with the section, on db.
func newStore(t testing.TB, db string, section tokenresource.Token) *store {
	t.Helper()
	layer := open(t, db)
	rec := &recorder{}
	tokens := resource.New[Token]("token", resource.Table("tokens"), section, resource.Notifiers(rec))
	ctx := context.Background()
	d, err := resource.NewDomain("tokens", tokens).Build(ctx, layer)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	if err := layer.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	s, err := tokenresource.For(d, tokens)
	if err != nil {
		t.Fatalf("For: %v", err)
	}
	return &store{d: d, tokens: tokens, s: s, layer: layer, rec: rec}
}

// put stores a row directly, without notifications' noise mattering.
func (s *store) put(t testing.TB, jti, subject, purpose string, expiresAt time.Time) {
	t.Helper()
	err := s.s.StoreToken(context.Background(), tokenresource.Fields{JTI: jti, Subject: subject, Purpose: purpose, ExpiresAt: expiresAt})
	if err != nil {
		t.Fatalf("store %s: %v", jti, err)
	}
}

// row reads a row by jti straight from the table, expired or not; nil when
// there is none.
func (s *store) row(t testing.TB, jti string) *Token {
	t.Helper()
	var rows []*Token
	err := s.layer.DB().NewSelect().Model(&rows).ModelTableExpr("tokens AS token").Where("jti = ?", jti).Scan(context.Background())
	if err != nil {
		t.Fatalf("select %s: %v", jti, err)
	}
	if len(rows) == 0 {
		return nil
	}
	return rows[0]
}

// count counts the rows of the table.
func (s *store) count(t testing.TB) int {
	t.Helper()
	n, err := s.layer.DB().NewSelect().ModelTableExpr("tokens").Count(context.Background())
	if err != nil {
		t.Fatalf("count: %v", err)
	}
	return int(n)
}

// signed returns a JWT with the jti, subject and expiry, signed with a key
// the store never sees: revoking needs no trust in the token.
func signed(t testing.TB, jti, subject string, exp time.Time) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"jti": jti, "sub": subject, "exp": exp.Unix(), "purpose": tokenresource.PurposeUser,
	}).SignedString([]byte("any key: the store does not verify signatures"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// here returns "file.go:line" of its caller, to pin the location build
// errors print.
func here() string {
	_, file, line, _ := runtime.Caller(1)
	return fmt.Sprintf("%s:%d", filepath.Base(file), line)
}

// hour is a time an hour from now, to the second (as JWTs have it).
func hour() time.Time { return time.Now().UTC().Add(time.Hour).Truncate(time.Second) }

// past is a time an hour ago.
func past() time.Time { return time.Now().UTC().Add(-time.Hour).Truncate(time.Second) }
