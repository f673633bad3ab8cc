package datalayertest

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/kiln-go/kiln/resource"
)

// The relationship checks' records: authors write posts and comments and
// have one profile; posts belong to an author and, optionally, to an
// editor, have many comments, and many labels through post labels.
type (
	relAuthor struct {
		ID      int64       `bun:",pk,autoincrement"`
		Email   string      `bun:",unique,notnull"`
		Name    string      `bun:",notnull"`
		Posts   []*relPost  `bun:"-"`
		Profile *relProfile `bun:"-"`
	}
	relProfile struct {
		ID       int64      `bun:",pk,autoincrement"`
		AuthorID int64      `bun:",notnull"`
		Bio      string     `bun:",notnull"`
		Author   *relAuthor `bun:"-"`
	}
	relPost struct {
		ID       uuid.UUID     `bun:",pk,type:uuid" kiln:"default:uuid"`
		Title    string        `bun:",notnull"`
		AuthorID int64         `bun:",notnull"`
		EditorID *int64        // nullable: a post may have no editor
		Author   *relAuthor    `bun:"-"`
		Editor   *relAuthor    `bun:"-"`
		Comments []*relComment `bun:"-"`
		Labels   []*relLabel   `bun:"-"`
	}
	relComment struct {
		ID       int64      `bun:",pk,autoincrement"`
		PostID   uuid.UUID  `bun:",type:uuid,notnull"`
		AuthorID int64      `bun:",notnull"`
		Body     string     `bun:",notnull"`
		Rank     int        `bun:",notnull"`
		Post     *relPost   `bun:"-"`
		Author   *relAuthor `bun:"-"`
	}
	relLabel struct {
		Key   string     `bun:",pk"`
		Name  string     `bun:",notnull"`
		Posts []*relPost `bun:"-"`
	}
	// relPostLabel is the join resource; it has no fields for its
	// relationships.
	relPostLabel struct {
		ID       int64     `bun:",pk,autoincrement"`
		PostID   uuid.UUID `bun:",type:uuid,notnull,unique:post_label"`
		LabelKey string    `bun:",notnull,unique:post_label"`
	}
)

// relActions are the actions every relationship resource has; by_id gets
// a record by its primary key, pk.
func relActions(pk string, accept ...string) resource.Actions {
	return resource.Actions{
		resource.Create{Name: "create", Accept: accept},
		resource.Read{Name: "list"},
		resource.Read{Name: "by_id", GetBy: []string{pk}},
		resource.Update{Name: "update", Accept: accept},
		resource.Destroy{Name: "destroy"},
	}
}

// relEnv is the domain of the relationship checks on one freshly opened
// layer, which counts the reads it is asked for.
type relEnv struct {
	ctx        context.Context
	d          *resource.Domain
	layer      resource.DataLayer
	reads      *atomic.Int64
	authors    *resource.Resource[relAuthor]
	profiles   *resource.Resource[relProfile]
	posts      *resource.Resource[relPost]
	comments   *resource.Resource[relComment]
	labels     *resource.Resource[relLabel]
	postLabels *resource.Resource[relPostLabel]
}

