package resource

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/kiln-go/kiln/dsl"
)

// Code interfaces: an action declared through Define… is at once a
// declaration (list it in the resource's Actions section) and a typed way
// to run it, so that code calls
//
//	post, err := Publish.Run(ctx, blog, PublishInput{Title: "Hello"})
//
// rather than naming the action in a string and reading an untyped result.
//
// The input is a Go struct, In. Each exported field is one input, named by
// its `kiln:"name"` tag or else by its field name in snake case (AuthorID:
// "author_id"); `kiln:"-"` skips a field. A field that names an attribute
// the action accepts sets that attribute; every other field is an argument
// of the action, of the field's type, checked by the field's `validate`
// tag (go-playground/validator rules). Arguments therefore need no
// declaration; one declared in the action's Arguments by the same name
// adds its Sensitive flag, Default and Description, and its Validate rules
// to the tag's. A `kiln:"name,sensitive"` tag marks an argument sensitive.
//
// A pointer field is optional: nil gives nothing (an update leaves the
// attribute as it is, an argument takes its Default). Any other field is
// always given, its zero value included. NoInput is the input of an action
// that takes none. In may also be Input itself, for an input whose keys are
// only known at run time (an extension's configurable attribute names):
// the action's declared accept list and arguments then apply as they are.
//
// Build checks every handle: the input must be a struct whose fields name
// no read-only or unaccepted attribute, whose types convert to the
// attributes', and which declares no argument twice. A problem names the
// field, with "did you mean" when a field is near an accepted attribute the
// struct does not set.

// NoInput is the input of an action that takes none.
type NoInput struct{}

// typedAction is an action declared through a handle: it knows its record
// type and input type, and learns the resource it was declared on.
type typedAction interface {
	Action
	// holds returns a problem when the handle cannot run on records of
	// type t, or "".
	holds(t reflect.Type) string
	bind(resource string) (previous string)
}

// binding is what every handle shares: the name of the resource the action
// was declared on, set when the Actions section is declared.
type binding struct {
	mu       sync.Mutex
	resource string
	// location is where the handle was defined: build problems with its
	// input point there.
	location Location
}

func (b *binding) bind(resource string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	prev := b.resource
	if prev == "" {
		b.resource = resource
	}
	return prev
}

func (b *binding) name() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.resource
}

// typed completes d, the declaration of the bound action, with its input
// type and the handle's location.
func (b *binding) typed(d *ActionDecl, input reflect.Type) *ActionDecl {
	d.input = input
	d.location = b.location
	return d
}

// lookup finds the action in d by the bound resource and the record type.
func (b *binding) lookup(d *Domain, t reflect.Type, action string) (*builtResource, *builtAction, error) {
	name := b.name()
	if name == "" {
		return nil, nil, fmt.Errorf("%w: action %q was never declared on a resource (list it in resource.Actions)", ErrUnknownAction, action)
	}
	return d.lookupName(name, t, action)
}

// run looks the action up, checks its type, and runs it.
func (b *binding) run(ctx context.Context, d *Domain, t reflect.Type, action string, want ActionType, in Input, opts ...RunOption) (*RunResult, error) {
	br, ba, err := b.lookup(d, t, action)
	if err != nil {
		return nil, err
	}
	if ba.Type != want {
		return nil, fmt.Errorf("%w: %s.%s is %s action, not %s", ErrWrongActionType, br.decl.Name, action, ba.Type.Article(), want)
	}
	return d.run(ctx, br, ba, in, opts...)
}

// handle is what the typed handles share: the binding, and the record type
// T and input type In.
type handle[T, In any] struct{ binding }

func (h *handle[T, In]) holds(t reflect.Type) string {
	if want := reflect.TypeFor[T](); want != t {
		return fmt.Sprintf("the action is defined for %s records; this resource holds %s", want, t)
	}
	return ""
}

// exec runs the handle's action, which must be of type want, with in.
func (h *handle[T, In]) exec(ctx context.Context, d *Domain, action string, want ActionType, in In, opts ...RunOption) (*RunResult, error) {
	return h.run(ctx, d, reflect.TypeFor[T](), action, want, toInput(in), opts...)
}

// records is the records of a run that returns many.
func records[T any](res *RunResult, err error) ([]*T, error) {
	if err != nil {
		return nil, err
	}
	return res.Records.([]*T), nil
}

// inputField is one field of an input struct.
type inputField struct {
	name      string
	index     []int
	typ       reflect.Type // the value type, the pointer's element for an optional field
	optional  bool
	rules     string
	sensitive bool
	goName    string
}

