package bunlayer_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// The resources of an app whose items change: v2 gives them a plan (with a
// default), an identity on their title and a shop.

type shop struct {
	ID   uuid.UUID `bun:",pk,type:uuid"`
	Name string    `bun:",notnull"`
}

type itemV1 struct {
	ID     uuid.UUID  `bun:",pk,type:uuid"`
	SKU    string     `bun:",unique,notnull"`
	Title  string     `bun:",notnull"`
	ShopID *uuid.UUID `bun:"type:uuid"` // only in the dangling-key test
}

type itemV2 struct {
	ID     uuid.UUID  `bun:",pk,type:uuid"`
	SKU    string     `bun:",unique,notnull"`
	Title  string     `bun:",notnull"`
	Plan   string     `bun:",notnull,default:'basic'"`
	ShopID *uuid.UUID `bun:"type:uuid"`
}

// itemV1NoShop is v1 as the app first declares it.
type itemV1NoShop struct {
	ID    uuid.UUID `bun:",pk,type:uuid"`
	SKU   string    `bun:",unique,notnull"`
	Title string    `bun:",notnull"`
}

type review struct {
	ID     int64     `bun:",pk,autoincrement"`
	ItemID uuid.UUID `bun:",notnull,type:uuid"`
	Stars  int       `bun:",notnull"`
}

// reviewOfItem: a review belongs to an item, and goes with it.
var reviewOfItem = resource.Relationships{resource.BelongsTo{Name: "item", Destination: resource.Named("item"), OnDelete: resource.Cascade}}

func v1Refs() []resource.Ref {
	return []resource.Ref{resource.New[review]("review", reviewOfItem), resource.New[itemV1NoShop]("item"), resource.New[shop]("shop")}
}

func v2Refs() []resource.Ref {
	return []resource.Ref{resource.New[review]("review", reviewOfItem),
		resource.New[itemV2]("item", resource.Identities{{Name: "unique_title", Keys: []string{"title"}}},
			resource.Relationships{resource.BelongsTo{Name: "shop", Destination: resource.Named("shop"), OnDelete: resource.SetNull}}),
		resource.New[shop]("shop")}
}

// databaseURL is the URL of a new, empty database of the named kind
// ("sqlite": a file; "postgres": a schema), to open several layers on.
func databaseURL(t *testing.T, name string) string {
	if name == "postgres" {
		return testdb.PostgresSchemaURL(t)
	}
	return "file:" + filepath.Join(t.TempDir(), "test.db")
}

