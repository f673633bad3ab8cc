package resource_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
)

// The records of the relationship build tests: users write posts, posts
// have comments and tags through post tags.
type (
	relUser struct {
		ID    uuid.UUID  `bun:",pk,type:uuid" kiln:"default:uuid"`
		Email string     `bun:",unique,notnull"`
		Name  string     `bun:",notnull"`
		Posts []*relPost `bun:"-"`
	}
	relPost struct {
		ID       int64         `bun:",pk,autoincrement"`
		AuthorID uuid.UUID     `bun:",type:uuid,notnull"`
		EditorID *uuid.UUID    `bun:",type:uuid"`
		Slug     string        `bun:",notnull"`
		Author   *relUser      `bun:"-"`
		Comments []*relComment `bun:"-"`
	}
	relComment struct {
		ID     int64  `bun:",pk,autoincrement"`
		PostID int64  `bun:",notnull"`
		Body   string `bun:",notnull"`
	}
	relTag struct {
		ID   int64  `bun:",pk,autoincrement"`
		Name string `bun:",notnull"`
	}
	relPostTag struct {
		ID     int64  `bun:",pk,autoincrement"`
		PostID int64  `bun:",notnull"`
		TagID  string `bun:",notnull"`
	}
	// relBadFields has fields for its relationships that cannot hold them.
	relBadFields struct {
		ID       int64       `bun:",pk,autoincrement"`
		AuthorID uuid.UUID   `bun:",type:uuid,notnull"`
		EditorID uuid.UUID   `bun:",type:uuid,notnull"`
		Author   *relComment `bun:"-"`
		Editor   *relUser    `bun:"rel:belongs-to,join:editor_id=id"`
	}
	// relColumn has an untagged field for its relationship: bun would map
	// it as a column.
	relColumn struct {
		ID       int64     `bun:",pk,autoincrement"`
		AuthorID uuid.UUID `bun:",type:uuid,notnull"`
		Author   *relUser
	}
	relTwoKeys struct {
		A string `bun:",pk"`
		B string `bun:",pk"`
	}
)

// relDomain is a domain of r, users, comments and tags, and the line of
// r's declaration, which its build errors name.
type relDomain struct {
	spec *resource.DomainSpec
	line int
}

// withPeers puts r in a domain with the other relationship resources.
// Call it on the line of r's resource.New.
func withPeers(r resource.Ref) relDomain {
	_, _, line, _ := runtime.Caller(1)
	users := resource.New[relUser]("user")
	comments := resource.New[relComment]("comment")
	tags := resource.New[relTag]("tag")
	postTags := resource.New[relPostTag]("post_tag")
	return relDomain{spec: resource.NewDomain("test", r, users, comments, tags, postTags), line: line}
}

