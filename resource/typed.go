package resource

import (
	"context"
	"fmt"
	"reflect"
)

// Create runs a create action and returns the created record.
func (r *Resource[T]) Create(ctx context.Context, d *Domain, action string, in Input) (*T, error) {
	res, err := r.run(ctx, d, action, CreateAction, in)
	if err != nil {
		return nil, err
	}
	return res.Record.(*T), nil
}

// Read runs a read action and returns the records it found.
func (r *Resource[T]) Read(ctx context.Context, d *Domain, action string, in Input, opts ...RunOption) ([]*T, error) {
	return records[T](r.run(ctx, d, action, ReadAction, in, opts...))
}

// Get runs a read action and returns one record: the action must be
// declared with Get or GetBy. It fails with ErrNotFound when there is none.
func (r *Resource[T]) Get(ctx context.Context, d *Domain, action string, in Input, opts ...RunOption) (*T, error) {
	res, err := r.run(ctx, d, action, ReadAction, in, opts...)
	if err != nil {
		return nil, err
	}
	if res.Record == nil {
		return nil, fmt.Errorf("%w: %s.%s is not declared with Get or GetBy", ErrWrongActionType, r.Name(), action)
	}
	return res.Record.(*T), nil
}

// Update runs an update action on rec and returns the updated record; rec
// itself is not modified.
func (r *Resource[T]) Update(ctx context.Context, d *Domain, action string, rec *T, in Input) (*T, error) {
	res, err := r.run(ctx, d, action, UpdateAction, in, OnRecord(rec))
	if err != nil {
		return nil, err
	}
	return res.Record.(*T), nil
}

// Destroy runs a destroy action on rec.
func (r *Resource[T]) Destroy(ctx context.Context, d *Domain, action string, rec *T, in Input) error {
	_, err := r.run(ctx, d, action, DestroyAction, in, OnRecord(rec))
	return err
}

// BulkUpdate runs an update action on every record f matches, in one
// statement, and returns the updated records. Each is notified.
func (r *Resource[T]) BulkUpdate(ctx context.Context, d *Domain, action string, f Filter, in Input) ([]*T, error) {
	return records[T](r.run(ctx, d, action, UpdateAction, in, Where(f)))
}

// BulkDestroy runs a destroy action on every record f matches, in one
// statement, and returns the destroyed records. Each is notified.
func (r *Resource[T]) BulkDestroy(ctx context.Context, d *Domain, action string, f Filter, in Input) ([]*T, error) {
	return records[T](r.run(ctx, d, action, DestroyAction, in, Where(f)))
}

// Call runs a generic action of r and returns its value as a V (the zero V
// when the action returns nil). A value that is not a V is an error, and
// rolls the action back, unless the action runs outside any transaction
// (Generic.OutsideTransaction): it is then run as Domain.Run runs it, and
// its value checked after.
func Call[V any](ctx context.Context, d *Domain, r Ref, action string, in Input) (V, error) {
	var zero V
	br, ba, err := d.lookup(r, action)
	if err != nil {
		return zero, err
	}
	v, _, err := call[V](ctx, d, br, ba, in)
	return v, err
}

// call runs the generic action ba of br and returns its value as a V, with
// its result; the result's NotifyErrors are those of the transaction call
// opened, if it opened one.
func call[V any](ctx context.Context, d *Domain, br *builtResource, ba *builtAction, in Input) (V, *RunResult, error) {
	var v, zero V
	if ba.Type != GenericAction {
		return zero, nil, fmt.Errorf("%w: %s.%s is %s action, not generic", ErrWrongActionType, br.decl.Name, ba.Name, ba.Type.Article())
	}
	var res *RunResult
	run := func(ctx context.Context) error {
		var err error
		if res, err = d.run(ctx, br, ba, in); err != nil || res.Value == nil {
			return err
		}
		var ok bool
		if v, ok = res.Value.(V); !ok {
			return fmt.Errorf("kiln/resource: %s.%s returned %T, not %s", br.decl.Name, ba.Name, res.Value, reflect.TypeFor[V]())
		}
		return nil
	}
	if ba.OutsideTransaction && !d.inTransaction(ctx) {
		// The action opens the transactions it needs; wrapping it in one
		// would hold a write lock through its slow work.
		if err := run(ctx); err != nil {
			return zero, nil, err
		}
		return v, res, nil
	}
	// The value is checked inside the transaction: a value of the wrong
	// type rolls the action back rather than reporting an error for
	// something committed.
	notifyErrs, err := d.inTx(ctx, false, func(ctx context.Context, _ *txState) error { return run(ctx) })
	if err != nil {
		return zero, nil, err
	}
	res.NotifyErrors = append(res.NotifyErrors, notifyErrs...)
	return v, res, nil
}

func (r *Resource[T]) run(ctx context.Context, d *Domain, action string, want ActionType, in Input, opts ...RunOption) (*RunResult, error) {
	br, ba, err := d.lookup(r, action)
	if err != nil {
		return nil, err
	}
	if ba.Type != want {
		return nil, fmt.Errorf("%w: %s.%s is %s action, not %s", ErrWrongActionType, r.Name(), action, ba.Type.Article(), want)
	}
	return d.run(ctx, br, ba, in, opts...)
}
