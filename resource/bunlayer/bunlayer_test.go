package bunlayer_test

import (
	"database/sql"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
	"github.com/kiln-go/kiln/resource/datalayertest"
	"github.com/kiln-go/kiln/resource/notifiertest"
)

// databases are the databases the conformance suites run on: PostgreSQL
// only when KILN_TEST_POSTGRES_URL is set.
var databases = []struct {
	name     string
	postgres bool
	open     func(testing.TB) *bunlayer.Layer
}{
	{"SQLiteMemory", false, testdb.SQLite},
	{"SQLiteFile", false, testdb.SQLiteFile},
	{"Postgres", true, testdb.Postgres},
}

// forEachDatabase runs fn as a subtest per database, skipping PostgreSQL
// once, up front, when it is not configured.
func forEachDatabase(t *testing.T, fn func(t *testing.T, open func(testing.TB) *bunlayer.Layer)) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			if db.postgres {
				testdb.PostgresURL(t)
			}
			fn(t, db.open)
		})
	}
}

func TestDataLayerConformance(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, open func(testing.TB) *bunlayer.Layer) {
		datalayertest.Run(t, func(t *testing.T) resource.DataLayer { return open(t) })
	})
}

func TestNotifierConformance(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, open func(testing.TB) *bunlayer.Layer) {
		notifiertest.Run(t, func(t *testing.T) resource.DataLayer { return open(t) })
	})
}

var (
	_ resource.DataLayer     = (*bunlayer.Layer)(nil)
	_ datalayertest.Migrator = (*bunlayer.Layer)(nil)
)

// member has a unique column and, declared below, an identity of two.
type member struct {
	ID     int64  `bun:",pk,autoincrement"`
	Email  string `bun:",unique,notnull"`
	Org    string `bun:",notnull"`
	Handle string `bun:",notnull"`
}

func newMembers() *resource.Resource[member] {
	return resource.New[member]("member",
		resource.Identities{{Name: "org_handle", Keys: []string{"org", "handle"}}},
		resource.Actions{
			resource.Create{Name: "create", Accept: []string{"email", "org", "handle"}},
			resource.Read{Name: "list"},
		},
	)
}

func TestOpenBadPostgresURL(t *testing.T) {
	for _, c := range []struct {
		url  string
		want string
	}{
		{"postgres://", "kiln/bunlayer: bad PostgreSQL URL: want postgres://user@host:port/database"},
		{"postgresql://%zz", "kiln/bunlayer: bad PostgreSQL URL: want postgres://user@host:port/database"},
		{"postgres://nobody@127.0.0.1:1/none?connect_timeout=5", "kiln/bunlayer: connect: "},
	} {
		t.Run(c.url, func(t *testing.T) {
			l, err := bunlayer.Open(t.Context(), c.url)
			if err == nil {
				l.Close()
				t.Fatalf("Open(%q) = a layer, want an error", c.url)
			}
			if l != nil {
				t.Errorf("Open(%q) returned a layer with its error", c.url)
			}
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("Open(%q) = %q, want it to start with %q", c.url, err, c.want)
			}
		})
	}
}

func TestOpenDialect(t *testing.T) {
	if got := testdb.SQLite(t).Dialect(); got != "sqlite" {
		t.Errorf("SQLite layer's Dialect() = %q, want sqlite", got)
	}
	t.Run("Postgres", func(t *testing.T) {
		if got := testdb.Postgres(t).Dialect(); got != "pg" {
			t.Errorf("PostgreSQL layer's Dialect() = %q, want pg", got)
		}
	})
}

func TestMigrationSQL(t *testing.T) {
	// PostgreSQL's statements need no server: sql.Open does not connect.
	pgdb, err := sql.Open("pgx", "postgres://nobody@127.0.0.1:1/none")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgdb.Close() })
	for _, c := range []struct {
		name  string
		layer *bunlayer.Layer
		table string
	}{
		{"SQLite", testdb.SQLite(t), `CREATE TABLE IF NOT EXISTS "members" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, `},
		{"Postgres", bunlayer.New(bun.NewDB(pgdb, pgdialect.New())), `CREATE TABLE IF NOT EXISTS "members" ("id" BIGSERIAL NOT NULL, `},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := resource.NewDomain("members", newMembers()).Build(t.Context(), c.layer); err != nil {
				t.Fatal(err)
			}
			got, err := c.layer.MigrationSQL()
			if err != nil {
				t.Fatal(err)
			}
			stmts := strings.Split(strings.TrimSuffix(got, ";\n"), ";\n")
			want := []string{
				`CREATE UNIQUE INDEX IF NOT EXISTS "members_unique_email_idx" ON "members" ("email")`,
				`CREATE UNIQUE INDEX IF NOT EXISTS "members_org_handle_idx" ON "members" ("org", "handle")`,
			}
			if len(stmts) != 3 || !strings.HasPrefix(stmts[0], c.table) || !slices.Equal(stmts[1:], want) {
				t.Errorf("MigrationSQL() =\n%s\nwant a statement starting\n%s\nthen\n%s", got, c.table, strings.Join(want, "\n"))
			}
			// The layer's bun models are not changed: a CREATE TABLE the
			// owner of the *bun.DB builds still has bun's constraint.
			if own := c.layer.DB().NewCreateTable().Model((*member)(nil)).String(); !strings.Contains(own, `UNIQUE ("email")`) {
				t.Errorf("after MigrationSQL, bun's own CREATE TABLE is %s; want it to keep UNIQUE (\"email\")", own)
			}
		})
	}
}

