package resource_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/notifiertest"
)

// person is the record of the input tests.
type person struct {
	ID       uuid.UUID  `bun:",pk,type:uuid" kiln:"default:uuid"`
	Email    string     `bun:",unique,notnull" validate:"required,email"`
	Name     string     `bun:",notnull"`
	Password string     `kiln:"sensitive" validate:"required,min=8"`
	Age      int        `validate:"omitempty,min=13"`
	Active   bool       `bun:",notnull"`
	Born     time.Time  `bun:",nullzero"`
	Referrer *uuid.UUID `bun:"type:uuid"`
}

// secret is a sensitive value the input tests pass; no error may show it.
const secret = "hunter2"

func newPeople(rec *recorder) *resource.Resource[person] {
	return resource.New[person]("person",
		resource.Table("people"),
		resource.Actions{
			resource.Create{Name: "register",
				Accept:    []string{"email", "name", "password", "age", "active", "born", "referrer"},
				Arguments: []resource.Argument{{Name: "password_confirmation", Validate: "required", Sensitive: true}},
				Validations: []resource.Validation{
					{Name: "confirmation", Field: "password_confirmation", Check: func(_ context.Context, cs *resource.AnyChangeset) error {
						if resource.Arg[string](cs, "password_confirmation") != cs.Get("password") {
							return errors.New("does not match password")
						}
						return nil
					}},
					{Name: "reserved", Check: func(_ context.Context, cs *resource.AnyChangeset) error {
						if cs.Get("name") == "root" {
							return cs.Invalid("name", "is reserved")
						}
						return nil
					}},
				}},
			resource.Create{Name: "invite", Accept: []string{"email", "name"}},
			resource.Read{Name: "list", Sort: []resource.Sort{resource.Asc("email")}},
			resource.Read{Name: "by_email", GetBy: []string{"email"}},
			resource.Update{Name: "rename", Accept: []string{"name"}},
			resource.Generic{Name: "double",
				Arguments: []resource.Argument{{Name: "n", Type: reflect.TypeFor[int](), Validate: "min=1"}},
				Run: func(_ context.Context, cs *resource.AnyChangeset) (any, error) {
					return 2 * resource.Arg[int](cs, "n"), nil
				}},
		},
		resource.Notifiers(rec),
	)
}

// inputFixture is a built domain of people, with one person in it.
type inputFixture struct {
	d      *resource.Domain
	people *resource.Resource[person]
	rec    *recorder
	ada    *person
}

func newInputFixture(t *testing.T, db string) *inputFixture {
	t.Helper()
	f := &inputFixture{rec: &recorder{}}
	f.people = newPeople(f.rec)
	f.d = buildDomain(t, db, f.people)
	ada, err := f.people.Create(t.Context(), f.d, "register", resource.Input{
		"email": "ada@example.com", "name": "Ada", "password": "correct horse", "password_confirmation": "correct horse",
	})
	if err != nil {
		t.Fatal(err)
	}
	f.ada = ada
	f.rec.Reset()
	return f
}

// assertUntouched checks that a failed action wrote nothing and notified
// nobody: Ada is still the only person, as she was.
func (f *inputFixture) assertUntouched(t *testing.T) {
	t.Helper()
	all, err := f.people.Read(t.Context(), f.d, "list", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].ID != f.ada.ID || all[0].Name != f.ada.Name || all[0].Email != f.ada.Email {
		t.Errorf("after a failed action the table holds %d people (%+v), want only Ada as she was", len(all), all)
	}
	if n := f.rec.Len(); n != 0 {
		t.Errorf("a failed action sent %d notifications: %+v", n, f.rec.All())
	}
}

// fieldError is what the tests expect of one *ValidationError.
type fieldError struct{ field, message string }

// validationErrors returns the *ValidationError values err joins, in order,
// checking that each names the resource and the action.
func validationErrors(t *testing.T, err error, res, action string) []fieldError {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var out []fieldError
	for _, e := range errs {
		var ve *resource.ValidationError
		if !errors.As(e, &ve) {
			t.Fatalf("%T is not a *resource.ValidationError: %v", e, e)
		}
		if ve.Resource != res || ve.Action != action {
			t.Errorf("%v names %s.%s, want %s.%s", ve, ve.Resource, ve.Action, res, action)
		}
		out = append(out, fieldError{ve.Field, ve.Message})
	}
	return out
}

