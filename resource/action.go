package resource

import (
	"context"
	"reflect"
	"slices"
)

// ActionType is the kind of an action.
type ActionType int

// The action types.
const (
	CreateAction ActionType = iota + 1
	ReadAction
	UpdateAction
	DestroyAction
	GenericAction
)

func (t ActionType) String() string {
	switch t {
	case CreateAction:
		return "create"
	case ReadAction:
		return "read"
	case UpdateAction:
		return "update"
	case DestroyAction:
		return "destroy"
	case GenericAction:
		return "generic"
	}
	return "unknown"
}

// Article is the type with its indefinite article: "a create", "an update".
func (t ActionType) Article() string {
	if t == UpdateAction {
		return "an " + t.String()
	}
	return "a " + t.String()
}

// Action is one of Create, Read, Update, Destroy or Generic, declared in the
// Actions section.
type Action interface {
	decl() *ActionDecl
}

// Argument is an input of an action that is not an attribute: a password
// that a change hashes, a token to revoke.
type Argument struct {
	Name string
	// Type is the Go type the input is converted to. Zero value: string.
	Type reflect.Type
	// Validate holds go-playground/validator rules, "required,min=8".
	Validate string
	// Sensitive arguments never appear in error messages.
	Sensitive bool
	// Default is used when the input does not give the argument.
	Default any
	// Description documents the argument.
	Description string

	// fromInput: a field of the action's input struct declares it.
	fromInput bool
}

// Validation is a declared check of an action's input. Check runs once
// the input is converted, in the same pass as the required checks and the
// validator rules and whatever they found, before any change: the action
// fails with every problem at once. A non-nil error adds a
// *ValidationError on Field (or the error itself when it already is one).
//
// A field without a usable value (its value did not convert, or it is
// missing) keeps that one error: Check does not run when it is the
// validation's Field, and an error Check reports on it is dropped. A Check
// that reads such a field sees its zero value.
type Validation struct {
	Name  string
	Field string
	Check func(ctx context.Context, cs *AnyChangeset) error
}

// Change runs inside the action's transaction. Before runs after validation
// and before the data layer call, and may set attributes; After runs after
// the data layer call with the written record (*T) and may run other actions
// in the same transaction. Either may fail the action, rolling it back.
//
// In a bulk update or destroy, Before runs once (what it sets applies to
// every record) and After runs once per affected record.
type Change struct {
	// Name identifies the change; an extension adds a change only when no
	// change of that name is declared.
	Name string
	// On limits a resource-level change to these action types. Zero value:
	// every create, update and destroy action.
	On []ActionType
	// Prepare runs before the action's transaction begins, once the input
	// is cast and validated: slow work that must not hold a write lock,
	// such as hashing a password. It may Set attributes and fail the
	// action. A bulk update or destroy runs it in its transaction, before
	// Before.
	Prepare func(ctx context.Context, cs *AnyChangeset) error
	// Before runs in the transaction, before the write.
	Before func(ctx context.Context, cs *AnyChangeset) error
	// After runs in the transaction, after the write; failing rolls the
	// write back.
	After func(ctx context.Context, cs *AnyChangeset, record any) error
}

func (c Change) appliesTo(t ActionType) bool {
	if len(c.On) == 0 {
		return t == CreateAction || t == UpdateAction || t == DestroyAction
	}
	return slices.Contains(c.On, t)
}

// Preparation adjusts a read before it runs: adds a filter, a sort, a limit.
type Preparation struct {
	Name    string
	Prepare func(ctx context.Context, q *Query) error
}

// ActionDecl is the declaration every action builder compiles to. Extensions
// and verifiers read it; users declare actions with the builders.
type ActionDecl struct {
	Name         string
	Type         ActionType
	Description  string
	Accept       []string
	Arguments    []Argument
	Validations  []Validation
	Changes      []Change
	Preparations []Preparation
	Notifiers    []Notifier

	// Read
	Filter Filter
	Sort   []Sort
	Limit  int
	Get    bool
	GetBy  []string
	Lock   bool
	// PageSize bounds the pages of the read (see Read.PageSize).
	PageSize PageSize

	// Create
	Upsert         bool
	UpsertIdentity string
	UpsertFields   []string
	SkipOnConflict bool

	// Generic
	Run func(ctx context.Context, cs *AnyChangeset) (any, error)
	// OutsideTransaction: Run is called without a transaction (see
	// Generic.OutsideTransaction).
	OutsideTransaction bool

	location Location
	// input is the input struct of an action declared through a handle
	// (DefineCreate…); inputRules are its fields' validate tags on
	// accepted attributes.
	input      reflect.Type
	inputRules []inputRule
	// runConflict: a generic handle was given a Run besides its typed one.
	runConflict bool
}

// Location is where the action was declared.
func (a *ActionDecl) Location() Location { return a.location }

// Argument returns the argument of that name, or nil.
func (a *ActionDecl) Argument(name string) *Argument {
	for i := range a.Arguments {
		if a.Arguments[i].Name == name {
			return &a.Arguments[i]
		}
	}
	return nil
}

// AddChange appends a change unless one of that name is declared.
func (a *ActionDecl) AddChange(c Change) bool {
	for _, have := range a.Changes {
		if have.Name != "" && have.Name == c.Name {
			return false
		}
	}
	a.Changes = append(a.Changes, c)
	return true
}

// AddArgument appends an argument unless one of that name is declared.
func (a *ActionDecl) AddArgument(arg Argument) bool {
	if a.Argument(arg.Name) != nil {
		return false
	}
	a.Arguments = append(a.Arguments, arg)
	return true
}

