package datalayertest

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-go/kiln/resource"
)

// seedPages creates n items for the page checks, coded p00, p01, …: they
// tie on every sort attribute but the primary key, and the nullable ones
// hold NULLs. Strings are lowercase letters, so that every collation
// orders them as Go does.
func (e *env) seedPages(t *testing.T, n int) []*item {
	t.Helper()
	names := []string{"alpha", "bravo", "charlie"}
	notes := []string{"x", "y"}
	out := make([]*item, 0, n)
	for i := range n {
		in := resource.Input{
			"code": fmt.Sprintf("p%02d", i), "name": names[i%3], "rank": i % 4, "active": i%2 == 0,
			"due_at": t0.Add(time.Duration(i%5) * time.Hour),
		}
		if i%3 != 0 {
			in["note"] = notes[i%2]
		}
		if i%4 != 1 {
			in["done_at"] = t0.Add(time.Duration(i%3) * time.Minute)
		}
		out = append(out, e.create(t, "create", in))
	}
	return out
}

// compareAttr compares two items on one attribute as kiln sorts it
// ascending: NULL after every value; ids as the bytes of the UUID, which
// is how both a uuid column and its text form order.
func compareAttr(a, b *item, attr string) int {
	switch attr {
	case "id":
		return bytes.Compare(a.ID[:], b.ID[:])
	case "code":
		return strings.Compare(a.Code, b.Code)
	case "name":
		return strings.Compare(a.Name, b.Name)
	case "rank":
		return cmp.Compare(a.Rank, b.Rank)
	case "active":
		return compareBool(a.Active, b.Active)
	case "note":
		return compareNullable(a.Note, b.Note, strings.Compare)
	case "due_at":
		return a.DueAt.Compare(b.DueAt)
	case "done_at":
		return compareNullable(a.DoneAt, b.DoneAt, time.Time.Compare)
	}
	panic("datalayertest: no comparison for attribute " + attr)
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func compareNullable[T any](a, b *T, compare func(T, T) int) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return compare(*a, *b)
}

