// Package dsl is the one schema behind kiln's declarations: for every
// section (token, authentication, tokens, password, log_out_everywhere,
// live …) a Section lists each option's name, Go field, type, default, doc
// and validation rules. The builder structs take their defaults and their
// validation from it; config files and KILN_… environment variables are
// checked and applied through it.
//
// Nothing is written twice:
//
//   - every schema is declared with Bind, which checks, when its package
//     is initialised, that each option names a field of its builder
//     struct of the right type (a misspelt field panics instead of being
//     skipped);
//   - an option's doc, default and rules are written in its schema only.
//     The reference in docs/dsl/ and the doc comments of the bound
//     fields of the builder structs are generated from the schemas by
//     `go generate ./dsl`, and a test fails when either is stale: edit
//     the schema's Doc, never a field's comment. A field no option binds
//     keeps the comment written on it.
package dsl

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-playground/validator/v10"
)

// Kind is the type of an option's value, as config files write it.
type Kind int

// The kinds of option.
const (
	Bool Kind = iota + 1
	String
	Int
	// Duration is written "90s", "14d" is not Go: use "336h".
	Duration
	// Strings is a list of strings.
	Strings
	// Secret is a secret string: config files and the environment may set
	// it; printed as "**redacted**".
	Secret
	// Secrets is a list of secrets.
	Secrets
	// Resource names another resource of the domain.
	Resource
	// Code options (funcs, endpoints) can only be declared in Go.
	Code
)

func (k Kind) String() string {
	switch k {
	case Bool:
		return "bool"
	case String:
		return "string"
	case Int:
		return "int"
	case Duration:
		return "duration"
	case Strings:
		return "list of strings"
	case Secret:
		return "secret"
	case Secrets:
		return "list of secrets"
	case Resource:
		return "resource name"
	case Code:
		return "Go code"
	}
	return "unknown"
}

// Option is one option of a section.
type Option struct {
	// Name is the key in config files and build-error paths: snake_case.
	Name string
	// Field is the Go field of the builder struct.
	Field string
	Kind  Kind
	// Default is the value a zero field takes (of the field's Go type);
	// nil for none.
	Default any
	// Doc says what the option does.
	Doc string
	// Rules are go-playground/validator rules the value must pass:
	// "gt=0", "gte=1s", "oneof=HS256 HS384 HS512". A value from a config
	// file, a variable or a flag is checked as it is applied, so one set
	// to zero breaks "gt=0" although a zero field in Go takes the
	// default; a Go value is checked with its default applied.
	Rules string
	// Verify is a rule Rules cannot say, in Go (a URL's form, say),
	// checked after them on the same values: it returns what is wrong
	// with the value, worded to follow the key ("is not host:port"), or
	// nil. An error that joins several (errors.Join) is several problems.
	// A message that quotes the value quotes it through Quote, so that a
	// URL's password is never shown.
	Verify func(value any) error
	// Parse, for a String or Strings option, turns each written string
	// into the field's value or its element's: an address range for a
	// field that is not a string, or the string cleaned (a URL trimmed,
	// its scheme lower-cased). Its error is worded as Verify's, quoting the
	// value through Quote. Nil stores the string as written.
	Parse func(s string) (any, error)
	// Fix is the advice printed when Rules, Verify or Parse fail.
	Fix string
}

// Section is the schema of one builder struct.
type Section struct {
	// Name is the section's key: "tokens".
	Name string
	// Field is the Go field holding it in its parent section ("Tokens"),
	// empty for a top-level section.
	Field string
	// GoType names the builder struct, for docs: "authentication.Tokens".
	GoType string
	// Doc says what the section is.
	Doc     string
	Options []Option
	// Sections are nested sections (struct fields).
	Sections []*Section
	// GoExample and YAMLExample illustrate the section in docs/dsl.
	GoExample, YAMLExample string

	typ reflect.Type // set by Bind
}

var validate = sync.OnceValue(func() *validator.Validate { return validator.New() })

// Option returns the option named name, or nil.
func (s *Section) Option(name string) *Option {
	for i := range s.Options {
		if s.Options[i].Name == name {
			return &s.Options[i]
		}
	}
	return nil
}

// Sub returns the nested section named name, or nil.
func (s *Section) Sub(name string) *Section {
	for _, sub := range s.Sections {
		if sub.Name == name {
			return sub
		}
	}
	return nil
}