func TestRelationshipBuildErrors(t *testing.T) {
	type R = resource.Relationships
	users := resource.New[relUser]("user")
	comments := resource.New[relComment]("comment")
	tests := []struct {
		name string
		decl relDomain
		want string // %d is the declaration's line
	}{
		{
			name: "unknown destination by name",
			decl: withPeers(resource.New[relPost]("post", R{resource.BelongsTo{Name: "author", Destination: resource.Named("usr")}})),
			want: `relationships -> author -> destination: unknown resource "usr": it is not in domain "test"; did you mean "user"?`,
		},
		{
			name: "destination outside the domain",
			decl: withPeers(resource.New[relPost]("post", R{resource.HasMany{Name: "comments", Destination: resource.New[relComment]("remark")}})),
			want: `relationships -> comments -> destination: unknown resource "remark": it is not in domain "test"; list it in resource.NewDomain("test", …)`,
		},
		{
			name: "destination of another record type",
			decl: withPeers(resource.New[relPost]("post", R{resource.BelongsTo{Name: "author", Destination: resource.New[relComment]("user")}})),
			want: `relationships -> author -> destination: resource "user" of the domain holds resource_test.relUser records, not resource_test.relComment; name the resource of the domain`,
		},
		{
			name: "nil destination",
			decl: withPeers(resource.New[relPost]("post", R{resource.BelongsTo{Name: "author"}})),
			want: `relationships -> author -> destination: is nil; name the resource: a *resource.Resource[T], or resource.Named("user")`,
		},
		{
			name: "unknown key attribute",
			decl: withPeers(resource.New[relPost]("post", R{resource.BelongsTo{Name: "author", Destination: users, Attribute: "autor_id"}})),
			want: `relationships -> author -> attribute: unknown attribute "autor_id"; did you mean "author_id"?`,
		},
		{
			name: "default key attribute missing",
			decl: withPeers(resource.New[relPost]("post", R{resource.BelongsTo{Name: "writer", Destination: users}})),
			want: `relationships -> writer -> attribute: unknown attribute "writer_id"; did you mean "editor_id"?`,
		},
		{
			name: "key of another type",
			decl: withPeers(resource.New[relComment]("note", R{resource.BelongsTo{Name: "post", Destination: users}})),
			want: `relationships -> post -> attribute: attribute "post_id" is int64, and the key user.id it holds is uuid.UUID; give both the same type, uuid.UUID`,
		},
		{
			name: "destination attribute that is not a key",
			decl: withPeers(resource.New[relPost]("post", R{resource.BelongsTo{Name: "author", Destination: users, DestinationAttribute: "name"}})),
			want: `relationships -> author -> destination_attribute: attribute "name" of user is not a key: records may share its value; refer to the primary key, or to an attribute that is the only key of an identity`,
		},
		{
			name: "unknown destination attribute",
			decl: withPeers(resource.New[relPost]("post", R{resource.BelongsTo{Name: "author", Destination: users, DestinationAttribute: "emial"}})),
			want: `relationships -> author -> destination_attribute: unknown attribute "emial" of user; did you mean "email"?`,
		},
		{
			name: "SetNull on a key that is not nullable",
			decl: withPeers(resource.New[relPost]("post", R{resource.BelongsTo{Name: "author", Destination: users, OnDelete: resource.SetNull}})),
			want: `relationships -> author -> on_delete: SetNull sets "author_id" to NULL, and it is not nullable; make its field a pointer, or use Cascade or Restrict`,
		},
		{
			name: "has-many without the inverse attribute",
			decl: withPeers(resource.New[relPost]("article", R{resource.HasMany{Name: "comments", Destination: comments}})),
			want: `relationships -> comments -> destination_attribute: comment has no attribute "article_id" to hold the key; use one of: id, post_id, body`,
		},
		{
			name: "has-many with a misspelt inverse attribute",
			decl: withPeers(resource.New[relPost]("post", R{resource.HasMany{Name: "comments", Destination: comments, DestinationAttribute: "pots_id"}})),
			want: `relationships -> comments -> destination_attribute: comment has no attribute "pots_id" to hold the key; did you mean "post_id"?`,
		},
		{
			name: "has-one whose inverse attribute has another type",
			decl: withPeers(resource.New[relUser]("user2", R{resource.HasOne{Name: "comment", Destination: comments, DestinationAttribute: "post_id"}})),
			want: `relationships -> comment -> destination_attribute: attribute "post_id" is int64, and the key user2.id it holds is uuid.UUID; give both the same type, uuid.UUID`,
		},
		{
			name: "has-many sorted by an unknown attribute",
			decl: withPeers(resource.New[relPost]("post", R{resource.HasMany{Name: "comments", Destination: comments, Sort: []resource.Sort{resource.Asc("bdy")}}})),
			want: `relationships -> comments -> sort: unknown attribute "bdy" of comment; did you mean "body"?`,
		},
		{
			name: "many-to-many through an unknown resource",
			decl: withPeers(resource.New[relPost]("post", R{resource.ManyToMany{Name: "tags", Destination: resource.Named("tag"), Through: resource.Named("post_tags")}})),
			want: `relationships -> tags -> through: unknown resource "post_tags": it is not in domain "test"; did you mean "post_tag"?`,
		},
		{
			name: "many-to-many whose join resource lacks a key",
			decl: withPeers(resource.New[relPost]("post", R{resource.ManyToMany{Name: "tags", Destination: resource.Named("tag"), Through: resource.Named("post_tag"),
				DestinationAttributeOnJoin: "tg_id"}})),
			want: `relationships -> tags -> destination_attribute_on_join: post_tag has no attribute "tg_id" to hold the key; did you mean "tag_id"?`,
		},
		{
			name: "many-to-many whose join key has another type",
			decl: withPeers(resource.New[relPost]("post", R{resource.ManyToMany{Name: "tags", Destination: resource.Named("tag"), Through: resource.Named("post_tag")}})),
			want: `relationships -> tags -> destination_attribute_on_join: attribute "tag_id" is string, and the key tag.id it holds is int64; give both the same type, int64`,
		},
		{
			name: "field of the wrong type",
			decl: withPeers(resource.New[relBadFields]("bad", R{resource.BelongsTo{Name: "author", Destination: users}})),
			want: `relationships -> author -> field: field Author is *resource_test.relComment; the relationship loads *resource_test.relUser; give it the type *resource_test.relUser`,
		},
		{
			name: "field that bun relates",
			decl: withPeers(resource.New[relBadFields]("bad", R{resource.BelongsTo{Name: "editor", Destination: users}})),
			want: "relationships -> editor -> field: field Editor is tagged `bun:\"rel:belongs-to,join:editor_id=id\"`: kiln loads the relationship, not bun; tag it `bun:\"-\"`",
		},
		{
			name: "field that is a column",
			decl: withPeers(resource.New[relColumn]("column", R{resource.BelongsTo{Name: "author", Destination: users}})),
			want: "relationships -> author -> field: field Author is a column: the relationship loads into it, so bun must not map it; tag it `bun:\"-\"`",
		},
		{
			name: "relationship named like an attribute",
			decl: withPeers(resource.New[relPost]("post", R{resource.HasMany{Name: "slug", Destination: comments, DestinationAttribute: "post_id"}})),
			want: `relationships -> slug: has the name of attribute "slug"; rename the relationship or the attribute`,
		},
		{
			name: "relationship declared twice",
			decl: withPeers(resource.New[relPost]("post", R{
				resource.BelongsTo{Name: "author", Destination: users},
				resource.BelongsTo{Name: "author", Destination: users, Attribute: "editor_id"},
			})),
			want: `relationships -> author: declared twice; give each relationship its own name`,
		},
		{
			name: "relationship named with a dot",
			decl: withPeers(resource.New[relPost]("post", R{resource.BelongsTo{Name: "author.x", Destination: users, Attribute: "author_id"}})),
			want: `relationships -> author.x: the name holds a dot, which paths put between names (author.email); name it without a dot`,
		},
		{
			name: "relationship without a name",
			decl: withPeers(resource.New[relPost]("post", R{resource.BelongsTo{Destination: users, Attribute: "author_id"}})),
			want: `relationships -> (unnamed belongs_to): the relationship has no name; give it a Name`,
		},
		{
			name: "filter through an unknown relationship",
			decl: withPeers(resource.New[relPost]("post",
				R{resource.BelongsTo{Name: "author", Destination: users}},
				resource.Actions{resource.Read{Name: "by_email", Filter: resource.Eq("autor.email", "x")}})),
			want: `actions -> by_email -> filter: unknown relationship "autor" in "autor.email"; did you mean "author"?`,
		},
		{
			name: "filter through a resource without relationships",
			decl: withPeers(resource.New[relComment]("note",
				resource.Actions{resource.Read{Name: "by_post", Filter: resource.Eq("post.slug", "x")}})),
			want: `actions -> by_post -> filter: unknown relationship "post" in "post.slug": note has no relationships; declare it in resource.Relationships`,
		},
		{
			name: "filter through to an unknown attribute",
			decl: withPeers(resource.New[relPost]("post",
				R{resource.BelongsTo{Name: "author", Destination: users}},
				resource.Actions{resource.Read{Name: "by_email", Filter: resource.Eq("author.emial", "x")}})),
			want: `actions -> by_email -> filter: unknown attribute "emial" of user in "author.emial"; did you mean "email"?`,
		},
		{
			name: "sort through a has-many relationship",
			decl: withPeers(resource.New[relPost]("post",
				R{resource.HasMany{Name: "comments", Destination: comments}},
				resource.Actions{resource.Read{Name: "list", Sort: []resource.Sort{resource.Asc("comments.body")}}})),
			want: `actions -> list -> sort: cannot sort by "comments.body": comments is a has_many relationship, so a record has many values of it; sort through belongs_to and has_one relationships only`,
		},
		{
			name: "pages sorted through a relationship",
			decl: withPeers(resource.New[relPost]("post",
				R{resource.BelongsTo{Name: "author", Destination: users}},
				resource.Actions{resource.Read{Name: "list", Sort: []resource.Sort{resource.Asc("author.name")}, PageSize: resource.PageSize{Max: 10}}})),
			want: `actions -> list -> page_size: pages cannot be sorted by "author.name": a cursor holds the record's own attributes; sort pages by attributes of the record`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.decl.spec.Build(t.Context(), testdb.SQLite(t))
			if err == nil {
				t.Fatalf("Build succeeded; want %q", tt.want)
			}
			bes := buildErrors(t, err)
			if len(bes) != 1 {
				t.Fatalf("got %d build errors, want 1:\n%v", len(bes), err)
			}
			be := bes[0]
			got := strings.Join(be.Path, " -> ") + ": " + be.Message
			if be.Fix != "" {
				got += "; " + be.Fix
			}
			if got != tt.want {
				t.Errorf("error:\n got %s\nwant %s", got, tt.want)
			}
			if be.Location.Line != tt.decl.line {
				t.Errorf("error at line %d, want %d, the resource's declaration", be.Location.Line, tt.decl.line)
			}
		})
	}
}