// inputFields lists the input fields of t, embedded structs' included.
func inputFields(t reflect.Type) ([]inputField, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("input type %s is not a struct", t)
	}
	var out []inputField
	var walk func(t reflect.Type, index []int)
	walk = func(t reflect.Type, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			idx := append(slices.Clone(index), i)
			tag := f.Tag.Get("kiln")
			if tag == "-" || !f.IsExported() && !f.Anonymous {
				continue
			}
			if f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type, idx)
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if name == "" {
				name = underscore(f.Name)
			}
			in := inputField{name: name, index: idx, typ: f.Type, rules: f.Tag.Get("validate"), goName: f.Name,
				sensitive: slices.Contains(strings.Split(opts, ","), "sensitive")}
			if f.Type.Kind() == reflect.Pointer {
				in.optional, in.typ = true, f.Type.Elem()
			}
			out = append(out, in)
		}
	}
	walk(t, nil)
	return out, nil
}

// inputFieldsOf is inputFields, kept per type once listed: handles and
// views convert their input on every run, and the fields of a type never
// change. The slices it returns are shared; they are only read.
func inputFieldsOf(t reflect.Type) ([]inputField, error) {
	if f, ok := inputFieldCache.Load(t); ok {
		return f.([]inputField), nil
	}
	f, err := inputFields(t)
	if err != nil {
		return nil, err
	}
	inputFieldCache.Store(t, f)
	return f, nil
}

// inputFieldCache maps an input type (reflect.Type) to its []inputField.
var inputFieldCache sync.Map

// toInput turns an input struct into an Input; an Input is passed as is.
func toInput(v any) Input {
	if in, ok := v.(Input); ok {
		return in
	}
	rv := reflect.ValueOf(v)
	fields, err := inputFieldsOf(rv.Type())
	if err != nil {
		return nil // Build refused the handle
	}
	in := make(Input, len(fields))
	for _, f := range fields {
		fv := rv.FieldByIndex(f.index)
		if f.optional {
			if fv.IsNil() {
				continue
			}
			fv = fv.Elem()
		}
		in[f.name] = fv.Interface()
	}
	return in
}