// newRelEnv opens a layer, builds the relationship domain on it, migrates
// it and empties its tables. The domain lists the resources that hold
// foreign keys before the ones they refer to: the layer must create the
// referenced tables first.
func newRelEnv(t *testing.T, open func(t *testing.T) resource.DataLayer) *relEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), checkTimeout)
	t.Cleanup(cancel)
	layer := open(t)
	if layer == nil {
		t.Fatal("open returned a nil DataLayer")
	}
	e := &relEnv{ctx: ctx, layer: layer, reads: new(atomic.Int64)}
	// Resources that refer to each other cannot both name the other's
	// variable: the authors and labels name posts with resource.Named.
	e.authors = resource.New[relAuthor]("dlt_author",
		resource.Table("dlt_authors"),
		resource.Relationships{
			resource.HasMany{Name: "posts", Destination: resource.Named("dlt_post"), DestinationAttribute: "author_id",
				Sort: []resource.Sort{resource.Asc("title")}},
			resource.HasOne{Name: "profile", Destination: resource.Named("dlt_profile"), DestinationAttribute: "author_id"},
		},
		relActions("id", "email", "name"),
	)
	e.profiles = resource.New[relProfile]("dlt_profile",
		resource.Table("dlt_profiles"),
		resource.Relationships{resource.BelongsTo{Name: "author", Destination: e.authors, OnDelete: resource.Cascade}},
		relActions("id", "author_id", "bio"),
	)
	e.labels = resource.New[relLabel]("dlt_label",
		resource.Table("dlt_labels"),
		resource.Relationships{
			resource.ManyToMany{Name: "posts", Destination: resource.Named("dlt_post"), Through: resource.Named("dlt_post_label"),
				SourceAttributeOnJoin: "label_key", DestinationAttributeOnJoin: "post_id", Sort: []resource.Sort{resource.Asc("title")}},
		},
		relActions("key", "key", "name"),
	)
	e.posts = resource.New[relPost]("dlt_post",
		resource.Table("dlt_posts"),
		resource.Relationships{
			resource.BelongsTo{Name: "author", Destination: e.authors, OnDelete: resource.Cascade},
			resource.BelongsTo{Name: "editor", Destination: e.authors, OnDelete: resource.SetNull},
			resource.HasMany{Name: "comments", Destination: resource.Named("dlt_comment"), DestinationAttribute: "post_id",
				Sort: []resource.Sort{resource.Desc("rank")}},
			resource.ManyToMany{Name: "labels", Destination: e.labels, Through: resource.Named("dlt_post_label"),
				SourceAttributeOnJoin: "post_id", DestinationAttributeOnJoin: "label_key"},
		},
		relActions("id", "title", "author_id", "editor_id"),
		resource.Actions{
			resource.Read{Name: "by_author_email", Filter: resource.Eq("author.email", resource.FromArg("email")),
				Arguments: []resource.Argument{{Name: "email", Validate: "required"}},
				Sort:      []resource.Sort{resource.Asc("title")}},
			resource.Read{Name: "by_author_name", Sort: []resource.Sort{resource.Asc("author.name"), resource.Asc("title")}},
		},
	)
	e.comments = resource.New[relComment]("dlt_comment",
		resource.Table("dlt_comments"),
		resource.Relationships{
			resource.BelongsTo{Name: "post", Destination: e.posts, OnDelete: resource.Cascade},
			resource.BelongsTo{Name: "author", Destination: e.authors}, // Restrict
		},
		relActions("id", "post_id", "author_id", "body", "rank"),
	)
	e.postLabels = resource.New[relPostLabel]("dlt_post_label",
		resource.Table("dlt_post_labels"),
		resource.Relationships{
			resource.BelongsTo{Name: "post", Destination: e.posts, OnDelete: resource.Cascade},
			resource.BelongsTo{Name: "label", Destination: e.labels, Attribute: "label_key", OnDelete: resource.Cascade},
		},
		relActions("id", "post_id", "label_key"),
	)
	counted := &countingLayer{DataLayer: layer, reads: e.reads}
	d, err := resource.NewDomain("datalayertest_relationships",
		e.postLabels, e.comments, e.posts, e.labels, e.profiles, e.authors).Build(ctx, counted)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	e.d = d
	if m, ok := layer.(Migrator); ok {
		if err := m.Migrate(ctx); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	// Children first: an author is refused while comments refer to it.
	for _, empty := range []func() error{
		func() error { _, err := e.postLabels.BulkDestroy(ctx, d, "destroy", resource.And{}, nil); return err },
		func() error { _, err := e.comments.BulkDestroy(ctx, d, "destroy", resource.And{}, nil); return err },
		func() error { _, err := e.posts.BulkDestroy(ctx, d, "destroy", resource.And{}, nil); return err },
		func() error { _, err := e.labels.BulkDestroy(ctx, d, "destroy", resource.And{}, nil); return err },
		func() error { _, err := e.profiles.BulkDestroy(ctx, d, "destroy", resource.And{}, nil); return err },
		func() error { _, err := e.authors.BulkDestroy(ctx, d, "destroy", resource.And{}, nil); return err },
	} {
		if err := empty(); err != nil {
			t.Fatalf("emptying the relationship tables: %v", err)
		}
	}
	return e
}

// countingLayer counts the reads kiln asks of a layer outside
// transactions: Select and Count, one each per query.
type countingLayer struct {
	resource.DataLayer
	reads *atomic.Int64
}

func (c *countingLayer) Select(ctx context.Context, s *resource.Schema, q *resource.Query, dest any) error {
	c.reads.Add(1)
	return c.DataLayer.Select(ctx, s, q, dest)
}

func (c *countingLayer) Count(ctx context.Context, s *resource.Schema, f resource.Filter) (int, error) {
	c.reads.Add(1)
	return c.DataLayer.Count(ctx, s, f)
}