// A destination of a primary key of two attributes needs the attribute
// named.
func TestRelationshipToCompositeKey(t *testing.T) {
	type twoKeyed struct {
		ID    int64  `bun:",pk,autoincrement"`
		TwoID string `bun:",notnull"`
	}
	keys := resource.New[relTwoKeys]("two_keys")
	r := resource.New[twoKeyed]("two_keyed", resource.Relationships{resource.BelongsTo{Name: "two", Destination: keys, Attribute: "two_id"}})
	_, err := resource.NewDomain("test", r, keys).Build(t.Context(), testdb.SQLite(t))
	bes := buildErrors(t, err)
	want := `two_keys has a primary key of 2 attributes; name the key the relationship uses: DestinationAttribute: "…"`
	if len(bes) != 1 || bes[0].Message+"; "+bes[0].Fix != want {
		t.Errorf("Build = %v\nwant one problem: %s", err, want)
	}
}

func TestNamedIsNotAResource(t *testing.T) {
	_, err := resource.NewDomain("test", resource.Named("user")).Build(t.Context(), testdb.SQLite(t))
	if want := `kiln/resource: resource "user": domain "test" lists a name, not a resource; list the resource itself: resource.Named only points at one from a relationship`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Build = %v, want %s", err, want)
	}
	users := resource.New[relUser]("user", resource.Actions{resource.Read{Name: "list"}})
	d, err := resource.NewDomain("test", users).Build(t.Context(), testdb.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Run(t.Context(), resource.Named("user"), "list", nil)
	if !errors.Is(err, resource.ErrUnknownResource) {
		t.Errorf("Run on a Named ref = %v, want ErrUnknownResource", err)
	}
}

