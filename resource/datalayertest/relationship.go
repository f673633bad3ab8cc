package datalayertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-go/kiln/resource"
)

// relSeed is what seedRel creates:
//
//	authors  Ada (profile "mathematician"), Bob, Cy, Eve
//	posts    alpha by Ada, edited by Bob, labelled db and go
//	         bravo by Ada, edited by Eve
//	         charlie by Bob, labelled db
//	comments "nice" (rank 1) by Bob and "thanks" (rank 3) by Ada, on alpha
//	         "great" (rank 2) by Ada, on charlie
//	labels   db "Databases", go "Go", zz "Unused"
type relSeed struct {
	ada, bob, cy, eve     *relAuthor
	alpha, bravo, charlie *relPost
	nice, thanks, great   *relComment
}

func (e *relEnv) seed(t *testing.T) relSeed {
	t.Helper()
	var s relSeed
	author := func(name string) *relAuthor {
		return must(t)(e.authors.Create(e.ctx, e.d, "create", resource.Input{"email": strings.ToLower(name) + "@example.com", "name": name})).(*relAuthor)
	}
	s.ada, s.bob, s.cy, s.eve = author("Ada"), author("Bob"), author("Cy"), author("Eve")
	must(t)(e.profiles.Create(e.ctx, e.d, "create", resource.Input{"author_id": s.ada.ID, "bio": "mathematician"}))
	post := func(title string, by, editor *relAuthor) *relPost {
		in := resource.Input{"title": title, "author_id": by.ID}
		if editor != nil {
			in["editor_id"] = editor.ID
		}
		return must(t)(e.posts.Create(e.ctx, e.d, "create", in)).(*relPost)
	}
	s.alpha, s.bravo, s.charlie = post("alpha", s.ada, s.bob), post("bravo", s.ada, s.eve), post("charlie", s.bob, nil)
	comment := func(on *relPost, by *relAuthor, body string, rank int) *relComment {
		return must(t)(e.comments.Create(e.ctx, e.d, "create", resource.Input{"post_id": on.ID, "author_id": by.ID, "body": body, "rank": rank})).(*relComment)
	}
	s.nice, s.thanks, s.great = comment(s.alpha, s.bob, "nice", 1), comment(s.alpha, s.ada, "thanks", 3), comment(s.charlie, s.ada, "great", 2)
	for _, l := range [][2]string{{"db", "Databases"}, {"go", "Go"}, {"zz", "Unused"}} {
		must(t)(e.labels.Create(e.ctx, e.d, "create", resource.Input{"key": l[0], "name": l[1]}))
	}
	for _, link := range []struct {
		post  *relPost
		label string
	}{{s.alpha, "go"}, {s.alpha, "db"}, {s.charlie, "db"}} {
		must(t)(e.postLabels.Create(e.ctx, e.d, "create", resource.Input{"post_id": link.post.ID, "label_key": link.label}))
	}
	return s
}