// keys lists the option and nested section names, sorted.
func (s *Section) keys() []string {
	var out []string
	for _, o := range s.Options {
		out = append(out, o.Name)
	}
	for _, sub := range s.Sections {
		out = append(out, sub.Name)
	}
	sort.Strings(out)
	return out
}

// Defaults sets every zero option of the struct ptr points to to its
// default, nested sections included.
func (s *Section) Defaults(ptr any) {
	v := reflect.ValueOf(ptr).Elem()
	for _, o := range s.Options {
		f := v.FieldByName(o.Field)
		if o.Default != nil && f.IsValid() && f.IsZero() {
			f.Set(reflect.ValueOf(o.Default).Convert(f.Type()))
		}
	}
	for _, sub := range s.Sections {
		if f := v.FieldByName(sub.Field); f.IsValid() && f.Kind() == reflect.Struct {
			sub.Defaults(f.Addr().Interface())
		}
	}
}

// Problem is an option that breaks its rules.
type Problem struct {
	// Path is the option's path below the section: ["tokens", "token_lifetime"].
	Path    []string
	Message string
	Fix     string
}

// Check validates the struct v (defaults already applied) against the
// rules (Rules, then Verify) of every option, nested sections included.
func (s *Section) Check(v any) []Problem {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	return s.check(rv, nil)
}

func (s *Section) check(rv reflect.Value, path []string) []Problem {
	var out []Problem
	for _, o := range s.Options {
		f := rv.FieldByName(o.Field)
		if !f.IsValid() {
			continue
		}
		for _, msg := range o.problems(f) {
			out = append(out, Problem{Path: append(append([]string{}, path...), o.Name), Message: msg, Fix: o.Fix})
		}
	}
	for _, sub := range s.Sections {
		if f := rv.FieldByName(sub.Field); f.IsValid() && f.Kind() == reflect.Struct {
			out = append(out, sub.check(f, append(append([]string{}, path...), sub.Name))...)
		}
	}
	return out
}

// problems checks the value f against the option's Rules, then its
// Verify, and words what is wrong; none when it passes.
func (o *Option) problems(f reflect.Value) []string {
	if o.Rules != "" {
		if err := validate().Var(f.Interface(), o.Rules); err != nil {
			return []string{ruleMessage(err, f, *o)}
		}
	}
	if o.Verify == nil {
		return nil
	}
	return messages(o.Verify(f.Interface()))
}

// messages lists the messages of err, one per error it joins.
func messages(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, messages(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// ruleMessage words a failed rule, with the value unless it is secret
// (a string through Redact).
func ruleMessage(err error, f reflect.Value, o Option) string {
	ves, ok := err.(validator.ValidationErrors)
	if !ok || len(ves) == 0 {
		return err.Error()
	}
	fe := ves[0]
	shown := " (" + show(f) + ")"
	if o.Kind == Secret || o.Kind == Secrets {
		shown = ""
	}
	if o.Kind == Duration {
		shown = fmt.Sprintf(" (%s)", time.Duration(f.Int()))
	}
	p := fe.Param()
	switch fe.Tag() {
	case "required":
		return "is required"
	case "gte", "min":
		if o.Kind == Duration {
			if d, err := time.ParseDuration(p); err == nil && d == 0 || p == "0" {
				return "must not be negative" + shown
			}
			return "must be at least " + p + shown
		}
		if f.Kind() == reflect.String {
			return fmt.Sprintf("must be at least %s bytes long, not %d", p, f.Len())
		}
		return "must be at least " + p + shown
	case "gt":
		return "must be positive" + shown
	case "lte", "max":
		return "must be at most " + p + shown
	case "oneof":
		return fmt.Sprintf("must be one of %s%s", strings.ReplaceAll(p, " ", ", "), shown)
	}
	return fmt.Sprintf("fails the %s rule%s", fe.Tag(), shown)
}

// show is a value as a message shows it: a string, or each of a list of
// strings, through Redact.
func show(f reflect.Value) string {
	switch {
	case f.Kind() == reflect.String:
		return Redact(f.String())
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		list := make([]string, f.Len())
		for i := range list {
			list[i] = Redact(f.Index(i).String())
		}
		return "[" + strings.Join(list, " ") + "]"
	}
	return fmt.Sprint(f.Interface())
}

//go:generate go run ../internal/dslgen ..
