// Package testdb opens the databases kiln's tests run on: an in-memory
// SQLite database always, and PostgreSQL when KILN_TEST_POSTGRES_URL is set.
// Each PostgreSQL test gets a schema of its own, dropped when it ends, so
// that test packages can run in parallel against one server. It also gives
// the URLs of Redis and NATS, and, through Main, says which of these
// services a package's tests skipped.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/kiln-go/kiln/resource/bunlayer"
)

// PostgresEnv is the variable that holds the PostgreSQL URL for tests.
const PostgresEnv = "KILN_TEST_POSTGRES_URL"

// Layers returns the databases to run a test on, by name: "sqlite", and
// "postgres" when it is configured.
func Layers() []string {
	if os.Getenv(PostgresEnv) != "" {
		return []string{"sqlite", "postgres"}
	}
	return []string{"sqlite"}
}

// Open opens the named database ("sqlite" or "postgres") for t.
func Open(t testing.TB, name string) *bunlayer.Layer {
	t.Helper()
	switch name {
	case "sqlite":
		return SQLite(t)
	case "postgres":
		return Postgres(t)
	}
	t.Fatalf("testdb: unknown database %q", name)
	return nil
}

// SQLite opens a fresh in-memory SQLite database.
func SQLite(t testing.TB) *bunlayer.Layer {
	t.Helper()
	l, err := bunlayer.Open(context.Background(), "sqlite::memory:")
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// SQLiteFile opens a fresh SQLite database file in t's temporary folder:
// unlike the in-memory one it takes several connections, for tests of
// concurrency.
func SQLiteFile(t testing.TB) *bunlayer.Layer {
	t.Helper()
	l, err := bunlayer.Open(context.Background(), "file:"+t.TempDir()+"/test.db")
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// Postgres opens PostgreSQL in a new schema, or skips the test when
// KILN_TEST_POSTGRES_URL is not set (and fails it under CI=true).
func Postgres(t testing.TB) *bunlayer.Layer {
	t.Helper()
	l, err := bunlayer.Open(context.Background(), PostgresSchemaURL(t))
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// PostgresURL returns KILN_TEST_POSTGRES_URL, skipping the test when it is
// not set, or failing it when CI=true.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return serviceURL(t, PostgresEnv)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RedisEnv is the variable that holds the Redis URL for tests.
const RedisEnv = "KILN_TEST_REDIS_URL"

// NATSEnv is the variable that holds the NATS URL for tests.
const NATSEnv = "KILN_TEST_NATS_URL"

// RedisURL returns KILN_TEST_REDIS_URL, skipping the test when it is not
// set, or failing it when CI=true.
func RedisURL(t testing.TB) string {
	t.Helper()
	return serviceURL(t, RedisEnv)
}

// NATSURL returns KILN_TEST_NATS_URL, skipping the test when it is not
// set, or failing it when CI=true.
func NATSURL(t testing.TB) string {
	t.Helper()
	return serviceURL(t, NATSEnv)
}

// serviceURL returns the URL in env, or, when it is not set, fails t under
// CI=true and otherwise records the skip for Main and skips t.
func serviceURL(t testing.TB, env string) string {
	t.Helper()
	u := os.Getenv(env)
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testdb: %s is not set; CI requires %s", env, serviceOf(env).name)
		}
		recordSkip(env)
		t.Skipf("testdb: %s is not set", env)
	}
	return u
}

// PostgresSchemaURL creates a fresh PostgreSQL schema, dropped when t ends,
// and returns KILN_TEST_POSTGRES_URL with search_path set to it: several
// layers (nodes, processes) opened on that URL share one empty database.
// It skips or fails like PostgresURL.
func PostgresSchemaURL(t testing.TB) string {
	t.Helper()
	base := PostgresURL(t)
	schema := "kiln_test_" + randomHex(6)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("testdb: create schema: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer admin.Close()
		_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// UniqueName returns prefix followed by random hex digits: a pub/sub
// channel or subject of a test's own, so that test packages running in
// parallel against one server do not hear each other. It is a valid
// PostgreSQL identifier, Redis channel and NATS subject when prefix is
// lower-case letters, digits and underscores.
func UniqueName(prefix string) string {
	return prefix + randomHex(8)
}
