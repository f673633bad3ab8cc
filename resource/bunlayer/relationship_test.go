package bunlayer_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// The records of the foreign key tests: writers write articles, which
// have notes; a section may be in a parent section.
type (
	writer struct {
		ID    int64  `bun:",pk,autoincrement"`
		Email string `bun:",notnull"`
	}
	article struct {
		ID            int64    `bun:",pk,autoincrement"`
		WriterID      int64    `bun:",notnull"`
		EditorID      *int64   // nullable
		Writer        *writer  `bun:"-"`
		Notes         []*note  `bun:"-"`
		ReviewerEmail string   `bun:",notnull"`
		Section       *section `bun:"-"`
		SectionID     *int64
	}
	note struct {
		ID        int64 `bun:",pk,autoincrement"`
		ArticleID int64 `bun:",notnull"`
		Rank      int   `bun:",notnull"`
	}
	section struct {
		ID       int64  `bun:",pk,autoincrement"`
		ParentID *int64 // a section of the same table
	}
)

// articleDomain declares the resources with the ones that hold foreign
// keys first: the migration must create the referenced tables before,
// and otherwise keeps their order (sections, then writers).
func articleDomain() *resource.DomainSpec {
	// The identities are declared, not tagged, so that bun adds no UNIQUE
	// constraint to the tables: each has its index.
	writers := resource.New[writer]("writer", resource.Identities{{Name: "unique_email", Keys: []string{"email"}}}, resource.Actions{
		resource.Create{Name: "create", Accept: []string{"email"}},
	})
	sections := resource.New[section]("section", resource.Relationships{
		resource.BelongsTo{Name: "parent", Destination: resource.Named("section"), OnDelete: resource.Cascade},
	})
	articles := resource.New[article]("article",
		resource.Relationships{
			resource.BelongsTo{Name: "writer", Destination: writers, OnDelete: resource.Cascade},
			resource.BelongsTo{Name: "editor", Destination: writers, OnDelete: resource.SetNull},
			resource.BelongsTo{Name: "reviewer", Destination: writers, DestinationAttribute: "email", Attribute: "reviewer_email"},
			resource.BelongsTo{Name: "section", Destination: sections, OnDelete: resource.SetNull},
			resource.HasMany{Name: "notes", Destination: resource.Named("note")},
		},
		resource.Actions{
			resource.Create{Name: "create", Accept: []string{"writer_id", "reviewer_email"}},
			resource.Read{Name: "list"},
		},
	)
	notes := resource.New[note]("note",
		resource.Identities{{Name: "unique_article_rank", Keys: []string{"article_id", "rank"}}},
		resource.Relationships{resource.BelongsTo{Name: "article", Destination: articles}},
		resource.Actions{resource.Create{Name: "create", Accept: []string{"article_id", "rank"}}},
	)
	return resource.NewDomain("articles", notes, articles, sections, writers)
}

