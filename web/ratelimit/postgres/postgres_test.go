package postgres_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/web/ratelimit"
	"github.com/kiln-go/kiln/web/ratelimit/postgres"
	"github.com/kiln-go/kiln/web/ratelimit/ratelimittest"
)

// open returns a new store (a new node: its own connection pool) on the
// database at url.
func open(t testing.TB, url string) *postgres.Store {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := postgres.New(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	url := testdb.PostgresSchemaURL(t)
	ratelimittest.Run(t, ratelimittest.Config{
		New:    func(t *testing.T) ratelimit.Store { return open(t, url) },
		Shared: true,
	})
}

// TestConformanceOnBunlayersDatabase runs the suite on the database a
// bunlayer.Layer opens (simple query protocol), as an app passes it.
func TestConformanceOnBunlayersDatabase(t *testing.T) {
	layer := testdb.Postgres(t)
	ratelimittest.Run(t, ratelimittest.Config{
		New: func(t *testing.T) ratelimit.Store {
			s, err := postgres.New(context.Background(), layer.DB().DB)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Shared: true,
	})
}

func TestExpungeDeletesOnlyBucketsFullAgain(t *testing.T) {
	url := testdb.PostgresSchemaURL(t)
	s := open(t, url)
	ctx := context.Background()
	short := ratelimit.Rule{Burst: 1, Window: time.Millisecond}
	long := ratelimit.Rule{Burst: 1, Window: time.Hour}
	for range 20 {
		if _, _, err := s.Take(ctx, ratelimittest.Key(), short); err != nil {
			t.Fatal(err)
		}
	}
	spent := ratelimittest.Key()
	if _, _, err := s.Take(ctx, spent, long); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows := func() (n int) {
		if err := db.QueryRow("SELECT count(*) FROM " + postgres.DefaultTable).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	deadline := time.Now().Add(ratelimittest.Deadline)
	for rows() > 1 {
		if _, err := s.Expunge(ctx); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows left after %v; want only the spent bucket", rows(), ratelimittest.Deadline)
		}
	}
	if ok, _, err := s.Take(ctx, spent, long); err != nil || ok {
		t.Fatalf("Take on the spent bucket after Expunge = %v, %v; want refused (Expunge deleted a bucket not yet full)", ok, err)
	}
}

func TestRefusesBadTableName(t *testing.T) {
	url := testdb.PostgresSchemaURL(t)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = postgres.New(context.Background(), db, postgres.WithTable("x; DROP TABLE users"))
	if err == nil || err.Error() != `kiln/ratelimit/postgres: table name "x; DROP TABLE users": want lower-case letters, digits and underscores, optionally schema.table` {
		t.Fatalf("err = %v", err)
	}
}

func BenchmarkTake(b *testing.B) {
	ratelimittest.BenchTake(b, open(b, testdb.PostgresSchemaURL(b)))
}
