package dsl

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// Bind checks that s describes the struct T, records T as its type, and
// returns s. Declare every schema with it:
//
//	var SettingsSchema = dsl.Bind[Settings](&dsl.Section{…})
//
// Every option must name an exported field of T whose type fits its Kind,
// with a Default convertible to that type and Rules the validator knows;
// every nested section must name a struct field of T, and is bound to that
// field's type in turn. A schema's options are found by field name, so a
// misspelt one would otherwise be skipped without a word (no default, no
// rule checked): Bind panics instead, naming every mismatch, when the
// package that declares the schema is initialised, which fails every
// program and test that imports it.
func Bind[T any](s *Section) *Section {
	if err := s.bind(reflect.TypeFor[T](), s.Name); err != nil {
		panic(err)
	}
	return s
}

// Type is the struct type the section was bound to (see Bind), or nil.
func (s *Section) Type() reflect.Type { return s.typ }

var durationType = reflect.TypeFor[time.Duration]()

// bind binds s and its nested sections to t, returning every mismatch.
func (s *Section) bind(t reflect.Type, path string) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("kiln/dsl: schema %s (%s): %s", path, t, fmt.Sprintf(format, args...))
	}
	if t.Kind() != reflect.Struct {
		return fail("is not a struct")
	}
	if s.typ != nil && s.typ != t {
		return fail("is bound to %s already", s.typ)
	}
	var errs []error
	if s.GoType != "" && s.GoType != t.String() {
		errs = append(errs, fail("GoType is %q; want %q", s.GoType, t.String()))
	}
	names := map[string]bool{}
	for _, o := range s.Options {
		if names[o.Name] {
			errs = append(errs, fail("option %s is declared twice", o.Name))
		}
		names[o.Name] = true
		f, err := structField(t, o.Field)
		if err != nil {
			errs = append(errs, fail("option %s: %v", o.Name, err))
			continue
		}
		if msg := fits(o, f.Type); msg != "" {
			errs = append(errs, fail("option %s: field %s is %s; %s", o.Name, o.Field, f.Type, msg))
		}
	}
	for _, sub := range s.Sections {
		if names[sub.Name] {
			errs = append(errs, fail("section %s has the name of another option or section", sub.Name))
		}
		names[sub.Name] = true
		f, err := structField(t, sub.Field)
		if err != nil {
			errs = append(errs, fail("section %s: %v", sub.Name, err))
			continue
		}
		errs = append(errs, sub.bind(f.Type, path+"."+sub.Name))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.typ = t
	return nil
}

// structField returns the exported field of t named name.
func structField(t reflect.Type, name string) (reflect.StructField, error) {
	f, ok := t.FieldByName(name)
	switch {
	case name == "":
		return f, errors.New("names no field")
	case !ok:
		var fields []string
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).IsExported() {
				fields = append(fields, t.Field(i).Name)
			}
		}
		msg := fmt.Sprintf("%s has no field %s", t, name)
		if best := Nearest(name, fields); best != "" {
			msg += "; did you mean " + best + "?"
		}
		return f, errors.New(msg)
	case !f.IsExported():
		return f, fmt.Errorf("field %s of %s is not exported", name, t)
	}
	return f, nil
}

// fits says why an option cannot be held by a field of type t, or "".
func fits(o Option, t reflect.Type) string {
	isSecret := func(t reflect.Type) bool { return t.Kind() == reflect.String || t.Kind() == reflect.Interface }
	ok := false
	switch o.Kind {
	case Bool:
		ok = t.Kind() == reflect.Bool
	case String:
		ok = t.Kind() == reflect.String || o.Parse != nil // Parse makes the field's value
	case Int:
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			ok = t != durationType
		}
	case Duration:
		ok = t == durationType
	case Strings:
		ok = t.Kind() == reflect.Slice && (t.Elem().Kind() == reflect.String || o.Parse != nil)
	case Secret:
		ok = isSecret(t)
	case Secrets:
		ok = t.Kind() == reflect.Slice && isSecret(t.Elem())
	case Resource:
		ok = t.Kind() == reflect.Interface
	case Code:
		ok = true
	default:
		return "the option has no Kind"
	}
	if !ok {
		return "an option of kind " + o.Kind.String() + " needs " + kindNeeds(o.Kind)
	}
	if o.Default != nil && !reflect.TypeOf(o.Default).ConvertibleTo(t) {
		return fmt.Sprintf("its Default is a %T", o.Default)
	}
	if o.Rules != "" {
		if msg := checkRules(t, o.Rules); msg != "" {
			return msg
		}
	}
	return ""
}

func kindNeeds(k Kind) string {
	switch k {
	case Bool:
		return "a bool"
	case String:
		return "a string type"
	case Int:
		return "a signed integer type other than time.Duration"
	case Duration:
		return "a time.Duration"
	case Strings:
		return "a slice of a string type"
	case Secret:
		return "a string type or an interface"
	case Secrets:
		return "a slice of a string type or of an interface"
	}
	return "an interface (such as resource.Ref)"
}

// checkRules runs the rules on a zero value, so that a rule the validator
// does not know (which it reports by panicking) is found at Bind.
func checkRules(t reflect.Type, rules string) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprintf("bad Rules %q: %s", rules, strings.TrimSuffix(fmt.Sprint(r), " on field ''"))
		}
	}()
	_ = validate().Var(reflect.New(t).Elem().Interface(), rules)
	return ""
}