// open opens a layer on url with a domain of refs.
func open(t *testing.T, url string, refs ...resource.Ref) *bunlayer.Layer {
	t.Helper()
	l, err := bunlayer.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if len(refs) > 0 {
		if _, err := resource.NewDomain("shop", refs...).Build(t.Context(), l); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// generate writes the migration to the layer's resources, for both
// dialects, into dir.
func generate(t *testing.T, dir string, l *bunlayer.Layer) []bunlayer.Generated {
	t.Helper()
	gen, err := l.GenerateMigrations(dir, bunlayer.GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return gen
}

// TestGeneratedMigrationGolden pins the migration from v1 to v2 of each
// dialect to testdata/migrations.v2.<dialect>.sql (go test -update
// rewrites them). Writing it needs no database server.
func TestGeneratedMigrationGolden(t *testing.T) {
	dir := t.TempDir()
	gen := generate(t, dir, open(t, "sqlite::memory:", v1Refs()...))
	if len(gen) != 2 || !strings.HasSuffix(gen[0].Migration, "_initial.up.sql") {
		t.Fatalf("first generation: %+v", gen)
	}
	gen = generate(t, dir, open(t, "sqlite::memory:", v2Refs()...))
	if len(gen) != 2 {
		t.Fatalf("second generation wrote %+v; want a migration per dialect", gen)
	}
	for _, g := range gen {
		if !strings.HasSuffix(g.Migration, "_update.up.sql") || filepath.Dir(g.Migration) != filepath.Join(dir, g.Dialect) {
			t.Errorf("%s migration written to %s", g.Dialect, g.Migration)
		}
		got, err := os.ReadFile(g.Migration)
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "migrations.v2."+g.Dialect+".sql")
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v; run go test -run TestGeneratedMigrationGolden -update", err)
		}
		if string(got) != string(want) {
			t.Errorf("the %s migration differs from %s (go test -update rewrites it after a change you meant):\n got:\n%s\nwant:\n%s", g.Dialect, golden, got, want)
		}
	}
	wantSummary := map[string][]string{
		"sqlite": {"rebuild table items: add column plan, add column shop_id, add foreign key items_shop_fkey, create index items_unique_title_idx, create index items_shop_fkey_idx"},
		"pg": {"add column items.plan", "add column items.shop_id", "add foreign key items_shop_fkey",
			"create index items_unique_title_idx", "create index items_shop_fkey_idx"},
	}
	for _, g := range gen {
		if !slices.Equal(g.Summary, wantSummary[g.Dialect]) {
			t.Errorf("%s summary %q; want %q", g.Dialect, g.Summary, wantSummary[g.Dialect])
		}
	}
}

// TestGeneratedMigrationAddsIndex: an index declared on a resource whose
// table exists is a migration of its own (CREATE INDEX), and the
// migrated database has it, as Migrate would have made it.
func TestGeneratedMigrationAddsIndex(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			dir := t.TempDir()
			url := databaseURL(t, db)
			generate(t, dir, open(t, url, resource.New[shop]("shop")))
			l := open(t, url, resource.New[shop]("shop", resource.Indexes{{Keys: []string{"name"}}}))
			gen := generate(t, dir, l)
			for _, g := range gen {
				if !slices.Equal(g.Summary, []string{"create index shops_name_idx"}) {
					t.Errorf("%s summary %q; want one index created", g.Dialect, g.Summary)
				}
				got, err := os.ReadFile(g.Migration)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(got), `CREATE INDEX IF NOT EXISTS "shops_name_idx" ON "shops" ("name")`) {
					t.Errorf("%s migration:\n%s", g.Dialect, got)
				}
			}
			migrations := os.DirFS(dir)
			if _, err := l.ApplyMigrations(t.Context(), migrations); err != nil {
				t.Fatal(err)
			}
			if err := l.CheckMigrations(migrations); err != nil {
				t.Errorf("after applying: %v", err)
			}
			if n := indexesNamed(t, l, db, "shops_name_idx"); n != 1 {
				t.Errorf("indexes named shops_name_idx: %d; want 1", n)
			}
		})
	}
}

// TestMigrateAddsIndexToExistingTable: without a migrations folder, an
// index declared on a resource whose table exists is created at the next
// Migrate, as an upgrade that adds one to an extension's resource needs.
func TestMigrateAddsIndexToExistingTable(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			url := databaseURL(t, db)
			if err := open(t, url, resource.New[shop]("shop")).Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			l := open(t, url, resource.New[shop]("shop", resource.Indexes{{Keys: []string{"name"}}}))
			if n := indexesNamed(t, l, db, "shops_name_idx"); n != 0 {
				t.Fatalf("indexes named shops_name_idx before: %d", n)
			}
			if err := l.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			if n := indexesNamed(t, l, db, "shops_name_idx"); n != 1 {
				t.Errorf("indexes named shops_name_idx: %d; want 1", n)
			}
		})
	}
}

