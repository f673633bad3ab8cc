package resource

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// Filter selects records. Build filters with Eq, Ne, Lt, Le, Gt, Ge, In,
// NotIn, IsNil, NotNil, And, Or and Not; a data layer translates them.
type Filter interface {
	filter()
}

// Op is a comparison operator.
type Op string

// The comparison operators.
const (
	OpEq     Op = "="
	OpNe     Op = "<>"
	OpLt     Op = "<"
	OpLe     Op = "<="
	OpGt     Op = ">"
	OpGe     Op = ">="
	OpIn     Op = "IN"
	OpNotIn  Op = "NOT IN"
	OpIsNil  Op = "IS NULL"
	OpNotNil Op = "IS NOT NULL"
)

// Cmp compares an attribute with a value. By the time a data layer sees it,
// Value is a plain value (for In and NotIn, a slice).
type Cmp struct {
	Attr  string
	Op    Op
	Value any
}

// And matches records that match every filter (all records when empty).
type And []Filter

// Or matches records that match any filter (none when empty).
type Or []Filter

// NotFilter matches records that do not match F.
type NotFilter struct{ F Filter }

func (Cmp) filter()       {}
func (And) filter()       {}
func (Or) filter()        {}
func (NotFilter) filter() {}

// Eq matches attr = v.
func Eq(attr string, v any) Filter { return Cmp{attr, OpEq, v} }

// Ne matches attr <> v.
func Ne(attr string, v any) Filter { return Cmp{attr, OpNe, v} }

// Lt matches attr < v.
func Lt(attr string, v any) Filter { return Cmp{attr, OpLt, v} }

// Le matches attr <= v.
func Le(attr string, v any) Filter { return Cmp{attr, OpLe, v} }

// Gt matches attr > v.
func Gt(attr string, v any) Filter { return Cmp{attr, OpGt, v} }

// Ge matches attr >= v.
func Ge(attr string, v any) Filter { return Cmp{attr, OpGe, v} }

// In matches attr IN values; values is a slice or a Value.
func In(attr string, values any) Filter { return Cmp{attr, OpIn, values} }

// NotIn matches attr NOT IN values.
func NotIn(attr string, values any) Filter { return Cmp{attr, OpNotIn, values} }

// IsNil matches attr IS NULL.
func IsNil(attr string) Filter { return Cmp{attr, OpIsNil, nil} }

// NotNil matches attr IS NOT NULL.
func NotNil(attr string) Filter { return Cmp{attr, OpNotNil, nil} }

// Not negates a filter.
func Not(f Filter) Filter { return NotFilter{f} }

// Value is a filter value resolved when the action runs.
type Value interface {
	resolve(ctx context.Context, args map[string]any) (any, error)
	describe() string
}

// FromArg is the value of the action's argument name.
func FromArg(name string) Value { return argValue(name) }

// FromActor is the value of the actor's field (a Go field name, or a map key
// when the actor is a map). Running with no actor fails the action.
func FromActor(field string) Value { return actorValue(field) }

// CurrentTime is the time the action runs, in UTC.
var CurrentTime Value = nowValue{}

type argValue string

func (v argValue) resolve(_ context.Context, args map[string]any) (any, error) {
	a, ok := args[string(v)]
	if !ok {
		return nil, fmt.Errorf("argument %q was not given", string(v))
	}
	return a, nil
}
func (v argValue) describe() string { return "arg(" + string(v) + ")" }

type actorValue string

func (v actorValue) resolve(ctx context.Context, _ map[string]any) (any, error) {
	actor := ActorFrom(ctx)
	if actor == nil {
		return nil, fmt.Errorf("%w: the filter needs an actor", ErrForbidden)
	}
	rv := reflect.ValueOf(actor)
	for rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Struct:
		f := rv.FieldByName(string(v))
		if !f.IsValid() {
			return nil, fmt.Errorf("the actor %s has no field %s", rv.Type(), string(v))
		}
		return f.Interface(), nil
	case reflect.Map:
		f := rv.MapIndex(reflect.ValueOf(string(v)))
		if !f.IsValid() {
			return nil, fmt.Errorf("the actor has no key %s", string(v))
		}
		return f.Interface(), nil
	}
	return nil, fmt.Errorf("the actor %T has no fields", actor)
}
func (v actorValue) describe() string { return "actor(" + string(v) + ")" }