func TestInvalidInput(t *testing.T) {
	valid := func(more resource.Input) resource.Input {
		in := resource.Input{"email": "bob@example.com", "name": "Bob", "password": "long enough", "password_confirmation": "long enough"}
		for k, v := range more {
			if v == nil {
				delete(in, k)
				continue
			}
			in[k] = v
		}
		return in
	}
	tests := []struct {
		name   string
		action string
		in     resource.Input
		want   []fieldError
		msg    string // the whole message, when one error
	}{
		{
			name: "unknown input", action: "register",
			in:   valid(resource.Input{"emial": "x"}),
			want: []fieldError{{"emial", `unknown input; did you mean "email"?`}},
			msg:  `kiln/resource: person.register: emial: unknown input; did you mean "email"?`,
		},
		{
			name: "unknown input far from any", action: "invite",
			in:   resource.Input{"email": "bob@example.com", "name": "Bob", "colour": "red"},
			want: []fieldError{{"colour", "unknown input; use one of: email, name"}},
		},
		{
			name: "attribute not accepted", action: "invite",
			in:   resource.Input{"email": "bob@example.com", "name": "Bob", "age": 30},
			want: []fieldError{{"age", "is not accepted by this action"}},
			msg:  "kiln/resource: person.invite: age: is not accepted by this action",
		},
		{
			name: "NUL in a string", action: "register",
			in:   valid(resource.Input{"name": "Bob\x00'; --"}),
			want: []fieldError{{"name", "must not contain a NUL character"}},
		},
		{
			name: "invalid UTF-8", action: "register",
			in:   valid(resource.Input{"name": "Bob\xff"}),
			want: []fieldError{{"name", "must be valid UTF-8"}},
		},
		{
			name: "string into int", action: "register",
			in:   valid(resource.Input{"age": "twelve"}),
			want: []fieldError{{"age", "must be an integer"}},
		},
		{
			name: "fraction into int", action: "register",
			in:   valid(resource.Input{"age": 12.5}),
			want: []fieldError{{"age", "must be an integer"}},
		},
		{
			name: "int into string", action: "register",
			in:   valid(resource.Input{"name": 42}),
			want: []fieldError{{"name", "must be a string, not an integer"}},
		},
		{
			name: "bad uuid string", action: "register",
			in:   valid(resource.Input{"referrer": "not-a-uuid"}),
			want: []fieldError{{"referrer", "must be a uuid.UUID"}},
			msg:  "kiln/resource: person.register: referrer: must be a uuid.UUID",
		},
		{
			name: "bad bool string", action: "register",
			in:   valid(resource.Input{"active": "maybe"}),
			want: []fieldError{{"active", "must be true or false"}},
		},
		{
			name: "bad time string", action: "register",
			in:   valid(resource.Input{"born": "yesterday"}),
			want: []fieldError{{"born", "must be a time (RFC 3339)"}},
		},
		{
			name: "nil into a string", action: "register",
			in:   valid(resource.Input{"name": (*string)(nil)}),
			want: []fieldError{{"name", "must not be nil"}},
		},
		{
			name: "wrong type for an attribute that also has rules", action: "register",
			in:   valid(resource.Input{"email": 42}),
			want: []fieldError{{"email", "must be a string, not an integer"}},
		},
		{
			name: "required missing", action: "register",
			in:   valid(resource.Input{"email": nil}),
			want: []fieldError{{"email", "is required"}},
			msg:  "kiln/resource: person.register: email: is required",
		},
		{
			name: "bad email", action: "register",
			in:   valid(resource.Input{"email": "bob.example.com"}),
			want: []fieldError{{"email", "must be a valid email address"}},
		},
		{
			name: "too short", action: "register",
			in:   valid(resource.Input{"password": secret, "password_confirmation": secret}),
			want: []fieldError{{"password", "must be at least 8 characters long"}},
			msg:  "kiln/resource: person.register: password: must be at least 8 characters long",
		},
		{
			name: "number below min", action: "register",
			in:   valid(resource.Input{"age": 9}),
			want: []fieldError{{"age", "must be at least 13"}},
		},
		{
			name: "every field error at once", action: "register",
			in: resource.Input{"email": "bob.example.com", "age": "x", "password": secret, "name": 1},
			want: []fieldError{
				{"age", "must be an integer"},
				{"name", "must be a string, not an integer"},
				{"email", "must be a valid email address"},
				{"password", "must be at least 8 characters long"},
				{"password_confirmation", "is required"},
			},
		},
		{
			name: "required argument missing", action: "register",
			in:   valid(resource.Input{"password_confirmation": nil}),
			want: []fieldError{{"password_confirmation", "is required"}},
		},
		{
			name: "declared validation", action: "register",
			in:   valid(resource.Input{"password_confirmation": secret}),
			want: []fieldError{{"password_confirmation", "does not match password"}},
			msg:  "kiln/resource: person.register: password_confirmation: does not match password",
		},
		{
			name: "declared validations all run", action: "register",
			in:   valid(resource.Input{"name": "root", "password_confirmation": secret}),
			want: []fieldError{{"password_confirmation", "does not match password"}, {"name", "is reserved"}},
		},
		{
			name: "declared validations run with the field rules", action: "register",
			in:   valid(resource.Input{"email": "bob", "password_confirmation": secret}),
			want: []fieldError{{"email", "must be a valid email address"}, {"password_confirmation", "does not match password"}},
		},
		{
			name: "a declared validation of a field that did not convert is skipped", action: "register",
			in:   valid(resource.Input{"password_confirmation": 42}),
			want: []fieldError{{"password_confirmation", "must be a string, not an integer"}},
		},
		{
			name: "required attribute left empty", action: "invite",
			in:   resource.Input{"email": "bob@example.com"},
			want: []fieldError{{"name", "is required"}},
			msg:  "kiln/resource: person.invite: name: is required",
		},
		{
			name: "argument rule", action: "double",
			in:   resource.Input{"n": "0"},
			want: []fieldError{{"n", "must be at least 1"}},
			msg:  "kiln/resource: person.double: n: must be at least 1",
		},
		{
			name: "argument type", action: "double",
			in:   resource.Input{"n": "two"},
			want: []fieldError{{"n", "must be an integer"}},
		},
	}
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			f := newInputFixture(t, db)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					res, err := f.d.Run(t.Context(), f.people, tt.action, tt.in)
					if err == nil {
						t.Fatalf("%s succeeded (%+v); want %v", tt.action, res, tt.want)
					}
					if !errors.Is(err, resource.ErrInvalid) {
						t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
					}
					if got := validationErrors(t, err, "person", tt.action); !slices.Equal(got, tt.want) {
						t.Errorf("field errors\n got %q\nwant %q", got, tt.want)
					}
					if tt.msg != "" && err.Error() != tt.msg {
						t.Errorf("message\n got %s\nwant %s", err, tt.msg)
					}
					if strings.Contains(err.Error(), secret) {
						t.Errorf("the message shows a sensitive value: %s", err)
					}
					f.assertUntouched(t)
				})
			}
		})
	}
}

