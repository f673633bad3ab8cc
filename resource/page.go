package resource

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
)

// DefaultPageSize is the number of records of a page when neither the
// request nor the action's PageSize gives one.
const DefaultPageSize = 50

// PageSize bounds the pages of a read action (Read.PageSize).
type PageSize struct {
	// Default is the size of a page whose request gives no Limit. Zero
	// value: DefaultPageSize, or Max when that is smaller.
	Default int
	// Max is the largest page. A request for more records gets Max of
	// them, and PageInfo.Limit says so: a client that asks too much gets
	// smaller pages, not an error. Zero value: no maximum.
	Max int
}

// PageRequest asks a read action for one page of its records, a plain
// value that can be built from a request's query string. The zero value
// asks for the first page, of the action's default size.
//
// A page is read in the read's sort (the action's Sort, then SortBy's)
// with the primary key appended, so that the order is total: records that
// tie on the sort keep one order, and every record has one place. A
// cursor (PageInfo.Next, PageInfo.Prev) holds that place: the values of
// the sort attributes of a record. Reading After it returns the records
// that follow that place now, so records written since the previous page
// neither shift the next one nor appear twice (keyset pagination). An
// Offset counts records instead, and shifts when records are written
// before the page.
type PageRequest struct {
	// Limit is the number of records of the page. Zero value: the
	// action's PageSize.Default. It is cut to PageSize.Max.
	Limit int
	// After is a cursor, PageInfo.Next of a page: the page holds the
	// records that follow it.
	After string
	// Before is a cursor, PageInfo.Prev of a page: the page holds the
	// records that precede it (the last Limit of them), in the read's
	// order.
	Before string
	// Offset skips that many records (offset pagination). It cannot be
	// combined with After or Before.
	Offset int
	// Count asks for PageInfo.Total: one more statement counts the
	// records the read's filter matches.
	Count bool
}

// PageInfo describes a page that was read.
type PageInfo struct {
	// Limit is the page's size, as asked or as cut to PageSize.Max.
	Limit int
	// Next is the cursor of the page's last record, to read the following
	// page (PageRequest.After); Prev the cursor of its first record, to
	// read the preceding page (PageRequest.Before). Both are empty when
	// the page is empty. Cursors are URL-safe strings without padding.
	Next, Prev string
	// More reports that records follow the page, or, for a page read
	// with Before, that records precede it.
	More bool
	// Total is the number of records the read matches, when the request
	// asked to Count (Counted is then true). It is counted by a statement
	// of its own: writes between the two may make it differ by their
	// number.
	Total   int
	Counted bool
}

// Page is one page of the records of a read action (Resource.Page).
type Page[T any] struct {
	Records []*T
	PageInfo
}

// Paginate makes a read action return one page: RunResult.Records holds its
// records and RunResult.Page describes it. Limit and Offset cannot be given
// with it (the PageRequest has its own). Resource.Page is the typed form.
func Paginate(p PageRequest) RunOption { return func(o *runOptions) { o.page = &p } }

// Page runs a read action for one page of its records (see PageRequest).
// The read's filter, sort and preparations apply as they do for Read; the
// page then sets the query's limit and offset, replacing the action's
// Limit and any a preparation set.
func (r *Resource[T]) Page(ctx context.Context, d *Domain, action string, in Input, p PageRequest, opts ...RunOption) (Page[T], error) {
	res, err := r.run(ctx, d, action, ReadAction, in, append(opts[:len(opts):len(opts)], Paginate(p))...)
	if err != nil {
		return Page[T]{}, err
	}
	return Page[T]{Records: res.Records.([]*T), PageInfo: *res.Page}, nil
}

// checkPaged refuses Paginate where it cannot apply.
func checkPaged(br *builtResource, ba *builtAction, o *runOptions) error {
	if ba.Get {
		return fmt.Errorf("%w: %s.%s is declared with Get or GetBy and returns one record, not pages", ErrWrongActionType, br.decl.Name, ba.Name)
	}
	if o.limit != 0 || o.offset != 0 {
		return fmt.Errorf("kiln/resource: %s.%s: give a page's Limit and Offset in its PageRequest, not as run options", br.decl.Name, ba.Name)
	}
	return nil
}

// checkQuery refuses a read whose sort or filter names an attribute the
// resource does not have, or a path through relationships that leads to
// none, so that names reach the data layer only from the schemas,
// whoever built the sort or the filter.
func checkQuery(cs *AnyChangeset, q *Query) error {
	decl := cs.resource.decl
	var errs []error
	invalid := func(field, problem, fix string) {
		if fix != "" {
			problem += "; " + fix
		}
		errs = append(errs, cs.Invalid(field, problem))
	}
	for _, s := range q.Sort {
		if problem, fix := decl.checkSortPath(s.Attr); problem != "" {
			invalid("sort", problem, fix)
		}
	}
	walkFilter(q.Filter, func(c Cmp) {
		if _, problem, fix := decl.resolvePath(c.Attr); problem != "" {
			invalid("filter", problem, fix)
		}
	})
	return errors.Join(errs...)
}