// applyInput turns the fields of a typed action's input struct into its
// arguments, once the extensions have run (they may add to Accept), and
// records a problem for each field that cannot be an input.
func applyInput(d *Declaration, a *ActionDecl) {
	if a.input == nil || a.input == reflect.TypeFor[Input]() {
		return // a dynamic input: the action's own declaration rules
	}
	loc := a.location
	path := func(p ...string) []string { return append([]string{"actions", a.Name, "input"}, p...) }
	fields, err := inputFields(a.input)
	if err != nil {
		d.Problem(loc, path(), err.Error(), "use a struct, or resource.NoInput for an action without input")
		return
	}
	accepted := map[string]*Attribute{}
	for _, name := range a.Accept {
		if name == AcceptAll {
			for _, attr := range d.Attributes {
				if attr.Writable() {
					accepted[attr.Name] = attr
				}
			}
			continue
		}
		if attr := d.Attribute(name); attr != nil {
			accepted[name] = attr
		}
	}
	seen := map[string]string{}
	var set []string
	for _, f := range fields {
		if prev, dup := seen[f.name]; dup {
			d.Problem(loc, path(f.name), fmt.Sprintf("fields %s and %s of %s are both input %q", prev, f.goName, a.input, f.name), "rename one with a `kiln:\"name\"` tag")
			continue
		}
		seen[f.name] = f.goName
		if attr := accepted[f.name]; attr != nil {
			set = append(set, f.name)
			if !inputFits(f.typ, attr.Type) {
				d.Problem(loc, path(f.name), fmt.Sprintf("field %s is %s; attribute %q is %s", f.goName, f.typ, f.name, attr.Type), "give the field the attribute's type")
			}
			if f.rules != "" {
				a.inputRules = append(a.inputRules, inputRule{name: f.name, rules: f.rules})
			}
			continue
		}
		if attr := d.Attribute(f.name); attr != nil && !slices.Contains(a.GetBy, f.name) {
			if attr.Writable() && a.Type != ReadAction && a.Type != GenericAction {
				d.Problem(loc, path(f.name), fmt.Sprintf("field %s sets attribute %q, which this action does not accept", f.goName, f.name), fmt.Sprintf("add %q to Accept, or drop the field", f.name))
				continue
			}
			if !attr.Writable() && a.Type != ReadAction && a.Type != GenericAction {
				d.Problem(loc, path(f.name), fmt.Sprintf("field %s sets attribute %q, which is read-only", f.goName, f.name), "drop the field, or set the attribute in a change")
				continue
			}
		}
		// An argument: the declared one, typed by the field, or a new one.
		arg := a.Argument(f.name)
		if arg == nil {
			a.Arguments = append(a.Arguments, Argument{Name: f.name})
			arg = &a.Arguments[len(a.Arguments)-1]
		}
		if arg.Type != nil && arg.Type != f.typ {
			d.Problem(loc, path(f.name), fmt.Sprintf("field %s is %s; argument %q is declared %s", f.goName, f.typ, f.name, arg.Type), "drop the argument's Type: the field gives it")
			continue
		}
		arg.Type = f.typ
		arg.Sensitive = arg.Sensitive || f.sensitive
		switch {
		case f.rules == "":
		case arg.Validate == "":
			arg.Validate = f.rules
		default:
			arg.Validate = f.rules + "," + arg.Validate
		}
		arg.fromInput = true
	}
	// A declared argument the struct lacks would never be given.
	for _, arg := range a.Arguments {
		if !arg.fromInput && !slices.Contains(a.GetBy, arg.Name) {
			d.Problem(loc, []string{"actions", a.Name, "arguments", arg.Name}, fmt.Sprintf("is not a field of %s", a.input), fmt.Sprintf("add a field for it to %s", a.input.Name()))
		}
	}
	// A new argument whose name is near an accepted attribute the struct
	// does not set is most likely that attribute misspelled.
	for _, f := range fields {
		arg := a.Argument(f.name)
		if arg == nil || accepted[f.name] != nil {
			continue
		}
		var missing []string
		for name := range accepted {
			if !slices.Contains(set, name) {
				missing = append(missing, name)
			}
		}
		slices.Sort(missing)
		if near := dsl.Nearest(f.name, missing); near != "" && a.Type != ReadAction {
			d.Problem(loc, path(f.name), fmt.Sprintf("field %s is an argument, not the accepted attribute %q", f.goName, near), fmt.Sprintf("did you mean %q? name the field with `kiln:%q`", near, near))
		}
	}
}

// inputFits reports whether an input field of type from can set an
// attribute of type to: the same type, the same kind (a named string), or
// two numbers.
func inputFits(from, to reflect.Type) bool {
	switch {
	case from == to:
		return true
	case isNumber(from.Kind()) && isNumber(to.Kind()):
		return true
	case to.Kind() == reflect.Pointer:
		return inputFits(from, to.Elem())
	}
	return from.Kind() == to.Kind() && from.ConvertibleTo(to)
}

// inputRule is a validate tag of an input field that sets an attribute:
// checked on the value given, besides the record's own rules.
type inputRule struct{ name, rules string }

// checkHandle records a problem when a handle is declared on a resource of
// another record type, or on a second resource.
func checkHandle(d *Declaration, ad *ActionDecl, a Action) {
	h, ok := a.(typedAction)
	if !ok {
		return
	}
	if msg := h.holds(d.Type); msg != "" {
		d.Problem(d.Location, []string{"actions", ad.Name}, msg, "declare it on the resource of its record type")
		return
	}
	if prev := h.bind(d.Name); prev != "" && prev != d.Name {
		d.Problem(d.Location, []string{"actions", ad.Name}, fmt.Sprintf("the same handle is already declared on resource %q", prev), "define one handle per resource")
	}
}

// CreateHandle runs a create action declared with DefineCreate.
type CreateHandle[T, In any] struct {
	handle[T, In]
	spec Create
}

// DefineCreate declares a create action with input In and returns its
// handle; list the handle in the resource's Actions.
func DefineCreate[T, In any](a Create) *CreateHandle[T, In] {
	return &CreateHandle[T, In]{handle: handle[T, In]{binding{location: Caller(1)}}, spec: a}
}

func (h *CreateHandle[T, In]) decl() *ActionDecl {
	return h.typed(h.spec.decl(), reflect.TypeFor[In]())
}

// Name is the action's name.
func (h *CreateHandle[T, In]) Name() string { return h.spec.Name }

// Run creates a record from in and returns it.
func (h *CreateHandle[T, In]) Run(ctx context.Context, d *Domain, in In) (*T, error) {
	res, err := h.RunResult(ctx, d, in)
	if err != nil {
		return nil, err
	}
	return res.Record, nil
}