// indexesNamed counts the indexes of that name in the layer's database
// (db "sqlite" or "postgres"; on PostgreSQL, in the layer's schema).
func indexesNamed(t *testing.T, l *bunlayer.Layer, db, name string) int {
	t.Helper()
	q := "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?"
	if db == "postgres" {
		q = "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ?"
	}
	var n int
	if err := l.DB().QueryRowContext(t.Context(), q, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFirstMigrationIsMigrationSQL: a folder's first migration creates
// what Migrate creates, statement for statement, foreign keys and their
// indexes included, so that it adopts a database Migrate made.
func TestFirstMigrationIsMigrationSQL(t *testing.T) {
	pgdb, err := sql.Open("pgx", "postgres://nobody@127.0.0.1:1/none")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgdb.Close() })
	for name, refs := range map[string]func() *resource.DomainSpec{
		"golden":   func() *resource.DomainSpec { return resource.NewDomain("golden", goldenDomain()...) },
		"articles": articleDomain,
	} {
		for _, layer := range []func() *bunlayer.Layer{
			func() *bunlayer.Layer { return testdb.SQLite(t) },
			func() *bunlayer.Layer { return bunlayer.New(bun.NewDB(pgdb, pgdialect.New())) },
		} {
			l := layer()
			if _, err := refs().Build(t.Context(), l); err != nil {
				t.Fatal(err)
			}
			want, err := l.MigrationSQL()
			if err != nil {
				t.Fatal(err)
			}
			to, err := l.Snapshot(l.Dialect())
			if err != nil {
				t.Fatal(err)
			}
			ch, err := bunlayer.Diff(&bunlayer.Snapshot{Dialect: l.Dialect()}, to, bunlayer.DiffOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var stmts []string
			for _, line := range strings.Split(ch.SQL(), "\n") {
				if line != "" && !strings.HasPrefix(line, "--") {
					stmts = append(stmts, line)
				}
			}
			if got := strings.Join(stmts, "\n") + "\n"; got != want {
				t.Errorf("%s on %s: the first migration's statements\n%s\nare not MigrationSQL's\n%s", name, l.Dialect(), got, want)
			}
		}
	}
}

// TestMigrationsKeepRows declares v1, migrates and fills it, declares v2,
// generates and applies its migration: every row is still there, with
// the new column's default, and the new identity and foreign key hold.
func TestMigrationsKeepRows(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			ctx := t.Context()
			url, dir := databaseURL(t, db), t.TempDir()
			fsys := os.DirFS(dir)

			v1 := open(t, url, v1Refs()...)
			gen := generate(t, dir, v1)
			if applied, err := v1.ApplyMigrations(ctx, fsys); err != nil || len(applied) != 1 || !strings.HasSuffix(gen[0].Migration, applied[0]+".up.sql") {
				t.Fatalf("apply v1: %q, %v; want %s", applied, err, gen[0].Migration)
			}
			shopID := uuid.New()
			items := []*itemV1NoShop{
				{ID: uuid.New(), SKU: "a-1", Title: "Anvil"},
				{ID: uuid.New(), SKU: "b-2", Title: "Bellows"},
				{ID: uuid.New(), SKU: "c-3", Title: "Crucible"},
			}
			reviews := []*review{{ItemID: items[0].ID, Stars: 5}, {ItemID: items[0].ID, Stars: 4}, {ItemID: items[1].ID, Stars: 3}}
			if _, err := v1.DB().NewInsert().Model(&shop{ID: shopID, Name: "Forge"}).ModelTableExpr("shops").Exec(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := v1.DB().NewInsert().Model(&items).ModelTableExpr("items").Exec(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := v1.DB().NewInsert().Model(&reviews).ModelTableExpr("reviews").Exec(ctx); err != nil {
				t.Fatal(err)
			}

			v2 := open(t, url, v2Refs()...)
			gen = generate(t, dir, v2)
			if err := v2.CheckMigrations(fsys); err != nil {
				t.Errorf("check after generate: %v", err)
			}
			pending, err := v2.PendingMigrations(ctx, fsys)
			if err != nil || len(pending) != 1 || !strings.HasSuffix(gen[0].Migration, pending[0].Name+".up.sql") {
				t.Fatalf("pending: %+v, %v", pending, err)
			}
			if applied, err := v2.ApplyMigrations(ctx, fsys); err != nil || !slices.Equal(applied, []string{pending[0].Name}) {
				t.Fatalf("apply v2: %q, %v; want %s", applied, err, pending[0].Name)
			}

			var got []*itemV2
			if err := v2.DB().NewSelect().Model(&got).ModelTableExpr("items AS ?TableAlias").Order("sku").Scan(ctx); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(items) {
				t.Fatalf("%d items after the migration; want %d", len(got), len(items))
			}
			for i, it := range got {
				if it.ID != items[i].ID || it.SKU != items[i].SKU || it.Title != items[i].Title || it.Plan != "basic" || it.ShopID != nil {
					t.Errorf("item %d after the migration: %+v; want %+v with plan basic and no shop", i, it, items[i])
				}
			}
			if n, err := v2.DB().NewSelect().ModelTableExpr("reviews").Count(ctx); err != nil || int(n) != len(reviews) {
				t.Errorf("%d reviews after the migration (%v); want %d: rebuilding items must not cascade", n, err, len(reviews))
			}

			// The identity's index holds.
			_, err = v2.DB().NewInsert().Model(&itemV2{ID: uuid.New(), SKU: "d-4", Title: "Anvil", Plan: "pro"}).ModelTableExpr("items").Exec(ctx)
			if err == nil || !strings.Contains(err.Error(), "items_unique_title_idx") && !strings.Contains(err.Error(), "UNIQUE constraint failed: items.title") {
				t.Errorf("a second item titled Anvil: %v; want a unique violation of items_unique_title_idx", err)
			}
			// The foreign key holds, and sets NULL when its shop goes.
			missing := uuid.New()
			_, err = v2.DB().NewUpdate().ModelTableExpr("items").Set("shop_id = ?", missing).Where("sku = 'a-1'").Exec(ctx)
			if err == nil || !strings.Contains(err.Error(), "FOREIGN KEY constraint failed") && !strings.Contains(err.Error(), "items_shop_fkey") {
				t.Errorf("an item of a missing shop: %v; want a foreign key violation", err)
			}
			if _, err := v2.DB().NewUpdate().ModelTableExpr("items").Set("shop_id = ?", shopID).Where("sku = 'a-1'").Exec(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := v2.DB().NewDelete().ModelTableExpr("shops").Where("id = ?", shopID).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			if n, err := v2.DB().NewSelect().ModelTableExpr("items").Where("shop_id IS NULL").Count(ctx); err != nil || int(n) != len(items) {
				t.Errorf("%d items without a shop after deleting it (%v); want %d (ON DELETE SET NULL)", n, err, len(items))
			}
			// ON DELETE CASCADE of the reviews still holds after items was rebuilt.
			if _, err := v2.DB().NewDelete().ModelTableExpr("items").Where("sku = 'a-1'").Exec(ctx); err != nil {
				t.Fatal(err)
			}
			if n, err := v2.DB().NewSelect().ModelTableExpr("reviews").Count(ctx); err != nil || n != 1 {
				t.Errorf("%d reviews after deleting an item with two (%v); want 1 (ON DELETE CASCADE)", n, err)
			}

			// Nothing changed: nothing to generate, nothing to apply.
			before, _ := os.ReadDir(filepath.Join(dir, v2.Dialect()))
			if gen := generate(t, dir, v2); len(gen) != 0 {
				t.Errorf("generating again wrote %+v", gen)
			}
			after, _ := os.ReadDir(filepath.Join(dir, v2.Dialect()))
			if len(after) != len(before) {
				t.Errorf("generating again: %d files, then %d", len(before), len(after))
			}
			if applied, err := v2.ApplyMigrations(ctx, fsys); err != nil || len(applied) != 0 {
				t.Errorf("applying again: %q, %v; want nothing", applied, err)
			}
		})
	}
}

// TestMigrationBreakingForeignKeyAppliesNothing: rows whose key references
// no row make the migration that adds the foreign key fail, and nothing of
// it is applied.
func TestMigrationBreakingForeignKeyAppliesNothing(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			ctx := t.Context()
			url, dir := databaseURL(t, db), t.TempDir()
			fsys := os.DirFS(dir)
			l := open(t, url, resource.New[itemV1]("item"), resource.New[shop]("shop"))
			generate(t, dir, l)
			if _, err := l.ApplyMigrations(ctx, fsys); err != nil {
				t.Fatal(err)
			}
			dangling := uuid.New()
			if _, err := l.DB().NewInsert().Model(&itemV1{ID: uuid.New(), SKU: "a-1", Title: "Anvil", ShopID: &dangling}).ModelTableExpr("items").Exec(ctx); err != nil {
				t.Fatal(err)
			}
			l = open(t, url, resource.New[itemV1]("item", resource.Relationships{resource.BelongsTo{Name: "shop", Destination: resource.Named("shop")}}),
				resource.New[shop]("shop"))
			generate(t, dir, l)
			applied, err := l.ApplyMigrations(ctx, fsys)
			if err == nil || len(applied) != 0 {
				t.Fatalf("apply: %q, %v; want a foreign key error and nothing applied", applied, err)
			}
			want := "violates foreign key constraint \"items_shop_fkey\""
			if db == "sqlite" {
				want = "kiln/bunlayer: migrate: 1 row(s) break a foreign key after the migrations, so none was applied: row 1 of items references no row of shops"
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("apply: %v; want it to say %q", err, want)
			}
			if pending, err := l.PendingMigrations(ctx, fsys); err != nil || len(pending) != 1 {
				t.Errorf("pending after the failure: %+v, %v; want the migration", pending, err)
			}
			if n, err := l.DB().NewSelect().ModelTableExpr("items").Where("shop_id = ?", dangling).Count(ctx); err != nil || n != 1 {
				t.Errorf("%d items after the failed migration (%v); want the 1 row", n, err)
			}
		})
	}
}