func (a *ActionDecl) clone() *ActionDecl {
	c := *a
	c.Accept = slices.Clone(a.Accept)
	c.Arguments = slices.Clone(a.Arguments)
	c.Validations = slices.Clone(a.Validations)
	c.Changes = slices.Clone(a.Changes)
	c.Preparations = slices.Clone(a.Preparations)
	c.Notifiers = slices.Clone(a.Notifiers)
	c.Sort = slices.Clone(a.Sort)
	c.GetBy = slices.Clone(a.GetBy)
	c.UpsertFields = slices.Clone(a.UpsertFields)
	c.inputRules = slices.Clone(a.inputRules)
	return &c
}

// AcceptAll in an Accept list accepts every writable attribute.
const AcceptAll = "*"

// Create declares a create action: it inserts one record built from the
// accepted attributes, defaults and changes.
type Create struct {
	Name        string
	Description string
	// Accept lists the attributes the input may set. Zero value: none.
	Accept      []string
	Arguments   []Argument
	Validations []Validation
	Changes     []Change
	Notifiers   []Notifier
	// Upsert turns the insert into insert-or-update on UpsertIdentity
	// (the primary key when empty), updating UpsertFields (every accepted
	// attribute when empty).
	Upsert         bool
	UpsertIdentity string
	UpsertFields   []string
	// SkipOnConflict makes an insert that conflicts on UpsertIdentity (the
	// primary key when empty) write nothing and fail with a *ConflictError,
	// leaving the transaction usable (ON CONFLICT DO NOTHING), where a plain
	// insert's violation would abort a PostgreSQL transaction.
	SkipOnConflict bool
}

func (a Create) decl() *ActionDecl {
	return &ActionDecl{Name: a.Name, Type: CreateAction, Description: a.Description, Accept: a.Accept,
		Arguments: a.Arguments, Validations: a.Validations, Changes: a.Changes, Notifiers: a.Notifiers,
		Upsert: a.Upsert, UpsertIdentity: a.UpsertIdentity, UpsertFields: a.UpsertFields, SkipOnConflict: a.SkipOnConflict}
}

// Read declares a read action: a filtered, sorted, limited query.
type Read struct {
	Name        string
	Description string
	Arguments   []Argument
	// Filter is applied to every run; FromArg, FromActor and CurrentTime
	// values in it are resolved per run.
	Filter       Filter
	Sort         []Sort
	Limit        int
	Preparations []Preparation
	// Get makes the action return one record, ErrNotFound when none.
	Get bool
	// GetBy gets one record by these attributes (the primary key or an
	// identity): it declares an argument per attribute and filters on it.
	GetBy []string
	// Lock reads with SELECT … FOR UPDATE where the database supports it.
	Lock bool
	// PageSize is the default and the largest number of records of a page
	// of the read (Resource.Page, or Paginate). Limit applies to reads of
	// all the records (Resource.Read), not to pages. Zero value: pages of
	// DefaultPageSize records unless the request asks for another size,
	// without a maximum.
	PageSize PageSize
}

func (a Read) decl() *ActionDecl {
	return &ActionDecl{Name: a.Name, Type: ReadAction, Description: a.Description, Arguments: a.Arguments,
		Filter: a.Filter, Sort: a.Sort, Limit: a.Limit, Preparations: a.Preparations,
		Get: a.Get || len(a.GetBy) > 0, GetBy: a.GetBy, Lock: a.Lock, PageSize: a.PageSize}
}

// Update declares an update action. It runs on one record
// (Resource.Update) or, in bulk, on every record a filter matches
// (Resource.BulkUpdate: one UPDATE … RETURNING statement, one notification
// per record).
type Update struct {
	Name        string
	Description string
	Accept      []string
	Arguments   []Argument
	Validations []Validation
	Changes     []Change
	Notifiers   []Notifier
}

func (a Update) decl() *ActionDecl {
	return &ActionDecl{Name: a.Name, Type: UpdateAction, Description: a.Description, Accept: a.Accept,
		Arguments: a.Arguments, Validations: a.Validations, Changes: a.Changes, Notifiers: a.Notifiers}
}

// Destroy declares a destroy action, on one record or in bulk by filter
// (one DELETE … RETURNING statement, one notification per record).
type Destroy struct {
	Name        string
	Description string
	Arguments   []Argument
	Validations []Validation
	Changes     []Change
	Notifiers   []Notifier
}

func (a Destroy) decl() *ActionDecl {
	return &ActionDecl{Name: a.Name, Type: DestroyAction, Description: a.Description,
		Arguments: a.Arguments, Validations: a.Validations, Changes: a.Changes, Notifiers: a.Notifiers}
}

// Generic declares an action that runs Go code in a transaction: Run gets
// the validated arguments on the changeset and may run other actions with
// the same ctx, inside the same transaction. Its result is returned as is.
type Generic struct {
	Name        string
	Description string
	Arguments   []Argument
	Validations []Validation
	Run         func(ctx context.Context, cs *AnyChangeset) (any, error)
	// OutsideTransaction calls Run without opening a transaction, for slow
	// work that must not hold a write lock (checking a password hash, a
	// network call). The actions Run runs then open their own
	// transactions; Domain.InTransaction groups several. Run called in a
	// caller's transaction still joins it. Default: false.
	OutsideTransaction bool
}

func (a Generic) decl() *ActionDecl {
	return &ActionDecl{Name: a.Name, Type: GenericAction, Description: a.Description,
		Arguments: a.Arguments, Validations: a.Validations, Run: a.Run, OutsideTransaction: a.OutsideTransaction}
}