func TestMigrationSQLForeignKeys(t *testing.T) {
	pgdb, err := sql.Open("pgx", "postgres://nobody@127.0.0.1:1/none")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgdb.Close() })
	for _, c := range []struct {
		name  string
		layer *bunlayer.Layer
		want  []string
	}{
		{"SQLite", testdb.SQLite(t), []string{
			`CREATE TABLE IF NOT EXISTS "sections" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "parent_id" INTEGER, CONSTRAINT "sections_parent_fkey" FOREIGN KEY ("parent_id") REFERENCES "sections" ("id") ON DELETE CASCADE)`,
			`CREATE INDEX IF NOT EXISTS "sections_parent_fkey_idx" ON "sections" ("parent_id")`,
			`CREATE TABLE IF NOT EXISTS "writers" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "email" VARCHAR NOT NULL)`,
			`CREATE UNIQUE INDEX IF NOT EXISTS "writers_unique_email_idx" ON "writers" ("email")`,
			`CREATE TABLE IF NOT EXISTS "articles" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "writer_id" INTEGER NOT NULL, "editor_id" INTEGER, "reviewer_email" VARCHAR NOT NULL, "section_id" INTEGER, ` +
				`CONSTRAINT "articles_writer_fkey" FOREIGN KEY ("writer_id") REFERENCES "writers" ("id") ON DELETE CASCADE, ` +
				`CONSTRAINT "articles_editor_fkey" FOREIGN KEY ("editor_id") REFERENCES "writers" ("id") ON DELETE SET NULL, ` +
				`CONSTRAINT "articles_reviewer_fkey" FOREIGN KEY ("reviewer_email") REFERENCES "writers" ("email") ON DELETE RESTRICT, ` +
				`CONSTRAINT "articles_section_fkey" FOREIGN KEY ("section_id") REFERENCES "sections" ("id") ON DELETE SET NULL)`,
			`CREATE INDEX IF NOT EXISTS "articles_writer_fkey_idx" ON "articles" ("writer_id")`,
			`CREATE INDEX IF NOT EXISTS "articles_editor_fkey_idx" ON "articles" ("editor_id")`,
			`CREATE INDEX IF NOT EXISTS "articles_reviewer_fkey_idx" ON "articles" ("reviewer_email")`,
			`CREATE INDEX IF NOT EXISTS "articles_section_fkey_idx" ON "articles" ("section_id")`,
			// The identity's index starts with article_id: no other is needed.
			`CREATE TABLE IF NOT EXISTS "notes" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "article_id" INTEGER NOT NULL, "rank" INTEGER NOT NULL, ` +
				`CONSTRAINT "notes_article_fkey" FOREIGN KEY ("article_id") REFERENCES "articles" ("id") ON DELETE RESTRICT)`,
			`CREATE UNIQUE INDEX IF NOT EXISTS "notes_unique_article_rank_idx" ON "notes" ("article_id", "rank")`,
		}},
		{"Postgres", bunlayer.New(bun.NewDB(pgdb, pgdialect.New())), []string{
			`CREATE TABLE IF NOT EXISTS "sections" ("id" BIGSERIAL NOT NULL, "parent_id" BIGINT, CONSTRAINT "sections_parent_fkey" FOREIGN KEY ("parent_id") REFERENCES "sections" ("id") ON DELETE CASCADE, PRIMARY KEY ("id"))`,
			`CREATE INDEX IF NOT EXISTS "sections_parent_fkey_idx" ON "sections" ("parent_id")`,
			`CREATE TABLE IF NOT EXISTS "writers" ("id" BIGSERIAL NOT NULL, "email" VARCHAR NOT NULL, PRIMARY KEY ("id"))`,
			`CREATE UNIQUE INDEX IF NOT EXISTS "writers_unique_email_idx" ON "writers" ("email")`,
			`CREATE TABLE IF NOT EXISTS "articles" ("id" BIGSERIAL NOT NULL, "writer_id" BIGINT NOT NULL, "editor_id" BIGINT, "reviewer_email" VARCHAR NOT NULL, "section_id" BIGINT, ` +
				`CONSTRAINT "articles_writer_fkey" FOREIGN KEY ("writer_id") REFERENCES "writers" ("id") ON DELETE CASCADE, ` +
				`CONSTRAINT "articles_editor_fkey" FOREIGN KEY ("editor_id") REFERENCES "writers" ("id") ON DELETE SET NULL, ` +
				`CONSTRAINT "articles_reviewer_fkey" FOREIGN KEY ("reviewer_email") REFERENCES "writers" ("email") ON DELETE RESTRICT, ` +
				`CONSTRAINT "articles_section_fkey" FOREIGN KEY ("section_id") REFERENCES "sections" ("id") ON DELETE SET NULL, PRIMARY KEY ("id"))`,
			`CREATE INDEX IF NOT EXISTS "articles_writer_fkey_idx" ON "articles" ("writer_id")`,
			`CREATE INDEX IF NOT EXISTS "articles_editor_fkey_idx" ON "articles" ("editor_id")`,
			`CREATE INDEX IF NOT EXISTS "articles_reviewer_fkey_idx" ON "articles" ("reviewer_email")`,
			`CREATE INDEX IF NOT EXISTS "articles_section_fkey_idx" ON "articles" ("section_id")`,
			`CREATE TABLE IF NOT EXISTS "notes" ("id" BIGSERIAL NOT NULL, "article_id" BIGINT NOT NULL, "rank" BIGINT NOT NULL, ` +
				`CONSTRAINT "notes_article_fkey" FOREIGN KEY ("article_id") REFERENCES "articles" ("id") ON DELETE RESTRICT, PRIMARY KEY ("id"))`,
			`CREATE UNIQUE INDEX IF NOT EXISTS "notes_unique_article_rank_idx" ON "notes" ("article_id", "rank")`,
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := articleDomain().Build(t.Context(), c.layer); err != nil {
				t.Fatal(err)
			}
			got, err := c.layer.MigrationSQL()
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.Join(c.want, ";\n") + ";\n"; got != want {
				t.Errorf("MigrationSQL() =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// Migrate creates the tables in dependency order on every database, and
// the database enforces the keys.
func TestMigrateForeignKeys(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, open func(testing.TB) *bunlayer.Layer) {
		layer := open(t)
		d, err := articleDomain().Build(t.Context(), layer)
		if err != nil {
			t.Fatal(err)
		}
		if err := layer.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		if err := layer.Migrate(t.Context()); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		_, err = layer.DB().ExecContext(t.Context(), `INSERT INTO "articles" ("writer_id", "reviewer_email") VALUES (42, 'nobody')`)
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "foreign key") {
			t.Errorf("inserting an article by no writer straight into the database: %v, want a foreign key violation", err)
		}
		articles := d.Resource("article")
		if _, err := d.Run(t.Context(), articles, "create", resource.Input{"writer_id": 42, "reviewer_email": "nobody"}); len(resource.ValidationErrors(err)) != 2 {
			t.Errorf("creating an article by no writer, reviewed by nobody: %v, want two validation errors", err)
		}
	})
}

// cyclic are two resources that belong to each other.
type (
	cyclicA struct {
		ID  int64 `bun:",pk,autoincrement"`
		BID int64 `bun:"b_id,notnull"`
	}
	cyclicB struct {
		ID  int64 `bun:",pk,autoincrement"`
		AID int64 `bun:"a_id,notnull"`
	}
)

func TestMigrateRefusesForeignKeyCycle(t *testing.T) {
	layer := testdb.SQLite(t)
	a := resource.New[cyclicA]("a", resource.Relationships{resource.BelongsTo{Name: "b", Destination: resource.Named("b")}})
	b := resource.New[cyclicB]("b", resource.Relationships{resource.BelongsTo{Name: "a", Destination: a}})
	if _, err := resource.NewDomain("cycle", resource.New[writer]("writer"), a, b).Build(t.Context(), layer); err != nil {
		t.Fatal(err)
	}
	want := "kiln/bunlayer: the foreign keys of tables as -> bs -> as form a cycle, so none of them can be created first; drop the BelongsTo of one of them (its attribute stays, without a foreign key)"
	if _, err := layer.MigrationSQL(); err == nil || err.Error() != want {
		t.Errorf("MigrationSQL() error = %v\nwant %s", err, want)
	}
	if err := layer.Migrate(t.Context()); err == nil || err.Error() != want {
		t.Errorf("Migrate() error = %v\nwant %s", err, want)
	}
}

// statementCounter is a bun query hook that counts the statements sent
// to the database.
type statementCounter struct{ n atomic.Int64 }

func (c *statementCounter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}

func (c *statementCounter) AfterQuery(context.Context, *bun.QueryEvent) { c.n.Add(1) }

// loadDomain is a domain of writers with articles with notes, on a layer
// whose statements c counts.
func loadDomain(t testing.TB, open func(testing.TB) *bunlayer.Layer, c *statementCounter) *resource.Domain {
	t.Helper()
	layer := bunlayer.New(open(t).DB().WithQueryHook(c))
	d, err := articleDomain().Build(context.Background(), layer)
	if err != nil {
		t.Fatal(err)
	}
	if err := layer.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

// seedArticles creates n articles by 10 writers, each with two notes, in
// one transaction.
func seedArticles(t testing.TB, d *resource.Domain, n int) {
	t.Helper()
	err := d.InTransaction(context.Background(), func(ctx context.Context) error {
		var ids []int64
		for i := range 10 {
			res, err := d.Run(ctx, d.Resource("writer"), "create", resource.Input{"email": fmt.Sprintf("w%d@example.com", i)})
			if err != nil {
				return err
			}
			ids = append(ids, res.Record.(*writer).ID)
		}
		for i := range n {
			res, err := d.Run(ctx, d.Resource("article"), "create", resource.Input{"writer_id": ids[i%10], "reviewer_email": "w0@example.com"})
			if err != nil {
				return err
			}
			for rank := range 2 {
				if _, err := d.Run(ctx, d.Resource("note"), "create", resource.Input{"article_id": res.Record.(*article).ID, "rank": rank}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// loadArticles reads every article with its writer and notes.
func loadArticles(t testing.TB, d *resource.Domain) []*article {
	t.Helper()
	res, err := d.Run(context.Background(), d.Resource("article"), "list", nil, resource.Load("writer", "notes"))
	if err != nil {
		t.Fatal(err)
	}
	return res.Records.([]*article)
}

// Loading two relationships takes three statements, whether for 1 or for
// 300 articles: the read, the writers', the notes'.
func TestLoadStatements(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, open func(testing.TB) *bunlayer.Layer) {
		for _, n := range []int{1, 300} {
			var c statementCounter
			d := loadDomain(t, open, &c)
			seedArticles(t, d, n)
			c.n.Store(0)
			got := loadArticles(t, d)
			if len(got) != n || got[n-1].Writer == nil || len(got[n-1].Notes) != 2 {
				t.Fatalf("loaded %d articles, the last %+v; want %d, each with its writer and 2 notes", len(got), got[len(got)-1], n)
			}
			if s := c.n.Load(); s != 3 {
				t.Errorf("reading %d articles with their writers and notes took %d statements, want 3", n, s)
			}
		}
	})
}