// inPageOrder returns the items in the order of a page of that sort: the
// sort, then the primary key.
func inPageOrder(items []*item, order []resource.Sort) []*item {
	out := slices.Clone(items)
	slices.SortFunc(out, func(a, b *item) int {
		for _, s := range order {
			c := compareAttr(a, b, s.Attr)
			if s.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return compareAttr(a, b, "id")
	})
	return out
}

// page reads one page of the action list and fails t on error.
func (e *env) page(t *testing.T, req resource.PageRequest, opts ...resource.RunOption) resource.Page[item] {
	t.Helper()
	p, err := e.items.Page(e.ctx, e.d, "list", nil, req, opts...)
	if err != nil {
		t.Fatalf("page %+v: %v", req, err)
	}
	return p
}

// walk reads the pages of list in that order, size records at a time,
// from after (the first page when empty) to the last page, following
// Next. It fails t when a page is not as pages must be: of the size asked,
// full whenever More says more follow, and never more than the records.
func (e *env) walk(t *testing.T, order []resource.Sort, size int, after string, opts ...resource.RunOption) []resource.Page[item] {
	t.Helper()
	opts = append(slices.Clone(opts), resource.SortBy(order...))
	var pages []resource.Page[item]
	req := resource.PageRequest{Limit: size, After: after}
	for {
		p := e.page(t, req, opts...)
		pages = append(pages, p)
		n := len(pages)
		if p.Limit != size {
			t.Errorf("page %d: Limit = %d, want %d", n, p.Limit, size)
		}
		if len(p.Records) > size {
			t.Fatalf("page %d holds %d records, more than the %d asked", n, len(p.Records), size)
		}
		if p.More && len(p.Records) != size {
			t.Errorf("page %d holds %d records and says More; only the last page may be short", n, len(p.Records))
		}
		if (p.Next == "") != (len(p.Records) == 0) || (p.Prev == "") != (len(p.Records) == 0) {
			t.Errorf("page %d of %d records: Next = %q, Prev = %q; want cursors exactly when it has records", n, len(p.Records), p.Next, p.Prev)
		}
		if !p.More {
			return pages
		}
		if n > 200 {
			t.Fatalf("more than 200 pages: Next does not advance")
		}
		req.After = p.Next
	}
}

// pageCodes is the codes of the records of pages, in order.
func pageCodes(pages []resource.Page[item]) []string {
	var out []string
	for _, p := range pages {
		out = append(out, codes(p.Records)...)
	}
	return out
}

// pageOrders are the orders the page checks read in: each direction,
// mixed directions, ties, NULLs, the primary key alone.
var pageOrders = []struct {
	name string
	sort []resource.Sort
}{
	{"PrimaryKeyOnly", nil},
	{"DescPrimaryKey", []resource.Sort{resource.Desc("id")}},
	{"AscInt", []resource.Sort{resource.Asc("rank")}},
	{"DescInt", []resource.Sort{resource.Desc("rank")}},
	{"AscStringDescInt", []resource.Sort{resource.Asc("name"), resource.Desc("rank")}},
	{"DescBoolAscTime", []resource.Sort{resource.Desc("active"), resource.Asc("due_at")}},
	{"AscNullableString", []resource.Sort{resource.Asc("note")}},
	{"DescNullableStringAscInt", []resource.Sort{resource.Desc("note"), resource.Asc("rank")}},
	{"DescNullableTime", []resource.Sort{resource.Desc("done_at")}},
	{"AscNullableTimeDescString", []resource.Sort{resource.Asc("done_at"), resource.Desc("name")}},
}

func testPage(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	e := newEnv(t, open)
	seeded := e.seedPages(t, 12)
	byCode := map[string]*item{}
	for _, it := range seeded {
		byCode[it.Code] = it
	}

	t.Run("KeysetWalk", func(t *testing.T) {
		for _, o := range pageOrders {
			t.Run(o.name, func(t *testing.T) {
				want := codes(inPageOrder(seeded, o.sort))
				full := codes(e.list(t, resource.SortBy(append(slices.Clone(o.sort), resource.Asc("id"))...)))
				if !slices.Equal(full, want) {
					t.Fatalf("a read sorted by %v then id: got %q, want %q", o.sort, full, want)
				}
				for _, size := range []int{1, 3, 5, 12, 13} {
					pages := e.walk(t, o.sort, size, "")
					if got := pageCodes(pages); !slices.Equal(got, want) {
						t.Fatalf("pages of %d: got %q, want the sorted read %q", size, got, want)
					}
					if wantPages := max(1, (len(want)+size-1)/size); len(pages) != wantPages {
						t.Errorf("pages of %d: %d pages, want %d", size, len(pages), wantPages)
					}
					for _, p := range pages {
						for _, it := range p.Records {
							if d := diffItem(it, byCode[it.Code]); d != "" {
								t.Errorf("item %s on a page differs from the created one: %s", it.Code, d)
							}
						}
					}
					// Back from the last page, Before gives the same pages.
					for k := len(pages) - 1; k > 0; k-- {
						back := e.page(t, resource.PageRequest{Limit: size, Before: pages[k].Prev}, resource.SortBy(o.sort...))
						if got, want := codes(back.Records), codes(pages[k-1].Records); !slices.Equal(got, want) {
							t.Fatalf("pages of %d: before page %d: got %q, want page %d, %q", size, k+1, got, k, want)
						}
						if back.More != (k > 1) {
							t.Errorf("pages of %d: before page %d: More = %v, want %v (records precede it)", size, k+1, back.More, k > 1)
						}
					}
				}
			})
		}
	})

	t.Run("TiesBrokenByPrimaryKey", func(t *testing.T) {
		got := pageCodes(e.walk(t, []resource.Sort{resource.Asc("active")}, 1, ""))
		if len(got) != len(seeded) {
			t.Fatalf("pages of one by active: %d records, want %d: %q", len(got), len(seeded), got)
		}
		for i := 1; i < len(got); i++ {
			a, b := byCode[got[i-1]], byCode[got[i]]
			if a.Active == b.Active && bytes.Compare(a.ID[:], b.ID[:]) >= 0 {
				t.Errorf("%s (id %s) comes before %s (id %s), which ties with it on active: want ids ascending", a.Code, a.ID, b.Code, b.ID)
			}
		}
	})

	t.Run("Offset", func(t *testing.T) {
		order := resource.SortBy(resource.Desc("rank"), resource.Asc("name"))
		want := codes(inPageOrder(seeded, []resource.Sort{resource.Desc("rank"), resource.Asc("name")}))
		var got []string
		for i, offset := range []int{0, 5, 10} {
			p := e.page(t, resource.PageRequest{Limit: 5, Offset: offset}, order)
			got = append(got, codes(p.Records)...)
			if wantMore := i < 2; p.More != wantMore {
				t.Errorf("offset %d: More = %v, want %v", offset, p.More, wantMore)
			}
			// An offset page's Next continues it as a cursor would.
			if i == 0 {
				next := e.page(t, resource.PageRequest{Limit: 5, After: p.Next}, order)
				if !slices.Equal(codes(next.Records), want[5:10]) {
					t.Errorf("after the offset page: got %q, want %q", codes(next.Records), want[5:10])
				}
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("offset pages of 5: got %q, want %q", got, want)
		}
		past := e.page(t, resource.PageRequest{Limit: 5, Offset: len(seeded)}, order)
		if len(past.Records) != 0 || past.More || past.Next != "" || past.Prev != "" {
			t.Errorf("offset past the end: %d records, More %v, Next %q, Prev %q; want an empty page", len(past.Records), past.More, past.Next, past.Prev)
		}
		all := e.page(t, resource.PageRequest{Limit: len(seeded)}, order)
		if len(all.Records) != len(seeded) || all.More {
			t.Errorf("a page of every record: %d records, More %v; want %d and no more", len(all.Records), all.More, len(seeded))
		}
	})

	t.Run("Total", func(t *testing.T) {
		active := resource.Where(resource.Eq("active", true))
		sorted := resource.SortBy(resource.Asc("rank"))
		first := e.page(t, resource.PageRequest{Limit: 4, Count: true}, active, sorted)
		if !first.Counted || first.Total != 6 {
			t.Errorf("first page of active items: Total = %d (Counted %v), want 6", first.Total, first.Counted)
		}
		second := e.page(t, resource.PageRequest{Limit: 4, After: first.Next, Count: true}, active, sorted)
		if !second.Counted || second.Total != 6 {
			t.Errorf("second page: Total = %d (Counted %v), want 6: the total ignores the cursor", second.Total, second.Counted)
		}
		if len(second.Records) != 2 || second.More {
			t.Errorf("second page: %d records, More %v; want the last 2", len(second.Records), second.More)
		}
		for _, it := range append(first.Records, second.Records...) {
			if !it.Active {
				t.Errorf("item %s is not active", it.Code)
			}
		}
		uncounted := e.page(t, resource.PageRequest{Limit: 4}, active)
		if uncounted.Counted || uncounted.Total != 0 {
			t.Errorf("without Count: Total = %d, Counted = %v; want 0, false", uncounted.Total, uncounted.Counted)
		}
		none := e.page(t, resource.PageRequest{Count: true}, resource.Where(resource.Eq("rank", 99)))
		if !none.Counted || none.Total != 0 || len(none.Records) != 0 {
			t.Errorf("counting no match: Total = %d (Counted %v), %d records; want 0, true, 0", none.Total, none.Counted, len(none.Records))
		}
		everything := e.page(t, resource.PageRequest{Limit: 1, Count: true})
		if everything.Total != len(seeded) {
			t.Errorf("counting without a filter: Total = %d, want %d", everything.Total, len(seeded))
		}
	})

	t.Run("PageSize", func(t *testing.T) {
		// pages declares PageSize{Default: 2, Max: 3}.
		cases := []struct{ limit, want int }{{0, 2}, {1, 1}, {3, 3}, {10, 3}}
		for _, c := range cases {
			p, err := e.items.Page(e.ctx, e.d, "pages", nil, resource.PageRequest{Limit: c.limit})
			if err != nil {
				t.Fatal(err)
			}
			if p.Limit != c.want || len(p.Records) != c.want || !p.More {
				t.Errorf("Limit %d: page Limit %d with %d records (More %v), want %d records and more", c.limit, p.Limit, len(p.Records), p.More, c.want)
			}
		}
	})

	t.Run("BadCursor", func(t *testing.T) {
		byRank := resource.SortBy(resource.Asc("rank"))
		good := e.page(t, resource.PageRequest{Limit: 2}, byRank)
		cases := []struct {
			name  string
			req   resource.PageRequest
			opts  []resource.RunOption
			field string
			says  string
		}{
			{"Garbage", resource.PageRequest{After: "not a cursor!"}, []resource.RunOption{byRank}, "after", "is not a cursor of this read"},
			{"GarbageBefore", resource.PageRequest{Before: "%%%"}, []resource.RunOption{byRank}, "before", "is not a cursor of this read"},
			{"EmptyJSON", resource.PageRequest{After: base64.RawURLEncoding.EncodeToString([]byte("{}"))}, []resource.RunOption{byRank}, "after", "another version"},
			{"NotJSON", resource.PageRequest{After: base64.RawURLEncoding.EncodeToString([]byte("rank=1"))}, []resource.RunOption{byRank}, "after", "is not a cursor of this read"},
			{"AnotherSort", resource.PageRequest{After: good.Next}, []resource.RunOption{resource.SortBy(resource.Asc("name"))}, "after", "was made for the sort"},
			{"AnotherDirection", resource.PageRequest{Before: good.Prev}, []resource.RunOption{resource.SortBy(resource.Desc("rank"))}, "before", "was made for the sort"},
			{"NoSort", resource.PageRequest{After: good.Next}, nil, "after", "was made for the sort"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				_, err := e.items.Page(e.ctx, e.d, "list", nil, c.req, c.opts...)
				if !errors.Is(err, resource.ErrInvalid) {
					t.Fatalf("err = %v, want errors.Is(err, resource.ErrInvalid)", err)
				}
				ves := resource.ValidationErrors(err)
				if len(ves) != 1 || ves[0].Field != c.field || !strings.Contains(ves[0].Message, c.says) {
					t.Fatalf("err = %v, want one *ValidationError on %s saying %q", err, c.field, c.says)
				}
			})
		}
	})

	t.Run("StableUnderWrites", func(t *testing.T) { testPageStable(t, open) })
}

// testPageStable checks that a cursor keeps its place while records are
// written: created before it, after it, and the record it was made from
// destroyed.
func testPageStable(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	e := newEnv(t, open)
	seeded := e.seedPages(t, 12)
	order := []resource.Sort{resource.Asc("rank")}
	want := codes(inPageOrder(seeded, order))
	first := e.page(t, resource.PageRequest{Limit: 4}, resource.SortBy(order...))
	if got := codes(first.Records); !slices.Equal(got, want[:4]) {
		t.Fatalf("first page: got %q, want %q", got, want[:4])
	}
	for code, rank := range map[string]int{"q00": -1, "q01": 0, "q02": 0, "q03": 9} {
		e.create(t, "create", resource.Input{"code": code, "name": "zulu", "rank": rank, "due_at": t0})
	}
	if err := e.items.Destroy(e.ctx, e.d, "destroy", first.Records[3], nil); err != nil {
		t.Fatal(err)
	}
	rest := pageCodes(e.walk(t, order, 4, first.Next))
	if wantRest := append(slices.Clone(want[4:]), "q03"); !slices.Equal(rest, wantRest) {
		t.Errorf("after records were created before the cursor and its record destroyed: got %q, want %q (what followed it, then the record created after)", rest, wantRest)
	}
}