func TestInputFromForm(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			f := newInputFixture(t, db)
			ref := uuid.New()
			// Every value as an HTML form posts it: a string.
			got, err := f.people.Create(t.Context(), f.d, "register", resource.Input{
				"email": "bob@example.com", "name": "Bob", "password": "long enough", "password_confirmation": "long enough",
				"age": "42", "active": "true", "born": "1990-05-17T08:30:00Z", "referrer": ref.String(),
			})
			if err != nil {
				t.Fatal(err)
			}
			born := time.Date(1990, 5, 17, 8, 30, 0, 0, time.UTC)
			check := func(what string, p *person) {
				t.Helper()
				if p.Age != 42 || !p.Active || !p.Born.Equal(born) || p.Referrer == nil || *p.Referrer != ref {
					t.Errorf("%s: age %d, active %v, born %v, referrer %v; want 42, true, %v, %v", what, p.Age, p.Active, p.Born, p.Referrer, born, ref)
				}
			}
			check("created", got)
			stored, err := f.people.Get(t.Context(), f.d, "by_email", resource.Input{"email": "bob@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			check("read back", stored)
			if got, err := resource.Call[int](t.Context(), f.d, f.people, "double", resource.Input{"n": "21"}); err != nil || got != 42 {
				t.Errorf("double(\"21\") = %d, %v; want 42", got, err)
			}
		})
	}
}