// TestRebuildSelfReference: a SQLite table that gains a foreign key to
// itself is rebuilt with its rows, and the key holds.
func TestRebuildSelfReference(t *testing.T) {
	ctx := t.Context()
	url, dir := databaseURL(t, "sqlite"), t.TempDir()
	fsys := os.DirFS(dir)
	v1 := open(t, url, resource.New[section]("section"))
	generate(t, dir, v1)
	if _, err := v1.ApplyMigrations(ctx, fsys); err != nil {
		t.Fatal(err)
	}
	parent := int64(1)
	rows := []*section{{ID: 1}, {ID: 2, ParentID: &parent}, {ID: 3, ParentID: &parent}}
	if _, err := v1.DB().NewInsert().Model(&rows).ModelTableExpr("sections").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	v2 := open(t, url, resource.New[section]("section", resource.Relationships{
		resource.BelongsTo{Name: "parent", Destination: resource.Named("section"), OnDelete: resource.Cascade}}))
	if gen := generate(t, dir, v2); len(gen) != 2 || !strings.HasPrefix(gen[0].Summary[0], "rebuild table sections: add foreign key sections_parent_fkey") {
		t.Fatalf("generate: %+v", gen)
	}
	if _, err := v2.ApplyMigrations(ctx, fsys); err != nil {
		t.Fatal(err)
	}
	if n, err := v2.DB().NewSelect().ModelTableExpr("sections").Count(ctx); err != nil || n != 3 {
		t.Errorf("%d sections after the rebuild (%v); want 3", n, err)
	}
	if _, err := v2.DB().NewDelete().ModelTableExpr("sections").Where("id = 1").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := v2.DB().NewSelect().ModelTableExpr("sections").Count(ctx); err != nil || n != 0 {
		t.Errorf("%d sections after deleting the parent (%v); want 0 (ON DELETE CASCADE)", n, err)
	}
}

