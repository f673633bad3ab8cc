package bunlayer

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/kiln-go/kiln/resource"
)

// scope is a table that a filter or a sort is written for: the query's own
// (alias "": its columns unqualified, and ?TableAlias to a subquery), or
// the table of a related record in a subquery (alias kiln_<depth>).
type scope struct {
	s     *resource.Schema
	alias string
	depth int
}

// column is the column a of the scope's table, with its placeholders'
// arguments.
func (sc scope) column(a string) (string, []any) {
	if sc.alias == "" {
		return "?", []any{bun.Ident(a)}
	}
	return "?.?", []any{bun.Ident(sc.alias), bun.Ident(a)}
}

// outer is the column a of the scope's table as a subquery names it.
func (sc scope) outer(a string) (string, []any) {
	if sc.alias == "" {
		return "?TableAlias.?", []any{bun.Ident(a)}
	}
	return sc.column(a)
}

// related is the subquery of the relationship name, from its FROM on: the
// tables and the condition that ties the destination's record to the
// scope's, and the scope of the destination's table. A many-to-many
// relationship joins the join table to the destination's.
func (sc scope) related(name string) (string, []any, scope, *resource.RelationshipSchema, error) {
	r := sc.s.Relationship(name)
	if r == nil {
		return "", nil, scope{}, nil, fmt.Errorf("kiln/bunlayer: %s has no relationship %q", sc.s.Resource, name)
	}
	inner := scope{s: r.Destination, alias: fmt.Sprintf("kiln_%d", sc.depth+1), depth: sc.depth + 1}
	key, keyArgs := sc.outer(r.Attribute.Name)
	dest, alias := bun.Ident(r.Destination.Table), bun.Ident(inner.alias)
	if r.Kind == resource.ManyToManyRelationship {
		join := bun.Ident(inner.alias + "_join")
		args := []any{bun.Ident(r.Through.Table), join, dest, alias, alias, bun.Ident(r.DestinationAttribute.Name),
			join, bun.Ident(r.DestinationAttributeOnJoin.Name), join, bun.Ident(r.SourceAttributeOnJoin.Name)}
		return "? AS ? JOIN ? AS ? ON ?.? = ?.? WHERE ?.? = " + key, append(args, keyArgs...), inner, r, nil
	}
	args := []any{dest, alias, alias, bun.Ident(r.DestinationAttribute.Name)}
	return "? AS ? WHERE ?.? = " + key, append(args, keyArgs...), inner, r, nil
}

// whereSQL translates a filter on the records of s to a WHERE clause with
// bun placeholders.
func whereSQL(s *resource.Schema, f resource.Filter) (string, []any, error) {
	var b strings.Builder
	var args []any
	if err := appendFilter(&b, &args, scope{s: s}, f); err != nil {
		return "", nil, err
	}
	if len(args) == 0 {
		args = nil // bun warns about empty args without placeholders
	}
	return b.String(), args, nil
}