// RunResult creates a record and returns it with the action's metadata and
// the notifiers' errors.
func (h *CreateHandle[T, In]) RunResult(ctx context.Context, d *Domain, in In) (*Result[T], error) {
	res, err := h.exec(ctx, d, h.spec.Name, CreateAction, in)
	return typedResult[T](res, err)
}

// ReadHandle runs a read action declared with DefineRead.
type ReadHandle[T, In any] struct {
	handle[T, In]
	spec Read
}

// DefineRead declares a read action with input In (its arguments) and
// returns its handle. For an action that returns one record, use DefineGet.
func DefineRead[T, In any](a Read) *ReadHandle[T, In] {
	return &ReadHandle[T, In]{handle: handle[T, In]{binding{location: Caller(1)}}, spec: a}
}

func (h *ReadHandle[T, In]) decl() *ActionDecl {
	d := h.typed(h.spec.decl(), reflect.TypeFor[In]())
	d.Get, d.GetBy = false, nil
	return d
}

// Name is the action's name.
func (h *ReadHandle[T, In]) Name() string { return h.spec.Name }

// Run reads the records the action finds. Where, SortBy, Limit and Offset
// narrow it further.
func (h *ReadHandle[T, In]) Run(ctx context.Context, d *Domain, in In, opts ...RunOption) ([]*T, error) {
	return records[T](h.exec(ctx, d, h.spec.Name, ReadAction, in, opts...))
}

// Page reads one page of the records the action finds (see PageRequest).
func (h *ReadHandle[T, In]) Page(ctx context.Context, d *Domain, in In, p PageRequest, opts ...RunOption) (Page[T], error) {
	res, err := h.exec(ctx, d, h.spec.Name, ReadAction, in, append(opts[:len(opts):len(opts)], Paginate(p))...)
	if err != nil {
		return Page[T]{}, err
	}
	return Page[T]{Records: res.Records.([]*T), PageInfo: *res.Page}, nil
}

// GetHandle runs a read action that returns one record, declared with
// DefineGet.
type GetHandle[T, In any] struct {
	handle[T, In]
	spec Read
}

// DefineGet declares a read action that returns one record, by GetBy's
// attributes (fields of In named like them) or by its Filter, and returns
// its handle.
func DefineGet[T, In any](a Read) *GetHandle[T, In] {
	a.Get = true
	return &GetHandle[T, In]{handle: handle[T, In]{binding{location: Caller(1)}}, spec: a}
}

func (h *GetHandle[T, In]) decl() *ActionDecl {
	return h.typed(h.spec.decl(), reflect.TypeFor[In]())
}

// Name is the action's name.
func (h *GetHandle[T, In]) Name() string { return h.spec.Name }

// Run returns the record, or an error matching ErrNotFound.
func (h *GetHandle[T, In]) Run(ctx context.Context, d *Domain, in In, opts ...RunOption) (*T, error) {
	res, err := h.exec(ctx, d, h.spec.Name, ReadAction, in, opts...)
	if err != nil {
		return nil, err
	}
	return res.Record.(*T), nil
}

// UpdateHandle runs an update action declared with DefineUpdate.
type UpdateHandle[T, In any] struct {
	handle[T, In]
	spec Update
}

// DefineUpdate declares an update action with input In and returns its
// handle.
func DefineUpdate[T, In any](a Update) *UpdateHandle[T, In] {
	return &UpdateHandle[T, In]{handle: handle[T, In]{binding{location: Caller(1)}}, spec: a}
}

func (h *UpdateHandle[T, In]) decl() *ActionDecl {
	return h.typed(h.spec.decl(), reflect.TypeFor[In]())
}

// Name is the action's name.
func (h *UpdateHandle[T, In]) Name() string { return h.spec.Name }

// Run updates rec with in and returns the updated record; rec itself is
// not modified.
func (h *UpdateHandle[T, In]) Run(ctx context.Context, d *Domain, rec *T, in In) (*T, error) {
	res, err := h.RunResult(ctx, d, rec, in)
	if err != nil {
		return nil, err
	}
	return res.Record, nil
}

// RunResult updates rec and returns the record with the action's metadata
// and the notifiers' errors.
func (h *UpdateHandle[T, In]) RunResult(ctx context.Context, d *Domain, rec *T, in In) (*Result[T], error) {
	if rec == nil {
		return nil, fmt.Errorf("kiln/resource: %s: no record to update", h.spec.Name)
	}
	res, err := h.exec(ctx, d, h.spec.Name, UpdateAction, in, OnRecord(rec))
	return typedResult[T](res, err)
}

