package resource

import (
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// convert turns an input value into a value of type t: the same or an
// assignable type, numbers between numeric types without loss, strings
// parsed into numbers, bools, times and TextUnmarshalers (uuid.UUID).
// The message it returns never contains the value.
func convert(v any, t reflect.Type) (reflect.Value, error) {
	if v == nil {
		switch t.Kind() {
		case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map:
			return reflect.Zero(t), nil
		}
		return reflect.Value{}, fmt.Errorf("must not be nil")
	}
	if s, ok := v.(string); ok {
		// Neither database stores these: PostgreSQL refuses them, and
		// inlined in SQL a NUL cuts the statement short.
		if strings.IndexByte(s, 0) >= 0 {
			return reflect.Value{}, fmt.Errorf("must not contain a NUL character")
		}
		if !utf8.ValidString(s) {
			return reflect.Value{}, fmt.Errorf("must be valid UTF-8")
		}
	}
	rv := reflect.ValueOf(v)
	if rv.Type().AssignableTo(t) {
		return rv, nil
	}
	if t.Kind() == reflect.Pointer {
		inner, err := convert(v, t.Elem())
		if err != nil {
			return reflect.Value{}, err
		}
		p := reflect.New(t.Elem())
		p.Elem().Set(inner)
		return p, nil
	}
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return convert(nil, t)
		}
		return convert(rv.Elem().Interface(), t)
	}
	if n, ok := v.(json.Number); ok {
		v, rv = string(n), reflect.ValueOf(string(n))
	}
	if isNumber(rv.Kind()) && isNumber(t.Kind()) {
		return convertNumber(rv, t)
	}
	if s, ok := v.(string); ok {
		return parseString(s, t)
	}
	if rv.Type().ConvertibleTo(t) && rv.Kind() == t.Kind() {
		return rv.Convert(t), nil
	}
	return reflect.Value{}, fmt.Errorf("must be %s, not %s", typeName(t), typeName(rv.Type()))
}

func isNumber(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

func convertNumber(rv reflect.Value, t reflect.Type) (reflect.Value, error) {
	var f float64
	switch {
	case rv.CanInt():
		f = float64(rv.Int())
	case rv.CanUint():
		f = float64(rv.Uint())
	default:
		f = rv.Float()
	}
	out := reflect.New(t).Elem()
	switch {
	case out.CanInt():
		if f != math.Trunc(f) || out.OverflowInt(int64(f)) {
			return reflect.Value{}, fmt.Errorf("must be %s", typeName(t))
		}
		if rv.CanInt() {
			out.SetInt(rv.Int())
		} else {
			out.SetInt(int64(f))
		}
	case out.CanUint():
		if f < 0 || f != math.Trunc(f) || out.OverflowUint(uint64(f)) {
			return reflect.Value{}, fmt.Errorf("must be %s", typeName(t))
		}
		if rv.CanUint() {
			out.SetUint(rv.Uint())
		} else {
			out.SetUint(uint64(f))
		}
	default:
		out.SetFloat(f)
	}
	return out, nil
}

func parseString(s string, t reflect.Type) (reflect.Value, error) {
	out := reflect.New(t)
	if t.Implements(textUnmarshalerType) || out.Type().Implements(textUnmarshalerType) {
		if err := out.Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			return reflect.Value{}, fmt.Errorf("must be %s", typeName(t))
		}
		return out.Elem(), nil
	}
	e := out.Elem()
	switch t.Kind() {
	case reflect.String:
		e.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return reflect.Value{}, fmt.Errorf("must be true or false")
		}
		e.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if t == reflect.TypeFor[time.Duration]() {
			d, err := time.ParseDuration(s)
			if err != nil {
				return reflect.Value{}, fmt.Errorf("must be a duration such as 15m")
			}
			e.SetInt(int64(d))
			break
		}
		n, err := strconv.ParseInt(s, 10, t.Bits())
		if err != nil {
			return reflect.Value{}, fmt.Errorf("must be %s", typeName(t))
		}
		e.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, t.Bits())
		if err != nil {
			return reflect.Value{}, fmt.Errorf("must be %s", typeName(t))
		}
		e.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(s, t.Bits())
		if err != nil {
			return reflect.Value{}, fmt.Errorf("must be %s", typeName(t))
		}
		e.SetFloat(n)
	default:
		return reflect.Value{}, fmt.Errorf("must be %s, not a string", typeName(t))
	}
	return e, nil
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if t == reflect.TypeFor[time.Duration]() {
			return "a duration"
		}
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	if t == reflect.TypeFor[time.Time]() {
		return "a time (RFC 3339)"
	}
	return "a " + t.String()
}
