package resource_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// post is the record of the handle tests.
type story struct {
	ID       uuid.UUID `bun:",pk,type:uuid" kiln:"default:uuid"`
	Title    string    `bun:",notnull" validate:"required,max=80"`
	Body     string    `bun:",notnull"`
	AuthorID uuid.UUID `bun:",type:uuid,notnull"`
	Views    int
	Created  time.Time `bun:",notnull" kiln:"readonly,default:now"`
}

type stampInput struct{ Created time.Time }

type publishInput struct {
	Title    string `validate:"startswith=T"`
	Body     string
	AuthorID uuid.UUID
	// Notify is an argument: no attribute of that name.
	Notify bool
}

type byAuthor struct {
	AuthorID uuid.UUID `validate:"required"`
}

type byID struct{ ID uuid.UUID }

type retitle struct {
	Title *string
	Body  *string
}

type countInput struct {
	AuthorID uuid.UUID `validate:"required"`
	Minimum  *int
}

// postHandles are the handles of one declaration of the post resource.
type postHandles struct {
	res     *resource.Resource[story]
	publish *resource.CreateHandle[story, publishInput]
	of      *resource.ReadHandle[story, byAuthor]
	get     *resource.GetHandle[story, byID]
	retitle *resource.UpdateHandle[story, retitle]
	remove  *resource.DestroyHandle[story, resource.NoInput]
	count   *resource.GenericHandle[story, countInput, int]
}

func declarePosts() postHandles {
	h := postHandles{
		publish: resource.DefineCreate[story, publishInput](resource.Create{Name: "publish", Accept: []string{"title", "body", "author_id"}}),
		of: resource.DefineRead[story, byAuthor](resource.Read{Name: "of_author",
			Filter: resource.Eq("author_id", resource.FromArg("author_id")), Sort: []resource.Sort{resource.Asc("title")}}),
		get:     resource.DefineGet[story, byID](resource.Read{Name: "get", GetBy: []string{"id"}}),
		retitle: resource.DefineUpdate[story, retitle](resource.Update{Name: "retitle", Accept: []string{"title", "body"}}),
		remove:  resource.DefineDestroy[story, resource.NoInput](resource.Destroy{Name: "remove"}),
	}
	h.count = resource.DefineGeneric[story](resource.Generic{Name: "count"},
		func(ctx context.Context, cs *resource.Changeset[story], in countInput) (int, error) {
			posts, err := h.of.Run(ctx, cs.Domain(), byAuthor{AuthorID: in.AuthorID})
			if err != nil {
				return 0, err
			}
			if in.Minimum != nil && len(posts) < *in.Minimum {
				return 0, nil
			}
			return len(posts), nil
		})
	h.res = resource.New[story]("post", resource.Actions{h.publish, h.of, h.get, h.retitle, h.remove, h.count})
	return h
}

