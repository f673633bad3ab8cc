package resource

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Load makes a read load relationships of the records it returns, each
// into the record's field for it (see Relationships): Load("author",
// "comments"). A path loads through relationships: "comments.author" loads
// the comments, then their authors. Each relationship is read with one
// statement however many records the read returns (two for a many-to-many
// relationship: the join resource's records, then the destinations'), so
// that reading a page of posts with their authors and comments takes three
// statements, not one per post.
//
// A to-one field is left nil when no record relates; a to-many field is
// set to an empty slice, so that nil means "not loaded". Records that
// relate to the same record share one *T. An unknown relationship, or one
// the record struct has no field for, fails the read with a
// *ValidationError on "load" before any statement runs.
func Load(paths ...string) RunOption {
	return func(o *runOptions) { o.load = append(o.load, paths...) }
}

// loadNode is one relationship to load, with what to load through it.
type loadNode struct {
	rel  *RelationshipSchema
	next []*loadNode
}

// loadPlan turns Load's paths into a tree of relationships, refusing an
// unknown one and one without a field to load into.
func loadPlan(cs *AnyChangeset, paths []string) ([]*loadNode, error) {
	var roots []*loadNode
	var errs []error
	for _, path := range paths {
		nodes := &roots
		s := cs.resource.schema
		for _, name := range strings.Split(path, ".") {
			r := s.Relationship(name)
			if r == nil {
				errs = append(errs, cs.Invalid("load", fmt.Sprintf("unknown relationship %q of %s in %q%s", name, s.Resource, path, suggestion(name, relationshipNames(s)))))
				break
			}
			if r.Field == nil {
				errs = append(errs, cs.Invalid("load", fmt.Sprintf("%s has no field for relationship %q; add the field %s %s `bun:\"-\"` to %s",
					s.Resource, name, goFieldName(name), relationshipFieldType(r.Kind, r.Destination.Type), s.Type)))
				break
			}
			i := slices.IndexFunc(*nodes, func(n *loadNode) bool { return n.rel == r })
			if i < 0 {
				*nodes = append(*nodes, &loadNode{rel: r})
				i = len(*nodes) - 1
			}
			nodes, s = &(*nodes)[i].next, r.Destination
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return roots, nil
}

func relationshipNames(s *Schema) []string {
	names := make([]string, len(s.Relationships))
	for i, r := range s.Relationships {
		names[i] = r.Name
	}
	return names
}

// load loads the relationships of plan into recs, a []*T of s, with one
// Select per relationship (two for a many-to-many one), then what the
// paths load through them.
func load(ctx context.Context, q Querier, s *Schema, recs reflect.Value, plan []*loadNode) error {
	for _, n := range plan {
		loaded, err := loadRelationship(ctx, q, n.rel, recs)
		if err != nil {
			return fmt.Errorf("load %s: %w", n.rel.Name, err)
		}
		if len(n.next) > 0 && loaded.Len() > 0 {
			if err := load(ctx, q, n.rel.Destination, loaded, n.next); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadRelationship loads r into every record of recs and returns the
// records it read.
func loadRelationship(ctx context.Context, q Querier, r *RelationshipSchema, recs reflect.Value) (reflect.Value, error) {
	keys, keyed := keysOf(recs, r.Attribute)
	if r.Kind == ManyToManyRelationship {
		return loadThrough(ctx, q, r, recs, keys, keyed)
	}
	var dest reflect.Value
	if len(keys) == 0 {
		dest = reflect.MakeSlice(reflect.SliceOf(reflect.PointerTo(r.Destination.Type)), 0, 0)
	} else {
		var err error
		dest, err = selectIn(ctx, q, r.Destination, r.DestinationAttribute, keys, r.Sort)
		if err != nil {
			return reflect.Value{}, err
		}
	}
	byKey := map[any][]reflect.Value{}
	for i := range dest.Len() {
		if k, ok := keyOf(dest.Index(i), r.DestinationAttribute); ok {
			byKey[k] = append(byKey[k], dest.Index(i))
		}
	}
	for i := range recs.Len() {
		rec := recs.Index(i)
		assign(rec.Elem().FieldByIndex(r.Field), r.Kind, byKey[keyed[i]])
	}
	return dest, nil
}

// loadThrough loads a many-to-many relationship: the join records of recs'
// keys, then the destinations they hold the keys of.
func loadThrough(ctx context.Context, q Querier, r *RelationshipSchema, recs reflect.Value, keys []any, keyed []any) (reflect.Value, error) {
	links := reflect.MakeSlice(reflect.SliceOf(reflect.PointerTo(r.Through.Type)), 0, 0)
	if len(keys) > 0 {
		var err error
		if links, err = selectIn(ctx, q, r.Through, r.SourceAttributeOnJoin, keys, nil); err != nil {
			return reflect.Value{}, err
		}
	}
	// linked[source key] lists the keys of the destinations it links to.
	linked := map[any][]any{}
	for i := range links.Len() {
		src, ok1 := keyOf(links.Index(i), r.SourceAttributeOnJoin)
		dst, ok2 := keyOf(links.Index(i), r.DestinationAttributeOnJoin)
		if ok1 && ok2 && !slices.Contains(linked[src], dst) {
			linked[src] = append(linked[src], dst)
		}
	}
	destKeys, _ := keysOf(links, r.DestinationAttributeOnJoin)
	dest := reflect.MakeSlice(reflect.SliceOf(reflect.PointerTo(r.Destination.Type)), 0, 0)
	if len(destKeys) > 0 {
		var err error
		if dest, err = selectIn(ctx, q, r.Destination, r.DestinationAttribute, destKeys, r.Sort); err != nil {
			return reflect.Value{}, err
		}
	}
	// Each record's destinations go in the order they were read in.
	at := make(map[any]int, dest.Len())
	for j := range dest.Len() {
		if k, ok := keyOf(dest.Index(j), r.DestinationAttribute); ok {
			at[k] = j
		}
	}
	for i := range recs.Len() {
		var positions []int
		for _, k := range linked[keyed[i]] {
			if j, ok := at[k]; ok {
				positions = append(positions, j)
			}
		}
		slices.Sort(positions)
		related := make([]reflect.Value, len(positions))
		for n, j := range positions {
			related[n] = dest.Index(j)
		}
		assign(recs.Index(i).Elem().FieldByIndex(r.Field), r.Kind, related)
	}
	return dest, nil
}

// selectIn reads the records of s whose attribute a is one of keys, in the
// order of sorts, then of the primary key.
func selectIn(ctx context.Context, q Querier, s *Schema, a *Attribute, keys []any, sorts []Sort) (reflect.Value, error) {
	order := slices.Clone(sorts)
	for _, pk := range s.PrimaryKey {
		order = append(order, Asc(pk.Name))
	}
	dest := reflect.New(reflect.SliceOf(reflect.PointerTo(s.Type)))
	if err := q.Select(ctx, s, &Query{Filter: In(a.Name, keys), Sort: order}, dest.Interface()); err != nil {
		return reflect.Value{}, err
	}
	return dest.Elem(), nil
}

// keysOf returns the distinct keys that the records recs (a []*T) hold in
// attribute a, in the order first seen, and each record's key (nil for a
// NULL).
func keysOf(recs reflect.Value, a *Attribute) (keys []any, keyed []any) {
	seen := map[any]bool{}
	keyed = make([]any, recs.Len())
	for i := range recs.Len() {
		k, ok := keyOf(recs.Index(i), a)
		if !ok {
			continue
		}
		keyed[i] = k
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys, keyed
}

// keyOf is the value of attribute a of rec (a *T) as a map key: the value
// a pointer points at; false for NULL.
func keyOf(rec reflect.Value, a *Attribute) (any, bool) {
	f := rec.Elem().FieldByIndex(a.Index)
	if a.IsNull(f) {
		return nil, false
	}
	if f.Kind() == reflect.Pointer {
		f = f.Elem()
	}
	return f.Interface(), true
}

// assign sets a record's relationship field to the records related to it.
func assign(field reflect.Value, kind RelationshipKind, related []reflect.Value) {
	if !kind.ToMany() {
		if len(related) > 0 {
			field.Set(related[0])
		} else {
			field.SetZero()
		}
		return
	}
	s := reflect.MakeSlice(field.Type(), len(related), len(related))
	for i, r := range related {
		s.Index(i).Set(r)
	}
	field.Set(s)
}
