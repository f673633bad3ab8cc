package resource_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
)

// post is the record of the page tests: a nullzero time and int, whose
// zero values are stored as NULL, and a sensitive attribute.
type post struct {
	ID     int64     `bun:",pk,autoincrement"`
	Title  string    `bun:",notnull"`
	SeenAt time.Time `bun:",nullzero"`
	Votes  int       `bun:",nullzero"`
	Secret string    `kiln:"sensitive"`
}

func newPosts() *resource.Resource[post] {
	return resource.New[post]("post",
		resource.Actions{
			resource.Create{Name: "create", Accept: []string{"title", "seen_at", "votes", "secret"}},
			resource.Read{Name: "list"},
			resource.Read{Name: "get", GetBy: []string{"id"}},
			resource.Read{Name: "capped", PageSize: resource.PageSize{Max: 2}},
		},
	)
}

// openPosts builds the posts on the named database and creates n of
// them: titles p0, p1, …; every third one never seen, every other one
// without votes.
func openPosts(t *testing.T, db string, n int) (*resource.Resource[post], *resource.Domain) {
	t.Helper()
	layer := testdb.Open(t, db)
	posts := newPosts()
	d, err := resource.NewDomain("pages", posts).Build(t.Context(), layer)
	if err != nil {
		t.Fatal(err)
	}
	if err := layer.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		in := resource.Input{"title": fmt.Sprintf("p%d", i), "secret": "s"}
		if i%3 != 0 {
			in["seen_at"] = base.Add(time.Duration(i%4) * time.Hour)
		}
		if i%2 == 1 {
			in["votes"] = i % 5
		}
		if _, err := posts.Create(t.Context(), d, "create", in); err != nil {
			t.Fatal(err)
		}
	}
	return posts, d
}

func titles(es []*post) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Title
	}
	return out
}

// TestPageNullZero: the zero value of a nullzero attribute is NULL, and
// sorts and pages as NULL does, after every value.
func TestPageNullZero(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			posts, d := openPosts(t, db, 10)
			for _, sort := range [][]resource.Sort{
				{resource.Asc("seen_at")},
				{resource.Desc("seen_at")},
				{resource.Asc("votes"), resource.Desc("seen_at")},
				{resource.Desc("votes"), resource.Asc("seen_at")},
			} {
				full, err := posts.Read(t.Context(), d, "list", nil, resource.SortBy(append(slices.Clone(sort), resource.Asc("id"))...))
				if err != nil {
					t.Fatal(err)
				}
				for i := 1; i < len(full); i++ {
					if c := comparePosts(full[i-1], full[i], sort); c > 0 {
						t.Fatalf("sort %v: %s comes before %s", sort, full[i-1].Title, full[i].Title)
					}
				}
				var walked []string
				req := resource.PageRequest{Limit: 3}
				for {
					p, err := posts.Page(t.Context(), d, "list", nil, req, resource.SortBy(sort...))
					if err != nil {
						t.Fatal(err)
					}
					walked = append(walked, titles(p.Records)...)
					if !p.More {
						break
					}
					req.After = p.Next
				}
				if want := titles(full); !slices.Equal(walked, want) {
					t.Errorf("sort %v: pages %q, want %q", sort, walked, want)
				}
			}
		})
	}
}