func buildPosts(t *testing.T, h postHandles) *resource.Domain {
	t.Helper()
	ctx := context.Background()
	layer, err := bunlayer.Open(ctx, "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { layer.Close() })
	d, err := resource.NewDomain("blog", h.res).Build(ctx, layer)
	if err != nil {
		t.Fatal(err)
	}
	if err := layer.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestHandlesRunTyped(t *testing.T) {
	ctx := context.Background()
	h := declarePosts()
	d := buildPosts(t, h)
	ada, bob := uuid.New(), uuid.New()

	first, err := h.publish.Run(ctx, d, publishInput{Title: "The first", Body: "…", AuthorID: ada, Notify: true})
	if err != nil {
		t.Fatal(err)
	}
	if first.ID == uuid.Nil || first.Title != "The first" || first.AuthorID != ada {
		t.Fatalf("published %+v", first)
	}
	if _, err := h.publish.Run(ctx, d, publishInput{Title: "Then", Body: "…", AuthorID: ada}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.publish.Run(ctx, d, publishInput{Title: "To Bob", Body: "…", AuthorID: bob}); err != nil {
		t.Fatal(err)
	}

	posts, err := h.of.Run(ctx, d, byAuthor{AuthorID: ada})
	if err != nil {
		t.Fatal(err)
	}
	if len(posts) != 2 || posts[0].Title != "The first" || posts[1].Title != "Then" {
		t.Fatalf("of_author(ada) = %v", entryTitles(posts))
	}
	// A typed read still takes run options.
	posts, err = h.of.Run(ctx, d, byAuthor{AuthorID: ada}, resource.Limit(1))
	if err != nil || len(posts) != 1 {
		t.Fatalf("of_author with Limit(1) = %v, %v", entryTitles(posts), err)
	}

	page, err := h.of.Page(ctx, d, byAuthor{AuthorID: ada}, resource.PageRequest{Limit: 1})
	if err != nil || len(page.Records) != 1 || page.Records[0].Title != "The first" || !page.More {
		t.Fatalf("first page of of_author(ada) = %v, %+v, %v", entryTitles(page.Records), page.PageInfo, err)
	}
	page, err = h.of.Page(ctx, d, byAuthor{AuthorID: ada}, resource.PageRequest{Limit: 1, After: page.Next})
	if err != nil || len(page.Records) != 1 || page.Records[0].Title != "Then" || page.More {
		t.Fatalf("second page of of_author(ada) = %v, %+v, %v", entryTitles(page.Records), page.PageInfo, err)
	}

	got, err := h.get.Run(ctx, d, byID{ID: first.ID})
	if err != nil || got.ID != first.ID {
		t.Fatalf("get = %+v, %v", got, err)
	}
	if _, err := h.get.Run(ctx, d, byID{ID: uuid.New()}); !errors.Is(err, resource.ErrNotFound) {
		t.Fatalf("get of a missing id: %v, want ErrNotFound", err)
	}

	// An optional field left nil leaves its attribute as it is.
	title := "The first, revised"
	updated, err := h.retitle.Run(ctx, d, got, retitle{Title: &title})
	if err != nil {
		t.Fatal(err)
	}
	if updated.Title != title || updated.Body != "…" {
		t.Fatalf("retitled %+v: want the new title and the old body", updated)
	}

	n, err := h.count.Run(ctx, d, countInput{AuthorID: ada})
	if err != nil || n != 2 {
		t.Fatalf("count(ada) = %d, %v; want 2", n, err)
	}
	three := 3
	if n, err := h.count.Run(ctx, d, countInput{AuthorID: ada, Minimum: &three}); err != nil || n != 0 {
		t.Fatalf("count(ada, minimum 3) = %d, %v; want 0", n, err)
	}

	if err := h.remove.Run(ctx, d, updated, resource.NoInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.get.Run(ctx, d, byID{ID: first.ID}); !errors.Is(err, resource.ErrNotFound) {
		t.Fatalf("get after remove: %v, want ErrNotFound", err)
	}
	gone, err := h.remove.RunAll(ctx, d, resource.Eq("author_id", bob), resource.NoInput{})
	if err != nil || len(gone) != 1 || gone[0].Title != "To Bob" {
		t.Fatalf("remove all of bob = %v, %v", entryTitles(gone), err)
	}
}

func entryTitles(posts []*story) []string {
	var out []string
	for _, p := range posts {
		out = append(out, p.Title)
	}
	return out
}

// TestHandleInputValidatedInOneRound: the input struct's tags, on
// attributes and arguments, are checked with the record's own rules, and
// every failure comes back.
func TestHandleInputValidated(t *testing.T) {
	ctx := context.Background()
	h := declarePosts()
	d := buildPosts(t, h)

	_, err := h.publish.Run(ctx, d, publishInput{Title: "no capital T", AuthorID: uuid.New()})
	if !errors.Is(err, resource.ErrInvalid) {
		t.Fatalf("publish with a title against the input's rule: %v, want ErrInvalid", err)
	}
	if fields := invalidFields(err); !fields["title"] {
		t.Fatalf("errors on %v, want title", fields)
	}
	_, err = h.publish.Run(ctx, d, publishInput{Title: "", AuthorID: uuid.New()})
	if fields := invalidFields(err); !fields["title"] {
		t.Fatalf("publish with an empty title (record rule required): errors on %v, want title", fields)
	}
	// A uuid argument needs no declared type: the field gives it.
	_, err = h.count.Run(ctx, d, countInput{})
	if fields := invalidFields(err); !fields["author_id"] {
		t.Fatalf("count without an author: %v, want author_id required", err)
	}
	if len(h.res.Declaration().Actions) != 6 {
		t.Fatalf("declared %d actions, want 6", len(h.res.Declaration().Actions))
	}
}

func invalidFields(err error) map[string]bool {
	out := map[string]bool{}
	for _, ve := range resource.ValidationErrors(err) {
		out[ve.Field] = true
	}
	return out
}

type unacceptedInput struct {
	Title string
	Views int // an attribute publish does not accept
}

type wrongTypeInput struct {
	Title int
}

type misspeltInput struct {
	Titel string
	Body  string
}

type lackingInput struct{ Title string }

type twiceInput struct {
	Title string
	Other string `kiln:"title"`
}

type comment struct {
	ID   int64 `bun:",pk,autoincrement"`
	Text string
}

func TestHandleBuildProblems(t *testing.T) {
	cases := []struct {
		name   string
		action resource.Action
		want   string
	}{
		{"unaccepted attribute", resource.DefineCreate[story, unacceptedInput](resource.Create{Name: "a", Accept: []string{"title"}}),
			`field Views sets attribute "views", which this action does not accept`},
		{"read-only attribute", resource.DefineUpdate[story, stampInput](resource.Update{Name: "a", Accept: []string{"title"}}),
			`field Created sets attribute "created", which is read-only`},
		{"wrong type", resource.DefineCreate[story, wrongTypeInput](resource.Create{Name: "a", Accept: []string{"title"}}),
			`field Title is int; attribute "title" is string`},
		{"misspelt attribute", resource.DefineCreate[story, misspeltInput](resource.Create{Name: "a", Accept: []string{"title", "body"}}),
			`did you mean "title"?`},
		{"declared argument without a field", resource.DefineCreate[story, lackingInput](resource.Create{Name: "a", Accept: []string{"title"},
			Arguments: []resource.Argument{{Name: "notify"}}}),
			`is not a field of resource_test.lackingInput`},
		{"filter argument without a field", resource.DefineRead[story, resource.NoInput](resource.Read{Name: "a", Filter: resource.Eq("title", resource.FromArg("title"))}),
			`filter: uses argument "title", which the action does not declare; add a field for it to NoInput`},
		{"two fields, one input", resource.DefineCreate[story, twiceInput](resource.Create{Name: "a", Accept: []string{"title"}}),
			`fields Title and Other of resource_test.twiceInput are both input "title"`},
		{"not a struct", resource.DefineCreate[story, string](resource.Create{Name: "a"}),
			`input type string is not a struct`},
		{"other record type", resource.DefineCreate[comment, resource.NoInput](resource.Create{Name: "a"}),
			`the action is defined for resource_test.comment records; this resource holds resource_test.story`},
		{"two runs", resource.DefineGeneric[story](resource.Generic{Name: "a", Run: func(context.Context, *resource.AnyChangeset) (any, error) { return nil, nil }},
			func(context.Context, *resource.Changeset[story], resource.NoInput) (int, error) { return 0, nil }),
			"the action has two Run funcs"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := resource.New[story]("post", resource.Actions{c.action})
			layer, err := bunlayer.Open(context.Background(), "sqlite::memory:")
			if err != nil {
				t.Fatal(err)
			}
			defer layer.Close()
			_, err = resource.NewDomain("blog", r).Build(context.Background(), layer)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Build: %v\nwant a problem containing %q", err, c.want)
			}
		})
	}
}

func TestHandleOnTwoResources(t *testing.T) {
	h := resource.DefineCreate[story, lackingInput](resource.Create{Name: "add", Accept: []string{"title"}})
	resource.New[story]("post", resource.Actions{h})
	other := resource.New[story]("draft", resource.Actions{h})
	layer, err := bunlayer.Open(context.Background(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer layer.Close()
	_, err = resource.NewDomain("blog", other).Build(context.Background(), layer)
	if err == nil || !strings.Contains(err.Error(), `the same handle is already declared on resource "post"`) {
		t.Fatalf("Build: %v, want the second declaration refused", err)
	}
}

func TestHandleNotDeclared(t *testing.T) {
	h := declarePosts()
	d := buildPosts(t, h)
	loose := resource.DefineCreate[story, lackingInput](resource.Create{Name: "loose"})
	if _, err := loose.Run(context.Background(), d, lackingInput{}); !errors.Is(err, resource.ErrUnknownAction) {
		t.Fatalf("running a handle never declared: %v, want ErrUnknownAction", err)
	}
	// A domain without the handle's resource.
	other := declarePosts()
	if _, err := other.publish.Run(context.Background(), d, publishInput{Title: "T", Body: "b", AuthorID: uuid.New()}); err != nil {
		// Both declarations are named "post" over the same type: the
		// domain has that resource, so the handle finds it.
		t.Fatalf("a handle of another declaration of the same resource: %v", err)
	}
	empty := resource.New[comment]("comment")
	layer, err := bunlayer.Open(context.Background(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer layer.Close()
	d2, err := resource.NewDomain("notes", empty).Build(context.Background(), layer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.publish.Run(context.Background(), d2, publishInput{Title: "T"}); !errors.Is(err, resource.ErrUnknownResource) {
		t.Fatalf("running in a domain without the resource: %v, want ErrUnknownResource", err)
	}
}

type article struct {
	ID    int64  `bun:",pk,autoincrement"`
	Title string `bun:",notnull"`
	Slug  string `bun:",notnull"`
}

type draftInput struct{ Title string }

// TestTypedChanges: changes and validations declared with Before, After
// and Check see the record as an *article.
func TestTypedChanges(t *testing.T) {
	ctx := context.Background()
	var seen []string
	draft := resource.DefineCreate[article, draftInput](resource.Create{Name: "draft", Accept: []string{"title"},
		Validations: []resource.Validation{
			resource.Check("title", func(_ context.Context, cs *resource.Changeset[article]) error {
				if strings.Contains(cs.Record().Title, "/") {
					return errors.New("must not contain a slash")
				}
				return nil
			}),
		},
		Changes: []resource.Change{
			resource.Before(func(_ context.Context, cs *resource.Changeset[article]) error {
				cs.Record().Slug = strings.ToLower(strings.ReplaceAll(cs.Record().Title, " ", "-"))
				return nil
			}).Named("slug"),
			resource.After(func(_ context.Context, cs *resource.Changeset[article], rec *article) error {
				seen = append(seen, cs.Action()+":"+rec.Slug)
				return nil
			}),
		}})
	articles := resource.New[article]("article", resource.Actions{draft})
	layer, err := bunlayer.Open(ctx, "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer layer.Close()
	d, err := resource.NewDomain("press", articles).Build(ctx, layer)
	if err != nil {
		t.Fatal(err)
	}
	if err := layer.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	a, err := draft.Run(ctx, d, draftInput{Title: "Hello World"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Slug != "hello-world" || len(seen) != 1 || seen[0] != "draft:hello-world" {
		t.Fatalf("drafted %+v, After saw %v", a, seen)
	}
	_, err = draft.Run(ctx, d, draftInput{Title: "a/b"})
	if fields := invalidFields(err); !fields["title"] || !strings.Contains(err.Error(), "must not contain a slash") {
		t.Fatalf("draft with a slash: %v, want the Check's error on title", err)
	}
}

// titled is what the views of TestViews know of a record.
type titled interface{ Heading() string }

func (a *article) Heading() string { return a.Title }

type headingInput struct {
	Title string `validate:"required"`
}

// TestViews: an extension's view of actions runs them on a resource whose
// record type it does not know, through an interface.
func TestViews(t *testing.T) {
	ctx := context.Background()
	add := resource.NewView[titled, headingInput](resource.Create{Name: "add", Accept: []string{"title"},
		Changes: []resource.Change{resource.Before(func(_ context.Context, cs *resource.Changeset[article]) error {
			cs.Record().Slug = strings.ToLower(cs.Record().Title)
			return nil
		})}})
	all := resource.NewView[titled, resource.NoInput](resource.Read{Name: "all", Sort: []resource.Sort{resource.Asc("title")}})
	rename := resource.NewView[titled, headingInput](resource.Update{Name: "rename", Accept: []string{"title"}})
	drop := resource.NewView[titled, resource.NoInput](resource.Destroy{Name: "drop"})
	count := resource.NewView[titled, resource.NoInput](resource.Generic{Name: "count",
		Run: func(ctx context.Context, cs *resource.AnyChangeset) (any, error) {
			rows, err := all.Read(ctx, cs.Domain(), resource.NoInput{})
			return len(rows), err
		}})
	articles := resource.New[article]("article", extensionSection{add, all, rename, drop, count})
	layer, err := bunlayer.Open(ctx, "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer layer.Close()
	d, err := resource.NewDomain("press", articles).Build(ctx, layer)
	if err != nil {
		t.Fatal(err)
	}
	if err := layer.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := add.Create(ctx, d, headingInput{Title: "B"})
	if err != nil || b.Heading() != "B" {
		t.Fatalf("add = %v, %v", b, err)
	}
	if _, err := add.Create(ctx, d, headingInput{Title: "A"}); err != nil {
		t.Fatal(err)
	}
	if _, err := add.Create(ctx, d, headingInput{}); !errors.Is(err, resource.ErrInvalid) {
		t.Fatalf("add without a title: %v, want ErrInvalid", err)
	}
	if _, err := rename.Update(ctx, d, b, headingInput{Title: "C"}); err != nil {
		t.Fatal(err)
	}
	rows, err := all.Read(ctx, d, resource.NoInput{})
	if err != nil || len(rows) != 2 || rows[0].Heading() != "A" || rows[1].Heading() != "C" {
		t.Fatalf("all = %v, %v; want A, C", rows, err)
	}
	if n, err := resource.CallView[int](ctx, d, count, resource.NoInput{}); err != nil || n != 2 {
		t.Fatalf("count = %d, %v", n, err)
	}
	if err := drop.Destroy(ctx, d, rows[0], resource.NoInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := add.Read(ctx, d, headingInput{Title: "x"}); !errors.Is(err, resource.ErrWrongActionType) {
		t.Fatalf("reading through a create's view: %v, want ErrWrongActionType", err)
	}
	gone, err := drop.DestroyAll(ctx, d, resource.Eq("title", "C"), resource.NoInput{})
	if err != nil || len(gone) != 1 {
		t.Fatalf("drop all C = %v, %v", gone, err)
	}

	// A view on a resource whose records do not implement titled.
	bad := resource.New[comment]("comment", extensionSection{resource.NewView[titled, resource.NoInput](resource.Read{Name: "all"})})
	_, err = resource.NewDomain("notes", bad).Build(ctx, layer)
	if err == nil || !strings.Contains(err.Error(), "*resource_test.comment does not implement resource_test.titled") {
		t.Fatalf("Build: %v, want the view refused", err)
	}
}

// extensionSection adds actions the way an extension's Transform does.
type extensionSection []resource.Action

func (s extensionSection) Declare(d *resource.Declaration) {
	for _, a := range s {
		d.AddAction(a)
	}
}

// slugFromTitle sets an article's slug from its title.
func slugFromTitle() resource.Change {
	return resource.Before(func(_ context.Context, cs *resource.Changeset[article]) error {
		cs.Record().Slug = strings.ToLower(cs.Record().Title)
		return nil
	})
}

// TestViewResults: CreateResult, UpdateResult and CallViewResult return
// what the action's changes put in the metadata, besides the record or
// value.
func TestViewResults(t *testing.T) {
	ctx := context.Background()
	stamp := func(key string) resource.Change {
		return resource.Change{After: func(_ context.Context, cs *resource.AnyChangeset, rec any) error {
			cs.SetMetadata(key, rec.(*article).Title)
			return nil
		}}
	}
	add := resource.NewView[titled, headingInput](resource.Create{Name: "add", Accept: []string{"title"}, Changes: []resource.Change{slugFromTitle(), stamp("added")}})
	rename := resource.NewView[titled, headingInput](resource.Update{Name: "rename", Accept: []string{"title"}, Changes: []resource.Change{stamp("renamed")}})
	tally := resource.NewView[titled, resource.NoInput](resource.Generic{Name: "tally",
		Run: func(_ context.Context, cs *resource.AnyChangeset) (any, error) {
			cs.SetMetadata("tallied", true)
			return 7, nil
		}})
	articles := resource.New[article]("article", extensionSection{add, rename, tally})
	layer, err := bunlayer.Open(ctx, "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer layer.Close()
	d, err := resource.NewDomain("press", articles).Build(ctx, layer)
	if err != nil {
		t.Fatal(err)
	}
	if err := layer.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	created, err := add.CreateResult(ctx, d, headingInput{Title: "A"})
	if err != nil || created.Value.Heading() != "A" || created.Metadata["added"] != "A" {
		t.Fatalf("CreateResult = %+v, %v", created, err)
	}
	updated, err := rename.UpdateResult(ctx, d, created.Value, headingInput{Title: "B"})
	if err != nil || updated.Value.Heading() != "B" || updated.Metadata["renamed"] != "B" {
		t.Fatalf("UpdateResult = %+v, %v", updated, err)
	}
	called, err := resource.CallViewResult[int](ctx, d, tally, resource.NoInput{})
	if err != nil || called.Value != 7 || called.Metadata["tallied"] != true {
		t.Fatalf("CallViewResult = %+v, %v", called, err)
	}
	if _, err := resource.CallViewResult[string](ctx, d, tally, resource.NoInput{}); err == nil || err.Error() != "kiln/resource: article.tally returned int, not string" {
		t.Errorf("CallViewResult of the wrong type = %v", err)
	}
	unbound := resource.NewView[titled, resource.NoInput](resource.Generic{Name: "loose"})
	if _, err := resource.CallViewResult[int](ctx, d, unbound, resource.NoInput{}); !errors.Is(err, resource.ErrUnknownAction) ||
		err.Error() != `kiln/resource: unknown action: action "loose" was never declared on a resource (add it with Declaration.AddAction)` {
		t.Errorf("CallViewResult of a view never added = %v", err)
	}
}

// TestCallOutsideTransaction: Call, CallView and a generic handle run an
// OutsideTransaction action as Domain.Run does, without a transaction of
// their own, so that what it wrote before failing stays written; any other
// generic action is rolled back whole.
func TestCallOutsideTransaction(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	add := resource.NewView[titled, headingInput](resource.Create{Name: "add", Accept: []string{"title"}, Changes: []resource.Change{slugFromTitle()}})
	all := resource.NewView[titled, resource.NoInput](resource.Read{Name: "all"})
	addThenFail := func(ctx context.Context, cs *resource.AnyChangeset) (any, error) {
		if _, err := add.Create(ctx, cs.Domain(), headingInput{Title: "written"}); err != nil {
			return nil, err
		}
		return nil, boom
	}
	outside := resource.NewView[titled, resource.NoInput](resource.Generic{Name: "outside", Run: addThenFail, OutsideTransaction: true})
	inside := resource.NewView[titled, resource.NoInput](resource.Generic{Name: "inside", Run: addThenFail})
	articles := resource.New[article]("article", extensionSection{add, all, outside, inside})
	layer, err := bunlayer.Open(ctx, "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer layer.Close()
	d, err := resource.NewDomain("press", articles).Build(ctx, layer)
	if err != nil {
		t.Fatal(err)
	}
	if err := layer.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		rows, err := all.Read(ctx, d, resource.NoInput{})
		if err != nil {
			t.Fatal(err)
		}
		return len(rows)
	}
	if _, err := resource.CallView[int](ctx, d, inside, resource.NoInput{}); !errors.Is(err, boom) || count() != 0 {
		t.Fatalf("inside: %v, %d written; want boom and the write rolled back", err, count())
	}
	if _, err := resource.CallView[int](ctx, d, outside, resource.NoInput{}); !errors.Is(err, boom) || count() != 1 {
		t.Fatalf("CallView outside: %v, %d written; want boom and the write kept", err, count())
	}
	if _, err := resource.Call[int](ctx, d, articles, "outside", nil); !errors.Is(err, boom) || count() != 2 {
		t.Fatalf("Call outside: %v, %d written; want boom and the write kept", err, count())
	}
}

// echoCommon is embedded in echoInput: its fields are inputs too.
type echoCommon struct{ Tag string }

type echoInput struct {
	echoCommon
	N    int
	Note *string
}

type wordInput struct {
	Word string `kiln:"tag"`
}

// echoHandles are generic actions that run outside any transaction and
// return their input: the conversion of an input struct, and nothing else.
func echoHandles(t testing.TB) (*resource.Domain, *resource.GenericHandle[article, echoInput, string], *resource.GenericHandle[article, wordInput, string]) {
	t.Helper()
	echo := resource.DefineGeneric[article](resource.Generic{Name: "echo", OutsideTransaction: true},
		func(_ context.Context, _ *resource.Changeset[article], in echoInput) (string, error) {
			note := "-"
			if in.Note != nil {
				note = *in.Note
			}
			return fmt.Sprintf("%s/%d/%s", in.Tag, in.N, note), nil
		})
	word := resource.DefineGeneric[article](resource.Generic{Name: "word", OutsideTransaction: true},
		func(_ context.Context, cs *resource.Changeset[article], in wordInput) (string, error) {
			return in.Word + "=" + resource.Arg[string](cs.AnyChangeset, "tag"), nil
		})
	ctx := context.Background()
	layer, err := bunlayer.Open(ctx, "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { layer.Close() })
	d, err := resource.NewDomain("press", resource.New[article]("article", resource.Actions{echo, word})).Build(ctx, layer)
	if err != nil {
		t.Fatal(err)
	}
	return d, echo, word
}

// TestHandleInputConcurrent: handles of different input types convert
// their inputs right when run at once from many goroutines (the fields of
// each type are listed once and shared).
func TestHandleInputConcurrent(t *testing.T) {
	d, echo, word := echoHandles(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				in := echoInput{echoCommon: echoCommon{Tag: fmt.Sprint("g", g)}, N: i}
				want := fmt.Sprintf("g%d/%d/-", g, i)
				if i%2 == 1 {
					note := fmt.Sprint("n", i)
					in.Note = &note
					want = fmt.Sprintf("g%d/%d/n%d", g, i, i)
				}
				if got, err := echo.Run(ctx, d, in); err != nil || got != want {
					errs <- fmt.Errorf("echo(%+v) = %q, %v; want %q", in, got, err, want)
					return
				}
				w := fmt.Sprint("w", g, i)
				if got, err := word.Run(ctx, d, wordInput{Word: w}); err != nil || got != w+"="+w {
					errs <- fmt.Errorf("word(%s) = %q, %v", w, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkHandleInput runs a generic action that does nothing, outside
// any transaction: what a handle's typed input costs, converted to the
// action's input and back.
func BenchmarkHandleInput(b *testing.B) {
	d, echo, _ := echoHandles(b)
	ctx := context.Background()
	note := "note"
	in := echoInput{echoCommon: echoCommon{Tag: "t"}, N: 1, Note: &note}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := echo.Run(ctx, d, in); err != nil {
			b.Fatal(err)
		}
	}
}

// signUp is the record of TestInputOf: Nick is nullable, Hash read-only.
type signUp struct {
	ID    int64   `bun:",pk,autoincrement"`
	Email string  `bun:",unique,notnull"`
	Nick  *string `bun:",nullzero"`
	Hash  string  `bun:",notnull" kiln:"readonly"`
}

type signUpInput struct {
	Email        string
	Nick         *string
	Password     string `kiln:",sensitive" validate:"required"`
	Confirmation string `kiln:",sensitive"`
	// Rounds is optional: nil takes the argument's Default.
	Rounds *int
}

type matchInput struct {
	Prefix string
	Max    *int
}

// TestInputOf: changes, validations and preparations read the action's
// input as its input struct: arguments cast and defaulted, attributes as
// the record holds them, optional fields nil when not set; another type
// than the action's input is an error.
func TestInputOf(t *testing.T) {
	ctx := context.Background()
	var seen []signUpInput
	register := resource.DefineCreate[signUp, signUpInput](resource.Create{Name: "register", Accept: []string{"email", "nick"},
		Arguments: []resource.Argument{{Name: "rounds", Default: "3"}},
		Validations: []resource.Validation{resource.Check("confirmation", func(_ context.Context, cs *resource.Changeset[signUp]) error {
			in, err := resource.InputOf[signUpInput](cs)
			if err != nil {
				return err
			}
			if in.Password != in.Confirmation {
				return errors.New("does not match the password")
			}
			return nil
		})},
		Changes: []resource.Change{
			resource.Before(func(_ context.Context, cs *resource.Changeset[signUp]) error {
				cs.Record().Email = strings.ToLower(cs.Record().Email)
				return nil
			}),
			resource.Before(func(_ context.Context, cs *resource.Changeset[signUp]) error {
				in, err := resource.InputOf[signUpInput](cs)
				if err != nil {
					return err
				}
				seen = append(seen, in)
				cs.Record().Hash = strings.Repeat(in.Password, *in.Rounds)
				return nil
			}),
			resource.After(func(_ context.Context, cs *resource.Changeset[signUp], _ *signUp) error {
				_, err := resource.InputOf[matchInput](cs)
				if want := "kiln/resource: signup.register: InputOf: the action's input is resource_test.signUpInput, not resource_test.matchInput"; err == nil || err.Error() != want {
					t.Errorf("InputOf another type: %v, want %s", err, want)
				}
				return nil
			}),
		}})
	var prepared []matchInput
	match := resource.DefineRead[signUp, matchInput](resource.Read{Name: "match",
		Filter: resource.Ge("email", resource.FromArg("prefix")), Sort: []resource.Sort{resource.Asc("email")},
		Preparations: []resource.Preparation{{Name: "max", Prepare: func(_ context.Context, q *resource.Query) error {
			in, err := resource.InputOf[matchInput](q)
			if err != nil {
				return err
			}
			prepared = append(prepared, in)
			if in.Max != nil {
				q.Limit = *in.Max
			}
			return nil
		}}}})
	// A plain builder's input is a resource.Input.
	var plain resource.Input
	rename := resource.Update{Name: "rename", Accept: []string{"nick"},
		Arguments: []resource.Argument{{Name: "reason"}},
		Changes: []resource.Change{resource.Before(func(_ context.Context, cs *resource.Changeset[signUp]) error {
			var err error
			plain, err = resource.InputOf[resource.Input](cs)
			return err
		})}}
	users := resource.New[signUp]("signup", resource.Actions{register, match, rename})
	layer, err := bunlayer.Open(ctx, "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer layer.Close()
	d, err := resource.NewDomain("club", users).Build(ctx, layer)
	if err != nil {
		t.Fatal(err)
	}
	if err := layer.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	ada, err := register.Run(ctx, d, signUpInput{Email: "Ada@Example.com", Password: "pw", Confirmation: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0].Email != "ada@example.com" || seen[0].Nick != nil || seen[0].Password != "pw" ||
		seen[0].Rounds == nil || *seen[0].Rounds != 3 || ada.Hash != "pwpwpw" {
		t.Fatalf("the change saw %+v and hashed %q; want the lower-cased email, no nick, 3 rounds", seen, ada.Hash)
	}
	nick, rounds := "bo", 1
	if _, err := register.Run(ctx, d, signUpInput{Email: "bob@example.com", Nick: &nick, Password: "pw", Confirmation: "pw", Rounds: &rounds}); err != nil {
		t.Fatal(err)
	}
	if in := seen[1]; in.Nick == nil || *in.Nick != "bo" || *in.Rounds != 1 {
		t.Fatalf("the change saw %+v, want nick bo and 1 round", in)
	}
	_, err = register.Run(ctx, d, signUpInput{Email: "cy@example.com", Password: "pw", Confirmation: "wp"})
	if fields := invalidFields(err); !fields["confirmation"] || !strings.Contains(err.Error(), "does not match the password") {
		t.Fatalf("register with another confirmation: %v, want the Check's error", err)
	}

	one := 1
	got, err := match.Run(ctx, d, matchInput{Prefix: "a", Max: &one})
	if err != nil || len(got) != 1 || got[0].Email != "ada@example.com" {
		t.Fatalf("match a, max 1 = %v, %v; want ada", got, err)
	}
	if got, err = match.Run(ctx, d, matchInput{Prefix: "a"}); err != nil || len(got) != 2 {
		t.Fatalf("match a = %v, %v; want both", got, err)
	}
	if len(prepared) != 2 || prepared[0].Prefix != "a" || *prepared[0].Max != 1 || prepared[1].Max != nil {
		t.Fatalf("the preparation saw %+v", prepared)
	}
	if _, err := resource.InputOf[matchInput](&resource.Query{}); err == nil || err.Error() != "kiln/resource: InputOf: the query is not a read action's" {
		t.Errorf("InputOf a query of no read: %v", err)
	}

	if _, err := users.Update(ctx, d, "rename", ada, resource.Input{"nick": "countess", "reason": "title"}); err != nil {
		t.Fatal(err)
	}
	if nick, _ := plain["nick"].(*string); len(plain) != 2 || nick == nil || *nick != "countess" || plain["reason"] != "title" {
		t.Fatalf("InputOf[resource.Input] = %v, want nick (as the record holds it) and reason", plain)
	}
}

// TestHandleProblemsPointAtTheDefinition: a problem with a handle's input
// names the line of its Define call, not the resource's.
func TestHandleProblemsPointAtTheDefinition(t *testing.T) {
	_, _, line, _ := runtime.Caller(0)
	h := resource.DefineCreate[story, misspeltInput](resource.Create{Name: "a", Accept: []string{"title", "body"}})
	r := resource.New[story]("story", resource.Actions{h})
	layer, err := bunlayer.Open(context.Background(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer layer.Close()
	_, err = resource.NewDomain("blog", r).Build(context.Background(), layer)
	want := fmt.Sprintf("handle_test.go:%d", line+1)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Build: %v\nwant the problem at %s", err, want)
	}
}
