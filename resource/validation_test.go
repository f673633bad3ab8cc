package resource_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
)

// subscriber is the record of the one-pass validation tests: a required
// name with no rule of its own, an email with a rule, an age that a
// declared validation checks.
type subscriber struct {
	ID    int64  `bun:",pk,autoincrement"`
	Name  string `bun:",notnull"`
	Email string `validate:"omitempty,email"`
	Age   int    `validate:"omitempty,min=13"`
}

// plans is what the plan argument may be.
const plans = "free pro"

func newSubscribers(rec *recorder) *resource.Resource[subscriber] {
	adult := resource.Validation{Name: "adult", Field: "age", Check: func(_ context.Context, cs *resource.AnyChangeset) error {
		if age, _ := cs.Get("age").(int); cs.Changing("age") && age < 18 {
			return errors.New("must be 18 or more")
		}
		return nil
	}}
	// A validation with no Field that reports on the age: when the age
	// did not convert, its error is dropped.
	seniority := resource.Validation{Name: "seniority", Check: func(_ context.Context, cs *resource.AnyChangeset) error {
		if resource.Arg[string](cs, "plan") == "pro" && cs.Get("age").(int) < 21 {
			return cs.Invalid("age", "must be 21 or more for the pro plan")
		}
		return nil
	}}
	plan := resource.Argument{Name: "plan", Validate: "required,oneof=" + plans}
	return resource.New[subscriber]("subscriber",
		resource.Actions{
			resource.Create{Name: "subscribe", Accept: []string{"name", "email", "age"},
				Arguments: []resource.Argument{plan}, Validations: []resource.Validation{adult, seniority}},
			resource.Update{Name: "edit", Accept: []string{"name", "email", "age"},
				Arguments: []resource.Argument{plan}, Validations: []resource.Validation{adult, seniority}},
			resource.Read{Name: "list", Sort: []resource.Sort{resource.Asc("id")}},
			resource.Generic{Name: "quote",
				Arguments: []resource.Argument{
					plan,
					{Name: "seats", Type: reflect.TypeFor[int](), Validate: "min=1"},
					{Name: "coupon"},
				},
				Validations: []resource.Validation{
					{Name: "coupon", Field: "coupon", Check: func(_ context.Context, cs *resource.AnyChangeset) error {
						if c := resource.Arg[string](cs, "coupon"); c != "" && c != "WELCOME" {
							return errors.New("is not a known coupon")
						}
						return nil
					}},
					{Name: "team", Field: "plan", Check: func(_ context.Context, cs *resource.AnyChangeset) error {
						if resource.Arg[string](cs, "plan") != "pro" && resource.Arg[int](cs, "seats") > 5 {
							return errors.New("must be pro for more than 5 seats")
						}
						return nil
					}},
				},
				Run: func(_ context.Context, cs *resource.AnyChangeset) (any, error) {
					return resource.Arg[int](cs, "seats") * 10, nil
				}},
		},
		resource.Notifiers(rec),
	)
}