type nowValue struct{}

func (nowValue) resolve(context.Context, map[string]any) (any, error) {
	return time.Now().UTC(), nil
}
func (nowValue) describe() string { return "now()" }

// resolveFilter replaces Values by what they are in this run.
func resolveFilter(ctx context.Context, f Filter, args map[string]any) (Filter, error) {
	switch f := f.(type) {
	case nil:
		return nil, nil
	case Cmp:
		if v, ok := f.Value.(Value); ok {
			r, err := v.resolve(ctx, args)
			if err != nil {
				return nil, err
			}
			f.Value = r
		}
		return f, nil
	case And:
		out, err := resolveAll(ctx, f, args)
		return And(out), err
	case Or:
		out, err := resolveAll(ctx, f, args)
		return Or(out), err
	case NotFilter:
		r, err := resolveFilter(ctx, f.F, args)
		if err != nil {
			return nil, err
		}
		return NotFilter{r}, nil
	}
	return nil, fmt.Errorf("unknown filter %T", f)
}

// resolveAll resolves each filter of a list.
func resolveAll(ctx context.Context, fs []Filter, args map[string]any) ([]Filter, error) {
	out := make([]Filter, len(fs))
	for i, sub := range fs {
		r, err := resolveFilter(ctx, sub, args)
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}

// walkFilter calls fn for every comparison in f.
func walkFilter(f Filter, fn func(Cmp)) {
	switch f := f.(type) {
	case Cmp:
		fn(f)
	case And:
		for _, sub := range f {
			walkFilter(sub, fn)
		}
	case Or:
		for _, sub := range f {
			walkFilter(sub, fn)
		}
	case NotFilter:
		walkFilter(f.F, fn)
	}
}

// FilterString prints a filter for humans and errors.
func FilterString(f Filter) string {
	switch f := f.(type) {
	case nil:
		return "true"
	case Cmp:
		switch f.Op {
		case OpIsNil, OpNotNil:
			return f.Attr + " " + string(f.Op)
		}
		if v, ok := f.Value.(Value); ok {
			return fmt.Sprintf("%s %s %s", f.Attr, f.Op, v.describe())
		}
		return fmt.Sprintf("%s %s %v", f.Attr, f.Op, f.Value)
	case And, Or:
		var parts []string
		sep := " AND "
		subs := []Filter(nil)
		if a, ok := f.(And); ok {
			subs = a
		} else {
			subs = f.(Or)
			sep = " OR "
		}
		for _, s := range subs {
			parts = append(parts, "("+FilterString(s)+")")
		}
		return strings.Join(parts, sep)
	case NotFilter:
		return "NOT (" + FilterString(f.F) + ")"
	}
	return fmt.Sprintf("%v", f)
}

// Sort orders a read by an attribute. NULL (a nil pointer, the zero value
// of a nullzero attribute) sorts after every value: last ascending, first
// descending, on every data layer.
type Sort struct {
	Attr string
	Desc bool
}

// Asc sorts by attr, ascending.
func Asc(attr string) Sort { return Sort{Attr: attr} }

// Desc sorts by attr, descending.
func Desc(attr string) Sort { return Sort{Attr: attr, Desc: true} }

// Query is a read as the data layer runs it. Preparations receive it and may
// change Filter, Sort, Limit and Offset.
type Query struct {
	Filter Filter
	Sort   []Sort
	Limit  int
	Offset int
	// Lock asks for SELECT … FOR UPDATE where supported.
	Lock bool

	args map[string]any
	cs   *AnyChangeset // the read's, for InputOf
}

// Argument returns the value of a read action's argument.
func (q *Query) Argument(name string) any { return q.args[name] }

// Where adds a filter, and-ed with what is there.
func (q *Query) Where(f Filter) {
	if q.Filter == nil {
		q.Filter = f
		return
	}
	q.Filter = And{q.Filter, f}
}
