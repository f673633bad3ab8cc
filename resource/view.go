package resource

import (
	"context"
	"fmt"
	"reflect"
)

// View is a handle on an action for code that does not know the record
// type of the resource it runs on: an extension, whose actions are added to
// whatever resource declares its section. Records come back as R, an
// interface that every record (*T) of the resource implements (R may be
// any). The input is a struct, as for DefineCreate and the others.
//
// An extension makes its views when its section is declared, adds them in
// Transform with Declaration.AddAction, and runs them with the built
// domain; Build refuses a view declared on a resource whose *T does not
// implement R. Each method runs one action type and fails with
// ErrWrongActionType on another.
type View[R, In any] struct {
	binding
	action Action
	name   string
}

// NewView returns a view of action a (a Create, Read, Update, Destroy or
// Generic builder) with input In and records R.
func NewView[R, In any](a Action) *View[R, In] {
	return &View[R, In]{binding: binding{location: Caller(1)}, action: a, name: a.decl().Name}
}

func (v *View[R, In]) decl() *ActionDecl {
	return v.typed(v.action.decl(), reflect.TypeFor[In]())
}

func (v *View[R, In]) holds(t reflect.Type) string {
	r := reflect.TypeFor[R]()
	switch {
	case r.Kind() == reflect.Interface && reflect.PointerTo(t).Implements(r):
		return ""
	case r.Kind() == reflect.Interface:
		return fmt.Sprintf("*%s does not implement %s, which the action's records must", t, r)
	case r == reflect.PointerTo(t):
		return ""
	}
	return fmt.Sprintf("the action is defined for %s records; this resource holds %s", r, t)
}

// Name is the action's name.
func (v *View[R, In]) Name() string { return v.name }

func (v *View[R, In]) exec(ctx context.Context, d *Domain, want ActionType, in In, opts ...RunOption) (*RunResult, error) {
	return v.run(ctx, d, viewType(d, v.binding.name()), v.name, want, toInput(in), opts...)
}

// Create runs a create action and returns the record.
func (v *View[R, In]) Create(ctx context.Context, d *Domain, in In) (R, error) {
	res, err := v.CreateResult(ctx, d, in)
	if err != nil {
		var zero R
		return zero, err
	}
	return res.Value, nil
}

// CreateResult runs a create action and returns the record with the
// action's metadata and the notifiers' errors.
func (v *View[R, In]) CreateResult(ctx context.Context, d *Domain, in In) (*ViewResult[R], error) {
	res, err := v.exec(ctx, d, CreateAction, in)
	return viewResult[R](res, err)
}

// Read runs a read action and returns the records it found.
func (v *View[R, In]) Read(ctx context.Context, d *Domain, in In, opts ...RunOption) ([]R, error) {
	res, err := v.exec(ctx, d, ReadAction, in, opts...)
	if err != nil {
		return nil, err
	}
	return viewRecords[R](res.Records), nil
}

// Get runs a read action declared with Get or GetBy and returns its
// record, or an error matching ErrNotFound.
func (v *View[R, In]) Get(ctx context.Context, d *Domain, in In, opts ...RunOption) (R, error) {
	var zero R
	res, err := v.exec(ctx, d, ReadAction, in, opts...)
	if err != nil {
		return zero, err
	}
	if res.Record == nil {
		return zero, fmt.Errorf("%w: %s.%s is not declared with Get or GetBy", ErrWrongActionType, v.binding.name(), v.name)
	}
	return res.Record.(R), nil
}

// Update runs an update action on rec and returns the updated record.
func (v *View[R, In]) Update(ctx context.Context, d *Domain, rec R, in In) (R, error) {
	res, err := v.UpdateResult(ctx, d, rec, in)
	if err != nil {
		var zero R
		return zero, err
	}
	return res.Value, nil
}

// UpdateResult runs an update action on rec and returns the updated record
// with the action's metadata and the notifiers' errors.
func (v *View[R, In]) UpdateResult(ctx context.Context, d *Domain, rec R, in In) (*ViewResult[R], error) {
	res, err := v.exec(ctx, d, UpdateAction, in, OnRecord(rec))
	return viewResult[R](res, err)
}

// UpdateAll runs an update action on every record f matches, in one
// statement, and returns them.
func (v *View[R, In]) UpdateAll(ctx context.Context, d *Domain, f Filter, in In) ([]R, error) {
	res, err := v.exec(ctx, d, UpdateAction, in, Where(f))
	if err != nil {
		return nil, err
	}
	return viewRecords[R](res.Records), nil
}

// Destroy runs a destroy action on rec.
func (v *View[R, In]) Destroy(ctx context.Context, d *Domain, rec R, in In) error {
	_, err := v.exec(ctx, d, DestroyAction, in, OnRecord(rec))
	return err
}

// DestroyAll runs a destroy action on every record f matches, in one
// statement, and returns them.
func (v *View[R, In]) DestroyAll(ctx context.Context, d *Domain, f Filter, in In) ([]R, error) {
	res, err := v.exec(ctx, d, DestroyAction, in, Where(f))
	if err != nil {
		return nil, err
	}
	return viewRecords[R](res.Records), nil
}

// CallView runs the generic action of view v and returns its value as an
// Out (see Call).
func CallView[Out, R, In any](ctx context.Context, d *Domain, v *View[R, In], in In) (Out, error) {
	res, err := CallViewResult[Out](ctx, d, v, in)
	if err != nil {
		var zero Out
		return zero, err
	}
	return res.Value, nil
}

// CallViewResult runs the generic action of view v and returns its value as
// an Out (see Call), with the action's metadata and the notifiers' errors.
func CallViewResult[Out, R, In any](ctx context.Context, d *Domain, v *View[R, In], in In) (*ViewResult[Out], error) {
	name := v.binding.name()
	if name == "" {
		return nil, fmt.Errorf("%w: action %q was never declared on a resource (add it with Declaration.AddAction)", ErrUnknownAction, v.name)
	}
	br, ba, err := d.lookupName(name, viewType(d, name), v.name)
	if err != nil {
		return nil, err
	}
	val, res, err := call[Out](ctx, d, br, ba, toInput(in))
	if err != nil {
		return nil, err
	}
	return &ViewResult[Out]{Value: val, Metadata: res.Metadata, NotifyErrors: res.NotifyErrors}, nil
}

// ViewResult is what a view's CreateResult and UpdateResult, and
// CallViewResult, return: the action's record or value with what its
// changes set with SetMetadata (a token an authentication strategy issued,
// for example).
type ViewResult[V any] struct {
	// Value is the record of a create or update, or the value of a
	// generic action.
	Value V
	// Metadata is what the action's changes set with SetMetadata.
	Metadata map[string]any
	// NotifyErrors are the notifiers' failures after commit. The action
	// itself succeeded.
	NotifyErrors []error
}

func viewResult[R any](res *RunResult, err error) (*ViewResult[R], error) {
	if err != nil {
		return nil, err
	}
	return &ViewResult[R]{Value: res.Record.(R), Metadata: res.Metadata, NotifyErrors: res.NotifyErrors}, nil
}

func viewType(d *Domain, name string) reflect.Type {
	if br := d.resources[name]; br != nil {
		return br.decl.Type
	}
	return nil
}

// viewRecords turns a []*T into a []R.
func viewRecords[R any](records any) []R {
	rv := reflect.ValueOf(records)
	out := make([]R, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface().(R)
	}
	return out
}