// comparePosts compares on sort as kiln orders, NULL (zero) last
// ascending; ties are 0.
func comparePosts(a, b *post, sort []resource.Sort) int {
	for _, s := range sort {
		var c int
		switch s.Attr {
		case "seen_at":
			c = nullLast(a.SeenAt.IsZero(), b.SeenAt.IsZero(), a.SeenAt.Compare(b.SeenAt))
		case "votes":
			c = nullLast(a.Votes == 0, b.Votes == 0, a.Votes-b.Votes)
		}
		if s.Desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

func nullLast(aNull, bNull bool, c int) int {
	switch {
	case aNull && bNull:
		return 0
	case aNull:
		return 1
	case bNull:
		return -1
	}
	return c
}

// wantInvalid fails t unless err is exactly these *ValidationErrors, as
// "field: message".
func wantInvalid(t *testing.T, err error, want ...string) {
	t.Helper()
	if !errors.Is(err, resource.ErrInvalid) {
		t.Fatalf("err = %v, want errors.Is(err, resource.ErrInvalid)", err)
	}
	var got []string
	for _, ve := range resource.ValidationErrors(err) {
		got = append(got, ve.Field+": "+ve.Message)
	}
	if !slices.Equal(got, want) {
		t.Errorf("validation errors:\n got %q\nwant %q", got, want)
	}
}

func TestPageRequestInvalid(t *testing.T) {
	posts, d := openPosts(t, "sqlite", 3)
	first, err := posts.Page(t.Context(), d, "list", nil, resource.PageRequest{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		req  resource.PageRequest
		want []string
	}{
		{"NegativeLimit", resource.PageRequest{Limit: -1}, []string{"limit: must not be negative"}},
		{"NegativeOffset", resource.PageRequest{Offset: -5}, []string{"offset: must not be negative"}},
		{"AfterAndBefore", resource.PageRequest{After: first.Next, Before: first.Prev},
			[]string{"before: cannot be given with after; read one way at a time"}},
		{"OffsetAndCursor", resource.PageRequest{After: first.Next, Offset: 2},
			[]string{"offset: cannot be given with a cursor (after or before)"}},
		{"Several", resource.PageRequest{Limit: -1, Offset: -1},
			[]string{"limit: must not be negative", "offset: must not be negative"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := posts.Page(t.Context(), d, "list", nil, c.req)
			wantInvalid(t, err, c.want...)
		})
	}
}

// TestPageCursorTampered: a cursor changed by hand is refused as input,
// whatever was changed.
func TestPageCursorTampered(t *testing.T) {
	posts, d := openPosts(t, "sqlite", 3)
	sorted := resource.SortBy(resource.Desc("seen_at"))
	first, err := posts.Page(t.Context(), d, "list", nil, resource.PageRequest{Limit: 1}, sorted)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(first.Next)
	if err != nil {
		t.Fatalf("a cursor is not URL-safe base64 without padding: %v", err)
	}
	var c map[string]json.RawMessage
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("a cursor is not JSON: %v", err)
	}
	tamper := func(key, value string) string {
		m := maps.Clone(c)
		if value == "" {
			delete(m, key)
		} else {
			m[key] = json.RawMessage(value)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	notCursor := "after: is not a cursor of this read"
	cases := []struct {
		name, cursor, want string
	}{
		{"Padded", first.Next + "==", notCursor},
		{"NotBase64", first.Next[:len(first.Next)-1] + "*", notCursor},
		{"Truncated", first.Next[:len(first.Next)/2], notCursor},
		{"TooLong", strings.Repeat("A", 5000), notCursor},
		{"TrailingJSON", base64.RawURLEncoding.EncodeToString(append(raw, []byte(" {}")...)), notCursor},
		{"UnknownField", tamper("x", "1"), notCursor},
		{"NextVersion", tamper("v", "2"), "after: was made by another version of kiln; read from the first page"},
		{"OtherOrder", tamper("o", `["seen_at","id"]`), "after: was made for the sort seen_at,id, not this read's -seen_at,id; read from the first page"},
		{"MissingKey", tamper("k", `["2030-01-01T01:00:00Z"]`), notCursor},
		{"WrongType", tamper("k", `["2030-01-01T01:00:00Z","one"]`), notCursor},
		{"NotATime", tamper("k", `["yesterday",1]`), notCursor},
		{"NullPrimaryKey", tamper("k", `[null,null]`), notCursor},
		{"NoKeys", tamper("k", ""), notCursor},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := posts.Page(t.Context(), d, "list", nil, resource.PageRequest{After: tc.cursor}, sorted)
			wantInvalid(t, err, tc.want)
		})
	}
	// A NULL for a nullable key is a place, not a mistake.
	p, err := posts.Page(t.Context(), d, "list", nil, resource.PageRequest{After: tamper("k", `[null,0]`)}, sorted)
	if err != nil {
		t.Fatalf("a cursor at NULL: %v", err)
	}
	if len(p.Records) != 3 {
		t.Errorf("after (NULL, 0) descending: %q, want every post (NULL comes first descending, and ids start at 1)", titles(p.Records))
	}
	// A NUL in a string key is refused before it reaches SQL.
	byTitle := resource.SortBy(resource.Asc("title"))
	titled, err := posts.Page(t.Context(), d, "list", nil, resource.PageRequest{Limit: 1}, byTitle)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = base64.RawURLEncoding.DecodeString(titled.Next)
	withNUL := strings.Replace(string(raw), `"p0"`, `"p\u0000"`, 1)
	_, err = posts.Page(t.Context(), d, "list", nil, resource.PageRequest{After: base64.RawURLEncoding.EncodeToString([]byte(withNUL))}, byTitle)
	wantInvalid(t, err, notCursor)
}

// TestReadUnknownAttribute: a sort or filter given at run time names
// attributes of the resource, or the read is refused as input before any
// SQL is written.
func TestReadUnknownAttribute(t *testing.T) {
	posts, d := openPosts(t, "sqlite", 1)
	_, err := posts.Read(t.Context(), d, "list", nil, resource.SortBy(resource.Asc("titel")))
	wantInvalid(t, err, `sort: unknown attribute "titel"; did you mean "title"?`)
	_, err = posts.Page(t.Context(), d, "list", nil, resource.PageRequest{},
		resource.Where(resource.Or{resource.Eq("votes", 1), resource.Eq(`title"; DROP TABLE posts; --`, "x")}))
	wantInvalid(t, err, `filter: unknown attribute "title\"; DROP TABLE posts; --"; use one of: id, title, seen_at, votes, secret`)
}

func TestPageSensitiveSort(t *testing.T) {
	posts, d := openPosts(t, "sqlite", 1)
	_, err := posts.Page(t.Context(), d, "list", nil, resource.PageRequest{}, resource.SortBy(resource.Asc("secret")))
	wantInvalid(t, err, `sort: cannot page by "secret": the attribute is sensitive, and a cursor would carry its value`)
	// Reading every record sorted by it carries nothing out.
	if _, err := posts.Read(t.Context(), d, "list", nil, resource.SortBy(resource.Asc("secret"))); err != nil {
		t.Errorf("Read sorted by a sensitive attribute: %v", err)
	}
}

func TestPageMisuse(t *testing.T) {
	posts, d := openPosts(t, "sqlite", 1)
	_, err := posts.Page(t.Context(), d, "get", resource.Input{"id": 1}, resource.PageRequest{})
	if !errors.Is(err, resource.ErrWrongActionType) || err.Error() != "kiln/resource: wrong action type: post.get is declared with Get or GetBy and returns one record, not pages" {
		t.Errorf("a page of a Get: %v", err)
	}
	_, err = posts.Page(t.Context(), d, "create", nil, resource.PageRequest{})
	if !errors.Is(err, resource.ErrWrongActionType) {
		t.Errorf("a page of a create: %v, want ErrWrongActionType", err)
	}
	_, err = posts.Page(t.Context(), d, "list", nil, resource.PageRequest{}, resource.Limit(5))
	if err == nil || err.Error() != "kiln/resource: post.list: give a page's Limit and Offset in its PageRequest, not as run options" {
		t.Errorf("a page with Limit: %v", err)
	}
	huge, err := posts.Page(t.Context(), d, "list", nil, resource.PageRequest{Limit: math.MaxInt})
	if err != nil || len(huge.Records) != 1 || huge.More {
		t.Errorf("a page of MaxInt records: %d records, More %v, err %v; want the one record", len(huge.Records), huge.More, err)
	}
	res, err := d.Run(t.Context(), posts, "capped", nil, resource.Paginate(resource.PageRequest{Limit: 100}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Page == nil || res.Page.Limit != 2 || res.Page.More {
		t.Errorf("Domain.Run with Paginate: Page = %+v, want Limit 2 (the Max) and no more", res.Page)
	}
	if recs := res.Records.([]*post); len(recs) != 1 {
		t.Errorf("Domain.Run with Paginate: %d records, want 1", len(recs))
	}
	res, err = d.Run(t.Context(), posts, "list", nil)
	if err != nil || res.Page != nil {
		t.Errorf("Domain.Run without Paginate: Page = %+v, err %v; want nil", res.Page, err)
	}
}

func TestPageSizeBuildErrors(t *testing.T) {
	tests := []struct {
		name string
		decl declared
		want string
	}{
		{
			name: "negative",
			decl: declare(resource.New[post]("post", resource.Actions{
				resource.Read{Name: "list", PageSize: resource.PageSize{Default: -1}},
			})),
			want: `kiln/resource: resource "post": actions -> list -> page_size: is negative; use 0 for the default size, or for no maximum (page_test.go:%d)`,
		},
		{
			name: "default above max",
			decl: declare(resource.New[post]("post", resource.Actions{
				resource.Read{Name: "list", PageSize: resource.PageSize{Default: 50, Max: 20}},
			})),
			want: `kiln/resource: resource "post": actions -> list -> page_size: Default 50 is above Max 20; lower Default or raise Max (page_test.go:%d)`,
		},
		{
			name: "get",
			decl: declare(resource.New[post]("post", resource.Actions{
				resource.Read{Name: "get", GetBy: []string{"id"}, PageSize: resource.PageSize{Max: 20}},
			})),
			want: `kiln/resource: resource "post": actions -> get -> page_size: a read declared with Get or GetBy returns one record, not pages; drop PageSize, or declare another read for many records (page_test.go:%d)`,
		},
		{
			name: "sensitive sort",
			decl: declare(resource.New[post]("post", resource.Actions{
				resource.Read{Name: "list", Sort: []resource.Sort{resource.Asc("secret")}, PageSize: resource.PageSize{Max: 20}},
			})),
			want: `kiln/resource: resource "post": actions -> list -> page_size: pages are sorted by "secret", which is sensitive: a cursor would carry its value; sort by attributes that are not sensitive (page_test.go:%d)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.decl.spec.Build(t.Context(), testdb.SQLite(t))
			if err == nil {
				t.Fatalf("Build succeeded; want %q", fmt.Sprintf(tt.want, tt.decl.line))
			}
			if got, want := err.Error(), fmt.Sprintf(tt.want, tt.decl.line); got != want {
				t.Errorf("error:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func ExampleResource_Page() {
	ctx := context.Background()
	tasks := resource.New[Task]("task",
		resource.Actions{
			resource.Create{Name: "create", Accept: []string{"title", "owner"}},
			resource.Read{Name: "list", Sort: []resource.Sort{resource.Asc("title")},
				PageSize: resource.PageSize{Default: 2, Max: 10}},
		},
	)
	d, closeDB := openTasks(ctx, tasks)
	defer closeDB()
	for _, title := range []string{"dishes", "taxes", "garden", "novel", "bike"} {
		if _, err := tasks.Create(ctx, d, "create", resource.Input{"title": title, "owner": "ada@example.com"}); err != nil {
			log.Fatal(err)
		}
	}
	req := resource.PageRequest{Count: true}
	for {
		page, err := tasks.Page(ctx, d, "list", nil, req)
		if err != nil {
			log.Fatal(err)
		}
		for _, t := range page.Records {
			fmt.Print(t.Title, " ")
		}
		fmt.Printf("(of %d)\n", page.Total)
		if !page.More {
			break
		}
		req.After = page.Next
	}
	// Output:
	// bike dishes (of 5)
	// garden novel (of 5)
	// taxes (of 5)
}