func TestDescribeRelationships(t *testing.T) {
	users := resource.New[relUser]("user", resource.Relationships{
		resource.HasMany{Name: "posts", Destination: resource.Named("post"), DestinationAttribute: "author_id"},
	})
	posts := resource.New[relPost]("post", resource.Relationships{
		resource.BelongsTo{Name: "author", Destination: users, OnDelete: resource.Cascade},
		resource.BelongsTo{Name: "editor", Destination: users, DestinationAttribute: "email", Attribute: "slug"},
		resource.HasMany{Name: "comments", Destination: resource.Named("comment")},
		resource.ManyToMany{Name: "tags", Destination: resource.Named("tag"), Through: resource.Named("post_tag"), DestinationAttributeOnJoin: "id"},
	})
	d, err := resource.NewDomain("blog", users, posts, resource.New[relComment]("comment"), resource.New[relTag]("tag"), resource.New[relPostTag]("post_tag")).
		Build(t.Context(), testdb.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(d.Describe(), "\n") {
		if strings.Contains(l, "relationship ") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	want := []string{
		"relationship posts has_many post (id = post.author_id)",
		"relationship author belongs_to user (author_id = user.id) on_delete=cascade",
		"relationship editor belongs_to user (slug = user.email) on_delete=restrict",
		"relationship comments has_many comment (id = comment.post_id)",
		"relationship tags many_to_many tag through post_tag (id = post_tag.post_id, post_tag.id = tag.id)",
	}
	if got := strings.Join(lines, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("Describe's relationships:\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
	s := d.Schemas()[1]
	r := s.Relationship("author")
	if r == nil || r.Destination != d.Schemas()[0] || r.Attribute.Name != "author_id" || r.DestinationAttribute.Name != "id" || r.Field == nil {
		t.Errorf("post's schema relationship author = %+v, want author_id → the user schema's id, with a field", r)
	}
	if got := s.Relationship("tags"); got == nil || got.Through != d.Schemas()[4] || got.Field != nil {
		t.Errorf("post's schema relationship tags = %+v, want through post_tag, without a field", got)
	}
	if got := fmt.Sprint(s.ForeignKey(r)); got != "posts_author_fkey" {
		t.Errorf("ForeignKey(author) = %q, want posts_author_fkey", got)
	}
}