func TestUnknownAction(t *testing.T) {
	f := newInputFixture(t, "sqlite")
	for _, run := range []struct {
		name string
		run  func() error
	}{
		{"Run", func() error {
			_, err := f.d.Run(t.Context(), f.people, "regster", resource.Input{"email": "bob@example.com"})
			return err
		}},
		{"Create", func() error {
			_, err := f.people.Create(t.Context(), f.d, "regster", resource.Input{"email": "bob@example.com"})
			return err
		}},
		{"Call", func() error {
			_, err := resource.Call[int](t.Context(), f.d, f.people, "regster", nil)
			return err
		}},
	} {
		err := run.run()
		if !errors.Is(err, resource.ErrUnknownAction) {
			t.Errorf("%s: %v; want ErrUnknownAction", run.name, err)
		}
		want := `kiln/resource: unknown action: person has no action "regster"; did you mean "register"?`
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v\nwant %s", run.name, err, want)
		}
	}
	_, err := f.d.Run(t.Context(), f.people, "sign_up", nil)
	want := `kiln/resource: unknown action: person has no action "sign_up"; use one of: by_email, double, invite, list, register, rename`
	if err == nil || err.Error() != want {
		t.Errorf("%v\nwant %s", err, want)
	}
	// A resource that is not in the domain.
	other := newPeople(&recorder{})
	_, err = f.d.Run(t.Context(), resource.New[member]("person"), "list", nil)
	if !errors.Is(err, resource.ErrUnknownResource) {
		t.Errorf("a resource of another type under the same name: %v; want ErrUnknownResource", err)
	}
	// Resources are found by name and record type, so that a Ref the
	// domain hands out (Domain.Resource) runs like the declared one.
	if _, err := f.d.Run(t.Context(), other, "list", nil); err != nil {
		t.Errorf("a resource of the same name and type: %v", err)
	}
	f.assertUntouched(t)
}

func TestWrongActionType(t *testing.T) {
	f := newInputFixture(t, "sqlite")
	ctx := t.Context()
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"Create on an update", func() error {
			_, err := f.people.Create(ctx, f.d, "rename", resource.Input{"name": "Bob"})
			return err
		}, "kiln/resource: wrong action type: person.rename is an update action, not create"},
		{"Update on a create", func() error {
			_, err := f.people.Update(ctx, f.d, "register", f.ada, resource.Input{"name": "Bob"})
			return err
		}, "kiln/resource: wrong action type: person.register is a create action, not update"},
		{"Destroy on an update", func() error {
			return f.people.Destroy(ctx, f.d, "rename", f.ada, nil)
		}, "kiln/resource: wrong action type: person.rename is an update action, not destroy"},
		{"BulkUpdate on a read", func() error {
			_, err := f.people.BulkUpdate(ctx, f.d, "list", resource.Eq("email", "ada@example.com"), resource.Input{"name": "Bob"})
			return err
		}, "kiln/resource: wrong action type: person.list is a read action, not update"},
		{"Read on a generic", func() error {
			_, err := f.people.Read(ctx, f.d, "double", resource.Input{"n": 1})
			return err
		}, "kiln/resource: wrong action type: person.double is a generic action, not read"},
		{"Get on a read without Get", func() error {
			_, err := f.people.Get(ctx, f.d, "list", nil)
			return err
		}, "kiln/resource: wrong action type: person.list is not declared with Get or GetBy"},
		{"Call on a create", func() error {
			_, err := resource.Call[int](ctx, f.d, f.people, "invite", resource.Input{"email": "bob@example.com", "name": "Bob"})
			return err
		}, "kiln/resource: wrong action type: person.invite is a create action, not generic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if !errors.Is(err, resource.ErrWrongActionType) {
				t.Errorf("%v; want ErrWrongActionType", err)
			}
			if err == nil || err.Error() != tt.want {
				t.Errorf("\n got %v\nwant %s", err, tt.want)
			}
			f.assertUntouched(t)
		})
	}
}

