package bunlayer_test

import (
	"database/sql"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// item has a column of every common type, a unique column, a unique group
// and, declared below, an identity of its own.
type item struct {
	ID          uuid.UUID      `bun:",pk,type:uuid" kiln:"default:uuid"`
	SKU         string         `bun:",unique,notnull"`
	Shop        string         `bun:",notnull,unique:shop_slug"`
	Slug        string         `bun:",notnull,unique:shop_slug"`
	Title       string         `bun:",notnull"`
	Price       int64          `bun:",notnull"`
	Stock       int32          `bun:",notnull"`
	Weight      float64        `bun:",nullzero"`
	Ratio       float32        `bun:",nullzero"`
	Available   bool           `bun:",notnull"`
	Parent      *uuid.UUID     `bun:"type:uuid"`
	Note        *string        `bun:""`
	Picture     []byte         `bun:",nullzero"`
	Attributes  map[string]any `bun:",type:json"`
	ShelfLife   time.Duration  `bun:",nullzero"`
	PublishedAt *time.Time     `bun:""`
	CreatedAt   time.Time      `bun:",notnull" kiln:"readonly,default:now"`
}

// counter has an autoincrement key.
type counter struct {
	ID   int64  `bun:",pk,autoincrement"`
	Name string `bun:",unique,notnull"`
	N    int    `bun:",notnull"`
}

// goldenDomain declares the domain whose migration is pinned: the test
// accounts (a user with the password strategy, and the token store) and
// the two resources above.
func goldenDomain() []resource.Ref {
	users, tokens := accountstest.Declare(accountstest.Options{})
	items := resource.New[item]("item",
		resource.Identities{{Name: "title_per_shop", Keys: []string{"shop", "title"}}})
	return []resource.Ref{users, tokens, items, resource.New[counter]("counter")}
}

// TestMigrationSQLGolden pins the statements MigrationSQL writes for each
// dialect to testdata/migration.<dialect>.sql (go test -update rewrites
// them), and runs them on the database: SQLite always, PostgreSQL when
// KILN_TEST_POSTGRES_URL is set. Writing PostgreSQL's statements needs no
// server.
func TestMigrationSQLGolden(t *testing.T) {
	pgdb, err := sql.Open("pgx", "postgres://nobody@127.0.0.1:1/none")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgdb.Close() })
	for _, c := range []struct {
		dialect string
		layer   *bunlayer.Layer
		// live opens a database to run the statements on.
		live func(testing.TB) *bunlayer.Layer
	}{
		{"sqlite", testdb.SQLite(t), testdb.SQLite},
		{"pg", bunlayer.New(bun.NewDB(pgdb, pgdialect.New())), testdb.Postgres},
	} {
		t.Run(c.dialect, func(t *testing.T) {
			got := migrationSQL(t, c.layer)
			golden := filepath.Join("testdata", "migration."+c.dialect+".sql")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v; run go test -run TestMigrationSQLGolden -update", err)
			}
			if got != string(want) {
				t.Errorf("MigrationSQL() differs from %s (go test -update rewrites it after a change you meant):\n got:\n%s\nwant:\n%s", golden, got, want)
			}
			t.Run("migrate", func(t *testing.T) {
				if c.dialect == "pg" {
					testdb.PostgresURL(t)
				}
				live := c.live(t)
				if got := migrationSQL(t, live); got != string(want) {
					t.Errorf("on a live database MigrationSQL() =\n%s\nwant %s's", got, golden)
				}
				if err := live.Migrate(t.Context()); err != nil {
					t.Fatalf("the statements do not run: %v", err)
				}
			})
		})
	}
}

// migrationSQL builds the golden domain on layer and returns its
// MigrationSQL.
func migrationSQL(t *testing.T, layer *bunlayer.Layer) string {
	t.Helper()
	if _, err := resource.NewDomain("golden", goldenDomain()...).Build(t.Context(), layer); err != nil {
		t.Fatal(err)
	}
	got, err := layer.MigrationSQL()
	if err != nil {
		t.Fatal(err)
	}
	return got
}
