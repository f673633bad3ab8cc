package datalayertest

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kiln-go/kiln/resource"
)

// t0 is the base of the seeded items' times.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)

// india is a zone east of UTC: filter values given in it must compare
// as the instants they are.
var india = time.FixedZone("UTC+05:30", 5*3600+30*60)

// seed creates five items, a to e, with ranks 1 to 5, due at t0 plus their
// rank in hours, active when the rank is odd, with a note when the rank is
// odd, and done when the rank is at most 3.
func (e *env) seed(t *testing.T) map[string]*item {
	t.Helper()
	names := []string{"alpha", "bravo", "charlie", "delta", "echo"}
	out := map[string]*item{}
	for i, name := range names {
		rank := i + 1
		code := string(rune('a' + i))
		in := resource.Input{
			"code": code, "name": name, "rank": rank, "active": rank%2 == 1,
			"due_at": t0.Add(time.Duration(rank) * time.Hour),
		}
		if rank%2 == 1 {
			in["note"] = "note " + code
		}
		if rank <= 3 {
			in["done_at"] = t0.Add(time.Duration(rank) * time.Minute)
		}
		out[code] = e.create(t, "create", in)
	}
	return out
}

func testSelect(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	e := newEnv(t, open)
	seeded := e.seed(t)
	all := []string{"a", "b", "c", "d", "e"}

	t.Run("Filter", func(t *testing.T) {
		cases := []struct {
			name   string
			filter resource.Filter
			want   []string
		}{
			{"EqInt", resource.Eq("rank", 3), []string{"c"}},
			{"EqString", resource.Eq("name", "delta"), []string{"d"}},
			{"EqBoolFalse", resource.Eq("active", false), []string{"b", "d"}},
			{"EqBoolTrue", resource.Eq("active", true), []string{"a", "c", "e"}},
			{"EqUUID", resource.Eq("id", seeded["c"].ID), []string{"c"}},
			{"EqTimeInOtherZone", resource.Eq("due_at", t0.Add(3*time.Hour).In(india)), []string{"c"}},
			{"NeInt", resource.Ne("rank", 3), []string{"a", "b", "d", "e"}},
			{"NeString", resource.Ne("code", "a"), []string{"b", "c", "d", "e"}},
			{"LtInt", resource.Lt("rank", 3), []string{"a", "b"}},
			{"LeInt", resource.Le("rank", 3), []string{"a", "b", "c"}},
			{"GtInt", resource.Gt("rank", 3), []string{"d", "e"}},
			{"GeInt", resource.Ge("rank", 3), []string{"c", "d", "e"}},
			{"GtString", resource.Gt("name", "charlie"), []string{"d", "e"}},
			{"LtTimeInOtherZone", resource.Lt("due_at", t0.Add(150*time.Minute).In(india)), []string{"a", "b"}},
			{"GeTime", resource.Ge("due_at", t0.Add(4*time.Hour)), []string{"d", "e"}},
			{"LeNullableTime", resource.Le("done_at", t0.Add(2*time.Minute)), []string{"a", "b"}},
			{"InInt", resource.In("rank", []int{1, 5}), []string{"a", "e"}},
			{"InString", resource.In("code", []string{"b", "d", "zzz"}), []string{"b", "d"}},
			{"InUUID", resource.In("id", []uuid.UUID{seeded["a"].ID, seeded["e"].ID, uuid.New()}), []string{"a", "e"}},
			{"InEmpty", resource.In("rank", []int{}), nil},
			{"NotInInt", resource.NotIn("rank", []int{1, 2}), []string{"c", "d", "e"}},
			{"NotInEmpty", resource.NotIn("rank", []int{}), all},
			{"NotInEmptyStrings", resource.NotIn("code", []string{}), all},
			{"IsNil", resource.IsNil("note"), []string{"b", "d"}},
			{"NotNil", resource.NotNil("note"), []string{"a", "c", "e"}},
			{"IsNilTime", resource.IsNil("done_at"), []string{"d", "e"}},
			{"NotNilTime", resource.NotNil("done_at"), []string{"a", "b", "c"}},
			{"And", resource.And{resource.Ge("rank", 2), resource.Eq("active", true)}, []string{"c", "e"}},
			{"AndEmpty", resource.And{}, all},
			{"Or", resource.Or{resource.Eq("rank", 1), resource.Eq("rank", 5)}, []string{"a", "e"}},
			{"OrEmpty", resource.Or{}, nil},
			{"Not", resource.Not(resource.Eq("active", true)), []string{"b", "d"}},
			{"NotIn", resource.Not(resource.In("rank", []int{1, 2, 3})), []string{"d", "e"}},
			{"NotNot", resource.Not(resource.Not(resource.Eq("rank", 2))), []string{"b"}},
			{"NotAndEmpty", resource.Not(resource.And{}), nil},
			{"NotOrEmpty", resource.Not(resource.Or{}), all},
			{"NotIsNil", resource.Not(resource.IsNil("note")), []string{"a", "c", "e"}},
			{"Nested", resource.Or{
				resource.And{resource.Gt("rank", 1), resource.IsNil("note")},
				resource.Not(resource.Ne("code", "a")),
			}, []string{"a", "b", "d"}},
			{"NestedDeep", resource.And{
				resource.Not(resource.Or{resource.Eq("code", "a"), resource.Eq("code", "b")}),
				resource.Or{resource.Lt("rank", 4), resource.NotNil("note")},
			}, []string{"c", "e"}},
			{"OrOfAndsWithIn", resource.Or{
				resource.And{resource.In("rank", []int{1, 2, 3}), resource.Eq("active", false)},
				resource.And{resource.NotIn("code", []string{"a", "b", "c", "d"}), resource.NotNil("note")},
			}, []string{"b", "e"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				got := sortedCodes(e.list(t, resource.Where(c.filter)))
				if !slices.Equal(got, c.want) {
					t.Errorf("filter %s: got %q, want %q", resource.FilterString(c.filter), got, c.want)
				}
			})
		}
	})

	t.Run("NoFilterReadsAll", func(t *testing.T) {
		got := e.list(t)
		if !slices.Equal(sortedCodes(got), all) {
			t.Fatalf("got %q, want %q", sortedCodes(got), all)
		}
		for _, it := range got {
			if d := diffItem(it, seeded[it.Code]); d != "" {
				t.Errorf("item %s read back differs from the created one: %s", it.Code, d)
			}
		}
	})

	t.Run("Sort", func(t *testing.T) {
		cases := []struct {
			name string
			sort []resource.Sort
			want []string
		}{
			{"AscInt", []resource.Sort{resource.Asc("rank")}, []string{"a", "b", "c", "d", "e"}},
			{"DescInt", []resource.Sort{resource.Desc("rank")}, []string{"e", "d", "c", "b", "a"}},
			{"DescString", []resource.Sort{resource.Desc("name")}, []string{"e", "d", "c", "b", "a"}},
			{"DescTime", []resource.Sort{resource.Desc("due_at")}, []string{"e", "d", "c", "b", "a"}},
			{"AscTime", []resource.Sort{resource.Asc("due_at")}, []string{"a", "b", "c", "d", "e"}},
			{"BoolThenDescInt", []resource.Sort{resource.Asc("active"), resource.Desc("rank")}, []string{"d", "b", "e", "c", "a"}},
			{"DescBoolThenAscInt", []resource.Sort{resource.Desc("active"), resource.Asc("rank")}, []string{"a", "c", "e", "b", "d"}},
			// NULL sorts after every value: last ascending, first descending.
			{"AscNullableString", []resource.Sort{resource.Asc("note"), resource.Asc("code")}, []string{"a", "c", "e", "b", "d"}},
			{"DescNullableString", []resource.Sort{resource.Desc("note"), resource.Asc("code")}, []string{"b", "d", "e", "c", "a"}},
			{"AscNullableTime", []resource.Sort{resource.Asc("done_at"), resource.Desc("code")}, []string{"a", "b", "c", "e", "d"}},
			{"DescNullableTime", []resource.Sort{resource.Desc("done_at"), resource.Asc("code")}, []string{"d", "e", "c", "b", "a"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				got := codes(e.list(t, resource.SortBy(c.sort...)))
				if !slices.Equal(got, c.want) {
					t.Errorf("sort %v: got %q, want %q", c.sort, got, c.want)
				}
			})
		}
	})

	t.Run("LimitOffset", func(t *testing.T) {
		asc := resource.SortBy(resource.Asc("rank"))
		cases := []struct {
			name string
			opts []resource.RunOption
			want []string
		}{
			{"Limit", []resource.RunOption{asc, resource.Limit(2)}, []string{"a", "b"}},
			{"LimitAboveCount", []resource.RunOption{asc, resource.Limit(10)}, []string{"a", "b", "c", "d", "e"}},
			{"LimitOffset", []resource.RunOption{asc, resource.Limit(2), resource.Offset(2)}, []string{"c", "d"}},
			{"LimitOffsetDesc", []resource.RunOption{resource.SortBy(resource.Desc("rank")), resource.Limit(2), resource.Offset(1)}, []string{"d", "c"}},
			{"OffsetWithoutLimit", []resource.RunOption{asc, resource.Offset(3)}, []string{"d", "e"}},
			{"OffsetPastEnd", []resource.RunOption{asc, resource.Offset(10)}, nil},
			{"LimitWithFilter", []resource.RunOption{asc, resource.Where(resource.Ne("rank", 1)), resource.Limit(2)}, []string{"b", "c"}},
			{"LimitOffsetWithFilter", []resource.RunOption{asc, resource.Where(resource.Eq("active", true)), resource.Limit(1), resource.Offset(1)}, []string{"c"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				got := codes(e.list(t, c.opts...))
				if !slices.Equal(got, c.want) {
					t.Errorf("got %q, want %q", got, c.want)
				}
			})
		}
	})
}

