package resource

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Errors returned by a Domain wrap them, so errors.Is works.
var (
	// ErrNotFound: a read that expects one record found none, or an update or
	// destroy targeted a record that no longer exists.
	ErrNotFound = errors.New("kiln/resource: not found")
	// ErrConflict: a write violated an identity (a unique key). The concrete
	// error is a *ConflictError naming the identity.
	ErrConflict = errors.New("kiln/resource: conflict")
	// ErrUnprotectedFailure is returned, and nothing committed, when a
	// generic action run in a transaction of its own goes on after one
	// of its writes failed: that write ran without a savepoint, so what
	// it wrote could not be undone. Wrap a write whose failure the
	// action handles in Domain.InTransaction.
	ErrUnprotectedFailure = errors.New("kiln/resource: a generic action went on after a write failed outside a savepoint")
	// ErrInvalid: input failed validation. The concrete errors are
	// *ValidationError values, one per problem (a field may have several),
	// all of the input's problems joined.
	ErrInvalid = errors.New("kiln/resource: invalid input")
	// ErrUnknownAction: no action of that name on that resource.
	ErrUnknownAction = errors.New("kiln/resource: unknown action")
	// ErrUnknownResource: the resource is not part of the domain.
	ErrUnknownResource = errors.New("kiln/resource: unknown resource")
	// ErrWrongActionType: an action was run through a helper of another
	// type (Update on a create action, for example).
	ErrWrongActionType = errors.New("kiln/resource: wrong action type")
	// ErrForbidden may be returned by changes and validations that check the
	// actor; kiln itself never decides authorization.
	ErrForbidden = errors.New("kiln/resource: forbidden")
)

// ValidationError reports one invalid input field (an attribute or an
// argument). Field is empty for a problem with the input as a whole.
// It never carries the rejected value, so sensitive input is not echoed.
type ValidationError struct {
	Resource string
	Action   string
	Field    string
	Message  string
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("kiln/resource: ")
	fmt.Fprintf(&b, "%s.%s", e.Resource, e.Action)
	if e.Field != "" {
		fmt.Fprintf(&b, ": %s", e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	return b.String()
}

// Is makes errors.Is(err, ErrInvalid) true for every ValidationError.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// ConflictError reports a write that violated an identity.
type ConflictError struct {
	Resource string
	// Identity is the violated identity's name ("primary_key" for the key).
	Identity string
	// Fields are the identity's attributes.
	Fields []string
	// Err is the data layer's error.
	Err error
}

func (e *ConflictError) Error() string {
	id := e.Identity
	if id == "" {
		id = strings.Join(e.Fields, ", ")
	}
	return fmt.Sprintf("kiln/resource: %s: conflict on identity %s: a record with the same %s exists",
		e.Resource, id, strings.Join(e.Fields, ", "))
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Unwrap returns the data layer's error.
func (e *ConflictError) Unwrap() error { return e.Err }

// ReferenceError reports a write that a belongs-to relationship's foreign
// key refused. A Domain reports an insert or update whose key refers to no
// record as a *ValidationError on the key attribute ("does not exist"), so
// callers see a ReferenceError for a destroy: of a record that records of
// another resource (From) still belong to, through a relationship
// (Relationship) whose OnDelete is Restrict. errors.Is(err, ErrConflict).
type ReferenceError struct {
	Resource string
	Action   string
	// From and Relationship name the belongs-to relationship whose records
	// refused the destroy; both are empty when the database does not say
	// (SQLite) and more than one relationship could have.
	From, Relationship string
	// Attribute is, from a data layer, the key attribute of an insert or
	// update that refers to no record, when the database says which.
	Attribute string
	// Err is the data layer's error.
	Err error
}

func (e *ReferenceError) Error() string {
	what := fmt.Sprintf("kiln/resource: %s.%s", e.Resource, e.Action)
	switch {
	case e.Attribute != "":
		return fmt.Sprintf("%s: %s refers to a record that does not exist", what, e.Attribute)
	case e.From != "":
		return fmt.Sprintf("%s: records of %s still belong to it, through %s", what, e.From, e.Relationship)
	}
	return what + ": records of another resource still belong to it"
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ReferenceError) Is(target error) bool { return target == ErrConflict }

// Unwrap returns the data layer's error.
func (e *ReferenceError) Unwrap() error { return e.Err }

// NotFoundError reports which read found nothing; errors.Is(err, ErrNotFound).
type NotFoundError struct {
	Resource string
	Action   string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("kiln/resource: %s.%s: not found", e.Resource, e.Action)
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// BuildError is one problem found by Domain.Build: which resource, where in
// its declaration, what is wrong and how to fix it.
type BuildError struct {
	Resource string
	// Path is the place in the declaration, outermost first:
	// ["actions", "register", "accept"].
	Path []string
	// Message says what is wrong.
	Message string
	// Fix says what to write instead; may be empty.
	Fix string
	// Location is the file:line of the declaration.
	Location Location
}

func (e *BuildError) Error() string {
	var b strings.Builder
	b.WriteString("kiln/resource: ")
	if e.Resource != "" {
		fmt.Fprintf(&b, "resource %q: ", e.Resource)
	}
	if len(e.Path) > 0 {
		b.WriteString(strings.Join(e.Path, " -> "))
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	if e.Fix != "" {
		b.WriteString("; ")
		b.WriteString(e.Fix)
	}
	if e.Location.File != "" {
		fmt.Fprintf(&b, " (%s)", e.Location)
	}
	return b.String()
}

// ValidationErrors lists the *ValidationError values joined or wrapped in
// err, in order: one per problem with the input, every one of them.
func ValidationErrors(err error) []*ValidationError { return collect[*ValidationError](err) }

// BuildErrors lists the *BuildError values Domain.Build joined in err.
func BuildErrors(err error) []*BuildError { return collect[*BuildError](err) }

// collect walks err's tree (Unwrap() error and Unwrap() []error) and
// returns every E in it, outermost first.
func collect[E error](err error) []E {
	var out []E
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if v, ok := e.(E); ok {
			out = append(out, v)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}