// TestApplyMigrationsInMemory migrates an in-memory SQLite database on the
// layer's one connection, and gives it back enforcing foreign keys.
func TestApplyMigrationsInMemory(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	l := open(t, "sqlite::memory:", v2Refs()...)
	generate(t, dir, l)
	if applied, err := l.ApplyMigrations(ctx, os.DirFS(dir)); err != nil || len(applied) != 1 {
		t.Fatalf("apply: %q, %v", applied, err)
	}
	var fk int
	if err := l.DB().QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d (%v) after migrating; want 1", fk, err)
	}
	_, err := l.DB().NewInsert().Model(&review{ItemID: uuid.New(), Stars: 1}).ModelTableExpr("reviews").Exec(ctx)
	if err == nil || !strings.Contains(err.Error(), "FOREIGN KEY constraint failed") {
		t.Errorf("a review of no item: %v; want a foreign key violation", err)
	}
}

// TestApplyMigrationsConcurrently: layers (as processes would) that apply
// the same migrations at once apply each exactly once, and the ones that
// find the lock taken wait for it without an error. The test holds the
// lock first, so that both wait, then lets them race for it.
func TestApplyMigrationsConcurrently(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			ctx := t.Context()
			url, dir := databaseURL(t, db), t.TempDir()
			fsys := os.DirFS(dir)
			holder, a, b := open(t, url), open(t, url), open(t, url)
			if err := os.Mkdir(filepath.Join(dir, a.Dialect()), 0o755); err != nil {
				t.Fatal(err)
			}
			for round := range 3 {
				name, counted := fmt.Sprintf("2026010100000%d_counted", round), fmt.Sprintf("counted_%d", round)
				q := "CREATE TABLE " + counted + " (n INTEGER NOT NULL);\nINSERT INTO " + counted + " VALUES (1);\n"
				if err := os.WriteFile(filepath.Join(dir, a.Dialect(), name+".up.sql"), []byte(q), 0o644); err != nil {
					t.Fatal(err)
				}
				lock, err := holder.DB().BeginTx(ctx, nil) // SQLite: BEGIN IMMEDIATE, the write lock
				if err != nil {
					t.Fatal(err)
				}
				if db == "postgres" {
					if _, err := lock.ExecContext(ctx, "SELECT pg_advisory_xact_lock("+bunlayer.PGMigrationLock+")"); err != nil {
						t.Fatal(err)
					}
				}
				type result struct {
					applied []string
					err     error
				}
				waiting, results := make(chan struct{}, 2), make(chan result, 2)
				for _, l := range []*bunlayer.Layer{a, b} {
					go func() {
						applied, err := l.ApplyMigrations(ctx, fsys, bunlayer.OnWait(func() { waiting <- struct{}{} }))
						results <- result{applied, err}
					}()
				}
				for range 2 {
					select {
					case <-waiting:
					case r := <-results:
						t.Fatalf("round %d: a migrator returned %q, %v while the lock was held", round, r.applied, r.err)
					case <-time.After(30 * time.Second):
						t.Fatalf("round %d: the migrators did not wait for the lock", round)
					}
				}
				if err := lock.Rollback(); err != nil {
					t.Fatal(err)
				}
				var all []string
				for range 2 {
					r := <-results
					if r.err != nil {
						t.Fatalf("round %d: %v", round, r.err)
					}
					all = append(all, r.applied...)
				}
				if !slices.Equal(all, []string{name}) {
					t.Errorf("round %d: the migrators applied %q; want %s once", round, all, name)
				}
				if n, err := a.DB().NewSelect().ModelTableExpr(counted).Count(ctx); err != nil || n != 1 {
					t.Errorf("round %d: the migration ran %d times (%v); want once", round, n, err)
				}
				if n, err := a.DB().NewSelect().ModelTableExpr(bunlayer.MigrationsTable).Count(ctx); err != nil || int(n) != round+1 {
					t.Errorf("round %d: %s has %d rows (%v); want %d", round, bunlayer.MigrationsTable, n, err, round+1)
				}
			}
		})
	}
}