// TestEveryProblemInOneCall: a rule that fails, a declared validation that
// fails, a required field left out and an unknown key all come back from
// one call, on a create, an update and a generic action's arguments; and
// nothing is written.
func TestEveryProblemInOneCall(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			rec := &recorder{}
			subs := newSubscribers(rec)
			d := buildDomain(t, db, subs)
			ctx := t.Context()
			ada, err := subs.Create(ctx, d, "subscribe", resource.Input{"name": "Ada", "email": "ada@example.com", "age": 36, "plan": "pro"})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := resource.Call[int](ctx, d, subs, "quote", resource.Input{"plan": "pro", "seats": "10", "coupon": "WELCOME"}); err != nil || got != 100 {
				t.Fatalf("a valid quote = %d, %v; want 100", got, err)
			}
			rec.Reset()
			tests := []struct {
				name   string
				action string
				in     resource.Input
				opts   []resource.RunOption
				want   []fieldError
			}{
				{
					name: "create", action: "subscribe",
					in: resource.Input{"email": "bob.example.com", "age": 15, "plan": "free", "colour": "red"},
					want: []fieldError{
						{"colour", "unknown input; use one of: age, email, name, plan"},
						{"name", "is required"},
						{"email", "must be a valid email address"},
						{"age", "must be 18 or more"},
					},
				},
				{
					name: "update", action: "edit", opts: []resource.RunOption{resource.OnRecord(ada)},
					in: resource.Input{"name": "", "email": "ada.example.com", "age": 15, "plan": "free", "colour": "red"},
					want: []fieldError{
						{"colour", "unknown input; use one of: age, email, name, plan"},
						{"name", "is required"},
						{"email", "must be a valid email address"},
						{"age", "must be 18 or more"},
					},
				},
				{
					name: "bulk update", action: "edit", opts: []resource.RunOption{resource.Where(resource.Eq("id", ada.ID))},
					in: resource.Input{"name": "", "email": "ada.example.com", "age": 15, "plan": "free", "colour": "red"},
					want: []fieldError{
						{"colour", "unknown input; use one of: age, email, name, plan"},
						{"name", "is required"},
						{"email", "must be a valid email address"},
						{"age", "must be 18 or more"},
					},
				},
				{
					name: "arguments", action: "quote",
					in: resource.Input{"seats": 0, "coupon": "FREE", "colour": "red"},
					want: []fieldError{
						{"colour", "unknown input; use one of: coupon, plan, seats"},
						{"plan", "is required"},
						{"seats", "must be at least 1"},
						{"coupon", "is not a known coupon"},
					},
				},
				{
					name: "a validation with no Field names the field", action: "subscribe",
					in:   resource.Input{"name": "Bob", "age": 19, "plan": "pro"},
					want: []fieldError{{"age", "must be 21 or more for the pro plan"}},
				},
				{
					name: "several problems on one field", action: "edit", opts: []resource.RunOption{resource.OnRecord(ada)},
					in: resource.Input{"age": 12, "plan": "pro"},
					want: []fieldError{
						{"age", "must be at least 13"},
						{"age", "must be 18 or more"},
						{"age", "must be 21 or more for the pro plan"},
					},
				},
				{
					// The age did not convert: the validations that would
					// judge its zero value say nothing of it.
					name: "a field that did not convert has one error", action: "subscribe",
					in:   resource.Input{"name": "Bob", "age": "old", "plan": "pro"},
					want: []fieldError{{"age", "must be an integer"}},
				},
				{
					// The plan is missing: the validation of the plan,
					// which would judge its zero value, does not run.
					name: "a missing argument has one error", action: "quote",
					in:   resource.Input{"seats": 10},
					want: []fieldError{{"plan", "is required"}},
				},
				{
					name: "a declared validation of an argument", action: "quote",
					in:   resource.Input{"plan": "free", "seats": 10},
					want: []fieldError{{"plan", "must be pro for more than 5 seats"}},
				},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					res, err := d.Run(ctx, subs, tt.action, tt.in, tt.opts...)
					if err == nil {
						t.Fatalf("%s succeeded (%+v); want %q", tt.action, res, tt.want)
					}
					if !errors.Is(err, resource.ErrInvalid) {
						t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
					}
					if got := validationErrors(t, err, "subscriber", tt.action); !slices.Equal(got, tt.want) {
						t.Errorf("field errors\n got %q\nwant %q", got, tt.want)
					}
					var got []fieldError
					for _, ve := range resource.ValidationErrors(err) {
						got = append(got, fieldError{ve.Field, ve.Message})
					}
					if !slices.Equal(got, tt.want) {
						t.Errorf("resource.ValidationErrors\n got %q\nwant %q", got, tt.want)
					}
					all, err := subs.Read(ctx, d, "list", nil)
					if err != nil {
						t.Fatal(err)
					}
					if len(all) != 1 || *all[0] != *ada {
						t.Errorf("after a refused %s the table holds %+v, want only %+v", tt.action, all, ada)
					}
					if rec.Len() != 0 {
						t.Errorf("a refused %s sent %d notifications", tt.action, rec.Len())
					}
				})
			}
		})
	}
}