// readPage runs q for one page of req. q has the read's filter and sort;
// readPage makes its order total, applies the cursor, and reads one record
// more than the page holds to learn whether more follow.
func (d *Domain) readPage(ctx context.Context, cs *AnyChangeset, q *Query, req PageRequest, querier Querier) (*RunResult, error) {
	br := cs.resource
	size, err := pageLimit(cs, req)
	if err != nil {
		return nil, err
	}
	order, err := pageOrder(cs, q.Sort)
	if err != nil {
		return nil, err
	}
	matched := q.Filter // what Total counts: the read's filter, without the cursor's
	scan := order
	field, position := "after", req.After
	if req.Before != "" {
		scan = reversed(order)
		field, position = "before", req.Before
	}
	if position != "" {
		vals, err := decodeCursor(order, position)
		if err != nil {
			return nil, cs.Invalid(field, err.Error())
		}
		q.Where(follows(scan, vals))
	}
	q.Sort = make([]Sort, len(scan))
	for i, k := range scan {
		q.Sort[i] = Sort{Attr: k.attr.Name, Desc: k.desc}
	}
	q.Limit, q.Offset = size+1, req.Offset
	dest := reflect.New(reflect.SliceOf(reflect.PointerTo(br.decl.Type)))
	if err := querier.Select(ctx, br.schema, q, dest.Interface()); err != nil {
		return nil, fmt.Errorf("kiln/resource: %s.%s: %w", br.decl.Name, cs.action.Name, err)
	}
	recs := dest.Elem()
	info := &PageInfo{Limit: size}
	if recs.Len() > size {
		info.More = true
		recs = recs.Slice3(0, size, size)
	}
	if req.Before != "" {
		swap := reflect.Swapper(recs.Interface())
		for i, j := 0, recs.Len()-1; i < j; i, j = i+1, j-1 {
			swap(i, j)
		}
	}
	if n := recs.Len(); n > 0 {
		if info.Prev, err = encodeCursor(order, recs.Index(0).Elem()); err == nil {
			info.Next, err = encodeCursor(order, recs.Index(n-1).Elem())
		}
		if err != nil {
			return nil, fmt.Errorf("kiln/resource: %s.%s: cursor: %w", br.decl.Name, cs.action.Name, err)
		}
	}
	if req.Count {
		n, err := querier.Count(ctx, br.schema, matched)
		if err != nil {
			return nil, fmt.Errorf("kiln/resource: %s.%s: count: %w", br.decl.Name, cs.action.Name, err)
		}
		info.Total, info.Counted = n, true
	}
	return &RunResult{Records: recs.Interface(), Page: info}, nil
}

// pageLimit checks req and returns the size of its page.
func pageLimit(cs *AnyChangeset, req PageRequest) (int, error) {
	var errs []error
	if req.Limit < 0 {
		errs = append(errs, cs.Invalid("limit", "must not be negative"))
	}
	if req.Offset < 0 {
		errs = append(errs, cs.Invalid("offset", "must not be negative"))
	}
	if req.After != "" && req.Before != "" {
		errs = append(errs, cs.Invalid("before", "cannot be given with after; read one way at a time"))
	}
	if req.Offset > 0 && (req.After != "" || req.Before != "") {
		errs = append(errs, cs.Invalid("offset", "cannot be given with a cursor (after or before)"))
	}
	if len(errs) > 0 {
		return 0, errors.Join(errs...)
	}
	bounds := cs.action.PageSize
	size := req.Limit
	if size == 0 {
		size = bounds.Default
	}
	if size == 0 {
		size = DefaultPageSize
	}
	if bounds.Max > 0 && size > bounds.Max {
		size = bounds.Max
	}
	return min(size, math.MaxInt-1), nil // the page reads size+1 records
}

// orderKey is one attribute of a page's order.
type orderKey struct {
	attr *Attribute
	desc bool
}

// pageOrder is the read's sort with the primary key appended: a total
// order. Its attributes go into cursors, so none may be sensitive.
func pageOrder(cs *AnyChangeset, sorts []Sort) ([]orderKey, error) {
	decl := cs.resource.decl
	order := make([]orderKey, 0, len(sorts)+len(cs.resource.schema.PrimaryKey))
	for _, s := range sorts {
		if strings.Contains(s.Attr, ".") {
			return nil, cs.Invalid("sort", fmt.Sprintf("pages cannot be sorted by %q: a cursor holds the record's own attributes; sort pages by attributes of the record", s.Attr))
		}
		order = append(order, orderKey{attr: decl.Attribute(s.Attr), desc: s.Desc})
	}
	for _, pk := range cs.resource.schema.PrimaryKey {
		if !slices.ContainsFunc(sorts, func(s Sort) bool { return s.Attr == pk.Name }) {
			order = append(order, orderKey{attr: pk})
		}
	}
	for _, k := range order {
		if k.attr.Sensitive {
			return nil, cs.Invalid("sort", fmt.Sprintf("cannot page by %q: the attribute is sensitive, and a cursor would carry its value", k.attr.Name))
		}
	}
	return order, nil
}

