package bunlayer

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"

	"github.com/kiln-go/kiln/resource"
)

// inDependencyOrder returns the schemas in an order where each comes after
// the destinations of its belongs-to relationships, whose tables its
// foreign keys reference, and otherwise in the order given. Foreign keys
// that form a cycle are an error: PostgreSQL cannot create any of its
// tables first.
func inDependencyOrder(schemas []*resource.Schema) ([]*resource.Schema, error) {
	// needs[s] are the schemas s's foreign keys reference, itself aside.
	needs := map[*resource.Schema][]*resource.Schema{}
	for _, s := range schemas {
		for _, r := range s.Relationships {
			if r.Kind == resource.BelongsToRelationship && r.Destination != s && slices.Contains(schemas, r.Destination) {
				needs[s] = append(needs[s], r.Destination)
			}
		}
	}
	out, left := dependencyOrder(schemas, needs)
	if len(left) > 0 {
		path := cycle(left, needs)
		names := make([]string, len(path))
		for i, s := range path {
			names[i] = s.Table
		}
		return nil, fmt.Errorf("kiln/bunlayer: the foreign keys of tables %s form a cycle, so none of them can be created first; drop the BelongsTo of one of them (its attribute stays, without a foreign key)",
			strings.Join(names, " -> "))
	}
	return out, nil
}

// dependencyOrder returns items in an order where each comes after the
// items it needs (each one of items, itself aside), and otherwise in the
// order given: the earliest ready item first, then look again. left holds,
// in the order given, the items that needs forming a cycle keep out.
func dependencyOrder[T comparable](items []T, needs map[T][]T) (ordered, left []T) {
	done := make(map[T]bool, len(items))
	ready := func(x T) bool {
		return !done[x] && !slices.ContainsFunc(needs[x], func(n T) bool { return !done[n] })
	}
	for len(ordered) < len(items) {
		i := slices.IndexFunc(items, ready)
		if i < 0 {
			for _, x := range items {
				if !done[x] {
					left = append(left, x)
				}
			}
			return ordered, left
		}
		ordered, done[items[i]] = append(ordered, items[i]), true
	}
	return ordered, nil
}

// cycle returns one cycle among left, the items dependencyOrder left out,
// its first item repeated at its end.
func cycle[T comparable](left []T, needs map[T][]T) []T {
	// Every item left needs one left: walk until one repeats.
	next := func(x T) T {
		i := slices.IndexFunc(needs[x], func(n T) bool { return slices.Contains(left, n) })
		return needs[x][i]
	}
	var path []T
	x := left[0]
	for !slices.Contains(path, x) {
		path = append(path, x)
		x = next(x)
	}
	return append(path[slices.Index(path, x):], x)
}

// withForeignKeys adds to a CREATE TABLE the foreign key of each belongs-to
// relationship of s, named by Schema.ForeignKey.
func withForeignKeys(q *bun.CreateTableQuery, s *resource.Schema) *bun.CreateTableQuery {
	for _, r := range s.Relationships {
		if r.Kind != resource.BelongsToRelationship {
			continue
		}
		q = q.ColumnExpr("CONSTRAINT ? FOREIGN KEY (?) REFERENCES ? (?) ON DELETE "+onDeleteSQL(r.OnDelete),
			bun.Ident(s.ForeignKey(r)), bun.Ident(r.Attribute.Name), bun.Ident(r.Destination.Table), bun.Ident(r.DestinationAttribute.Name))
	}
	return q
}

func onDeleteSQL(rule resource.DeleteRule) string {
	switch rule {
	case resource.Cascade:
		return "CASCADE"
	case resource.SetNull:
		return "SET NULL"
	}
	return "RESTRICT"
}

// writeError maps a write's error: a foreign key violation to a
// *resource.ReferenceError, naming what the database says of it; then
// unique violations and missing rows (mapError).
func (l *Layer) writeError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		re := &resource.ReferenceError{Err: err}
		if s, r := l.foreignKey(pgErr.TableName, pgErr.ConstraintName); r != nil {
			if strings.HasPrefix(pgErr.Message, "insert or update on table") {
				re.Attribute = r.Attribute.Name
			} else {
				re.From, re.Relationship = s.Resource, r.Name
			}
		}
		return re
	}
	if strings.Contains(err.Error(), "FOREIGN KEY constraint failed") {
		return &resource.ReferenceError{Err: err}
	}
	return mapError(err)
}

// foreignKey finds the belongs-to relationship whose foreign key is named
// constraint, on table; PostgreSQL cuts names to 63 bytes.
func (l *Layer) foreignKey(table, constraint string) (*resource.Schema, *resource.RelationshipSchema) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, s := range l.schemas {
		if s.Table != table {
			continue
		}
		for _, r := range s.Relationships {
			if r.Kind == resource.BelongsToRelationship && pgName(s.ForeignKey(r)) == constraint {
				return s, r
			}
		}
	}
	return nil, nil
}