func TestMigrateTwice(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, open func(testing.TB) *bunlayer.Layer) {
		ctx := t.Context()
		layer := open(t)
		members := newMembers()
		d, err := resource.NewDomain("members", members).Build(ctx, layer)
		if err != nil {
			t.Fatal(err)
		}
		if err := layer.Migrate(ctx); err != nil {
			t.Fatalf("first Migrate: %v", err)
		}
		if _, err := members.Create(ctx, d, "create", resource.Input{"email": "a@example.com", "org": "o", "handle": "a"}); err != nil {
			t.Fatal(err)
		}
		if err := layer.Migrate(ctx); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		got, err := members.Read(ctx, d, "list", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Email != "a@example.com" {
			t.Errorf("after migrating again, members = %+v, want the one created before", got)
		}
		// The identities' indexes are still there.
		_, err = members.Create(ctx, d, "create", resource.Input{"email": "b@example.com", "org": "o", "handle": "a"})
		var ce *resource.ConflictError
		if !errors.As(err, &ce) || ce.Identity != "org_handle" {
			t.Errorf("a duplicate org and handle: err = %v, want a conflict on org_handle", err)
		}
	})
}

// Migrate makes one unique index per identity, the identity's named one:
// a `bun:",unique"` column gets no second constraint from CREATE TABLE.
// A duplicate is refused on the column with a conflict naming its
// identity.
func TestMigrateMakesOneIndexPerIdentity(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, open func(testing.TB) *bunlayer.Layer) {
		ctx := t.Context()
		layer := open(t)
		members := newMembers()
		d, err := resource.NewDomain("members", members).Build(ctx, layer)
		if err != nil {
			t.Fatal(err)
		}
		if err := layer.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		// Every unique index of the table, the primary key's aside, with
		// its columns.
		query := `SELECT il.name, group_concat(ii.name, ',') FROM pragma_index_list('members') il, pragma_index_info(il.name) ii
			WHERE il."unique" = 1 AND il.origin <> 'pk' GROUP BY il.name ORDER BY il.name`
		if layer.Dialect() == "pg" {
			query = `SELECT i.relname, string_agg(a.attname, ',' ORDER BY k.n) FROM pg_index x
				JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
				JOIN unnest(x.indkey) WITH ORDINALITY AS k(attnum, n) ON true
				JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
				WHERE t.relname = 'members' AND t.relnamespace = current_schema()::regnamespace
				AND x.indisunique AND NOT x.indisprimary GROUP BY i.relname ORDER BY i.relname`
		}
		rows, err := layer.DB().QueryContext(ctx, query)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var name, cols string
			if err := rows.Scan(&name, &cols); err != nil {
				t.Fatal(err)
			}
			got = append(got, name+"("+cols+")")
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		want := []string{"members_org_handle_idx(org,handle)", "members_unique_email_idx(email)"}
		if !slices.Equal(got, want) {
			t.Errorf("unique indexes %q, want one per identity: %q", got, want)
		}
		if _, err := members.Create(ctx, d, "create", resource.Input{"email": "a@example.com", "org": "o", "handle": "a"}); err != nil {
			t.Fatal(err)
		}
		_, err = members.Create(ctx, d, "create", resource.Input{"email": "a@example.com", "org": "o", "handle": "b"})
		var ce *resource.ConflictError
		if !errors.As(err, &ce) || ce.Identity != "unique_email" || !slices.Equal(ce.Fields, []string{"email"}) {
			t.Errorf("a duplicate email: %v, want a conflict on unique_email [email]", err)
		}
	})
}

// unmapped has an attribute kiln reads ("meta") where bun maps the columns
// of an embedded struct ("meta_a").
type unmapped struct {
	ID   int64 `bun:",pk,autoincrement"`
	Meta struct {
		A string
	} `bun:"embed:meta_"`
}

func TestRegisterRefusesUnmappedColumn(t *testing.T) {
	_, err := resource.NewDomain("bad", resource.New[unmapped]("unmapped")).Build(t.Context(), testdb.SQLite(t))
	if err == nil {
		t.Fatal("Build = nil error, want the layer to refuse an attribute bun does not map")
	}
	var be *resource.BuildError
	if !errors.As(err, &be) {
		t.Fatalf("Build = %T %v, want a *resource.BuildError", err, err)
	}
	want := `bun does not map attribute "meta" of bunlayer_test.unmapped; check its bun tag`
	if be.Resource != "unmapped" || !slices.Equal(be.Path, []string{"data_layer"}) || be.Message != want {
		t.Errorf("BuildError = {Resource: %q, Path: %q, Message: %q}, want {unmapped, [data_layer], %q}", be.Resource, be.Path, be.Message, want)
	}
}
