package resource

import (
	"context"
	"reflect"
)

// Changeset is one run of an action on records of type T, as its changes,
// validations and generic Run see it: the untyped AnyChangeset with the
// record typed. Declare typed changes with Prepare, Before and After, and
// typed validations with Check; read the action's input with InputOf.
type Changeset[T any] struct {
	*AnyChangeset
}

// Record is the record being written. In a bulk action it holds the values
// that will be set on every matching record; nil in a generic action.
func (c *Changeset[T]) Record() *T {
	rec, _ := c.AnyChangeset.Record().(*T)
	return rec
}

// Old is the record as it was before an update, or nil.
func (c *Changeset[T]) Old() *T {
	old, _ := c.AnyChangeset.Old().(*T)
	return old
}

// tracked runs fn on the typed changeset and marks changed every attribute
// fn assigned on the record directly, as cs.Set would.
func tracked[T any](ctx context.Context, cs *AnyChangeset, fn func(ctx context.Context, cs *Changeset[T]) error) error {
	if !cs.record.IsValid() {
		return fn(ctx, &Changeset[T]{cs})
	}
	before := reflect.New(cs.record.Elem().Type()).Elem()
	before.Set(cs.record.Elem())
	err := fn(ctx, &Changeset[T]{cs})
	for _, a := range cs.resource.decl.Attributes {
		if !reflect.DeepEqual(before.FieldByIndex(a.Index).Interface(), cs.record.Elem().FieldByIndex(a.Index).Interface()) {
			cs.markChanged(a.Name)
		}
	}
	return err
}

// Prepare is a change that runs fn before the action's transaction begins,
// once the input is cast and validated (see Change.Prepare): slow work that
// must not hold a write lock. Like Before, it may assign attributes of
// cs.Record() directly.
func Prepare[T any](fn func(ctx context.Context, cs *Changeset[T]) error) Change {
	return Change{Prepare: func(ctx context.Context, cs *AnyChangeset) error { return tracked(ctx, cs, fn) }}
}

// Before is a change that runs fn in the action's transaction, before the
// write. It may assign attributes of cs.Record() directly: each one it
// changes is written, as if set with cs.Set. It may fail the action.
func Before[T any](fn func(ctx context.Context, cs *Changeset[T]) error) Change {
	return Change{Before: func(ctx context.Context, cs *AnyChangeset) error { return tracked(ctx, cs, fn) }}
}

// After is a change that runs fn in the action's transaction, after the
// write, with the record as written; failing rolls the write back. In a
// bulk action it runs once per record.
func After[T any](fn func(ctx context.Context, cs *Changeset[T], record *T) error) Change {
	return Change{After: func(ctx context.Context, cs *AnyChangeset, record any) error {
		rec, _ := record.(*T)
		return fn(ctx, &Changeset[T]{cs}, rec)
	}}
}

// Named returns the change with a name: an extension adds a change of its
// own only when no change of that name is declared.
func (c Change) Named(name string) Change {
	c.Name = name
	return c
}

// For returns the change limited to actions of these types (a
// resource-level change; see Change.On).
func (c Change) For(types ...ActionType) Change {
	c.On = types
	return c
}

// Check is a declared validation of field, run with the typed changeset
// (see Validation).
func Check[T any](field string, fn func(ctx context.Context, cs *Changeset[T]) error) Validation {
	return Validation{Name: field, Field: field, Check: func(ctx context.Context, cs *AnyChangeset) error { return fn(ctx, &Changeset[T]{cs}) }}
}