// must returns a func that fails t on err and returns v, to assert to its
// type: must(t)(e.posts.Create(…)).(*relPost).
func must(t *testing.T) func(v any, err error) any {
	return func(v any, err error) any {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func testRelationships(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	t.Run("Load", func(t *testing.T) { testLoad(t, open) })
	t.Run("LoadStatements", func(t *testing.T) { testLoadStatements(t, open) })
	t.Run("FilterThrough", func(t *testing.T) { testFilterThrough(t, open) })
	t.Run("SortThrough", func(t *testing.T) { testSortThrough(t, open) })
	t.Run("WriteThrough", func(t *testing.T) { testWriteThrough(t, open) })
	t.Run("ParentExists", func(t *testing.T) { testParentExists(t, open) })
	t.Run("OnDelete", func(t *testing.T) { testOnDelete(t, open) })
	t.Run("LayerReportsForeignKeys", func(t *testing.T) { testLayerForeignKeys(t, open) })
}

func titles(posts []*relPost) []string {
	out := make([]string, len(posts))
	for i, p := range posts {
		out[i] = p.Title
	}
	return out
}

func bodies(comments []*relComment) []string {
	out := make([]string, len(comments))
	for i, c := range comments {
		out[i] = c.Body
	}
	return out
}

func labelKeys(labels []*relLabel) []string {
	out := make([]string, len(labels))
	for i, l := range labels {
		out[i] = l.Key
	}
	return out
}

func authorName(a *relAuthor) string {
	if a == nil {
		return "<nil>"
	}
	return a.Name
}

// wantList fails t unless got, a loaded to-many field, is a non-nil slice
// equal to want.
func wantList(t *testing.T, what string, loaded bool, got, want []string) {
	t.Helper()
	if !loaded {
		t.Errorf("%s: not loaded (nil), want %q", what, want)
		return
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func testLoad(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	e := newRelEnv(t, open)
	s := e.seed(t)
	byTitle := resource.SortBy(resource.Asc("title"))

	t.Run("EveryKind", func(t *testing.T) {
		posts, err := e.posts.Read(e.ctx, e.d, "list", nil, byTitle, resource.Load("author", "editor", "comments", "labels"))
		if err != nil {
			t.Fatal(err)
		}
		if got := titles(posts); !slices.Equal(got, []string{"alpha", "bravo", "charlie"}) {
			t.Fatalf("posts = %q", got)
		}
		alpha, bravo, charlie := posts[0], posts[1], posts[2]
		for _, c := range []struct {
			post           *relPost
			author, editor string
			comments       []string
			labels         []string
		}{
			{alpha, "Ada", "Bob", []string{"thanks", "nice"}, []string{"db", "go"}},
			{bravo, "Ada", "Eve", []string{}, []string{}},
			{charlie, "Bob", "<nil>", []string{"great"}, []string{"db"}},
		} {
			if got := authorName(c.post.Author); got != c.author {
				t.Errorf("%s: author = %s, want %s", c.post.Title, got, c.author)
			}
			if got := authorName(c.post.Editor); got != c.editor {
				t.Errorf("%s: editor = %s, want %s", c.post.Title, got, c.editor)
			}
			wantList(t, c.post.Title+": comments (by rank, descending)", c.post.Comments != nil, bodies(c.post.Comments), c.comments)
			wantList(t, c.post.Title+": labels", c.post.Labels != nil, labelKeys(c.post.Labels), c.labels)
		}
		if alpha.Author != bravo.Author {
			t.Error("alpha and bravo belong to one author, loaded as two records; want one *T shared")
		}
		if alpha.Author != nil && alpha.Author.ID != s.ada.ID {
			t.Errorf("alpha's author id = %d, want Ada's %d", alpha.Author.ID, s.ada.ID)
		}
	})

	t.Run("HasManyAndHasOne", func(t *testing.T) {
		authors, err := e.authors.Read(e.ctx, e.d, "list", nil, resource.SortBy(resource.Asc("name")), resource.Load("posts", "profile"))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{"Ada": {"alpha", "bravo"}, "Bob": {"charlie"}, "Cy": {}, "Eve": {}}
		for _, a := range authors {
			wantList(t, a.Name+": posts", a.Posts != nil, titles(a.Posts), want[a.Name])
			switch {
			case a.Name == "Ada" && (a.Profile == nil || a.Profile.Bio != "mathematician"):
				t.Errorf("Ada's profile = %+v, want the mathematician's", a.Profile)
			case a.Name != "Ada" && a.Profile != nil:
				t.Errorf("%s's profile = %+v, want nil: none was created", a.Name, a.Profile)
			}
		}
		if len(authors) != 4 {
			t.Errorf("read %d authors, want 4", len(authors))
		}
	})

	t.Run("ManyToManyFromTheOtherSide", func(t *testing.T) {
		labels, err := e.labels.Read(e.ctx, e.d, "list", nil, resource.SortBy(resource.Asc("key")), resource.Load("posts"))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]string{"db": {"alpha", "charlie"}, "go": {"alpha"}, "zz": {}}
		for _, l := range labels {
			wantList(t, l.Key+": posts", l.Posts != nil, titles(l.Posts), want[l.Key])
		}
	})

	t.Run("Nested", func(t *testing.T) {
		comments, err := e.comments.Read(e.ctx, e.d, "list", nil, resource.SortBy(resource.Asc("rank")),
			resource.Load("post.author", "post.labels", "author"))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range comments {
			if c.Post == nil {
				t.Fatalf("comment %q: post not loaded", c.Body)
			}
			got = append(got, fmt.Sprintf("%s by %s on %s by %s %q", c.Body, authorName(c.Author), c.Post.Title, authorName(c.Post.Author), labelKeys(c.Post.Labels)))
		}
		want := []string{
			`nice by Bob on alpha by Ada ["db" "go"]`,
			`great by Ada on charlie by Bob ["db"]`,
			`thanks by Ada on alpha by Ada ["db" "go"]`,
		}
		if !slices.Equal(got, want) {
			t.Errorf("comments loaded through posts =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		posts, err := e.posts.Read(e.ctx, e.d, "list", nil, byTitle, resource.Load("comments.author"))
		if err != nil {
			t.Fatal(err)
		}
		var authors []string
		for _, c := range posts[0].Comments {
			authors = append(authors, authorName(c.Author))
		}
		if !slices.Equal(authors, []string{"Ada", "Bob"}) {
			t.Errorf("alpha's comments' authors = %q, want [Ada Bob]", authors)
		}
	})

	t.Run("GetAndPage", func(t *testing.T) {
		p, err := e.posts.Get(e.ctx, e.d, "by_id", resource.Input{"id": s.charlie.ID}, resource.Load("author", "comments"))
		if err != nil {
			t.Fatal(err)
		}
		if authorName(p.Author) != "Bob" || !slices.Equal(bodies(p.Comments), []string{"great"}) {
			t.Errorf("get charlie: author %s, comments %q; want Bob, [great]", authorName(p.Author), bodies(p.Comments))
		}
		page, err := e.posts.Page(e.ctx, e.d, "list", nil, resource.PageRequest{Limit: 2}, byTitle, resource.Load("editor"))
		if err != nil {
			t.Fatal(err)
		}
		if got := titles(page.Records); !slices.Equal(got, []string{"alpha", "bravo"}) || !page.More {
			t.Fatalf("page = %q (more %v), want [alpha bravo] and more", got, page.More)
		}
		if authorName(page.Records[0].Editor) != "Bob" || authorName(page.Records[1].Editor) != "Eve" {
			t.Errorf("page's editors = %s, %s; want Bob, Eve", authorName(page.Records[0].Editor), authorName(page.Records[1].Editor))
		}
	})

	t.Run("InTransaction", func(t *testing.T) {
		err := e.d.InTransaction(e.ctx, func(ctx context.Context) error {
			dan, err := e.authors.Create(ctx, e.d, "create", resource.Input{"email": "dan@example.com", "name": "Dan"})
			if err != nil {
				return err
			}
			if _, err := e.posts.Create(ctx, e.d, "create", resource.Input{"title": "delta", "author_id": dan.ID}); err != nil {
				return err
			}
			got, err := e.authors.Get(ctx, e.d, "by_id", resource.Input{"id": dan.ID}, resource.Load("posts"))
			if err != nil {
				return err
			}
			if !slices.Equal(titles(got.Posts), []string{"delta"}) {
				t.Errorf("inside the transaction, Dan's posts = %q, want [delta]", titles(got.Posts))
			}
			return errFn
		})
		if !errors.Is(err, errFn) {
			t.Fatalf("InTransaction = %v, want %v", err, errFn)
		}
	})

	t.Run("Refused", func(t *testing.T) {
		cases := []struct {
			name  string
			run   func() error
			field string
			msg   string
		}{
			{"UnknownRelationship", func() error {
				_, err := e.posts.Read(e.ctx, e.d, "list", nil, resource.Load("autor"))
				return err
			}, "load", `unknown relationship "autor" of dlt_post in "autor"; did you mean "author"?`},
			{"UnknownNested", func() error {
				_, err := e.posts.Read(e.ctx, e.d, "list", nil, resource.Load("comments.autor"))
				return err
			}, "load", `unknown relationship "autor" of dlt_comment in "comments.autor"; did you mean "author"?`},
			{"NoField", func() error {
				_, err := e.postLabels.Read(e.ctx, e.d, "list", nil, resource.Load("label"))
				return err
			}, "load", "dlt_post_label has no field for relationship \"label\"; add the field Label *datalayertest.relLabel `bun:\"-\"` to datalayertest.relPostLabel"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				wantInvalid(t, c.run(), c.field, c.msg)
			})
		}
		e.reads.Store(0)
		_, err := e.posts.Read(e.ctx, e.d, "list", nil, resource.Load("author", "nope"))
		if !errors.Is(err, resource.ErrInvalid) {
			t.Fatalf("Load(author, nope) = %v, want ErrInvalid", err)
		}
		if n := e.reads.Load(); n != 0 {
			t.Errorf("a read refused for its Load ran %d queries, want 0", n)
		}
		_, err = e.d.Run(e.ctx, e.posts, "create", resource.Input{"title": "x", "author_id": s.ada.ID}, resource.Load("author"))
		if err == nil || !strings.Contains(err.Error(), "Load applies to reads") {
			t.Errorf("a create with Load = %v, want an error saying Load applies to reads", err)
		}
	})
}

// wantInvalid fails t unless err is one *ValidationError on field with
// that message.
func wantInvalid(t *testing.T, err error, field, msg string) {
	t.Helper()
	if !errors.Is(err, resource.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	ves := resource.ValidationErrors(err)
	if len(ves) != 1 || ves[0].Field != field || ves[0].Message != msg {
		var got []string
		for _, ve := range ves {
			got = append(got, ve.Field+": "+ve.Message)
		}
		t.Errorf("validation errors = %q, want [%s: %s]", got, field, msg)
	}
}

// testLoadStatements counts the queries of a read that loads every kind of
// relationship: the same for 1 and for 40 posts.
func testLoadStatements(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	// The read, one per relationship, two for the many-to-many labels.
	const want = 1 + 1 + 1 + 1 + 1 + 2 // posts, author, editor, comments, comments.author, labels
	counts := map[int]int64{}
	for _, n := range []int{1, 40} {
		e := newRelEnv(t, open)
		err := e.d.InTransaction(e.ctx, func(ctx context.Context) error {
			var authors []*relAuthor
			for i := range 3 {
				a, err := e.authors.Create(ctx, e.d, "create", resource.Input{"email": fmt.Sprintf("a%d@example.com", i), "name": fmt.Sprint("a", i)})
				if err != nil {
					return err
				}
				authors = append(authors, a)
			}
			for _, key := range []string{"x", "y"} {
				if _, err := e.labels.Create(ctx, e.d, "create", resource.Input{"key": key, "name": key}); err != nil {
					return err
				}
			}
			for i := range n {
				p, err := e.posts.Create(ctx, e.d, "create", resource.Input{"title": fmt.Sprint("p", i),
					"author_id": authors[i%3].ID, "editor_id": authors[(i+1)%3].ID})
				if err != nil {
					return err
				}
				for j := range 2 {
					if _, err := e.comments.Create(ctx, e.d, "create", resource.Input{"post_id": p.ID, "author_id": authors[j].ID, "body": "b", "rank": j}); err != nil {
						return err
					}
				}
				for _, key := range []string{"x", "y"}[:1+i%2] {
					if _, err := e.postLabels.Create(ctx, e.d, "create", resource.Input{"post_id": p.ID, "label_key": key}); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		e.reads.Store(0)
		posts, err := e.posts.Read(e.ctx, e.d, "list", nil, resource.Load("author", "editor", "comments.author", "labels"))
		if err != nil {
			t.Fatal(err)
		}
		counts[n] = e.reads.Load()
		if len(posts) != n {
			t.Fatalf("read %d posts, want %d", len(posts), n)
		}
		for _, p := range posts {
			if p.Author == nil || p.Editor == nil || len(p.Comments) != 2 || p.Comments[0].Author == nil || len(p.Labels) == 0 {
				t.Fatalf("post %s not fully loaded: %+v", p.Title, p)
			}
		}
	}
	for n, got := range counts {
		if got != want {
			t.Errorf("reading %d posts with 4 relationships loaded took %d queries, want %d whatever the number of posts", n, got, want)
		}
	}
}

func testFilterThrough(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	e := newRelEnv(t, open)
	e.seed(t)
	posts := []struct {
		name   string
		filter resource.Filter
		want   []string
	}{
		{"BelongsTo", resource.Eq("author.email", "ada@example.com"), []string{"alpha", "bravo"}},
		{"BelongsToIn", resource.In("author.name", []string{"Bob", "Cy"}), []string{"charlie"}},
		{"NullableBelongsTo", resource.NotNil("editor.id"), []string{"alpha", "bravo"}},
		{"HasMany", resource.Eq("comments.body", "great"), []string{"charlie"}},
		{"HasManyCompare", resource.Gt("comments.rank", 1), []string{"alpha", "charlie"}},
		{"Nested", resource.Eq("comments.author.name", "Bob"), []string{"alpha"}},
		{"ManyToMany", resource.Eq("labels.name", "Databases"), []string{"alpha", "charlie"}},
		{"NotThroughManyToMany", resource.Not(resource.Eq("labels.key", "go")), []string{"bravo", "charlie"}},
		{"OrOfTwoRelationships", resource.Or{resource.Eq("author.name", "Bob"), resource.Eq("editor.name", "Eve")}, []string{"bravo", "charlie"}},
		{"AndWithOwnAttribute", resource.And{resource.Eq("author.name", "Ada"), resource.Ne("title", "alpha")}, []string{"bravo"}},
		{"QuotesInValue", resource.Eq("author.name", `O'Brien"; --`), nil},
	}
	for _, c := range posts {
		t.Run("Posts"+c.name, func(t *testing.T) {
			got, err := e.posts.Read(e.ctx, e.d, "list", nil, resource.Where(c.filter), resource.SortBy(resource.Asc("title")))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(titles(got), c.want) {
				t.Errorf("%s: %q, want %q", resource.FilterString(c.filter), titles(got), c.want)
			}
		})
	}
	t.Run("AuthorsHasOne", func(t *testing.T) {
		got := must(t)(e.authors.Read(e.ctx, e.d, "list", nil, resource.Where(resource.Eq("profile.bio", "mathematician")))).([]*relAuthor)
		if len(got) != 1 || got[0].Name != "Ada" {
			t.Errorf("authors with the mathematician's profile: %d, want Ada alone", len(got))
		}
	})
	t.Run("AuthorsThroughTwoToMany", func(t *testing.T) {
		got := must(t)(e.authors.Read(e.ctx, e.d, "list", nil, resource.Where(resource.Eq("posts.labels.key", "db")),
			resource.SortBy(resource.Asc("name")))).([]*relAuthor)
		var names []string
		for _, a := range got {
			names = append(names, a.Name)
		}
		if !slices.Equal(names, []string{"Ada", "Bob"}) {
			t.Errorf("authors of posts labelled db = %q, want [Ada Bob]", names)
		}
	})
	t.Run("LabelsThroughJoinThenBelongsTo", func(t *testing.T) {
		got := must(t)(e.labels.Read(e.ctx, e.d, "list", nil, resource.Where(resource.Eq("posts.author.name", "Bob")))).([]*relLabel)
		if !slices.Equal(labelKeys(got), []string{"db"}) {
			t.Errorf("labels of Bob's posts = %q, want [db]", labelKeys(got))
		}
	})
	t.Run("DeclaredWithArgument", func(t *testing.T) {
		got, err := e.posts.Read(e.ctx, e.d, "by_author_email", resource.Input{"email": "bob@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(titles(got), []string{"charlie"}) {
			t.Errorf("by_author_email bob = %q, want [charlie]", titles(got))
		}
	})
	t.Run("PageCount", func(t *testing.T) {
		page, err := e.posts.Page(e.ctx, e.d, "list", nil, resource.PageRequest{Limit: 1, Count: true},
			resource.Where(resource.Eq("author.name", "Ada")), resource.SortBy(resource.Asc("title")))
		if err != nil {
			t.Fatal(err)
		}
		if page.Total != 2 || !slices.Equal(titles(page.Records), []string{"alpha"}) {
			t.Errorf("page of Ada's posts: %q of %d, want [alpha] of 2", titles(page.Records), page.Total)
		}
	})
	t.Run("Refused", func(t *testing.T) {
		_, err := e.posts.Read(e.ctx, e.d, "list", nil, resource.Where(resource.Eq("autor.email", "x")))
		wantInvalid(t, err, "filter", `unknown relationship "autor" in "autor.email"; did you mean "author"?`)
		_, err = e.posts.Read(e.ctx, e.d, "list", nil, resource.Where(resource.Eq("author.emial", "x")))
		wantInvalid(t, err, "filter", `unknown attribute "emial" of dlt_author in "author.emial"; did you mean "email"?`)
		_, err = e.posts.Read(e.ctx, e.d, "list", nil, resource.Where(resource.Eq("title.x", "x")))
		wantInvalid(t, err, "filter", `"title" is an attribute of dlt_post, not a relationship, in "title.x"; name a relationship before the dot`)
	})
}

func testSortThrough(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	e := newRelEnv(t, open)
	e.seed(t)
	cases := []struct {
		name string
		sort []resource.Sort
		want []string
	}{
		{"BelongsToAsc", []resource.Sort{resource.Asc("author.name"), resource.Asc("title")}, []string{"alpha", "bravo", "charlie"}},
		{"BelongsToDesc", []resource.Sort{resource.Desc("author.name"), resource.Asc("title")}, []string{"charlie", "alpha", "bravo"}},
		// A post without an editor has none to sort by: NULL, after every value.
		{"NullableAsc", []resource.Sort{resource.Asc("editor.name")}, []string{"alpha", "bravo", "charlie"}},
		{"NullableDesc", []resource.Sort{resource.Desc("editor.name")}, []string{"charlie", "bravo", "alpha"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := must(t)(e.posts.Read(e.ctx, e.d, "list", nil, resource.SortBy(c.sort...))).([]*relPost)
			if !slices.Equal(titles(got), c.want) {
				t.Errorf("sort %v: %q, want %q", c.sort, titles(got), c.want)
			}
		})
	}
	t.Run("Declared", func(t *testing.T) {
		got := must(t)(e.posts.Read(e.ctx, e.d, "by_author_name", nil)).([]*relPost)
		if !slices.Equal(titles(got), []string{"alpha", "bravo", "charlie"}) {
			t.Errorf("by_author_name = %q", titles(got))
		}
	})
	t.Run("HasOne", func(t *testing.T) {
		got := must(t)(e.authors.Read(e.ctx, e.d, "list", nil, resource.SortBy(resource.Asc("profile.bio"), resource.Desc("name")))).([]*relAuthor)
		var names []string
		for _, a := range got {
			names = append(names, a.Name)
		}
		if !slices.Equal(names, []string{"Ada", "Eve", "Cy", "Bob"}) {
			t.Errorf("authors by profile bio, then name descending = %q, want [Ada Eve Cy Bob]", names)
		}
	})
	t.Run("Nested", func(t *testing.T) {
		got := must(t)(e.comments.Read(e.ctx, e.d, "list", nil, resource.SortBy(resource.Desc("post.author.name"), resource.Asc("rank")))).([]*relComment)
		if !slices.Equal(bodies(got), []string{"great", "nice", "thanks"}) {
			t.Errorf("comments by their post's author descending, then rank = %q, want [great nice thanks]", bodies(got))
		}
	})
	t.Run("Refused", func(t *testing.T) {
		_, err := e.posts.Read(e.ctx, e.d, "list", nil, resource.SortBy(resource.Asc("comments.body")))
		wantInvalid(t, err, "sort", `cannot sort by "comments.body": comments is a has_many relationship, so a record has many values of it; sort through belongs_to and has_one relationships only`)
		_, err = e.posts.Page(e.ctx, e.d, "list", nil, resource.PageRequest{}, resource.SortBy(resource.Asc("author.name")))
		wantInvalid(t, err, "sort", `pages cannot be sorted by "author.name": a cursor holds the record's own attributes; sort pages by attributes of the record`)
	})
}

// testWriteThrough updates and destroys in bulk by filters through
// relationships: the layer's UPDATE and DELETE carry them too.
func testWriteThrough(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	e := newRelEnv(t, open)
	s := e.seed(t)
	updated, err := e.posts.BulkUpdate(e.ctx, e.d, "update", resource.Eq("labels.key", "db"), resource.Input{"editor_id": s.cy.ID})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(updated, func(a, b *relPost) int { return strings.Compare(a.Title, b.Title) })
	if !slices.Equal(titles(updated), []string{"alpha", "charlie"}) {
		t.Errorf("bulk update of posts labelled db updated %q, want [alpha charlie]", titles(updated))
	}
	edited := must(t)(e.posts.Read(e.ctx, e.d, "list", nil, resource.Where(resource.Eq("editor.name", "Cy")), resource.SortBy(resource.Asc("title")))).([]*relPost)
	if !slices.Equal(titles(edited), []string{"alpha", "charlie"}) {
		t.Errorf("posts edited by Cy = %q, want [alpha charlie]", titles(edited))
	}
	destroyed, err := e.comments.BulkDestroy(e.ctx, e.d, "destroy", resource.Eq("post.author.name", "Ada"), nil)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(destroyed, func(a, b *relComment) int { return strings.Compare(a.Body, b.Body) })
	if !slices.Equal(bodies(destroyed), []string{"nice", "thanks"}) {
		t.Errorf("destroying the comments on Ada's posts destroyed %q, want [nice thanks]", bodies(destroyed))
	}
	left := must(t)(e.comments.Read(e.ctx, e.d, "list", nil)).([]*relComment)
	if !slices.Equal(bodies(left), []string{"great"}) {
		t.Errorf("comments left = %q, want [great]", bodies(left))
	}
}

func testParentExists(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	e := newRelEnv(t, open)
	s := e.seed(t)
	const missing = int64(987654321)
	countPosts := func(t *testing.T) int {
		t.Helper()
		return len(must(t)(e.posts.Read(e.ctx, e.d, "list", nil)).([]*relPost))
	}
	t.Run("Create", func(t *testing.T) {
		_, err := e.posts.Create(e.ctx, e.d, "create", resource.Input{"title": "x", "author_id": missing})
		wantInvalid(t, err, "author_id", "does not exist")
		_, err = e.posts.Create(e.ctx, e.d, "create", resource.Input{"title": "x", "author_id": s.ada.ID, "editor_id": missing})
		wantInvalid(t, err, "editor_id", "does not exist")
		_, err = e.posts.Create(e.ctx, e.d, "create", resource.Input{"title": "x", "author_id": missing, "editor_id": missing})
		ves := resource.ValidationErrors(err)
		if len(ves) != 2 || ves[0].Field != "author_id" || ves[1].Field != "editor_id" {
			t.Errorf("both keys missing: %v, want errors on author_id and editor_id", err)
		}
		if n := countPosts(t); n != 3 {
			t.Errorf("%d posts after the refused creates, want the 3 seeded", n)
		}
		p, err := e.posts.Create(e.ctx, e.d, "create", resource.Input{"title": "no editor", "author_id": s.bob.ID, "editor_id": nil})
		if err != nil || p.EditorID != nil {
			t.Errorf("a post without an editor: %v, editor_id %v; want it created, without", err, p)
		}
	})
	t.Run("StringKey", func(t *testing.T) {
		_, err := e.postLabels.Create(e.ctx, e.d, "create", resource.Input{"post_id": s.bravo.ID, "label_key": "nope"})
		wantInvalid(t, err, "label_key", "does not exist")
	})
	t.Run("Update", func(t *testing.T) {
		_, err := e.posts.Update(e.ctx, e.d, "update", s.bravo, resource.Input{"author_id": missing})
		wantInvalid(t, err, "author_id", "does not exist")
		got := must(t)(e.posts.Get(e.ctx, e.d, "by_id", resource.Input{"id": s.bravo.ID})).(*relPost)
		if got.AuthorID != s.ada.ID {
			t.Errorf("bravo's author after the refused update = %d, want Ada's %d", got.AuthorID, s.ada.ID)
		}
		// An update that does not set the key does not check it.
		if _, err := e.posts.Update(e.ctx, e.d, "update", s.bravo, resource.Input{"title": "bravo!"}); err != nil {
			t.Errorf("renaming bravo: %v", err)
		}
		_, err = e.posts.BulkUpdate(e.ctx, e.d, "update", resource.Eq("author_id", s.ada.ID), resource.Input{"editor_id": missing})
		wantInvalid(t, err, "editor_id", "does not exist")
	})
	t.Run("ParentInTheSameTransaction", func(t *testing.T) {
		err := e.d.InTransaction(e.ctx, func(ctx context.Context) error {
			dan, err := e.authors.Create(ctx, e.d, "create", resource.Input{"email": "dan@example.com", "name": "Dan"})
			if err != nil {
				return err
			}
			_, err = e.posts.Create(ctx, e.d, "create", resource.Input{"title": "delta", "author_id": dan.ID})
			return err
		})
		if err != nil {
			t.Errorf("a post by an author created in the same transaction: %v", err)
		}
	})
}

func testOnDelete(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	t.Run("Restrict", func(t *testing.T) {
		e := newRelEnv(t, open)
		s := e.seed(t)
		// Bob wrote the comment "nice", which restricts him.
		err := e.authors.Destroy(e.ctx, e.d, "destroy", s.bob, nil)
		wantReferenced(t, err, "destroy")
		_, err = e.authors.BulkDestroy(e.ctx, e.d, "destroy", resource.Eq("name", "Bob"), nil)
		wantReferenced(t, err, "destroy")
		if _, err := e.authors.Get(e.ctx, e.d, "by_id", resource.Input{"id": s.bob.ID}); err != nil {
			t.Errorf("Bob after the refused destroys: %v", err)
		}
		if _, err := e.posts.Get(e.ctx, e.d, "by_id", resource.Input{"id": s.charlie.ID}); err != nil {
			t.Errorf("Bob's post charlie after the refused destroys: %v (the cascade must roll back too)", err)
		}
	})
	t.Run("Cascade", func(t *testing.T) {
		e := newRelEnv(t, open)
		s := e.seed(t)
		dan := must(t)(e.authors.Create(e.ctx, e.d, "create", resource.Input{"email": "dan@example.com", "name": "Dan"})).(*relAuthor)
		must(t)(e.profiles.Create(e.ctx, e.d, "create", resource.Input{"author_id": dan.ID, "bio": "dancer"}))
		delta := must(t)(e.posts.Create(e.ctx, e.d, "create", resource.Input{"title": "delta", "author_id": dan.ID})).(*relPost)
		must(t)(e.comments.Create(e.ctx, e.d, "create", resource.Input{"post_id": delta.ID, "author_id": s.bob.ID, "body": "hi", "rank": 0}))
		must(t)(e.postLabels.Create(e.ctx, e.d, "create", resource.Input{"post_id": delta.ID, "label_key": "go"}))
		if err := e.authors.Destroy(e.ctx, e.d, "destroy", dan, nil); err != nil {
			t.Fatalf("destroying Dan: %v", err)
		}
		// Dan's profile and post went with him, and the post's comment and label link with it.
		if got := len(must(t)(e.profiles.Read(e.ctx, e.d, "list", nil)).([]*relProfile)); got != 1 {
			t.Errorf("%d profiles left, want Ada's", got)
		}
		if _, err := e.posts.Get(e.ctx, e.d, "by_id", resource.Input{"id": delta.ID}); !errors.Is(err, resource.ErrNotFound) {
			t.Errorf("Dan's post after destroying Dan: %v, want ErrNotFound", err)
		}
		comments := must(t)(e.comments.Read(e.ctx, e.d, "list", nil, resource.SortBy(resource.Asc("body")))).([]*relComment)
		if !slices.Equal(bodies(comments), []string{"great", "nice", "thanks"}) {
			t.Errorf("comments left = %q, want the seeded ones", bodies(comments))
		}
		label := must(t)(e.labels.Read(e.ctx, e.d, "list", nil, resource.Where(resource.Eq("key", "go")), resource.Load("posts"))).([]*relLabel)
		if len(label) != 1 || !slices.Equal(titles(label[0].Posts), []string{"alpha"}) {
			t.Errorf("label go's posts after destroying delta's author: want [alpha]")
		}
		// Destroying a label destroys its links, not its posts.
		dbLabel := must(t)(e.labels.Read(e.ctx, e.d, "list", nil, resource.Where(resource.Eq("key", "db")))).([]*relLabel)[0]
		if err := e.labels.Destroy(e.ctx, e.d, "destroy", dbLabel, nil); err != nil {
			t.Fatal(err)
		}
		alpha := must(t)(e.posts.Get(e.ctx, e.d, "by_id", resource.Input{"id": s.alpha.ID}, resource.Load("labels"))).(*relPost)
		if !slices.Equal(labelKeys(alpha.Labels), []string{"go"}) {
			t.Errorf("alpha's labels after destroying db = %q, want [go]", labelKeys(alpha.Labels))
		}
	})
	t.Run("SetNull", func(t *testing.T) {
		e := newRelEnv(t, open)
		s := e.seed(t)
		if err := e.authors.Destroy(e.ctx, e.d, "destroy", s.eve, nil); err != nil {
			t.Fatalf("destroying Eve, bravo's editor: %v", err)
		}
		bravo := must(t)(e.posts.Get(e.ctx, e.d, "by_id", resource.Input{"id": s.bravo.ID})).(*relPost)
		if bravo.EditorID != nil {
			t.Errorf("bravo's editor_id after destroying its editor = %d, want NULL", *bravo.EditorID)
		}
		if bravo.AuthorID != s.ada.ID {
			t.Errorf("bravo's author_id = %d, want Ada's, untouched", bravo.AuthorID)
		}
	})
}

// wantReferenced fails t unless err is the *ReferenceError of destroying
// an author whom a comment refers to.
func wantReferenced(t *testing.T, err error, action string) {
	t.Helper()
	var re *resource.ReferenceError
	if !errors.As(err, &re) {
		t.Fatalf("err = %T %v, want a *resource.ReferenceError", err, err)
	}
	if !errors.Is(err, resource.ErrConflict) {
		t.Errorf("errors.Is(%v, ErrConflict) = false, want true", err)
	}
	if re.Resource != "dlt_author" || re.Action != action || re.From != "dlt_comment" || re.Relationship != "author" {
		t.Errorf("ReferenceError = {Resource: %q, Action: %q, From: %q, Relationship: %q}, want {dlt_author, %s, dlt_comment, author}",
			re.Resource, re.Action, re.From, re.Relationship, action)
	}
	if want := "kiln/resource: dlt_author." + action + ": records of dlt_comment still belong to it, through author"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

// testLayerForeignKeys checks the data layer's own report of a foreign key
// violation, which kiln's check before a write does not let through.
func testLayerForeignKeys(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	e := newRelEnv(t, open)
	s := e.seed(t)
	schemas := map[string]*resource.Schema{}
	for _, sc := range e.d.Schemas() {
		schemas[sc.Resource] = sc
	}
	inTx := func(t *testing.T, fn func(tx resource.Tx) error) error {
		t.Helper()
		tx, err := e.layer.Begin(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := tx.Rollback(); err != nil {
				t.Errorf("rollback: %v", err)
			}
		}()
		return fn(tx)
	}
	t.Run("Insert", func(t *testing.T) {
		err := inTx(t, func(tx resource.Tx) error {
			return tx.Insert(e.ctx, schemas["dlt_comment"], &relComment{PostID: s.alpha.ID, AuthorID: 987654321, Body: "x"}, resource.InsertOptions{})
		})
		var re *resource.ReferenceError
		if !errors.As(err, &re) {
			t.Fatalf("inserting a comment by no author: %T %v, want a *resource.ReferenceError", err, err)
		}
		if re.Attribute != "" && re.Attribute != "author_id" {
			t.Errorf("ReferenceError.Attribute = %q, want author_id (or empty, when the database does not say)", re.Attribute)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		err := inTx(t, func(tx resource.Tx) error {
			return tx.Delete(e.ctx, schemas["dlt_author"], &relAuthor{ID: s.bob.ID})
		})
		var re *resource.ReferenceError
		if !errors.As(err, &re) {
			t.Fatalf("deleting an author a comment refers to: %T %v, want a *resource.ReferenceError", err, err)
		}
		if re.From != "" && (re.From != "dlt_comment" || re.Relationship != "author") {
			t.Errorf("ReferenceError = {From: %q, Relationship: %q}, want {dlt_comment, author} (or empty, when the database does not say)", re.From, re.Relationship)
		}
	})
}