func appendFilter(b *strings.Builder, args *[]any, sc scope, f resource.Filter) error {
	switch f := f.(type) {
	case nil:
		b.WriteString("TRUE")
	case resource.Cmp:
		if name, rest, through := strings.Cut(f.Attr, "."); through {
			// A comparison through a relationship matches when a related
			// record matches.
			from, fargs, inner, _, err := sc.related(name)
			if err != nil {
				return err
			}
			b.WriteString("EXISTS (SELECT 1 FROM " + from + " AND (")
			*args = append(*args, fargs...)
			f.Attr = rest
			if err := appendFilter(b, args, inner, f); err != nil {
				return err
			}
			b.WriteString("))")
			return nil
		}
		col, cargs := sc.column(f.Attr)
		switch f.Op {
		case resource.OpIsNil, resource.OpNotNil:
			b.WriteString(col + " " + string(f.Op))
			*args = append(*args, cargs...)
		case resource.OpIn, resource.OpNotIn:
			rv := reflect.ValueOf(f.Value)
			if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
				return fmt.Errorf("kiln/bunlayer: %s %s needs a slice, not %T", f.Attr, f.Op, f.Value)
			}
			if rv.Len() == 0 {
				if f.Op == resource.OpIn {
					b.WriteString("FALSE")
				} else {
					b.WriteString("TRUE")
				}
				return nil
			}
			vals := make([]any, rv.Len())
			for i := range vals {
				vals[i] = normalize(rv.Index(i).Interface())
			}
			b.WriteString(col + " " + string(f.Op) + " (?)")
			*args = append(append(*args, cargs...), bun.List(vals))
		case resource.OpEq, resource.OpNe, resource.OpLt, resource.OpLe, resource.OpGt, resource.OpGe:
			if f.Value == nil {
				return fmt.Errorf("kiln/bunlayer: %s %s nil: use resource.IsNil or NotNil", f.Attr, f.Op)
			}
			b.WriteString(col + " " + string(f.Op) + " ?")
			*args = append(append(*args, cargs...), normalize(f.Value))
		default:
			return fmt.Errorf("kiln/bunlayer: unknown operator %q", f.Op)
		}
	case resource.And, resource.Or:
		subs, sep, empty := []resource.Filter(nil), " AND ", "TRUE"
		if and, ok := f.(resource.And); ok {
			subs = and
		} else {
			subs, sep, empty = f.(resource.Or), " OR ", "FALSE"
		}
		if len(subs) == 0 {
			b.WriteString(empty)
			return nil
		}
		for i, sub := range subs {
			if i > 0 {
				b.WriteString(sep)
			}
			b.WriteString("(")
			if err := appendFilter(b, args, sc, sub); err != nil {
				return err
			}
			b.WriteString(")")
		}
	case resource.NotFilter:
		b.WriteString("NOT (")
		if err := appendFilter(b, args, sc, f.F); err != nil {
			return err
		}
		b.WriteString(")")
	default:
		return fmt.Errorf("kiln/bunlayer: unknown filter %T", f)
	}
	return nil
}

// orderSQL is the ORDER BY term of o. kiln sorts NULL after every value, as
// PostgreSQL does; SQLite sorts it before, so for a value that may be NULL
// the term says where it goes. A value through a relationship may always
// be NULL: the record may relate to none.
func (t *txn) orderSQL(s *resource.Schema, o resource.Sort) (string, []any, error) {
	expr, args, nullable, err := valueSQL(scope{s: s}, o.Attr)
	if err != nil {
		return "", nil, err
	}
	dir := " ASC"
	if o.Desc {
		dir = " DESC"
	}
	if !nullable || t.layer.db.Dialect().Name() != dialect.SQLite {
		return expr + dir, args, nil
	}
	if o.Desc {
		return expr + dir + " NULLS FIRST", args, nil
	}
	return expr + dir + " NULLS LAST", args, nil
}

// valueSQL is the SQL of the value a sort's path names, and whether it may
// be NULL: a column, or, through belongs-to and has-one relationships, a
// subquery of the related record's column (the has-one record of the least
// primary key).
func valueSQL(sc scope, path string) (string, []any, bool, error) {
	name, rest, through := strings.Cut(path, ".")
	if !through {
		col, args := sc.column(path)
		a := sc.s.Attribute(path)
		return col, args, a != nil && a.Nullable, nil
	}
	from, fargs, inner, r, err := sc.related(name)
	if err != nil {
		return "", nil, false, err
	}
	if r.Kind.ToMany() {
		return "", nil, false, fmt.Errorf("kiln/bunlayer: cannot sort through %s, a %s relationship", r.Name, r.Kind)
	}
	expr, args, _, err := valueSQL(inner, rest)
	if err != nil {
		return "", nil, false, err
	}
	q := "(SELECT " + expr + " FROM " + from
	args = append(args, fargs...)
	if r.Kind == resource.HasOneRelationship {
		var keys []string
		for _, pk := range r.Destination.PrimaryKey {
			col, cargs := inner.column(pk.Name)
			keys = append(keys, col)
			args = append(args, cargs...)
		}
		q += " ORDER BY " + strings.Join(keys, ", ") + " LIMIT 1"
	}
	return q + ")", args, true, nil
}