// reversed is order read backwards: each key in the other direction.
func reversed(order []orderKey) []orderKey {
	out := make([]orderKey, len(order))
	for i, k := range order {
		out[i] = orderKey{attr: k.attr, desc: !k.desc}
	}
	return out
}

// follows matches the records that come after the position vals in order:
// those equal on the first i keys and beyond on key i, for some i. NULL
// sorts after every value, so it is beyond every value ascending, and
// every value is beyond it descending.
func follows(order []orderKey, vals []any) Filter {
	var anyOf Or
	for i, k := range order {
		next, ok := beyond(k, vals[i])
		if !ok {
			continue
		}
		term := make(And, 0, i+1)
		for j := range i {
			term = append(term, same(order[j], vals[j]))
		}
		anyOf = append(anyOf, append(term, next))
	}
	// A bound on the first key alone lets the database start an index
	// scan at the position.
	if first := order[0]; !first.attr.Nullable && vals[0] != nil {
		if first.desc {
			return And{Le(first.attr.Name, vals[0]), anyOf}
		}
		return And{Ge(first.attr.Name, vals[0]), anyOf}
	}
	return anyOf
}

// same matches the records whose key k is v.
func same(k orderKey, v any) Filter {
	if v == nil {
		return IsNil(k.attr.Name)
	}
	return Eq(k.attr.Name, v)
}

// beyond matches the records whose key k comes after v; false when none
// can.
func beyond(k orderKey, v any) (Filter, bool) {
	switch {
	case k.desc && v == nil:
		return NotNil(k.attr.Name), true
	case k.desc:
		return Lt(k.attr.Name, v), true
	case v == nil:
		return nil, false
	case k.attr.Nullable:
		return Or{Gt(k.attr.Name, v), IsNil(k.attr.Name)}, true
	}
	return Gt(k.attr.Name, v), true
}

// cursorVersion is the version of the cursors encodeCursor makes.
const cursorVersion = 1

// maxCursor bounds the length of a cursor decodeCursor reads.
const maxCursor = 4096

// cursor is a position in a page's order, as JSON: the order's attributes
// ("-name" for a descending one), to refuse a cursor of another sort, and
// the values of one record, null for NULL.
type cursor struct {
	Version int               `json:"v"`
	Order   []string          `json:"o"`
	Keys    []json.RawMessage `json:"k"`
}

func orderNames(order []orderKey) []string {
	names := make([]string, len(order))
	for i, k := range order {
		names[i] = k.attr.Name
		if k.desc {
			names[i] = "-" + k.attr.Name
		}
	}
	return names
}

// encodeCursor is the cursor of the record rec (a T) in order.
func encodeCursor(order []orderKey, rec reflect.Value) (string, error) {
	c := cursor{Version: cursorVersion, Order: orderNames(order), Keys: make([]json.RawMessage, len(order))}
	for i, k := range order {
		f := rec.FieldByIndex(k.attr.Index)
		if k.attr.IsNull(f) {
			c.Keys[i] = json.RawMessage("null")
			continue
		}
		b, err := json.Marshal(f.Interface())
		if err != nil {
			return "", fmt.Errorf("attribute %s: %w", k.attr.Name, err)
		}
		c.Keys[i] = b
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// errNotCursor is how every malformed cursor is refused: a client learns
// nothing from the details.
var errNotCursor = errors.New("is not a cursor of this read")

// decodeCursor returns the values of the position s holds in order: nil
// for NULL, else a value of the attribute's type (its element type, for a
// pointer).
func decodeCursor(order []orderKey, s string) ([]any, error) {
	if len(s) > maxCursor {
		return nil, errNotCursor
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errNotCursor
	}
	var c cursor
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || dec.More() {
		return nil, errNotCursor
	}
	if c.Version != cursorVersion {
		return nil, errors.New("was made by another version of kiln; read from the first page")
	}
	if want := orderNames(order); !slices.Equal(c.Order, want) {
		return nil, fmt.Errorf("was made for the sort %s, not this read's %s; read from the first page", strings.Join(c.Order, ","), strings.Join(want, ","))
	}
	if len(c.Keys) != len(order) {
		return nil, errNotCursor
	}
	vals := make([]any, len(order))
	for i, k := range order {
		raw := bytes.TrimSpace(c.Keys[i])
		if string(raw) == "null" {
			if !k.attr.Nullable {
				return nil, errNotCursor
			}
			continue
		}
		t := k.attr.Type
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		v := reflect.New(t)
		if err := json.Unmarshal(raw, v.Interface()); err != nil {
			return nil, errNotCursor
		}
		// Neither database stores a NUL, and inlined in SQL it would cut
		// the statement short.
		if v.Elem().Kind() == reflect.String && strings.IndexByte(v.Elem().String(), 0) >= 0 {
			return nil, errNotCursor
		}
		vals[i] = v.Elem().Interface()
	}
	return vals, nil
}