// RunAll updates every record f matches, in one statement, and returns
// them. Each is notified.
func (h *UpdateHandle[T, In]) RunAll(ctx context.Context, d *Domain, f Filter, in In) ([]*T, error) {
	return records[T](h.exec(ctx, d, h.spec.Name, UpdateAction, in, Where(f)))
}

// DestroyHandle runs a destroy action declared with DefineDestroy.
type DestroyHandle[T, In any] struct {
	handle[T, In]
	spec Destroy
}

// DefineDestroy declares a destroy action with input In and returns its
// handle.
func DefineDestroy[T, In any](a Destroy) *DestroyHandle[T, In] {
	return &DestroyHandle[T, In]{handle: handle[T, In]{binding{location: Caller(1)}}, spec: a}
}

func (h *DestroyHandle[T, In]) decl() *ActionDecl {
	return h.typed(h.spec.decl(), reflect.TypeFor[In]())
}

// Name is the action's name.
func (h *DestroyHandle[T, In]) Name() string { return h.spec.Name }

// Run destroys rec.
func (h *DestroyHandle[T, In]) Run(ctx context.Context, d *Domain, rec *T, in In) error {
	if rec == nil {
		return fmt.Errorf("kiln/resource: %s: no record to destroy", h.spec.Name)
	}
	_, err := h.exec(ctx, d, h.spec.Name, DestroyAction, in, OnRecord(rec))
	return err
}

// RunAll destroys every record f matches, in one statement, and returns
// them. Each is notified.
func (h *DestroyHandle[T, In]) RunAll(ctx context.Context, d *Domain, f Filter, in In) ([]*T, error) {
	return records[T](h.exec(ctx, d, h.spec.Name, DestroyAction, in, Where(f)))
}

// GenericHandle runs a generic action declared with DefineGeneric.
type GenericHandle[T, In, Out any] struct {
	handle[T, In]
	spec Generic
	run  func(ctx context.Context, cs *Changeset[T], in In) (Out, error)
}

// DefineGeneric declares a generic action of the resource of T: run gets
// the input, cast and validated, and returns the action's value. a.Run
// must be nil: run takes its place.
func DefineGeneric[T, In, Out any](a Generic, run func(ctx context.Context, cs *Changeset[T], in In) (Out, error)) *GenericHandle[T, In, Out] {
	return &GenericHandle[T, In, Out]{handle: handle[T, In]{binding{location: Caller(1)}}, spec: a, run: run}
}

func (h *GenericHandle[T, In, Out]) decl() *ActionDecl {
	d := h.typed(h.spec.decl(), reflect.TypeFor[In]())
	if h.spec.Run == nil && h.run != nil {
		run := h.run
		d.Run = func(ctx context.Context, cs *AnyChangeset) (any, error) {
			in, err := inputOf[In](cs)
			if err != nil {
				return nil, err
			}
			return run(ctx, &Changeset[T]{cs}, in)
		}
	} else {
		d.Run = nil // Build reports it: one Run, the typed one
		d.runConflict = h.spec.Run != nil
	}
	return d
}

// Name is the action's name.
func (h *GenericHandle[T, In, Out]) Name() string { return h.spec.Name }

// Run runs the action and returns its value.
func (h *GenericHandle[T, In, Out]) Run(ctx context.Context, d *Domain, in In) (Out, error) {
	br, ba, err := h.lookup(d, reflect.TypeFor[T](), h.spec.Name)
	if err != nil {
		var zero Out
		return zero, err
	}
	v, _, err := call[Out](ctx, d, br, ba, toInput(in))
	return v, err
}

// Result is what a typed handle's RunResult returns: the written record
// with the action's metadata and the notifiers' failures after commit.
type Result[T any] struct {
	// Record is the record written.
	Record *T
	// Metadata is what the action's changes set with SetMetadata (a token
	// an authentication strategy issued, for example).
	Metadata map[string]any
	// NotifyErrors are the notifiers' failures after commit. The action
	// itself succeeded.
	NotifyErrors []error
}

func typedResult[T any](res *RunResult, err error) (*Result[T], error) {
	if err != nil {
		return nil, err
	}
	out := &Result[T]{Metadata: res.Metadata, NotifyErrors: res.NotifyErrors}
	if res.Record != nil {
		out.Record = res.Record.(*T)
	}
	return out, nil
}