func TestUpdateTarget(t *testing.T) {
	f := newInputFixture(t, "sqlite")
	ctx := t.Context()
	tests := []struct {
		name string
		opts []resource.RunOption
		want string
	}{
		{"record of another type", []resource.RunOption{resource.OnRecord(&member{ID: f.ada.ID})},
			"kiln/resource: person.rename: OnRecord needs a non-nil *resource_test.person, not *resource_test.member"},
		{"record by value", []resource.RunOption{resource.OnRecord(*f.ada)},
			"kiln/resource: person.rename: OnRecord needs a non-nil *resource_test.person, not resource_test.person"},
		{"nil record", []resource.RunOption{resource.OnRecord((*person)(nil))},
			"kiln/resource: person.rename: OnRecord needs a non-nil *resource_test.person, not *resource_test.person"},
		{"no target", nil,
			"kiln/resource: person.rename: update needs OnRecord(record) or Where(filter)"},
		{"both targets", []resource.RunOption{resource.OnRecord(f.ada), resource.Where(resource.Eq("name", "Ada"))},
			"kiln/resource: person.rename: give OnRecord or Where, not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.d.Run(ctx, f.people, "rename", resource.Input{"name": "Bob"}, tt.opts...)
			if err == nil || err.Error() != tt.want {
				t.Errorf("\n got %v\nwant %s", err, tt.want)
			}
			f.assertUntouched(t)
		})
	}
	// A record that is gone.
	gone := *f.ada
	gone.ID = uuid.New()
	_, err := f.people.Update(ctx, f.d, "rename", &gone, resource.Input{"name": "Bob"})
	if !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("update of a missing record: %v; want ErrNotFound", err)
	}
	var nf *resource.NotFoundError
	if !errors.As(err, &nf) || nf.Resource != "person" || nf.Action != "rename" {
		t.Errorf("errors.As: %+v; want a *NotFoundError of person.rename", nf)
	}
	f.assertUntouched(t)
}

// tally has a required number.
type tally struct {
	ID    int64 `bun:",pk,autoincrement"`
	Name  string
	Count int `bun:",notnull"`
}

// TestRequiredNumber: 0 given for a required number is a value; a required
// number nobody set is missing.
func TestRequiredNumber(t *testing.T) {
	rec := &recorder{}
	tallies := resource.New[tally]("tally", resource.Actions{
		resource.Create{Name: "create", Accept: []string{"name", "count"}},
		resource.Read{Name: "list", Sort: []resource.Sort{resource.Asc("id")}},
	}, resource.Notifiers(rec))
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			rec.Reset()
			d := buildDomain(t, db, tallies)
			got, err := tallies.Create(t.Context(), d, "create", resource.Input{"name": "zero", "count": 0})
			if err != nil {
				t.Fatal(err)
			}
			if got.ID == 0 || got.Count != 0 {
				t.Errorf("created %+v; want an id from the database and count 0", got)
			}
			_, err = tallies.Create(t.Context(), d, "create", resource.Input{"name": "unset"})
			if want := "kiln/resource: tally.create: count: is required"; err == nil || err.Error() != want {
				t.Errorf("create without count: %v; want %s", err, want)
			}
			all, err := tallies.Read(t.Context(), d, "list", nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 1 || all[0].Name != "zero" || rec.Len() != 1 {
				t.Errorf("stored %+v with %d notifications; want only the tally of zero, notified once", all, rec.Len())
			}
		})
	}
}

func TestSensitiveValuesNeverShown(t *testing.T) {
	f := newInputFixture(t, "sqlite")
	ctx := t.Context()
	for _, in := range []resource.Input{
		{"email": "bob@example.com", "name": "Bob", "password": secret, "password_confirmation": secret},
		{"email": "bob@example.com", "name": "Bob", "password": "long enough " + secret, "password_confirmation": secret},
		{"email": "bob@example.com", "name": "Bob", "password": []byte(secret), "password_confirmation": secret},
		{"email": secret, "name": "Bob", "password": secret},
	} {
		_, err := f.people.Create(ctx, f.d, "register", in)
		if err == nil {
			t.Fatalf("register %v succeeded", in)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the message shows the sensitive value: %s", err)
		}
	}
	f.assertUntouched(t)
}

// Helpers shared by the package's tests.

// recorder keeps what it is sent (notifiertest.Recorder), and lists it.
type recorder struct{ notifiertest.Recorder }

// actions lists "resource.action" of each notification, in order.
func (r *recorder) actions() []string {
	var out []string
	for _, n := range r.All() {
		out = append(out, n.Resource+"."+n.Action)
	}
	return out
}

// buildDomain builds a domain of rs on the named database and creates the
// tables.
func buildDomain(t *testing.T, db string, rs ...resource.Ref) *resource.Domain {
	t.Helper()
	layer := testdb.Open(t, db)
	d, err := resource.NewDomain("test", rs...).Build(t.Context(), layer)
	if err != nil {
		t.Fatal(err)
	}
	if err := layer.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return d
}