func testGet(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	e := newEnv(t, open)
	seeded := e.seed(t)
	c := seeded["c"]
	want, err := e.tags.Create(e.ctx, e.d, "create", resource.Input{"key": "k1", "scope": "s", "label": "l"})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("ByIdentity", func(t *testing.T) {
		got, err := e.items.Get(e.ctx, e.d, "by_code", resource.Input{"code": "c"})
		if err != nil {
			t.Fatal(err)
		}
		if d := diffItem(got, c); d != "" {
			t.Errorf("by_code c: %s", d)
		}
	})
	t.Run("ByPrimaryKey", func(t *testing.T) {
		got, err := e.items.Get(e.ctx, e.d, "by_id", resource.Input{"id": c.ID})
		if err != nil {
			t.Fatal(err)
		}
		if d := diffItem(got, c); d != "" {
			t.Errorf("by_id: %s", d)
		}
	})
	t.Run("ByPrimaryKeyAsString", func(t *testing.T) {
		got, err := e.items.Get(e.ctx, e.d, "by_id", resource.Input{"id": c.ID.String()})
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != c.ID {
			t.Errorf("by_id %s: got %s", c.ID, got.ID)
		}
	})
	t.Run("ByStringPrimaryKey", func(t *testing.T) {
		got, err := e.tags.Get(e.ctx, e.d, "by_key", resource.Input{"key": "k1"})
		if err != nil {
			t.Fatal(err)
		}
		if *got != *want {
			t.Errorf("by_key k1 = %+v, want %+v", *got, *want)
		}
	})
	t.Run("MissingIdentity", func(t *testing.T) {
		_, err := e.items.Get(e.ctx, e.d, "by_code", resource.Input{"code": "zzz"})
		wantNotFound(t, err, "dlt_item", "by_code")
	})
	t.Run("MissingPrimaryKey", func(t *testing.T) {
		_, err := e.items.Get(e.ctx, e.d, "by_id", resource.Input{"id": uuid.New()})
		wantNotFound(t, err, "dlt_item", "by_id")
	})
	t.Run("MissingStringPrimaryKey", func(t *testing.T) {
		_, err := e.tags.Get(e.ctx, e.d, "by_key", resource.Input{"key": "nope"})
		wantNotFound(t, err, "dlt_tag", "by_key")
	})
}
