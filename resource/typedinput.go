package resource

import (
	"fmt"
	"reflect"
)

// InputSource is what InputOf reads an action's input from: the changeset
// that a change, a validation or a generic action receives
// (*Changeset[T] or *AnyChangeset), or the *Query that a read's
// preparation receives.
type InputSource interface {
	inputRun() *AnyChangeset
}

func (c *AnyChangeset) inputRun() *AnyChangeset { return c }
func (q *Query) inputRun() *AnyChangeset        { return q.cs }

// InputOf returns the input of the action being run as an In, the input
// type the action was declared with (its handle's or view's; Input for an
// action declared with a plain builder): how a change, validation or
// preparation reads the arguments without naming them in strings.
//
// A field that is an argument holds its value, cast, validated and
// defaulted. A field that sets an attribute holds the attribute's value
// on the record being written, so it includes what the changes before set;
// an optional (pointer) one is nil unless the action sets the attribute.
// An Input holds the arguments and the attributes the action sets.
//
// Asking for another type than the action's input is an error.
func InputOf[In any](s InputSource) (In, error) {
	var in In
	cs := s.inputRun()
	if cs == nil {
		return in, fmt.Errorf("kiln/resource: InputOf: the query is not a read action's")
	}
	have, want := cs.action.input, reflect.TypeFor[In]()
	if have == nil {
		have = reflect.TypeFor[Input]()
	}
	if have != want {
		return in, fmt.Errorf("kiln/resource: %s.%s: InputOf: the action's input is %s, not %s", cs.resource.decl.Name, cs.action.Name, have, want)
	}
	return inputOf[In](cs)
}

// inputOf builds an input struct from a changeset's arguments and the
// record's accepted attributes (see InputOf).
func inputOf[In any](cs *AnyChangeset) (In, error) {
	var in In
	if p, ok := any(&in).(*Input); ok {
		m := Input(cs.Arguments())
		for name := range cs.action.accept {
			if cs.Changing(name) {
				m[name] = cs.Get(name)
			}
		}
		*p = m
		return in, nil
	}
	rv := reflect.ValueOf(&in).Elem()
	fields, err := inputFieldsOf(rv.Type())
	if err != nil {
		return in, err
	}
	for _, f := range fields {
		val, ok, err := inputValue(cs, f)
		if err != nil {
			return in, err
		}
		if !ok {
			continue
		}
		dst := rv.FieldByIndex(f.index)
		if f.optional {
			p := reflect.New(f.typ)
			p.Elem().Set(val)
			dst.Set(p)
			continue
		}
		dst.Set(val)
	}
	return in, nil
}

// inputValue is the value of input field f, of the field's type, or false
// when there is none.
func inputValue(cs *AnyChangeset, f inputField) (reflect.Value, bool, error) {
	if v, ok := cs.args[f.name]; ok {
		if v == nil {
			return reflect.Value{}, false, nil
		}
		val := reflect.ValueOf(v)
		if !val.Type().AssignableTo(f.typ) {
			return reflect.Value{}, false, fmt.Errorf("kiln/resource: argument %q is %s, not %s", f.name, val.Type(), f.typ)
		}
		return val, true, nil
	}
	attr := cs.action.accept[f.name]
	if attr == nil || !cs.record.IsValid() || f.optional && !cs.Changing(f.name) {
		return reflect.Value{}, false, nil
	}
	val := cs.record.Elem().FieldByIndex(attr.Index)
	if val.Kind() == reflect.Pointer && f.typ.Kind() != reflect.Pointer {
		if val.IsNil() {
			return reflect.Value{}, false, nil
		}
		val = val.Elem()
	}
	if !val.Type().ConvertibleTo(f.typ) {
		return reflect.Value{}, false, fmt.Errorf("kiln/resource: attribute %q is %s, not %s", f.name, val.Type(), f.typ)
	}
	return val.Convert(f.typ), true, nil
}
