package resource

import (
	"context"
	"reflect"
	"strings"
)

// DataLayer stores records. resource/bunlayer implements it on bun for
// SQLite and PostgreSQL; datalayertest.Run checks an implementation.
type DataLayer interface {
	Querier
	// Register tells the layer about a built resource; Build calls it once
	// per resource and reports its error as a build problem.
	Register(s *Schema) error
	// Begin starts a transaction. kiln runs each action in one.
	Begin(ctx context.Context) (Tx, error)
}

// Querier reads records.
type Querier interface {
	// Select appends the records q matches to dest, a *[]*T, in the order
	// of q.Sort, where NULL sorts after every value (last ascending, first
	// descending).
	//
	// A filter's or a sort's attribute may be a path through relationships
	// (Schema.Relationships), "author.email": a comparison through a
	// relationship matches a record when one of the records it relates to
	// matches (SQL's EXISTS), and a sort through belongs-to and has-one
	// relationships sorts by the related record's attribute, NULL when
	// there is none. kiln checks every path against the schemas first.
	Select(ctx context.Context, s *Schema, q *Query, dest any) error
	// Count returns the number of records f matches (all of them when f
	// is nil).
	Count(ctx context.Context, s *Schema, f Filter) (int, error)
}

// Tx is a transaction of a DataLayer. Write methods fill the records they
// write with what the database returns (RETURNING), so defaults set by the
// database are seen; times come back in UTC. A unique violation is reported
// as a *ConflictError naming the identity's fields (or the identity). A
// foreign key violation (see Schema.Relationships) is reported as a
// *ReferenceError, naming what the database says of it: the key
// Attribute an insert or update set, or, for a delete, the resource
// (From) and belongs-to Relationship whose records still refer to the row.
type Tx interface {
	Querier
	// Insert writes rec (*T). With opts.Upsert it updates opts.UpdateFields
	// of the row that conflicts on opts.ConflictFields instead.
	Insert(ctx context.Context, s *Schema, rec any, opts InsertOptions) error
	// Update writes fields of rec (*T) to the row with rec's primary key;
	// ErrNotFound when there is none.
	Update(ctx context.Context, s *Schema, rec any, fields []string) error
	// UpdateAll sets the values of set on every row f matches, in one
	// statement, and appends the updated rows to dest (*[]*T).
	UpdateAll(ctx context.Context, s *Schema, f Filter, set map[string]any, dest any) error
	// Delete removes the row with rec's primary key, filling rec with it;
	// ErrNotFound when there is none.
	Delete(ctx context.Context, s *Schema, rec any) error
	// DeleteAll removes every row f matches, in one statement, and appends
	// them to dest (*[]*T).
	DeleteAll(ctx context.Context, s *Schema, f Filter, dest any) error
	Commit() error
	Rollback() error
}

// Savepointer is a Tx that can undo part of itself. A Domain runs each
// action nested in another one's transaction inside a savepoint, when the Tx
// has them, so that a failed nested action leaves nothing behind.
type Savepointer interface {
	Savepoint(ctx context.Context, name string) error
	RollbackTo(ctx context.Context, name string) error
	Release(ctx context.Context, name string) error
}

// InsertOptions turn an insert into an upsert, or into an insert that
// skips a conflicting row.
type InsertOptions struct {
	// Upsert updates UpdateFields of the row that conflicts on
	// ConflictFields.
	Upsert         bool
	ConflictFields []string
	UpdateFields   []string
	// SkipOnConflict writes nothing when the row conflicts on
	// ConflictFields, and reports a *ConflictError without aborting the
	// transaction.
	SkipOnConflict bool
}

// Schema is a built resource as a data layer sees it.
type Schema struct {
	Resource   string
	Table      string
	Type       reflect.Type
	Attributes []*Attribute
	PrimaryKey []*Attribute
	Identities []Identity
	// Indexes are the resource's other indexes (see Index).
	Indexes []Index
	// Relationships relate the resource to others. Each belongs-to
	// relationship is a foreign key: its Attribute references the
	// destination's DestinationAttribute, with OnDelete, and a data layer
	// that creates tables creates a destination's before the tables that
	// refer to it.
	Relationships []*RelationshipSchema
}

// RelationshipSchema is a built relationship as a data layer sees it: a
// record relates to the records of Destination whose DestinationAttribute
// equals its Attribute, or, for a many-to-many relationship, to those
// whose DestinationAttribute equals the DestinationAttributeOnJoin of a
// record of Through whose SourceAttributeOnJoin equals its Attribute.
type RelationshipSchema struct {
	Name                 string
	Kind                 RelationshipKind
	Destination          *Schema
	Attribute            *Attribute
	DestinationAttribute *Attribute
	// Through and its two keys, for a many-to-many relationship.
	Through                                           *Schema
	SourceAttributeOnJoin, DestinationAttributeOnJoin *Attribute
	// OnDelete is a belongs-to relationship's rule.
	OnDelete DeleteRule
	// Sort orders a to-many relationship's loaded records.
	Sort []Sort
	// Field is the index of the record's field that loaded records go to;
	// nil when the record struct has none.
	Field []int
}

// Relationship returns the relationship named name, or nil.
func (s *Schema) Relationship(name string) *RelationshipSchema {
	for _, r := range s.Relationships {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// ForeignKey is the name kiln gives the foreign key of a belongs-to
// relationship.
func (s *Schema) ForeignKey(r *RelationshipSchema) string {
	return s.Table + "_" + r.Name + "_fkey"
}

// Attribute returns the attribute named name, or nil.
func (s *Schema) Attribute(name string) *Attribute {
	for _, a := range s.Attributes {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// IndexedBy names the primary key, identity or index of s whose keys
// begin with keys, in order ("the primary key", `identity "x"`,
// "index (a, b)"), or returns "" when none does.
func (s *Schema) IndexedBy(keys []string) string {
	return indexBeginningWith(keys, s.PrimaryKey, s.Identities, s.Indexes)
}

// IndexName is the name of an index: its Name, else <table>_<keys>_idx.
func (s *Schema) IndexName(ix Index) string {
	if ix.Name != "" {
		return ix.Name
	}
	return s.Table + "_" + strings.Join(ix.Keys, "_") + "_idx"
}

// IdentityIndex is the name kiln gives the unique index of an identity.
func (s *Schema) IdentityIndex(id Identity) string {
	return s.Table + "_" + id.Name + "_idx"
}