// TestGenerateRefusesNotNullWithoutDefault: a NOT NULL column without a
// default cannot be added to a table that may have rows; nothing is
// written.
func TestGenerateRefusesNotNullWithoutDefault(t *testing.T) {
	type itemNoDefault struct {
		ID    uuid.UUID `bun:",pk,type:uuid"`
		SKU   string    `bun:",unique,notnull"`
		Title string    `bun:",notnull"`
		Plan  string    `bun:",notnull"`
	}
	dir := t.TempDir()
	if _, err := open(t, "sqlite::memory:", resource.New[itemV1NoShop]("item")).GenerateMigrations(dir, bunlayer.GenerateOptions{}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadDir(filepath.Join(dir, "sqlite"))
	_, err := open(t, "sqlite::memory:", resource.New[itemNoDefault]("item")).GenerateMigrations(dir, bunlayer.GenerateOptions{Name: "add_plan"})
	want := `kiln/bunlayer: column items.plan is NOT NULL without a default, and table items may have rows: give it a default (bun:",notnull,default:…") or let it hold NULL`
	if err == nil || err.Error() != want {
		t.Errorf("generate: %v\nwant: %s", err, want)
	}
	if after, _ := os.ReadDir(filepath.Join(dir, "sqlite")); len(after) != len(before) {
		t.Errorf("a refused generation wrote files: %d, then %d", len(before), len(after))
	}
	if _, err := open(t, "sqlite::memory:").GenerateMigrations(dir, bunlayer.GenerateOptions{Name: "Add Plan"}); err == nil ||
		err.Error() != `kiln/bunlayer: migration name "Add Plan": use lower-case letters, digits, _ and -` {
		t.Errorf("a bad name: %v", err)
	}
}

// TestCheckMigrations: the declarations must be those of the folder's
// snapshot.
func TestCheckMigrations(t *testing.T) {
	dir := t.TempDir()
	fsys := os.DirFS(dir)
	v1 := open(t, "sqlite::memory:", v1Refs()...)
	if err := v1.CheckMigrations(fsys); err == nil || err.Error() != "kiln/bunlayer: the migrations folder has no sqlite/snapshot.json: run migrate generate" {
		t.Errorf("no snapshot: %v", err)
	}
	if _, err := v1.ApplyMigrations(t.Context(), fsys); err == nil || err.Error() != "kiln/bunlayer: the migrations folder has no migration for sqlite: run migrate generate" {
		t.Errorf("apply without migrations: %v", err)
	}
	if _, err := v1.GenerateMigrations(dir, bunlayer.GenerateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := v1.CheckMigrations(fsys); err != nil {
		t.Errorf("after generate: %v", err)
	}
	v2 := open(t, "sqlite::memory:", v2Refs()...)
	want := "kiln/bunlayer: the declarations differ from the migrations folder's sqlite/snapshot.json (rebuild table items: add column plan, add column shop_id, add foreign key items_shop_fkey, create index items_unique_title_idx, create index items_shop_fkey_idx): run migrate generate, review the new migration, then migrate"
	if err := v2.CheckMigrations(fsys); err == nil || err.Error() != want {
		t.Errorf("changed declarations: %v\nwant: %s", err, want)
	}
}

// TestDiffReview: what kiln does not do on its own is written commented
// out, for review.
func TestDiffReview(t *testing.T) {
	table := func(cols ...bunlayer.Column) bunlayer.Table {
		return bunlayer.Table{Name: "t", Columns: cols, PrimaryKey: []string{"id"}}
	}
	id := bunlayer.Column{Name: "id", Type: "BIGINT", NotNull: true}
	old := bunlayer.Column{Name: "old", Type: "VARCHAR", NotNull: true}
	for _, c := range []struct {
		name        string
		dialect     string
		from, to    []bunlayer.Table
		allowDrop   bool
		summary     []string
		sqlContains []string
	}{
		{
			name: "dropped column", dialect: "pg",
			from: []bunlayer.Table{table(id, old)}, to: []bunlayer.Table{table(id)},
			summary:     []string{"review: column t.old is no longer declared; its data stays unless you drop it (migrate generate --allow-drop drops it)"},
			sqlContains: []string{"\n-- While it stays, it is NOT NULL without a default: inserts that do not set it fail.\n-- ALTER TABLE \"t\" DROP COLUMN \"old\";\n"},
		},
		{
			name: "dropped column, allowed", dialect: "sqlite", allowDrop: true,
			from: []bunlayer.Table{table(id, old)}, to: []bunlayer.Table{table(id)},
			summary:     []string{"drop column t.old"},
			sqlContains: []string{"\nALTER TABLE \"t\" DROP COLUMN \"old\";\n"},
		},
		{
			name: "renamed column", dialect: "pg",
			from: []bunlayer.Table{table(id, old)}, to: []bunlayer.Table{table(id, bunlayer.Column{Name: "new", Type: "VARCHAR"})},
			summary: []string{
				"review: t loses column(s) old and gains new: if one was renamed, edit this migration so that its data moves (ALTER TABLE … RENAME COLUMN …)",
				"add column t.new",
				"review: column t.old is no longer declared; its data stays unless you drop it (migrate generate --allow-drop drops it)",
			},
			sqlContains: []string{"\nALTER TABLE \"t\" ADD COLUMN \"new\" VARCHAR;\n"},
		},
		{
			name: "changed column", dialect: "pg",
			from: []bunlayer.Table{table(id, old)}, to: []bunlayer.Table{table(id, bunlayer.Column{Name: "old", Type: "TEXT", Default: "''"})},
			summary: []string{`review: column t.old changes from "old" VARCHAR NOT NULL to "old" TEXT DEFAULT ''; kiln does not alter existing columns`},
			sqlContains: []string{"\n-- ALTER TABLE \"t\" ALTER COLUMN \"old\" TYPE TEXT;\n-- ALTER TABLE \"t\" ALTER COLUMN \"old\" DROP NOT NULL;\n" +
				"-- ALTER TABLE \"t\" ALTER COLUMN \"old\" SET DEFAULT '';\n"},
		},
		{
			name: "dropped table", dialect: "sqlite",
			from: []bunlayer.Table{table(id)}, to: nil,
			summary:     []string{"review: table t is no longer declared; its rows stay unless you drop it (migrate generate --allow-drop drops it)"},
			sqlContains: []string{"\n-- DROP TABLE \"t\";\n"},
		},
		{
			name: "changed index", dialect: "sqlite",
			from:        []bunlayer.Table{{Name: "t", Columns: []bunlayer.Column{id, old}, Indexes: []bunlayer.Index{{Name: "t_ix", Columns: []string{"old"}}}}},
			to:          []bunlayer.Table{{Name: "t", Columns: []bunlayer.Column{id, old}, Indexes: []bunlayer.Index{{Name: "t_ix", Columns: []string{"old"}, Unique: true}}}},
			summary:     []string{"drop index t_ix", "create index t_ix"},
			sqlContains: []string{"\nDROP INDEX IF EXISTS \"t_ix\";\n", "\nCREATE UNIQUE INDEX IF NOT EXISTS \"t_ix\" ON \"t\" (\"old\");\n"},
		},
		{
			name: "rebuild keeps a dropped column", dialect: "sqlite",
			from: []bunlayer.Table{table(id, old), {Name: "u", Columns: []bunlayer.Column{id}, PrimaryKey: []string{"id"}}},
			to: []bunlayer.Table{{Name: "t", Columns: []bunlayer.Column{id}, PrimaryKey: []string{"id"},
				ForeignKeys: []bunlayer.ForeignKey{{Name: "t_fk", Columns: []string{"id"}, RefTable: "u", RefColumns: []string{"id"}}}},
				{Name: "u", Columns: []bunlayer.Column{id}, PrimaryKey: []string{"id"}}},
			summary: []string{
				"review: column t.old is no longer declared; the rebuild below keeps it and its data (migrate generate --allow-drop drops it)",
				"rebuild table t: add foreign key t_fk",
			},
			sqlContains: []string{`CREATE TABLE "t__kiln_rebuild" ("id" BIGINT NOT NULL, "old" VARCHAR NOT NULL, CONSTRAINT "t_fk" FOREIGN KEY ("id") REFERENCES "u" ("id"), PRIMARY KEY ("id"));` + "\n" +
				`INSERT INTO "t__kiln_rebuild" ("id", "old") SELECT "id", "old" FROM "t";` + "\n" +
				`DROP TABLE "t";` + "\n" + `ALTER TABLE "t__kiln_rebuild" RENAME TO "t";` + "\n"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			ch, err := bunlayer.Diff(&bunlayer.Snapshot{Dialect: c.dialect, Tables: c.from}, &bunlayer.Snapshot{Dialect: c.dialect, Tables: c.to},
				bunlayer.DiffOptions{AllowDrop: c.allowDrop})
			if err != nil {
				t.Fatal(err)
			}
			if got := ch.Summary(); !slices.Equal(got, c.summary) {
				t.Errorf("summary:\n%q\nwant:\n%q", got, c.summary)
			}
			for _, want := range c.sqlContains {
				if !strings.Contains(ch.SQL(), want) {
					t.Errorf("SQL lacks %q:\n%s", want, ch.SQL())
				}
			}
		})
	}
}
