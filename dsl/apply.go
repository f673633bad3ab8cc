package dsl

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ConfigError is a setting that cannot be applied.
type ConfigError struct {
	// Source is where it was set: "accounts.yaml:12", "variable
	// KILN_LIVE__SWEEP_INTERVAL", "flag --addr".
	Source string
	// Path is the full key path: ["resources", "user", "authentication", …].
	Path    []string
	Message string
	// Fix is the advice, when there is one.
	Fix string
}

func (e *ConfigError) Error() string {
	msg := fmt.Sprintf("kiln/dsl: %s: %s: %s", e.Source, strings.Join(e.Path, "."), e.Message)
	if e.Fix != "" {
		msg += "; " + e.Fix
	}
	return msg
}

// Applier applies settings of a File to builder structs, collecting every
// error.
type Applier struct {
	File *File
	// Resolve turns a resource name into the value of a Resource option
	// (a resource.Ref); nil refuses Resource options.
	Resolve func(name string) (any, error)
	// Convert turns a Secret's string into the field's value (such as
	// authentication.SecretString); nil stores the string.
	Convert map[Kind]func(s string) any
	Errors  []*ConfigError
	// Applied lists every setting applied, with where it was written, so
	// that later problems with its value can point at the file.
	Applied []Setting
}

// Setting is a key applied from configuration.
type Setting struct {
	Path   []string
	Source string
}

// Fail records an error at path.
func (a *Applier) Fail(path []string, format string, args ...any) {
	a.Errors = append(a.Errors, &ConfigError{Source: a.File.Source(path), Path: append([]string{}, path...), Message: fmt.Sprintf(format, args...)})
}

// Err returns every error recorded, joined; nil when there is none.
func (a *Applier) Err() error {
	errs := make([]error, len(a.Errors))
	for i, e := range a.Errors {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// Unknown records an unknown key, suggesting the nearest valid one.
func (a *Applier) Unknown(path []string, what string, valid []string) {
	key := path[len(path)-1]
	valid = slices.Sorted(slices.Values(valid))
	msg := "unknown " + what
	if s := Nearest(key, valid); s != "" {
		msg += "; did you mean " + s + "?"
	} else if len(valid) > 0 {
		msg += "; valid: " + strings.Join(valid, ", ")
	}
	a.Fail(path, "%s", msg)
}

// Apply sets the options of section s found in values on the struct ptr
// points to. path is where values sit in the file. Nested sections recurse;
// keys the section does not know are reported, except those in skip (which
// the caller handles).
func (a *Applier) Apply(s *Section, ptr any, values map[string]any, path []string, skip ...string) {
	v := reflect.ValueOf(ptr).Elem()
	for _, key := range Keys(values) {
		p := append(append([]string{}, path...), key)
		if contains(skip, key) {
			continue
		}
		if sub := s.Sub(key); sub != nil {
			m, ok := values[key].(map[string]any)
			if !ok {
				a.notASection(p, sub)
				continue
			}
			f := v.FieldByName(sub.Field)
			a.Apply(sub, f.Addr().Interface(), m, p)
			continue
		}
		o := s.Option(key)
		if o == nil {
			a.Unknown(p, "option", append(s.keys(), skip...))
			continue
		}
		// The value is checked against the option's rules as it is, so a
		// zero written in the file is not taken for an unset option; a
		// value that fails is not applied.
		field := v.FieldByName(o.Field)
		value := reflect.New(field.Type()).Elem()
		if !a.set(o, value, values[key], p) {
			continue
		}
		if msgs := o.problems(value); len(msgs) > 0 {
			for _, msg := range msgs {
				a.Errors = append(a.Errors, &ConfigError{Source: a.File.Source(p), Path: p, Message: msg, Fix: o.Fix})
			}
			continue
		}
		field.Set(value)
		a.Applied = append(a.Applied, Setting{Path: p, Source: a.File.Source(p)})
	}
}

// notASection records a section given a value that is not a mapping,
// with the way to turn it off when it has a disabled option (a
// "knowledge: off" meant as that), in words that fit a file of any format
// and the environment.
func (a *Applier) notASection(path []string, s *Section) {
	e := &ConfigError{Source: a.File.Source(path), Path: path, Message: "is a section; want a mapping of its options"}
	if o := s.Option("disabled"); o != nil && o.Kind == Bool {
		e.Fix = "to turn it off, set " + s.Name + ".disabled to true"
	}
	a.Errors = append(a.Errors, e)
}

// Read applies the top-level section s of f, when f has one, to the
// struct ptr points to, and returns every problem, joined: unknown keys,
// values of the wrong type, values that break their rules (which are not
// applied). A nil f has no section.
func Read(f *File, s *Section, ptr any) error {
	if f == nil {
		return nil
	}
	raw, ok := f.Values[s.Name]
	if !ok {
		return nil
	}
	a := &Applier{File: f}
	if m, ok := raw.(map[string]any); ok {
		a.Apply(s, ptr, m, []string{s.Name})
	} else {
		a.notASection([]string{s.Name}, s)
	}
	return a.Err()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// set converts raw to the option's kind and sets field; it reports
// whether it did.
func (a *Applier) set(o *Option, field reflect.Value, raw any, path []string) bool {
	ok := true
	want := func() {
		ok = false
		a.Fail(path, "want %s, got %s", describeKind(o.Kind), describeValue(raw, o.Kind))
	}
	switch o.Kind {
	case Code:
		a.Fail(path, "can only be declared in Go code")
		return false
	case Bool:
		switch b := raw.(type) {
		case bool:
			field.SetBool(b)
		case string:
			x, err := strconv.ParseBool(b)
			if err != nil {
				want()
				return false
			}
			field.SetBool(x)
		default:
			want()
		}
	case String:
		s, ok := raw.(string)
		if !ok {
			want()
			return false
		}
		if o.Parse != nil {
			return a.parse(o, field, s, path)
		}
		field.SetString(s)
	case Secret:
		s, ok := raw.(string)
		if !ok {
			want()
			return false
		}
		a.setString(o, field, s)
	case Int:
		n, ok := toInt(raw)
		if !ok {
			want()
			return false
		}
		field.SetInt(n)
	case Duration:
		s, ok := raw.(string)
		if !ok {
			want()
			return false
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			want()
			return false
		}
		field.SetInt(int64(d))
	case Strings, Secrets:
		list, ok := toStrings(raw)
		if !ok {
			want()
			return false
		}
		out := reflect.MakeSlice(field.Type(), len(list), len(list))
		parsed := true
		for i, s := range list {
			if o.Parse != nil {
				parsed = a.parse(o, out.Index(i), s, path) && parsed
				continue
			}
			a.setString(o, out.Index(i), s)
		}
		if !parsed {
			return false
		}
		field.Set(out)
	case Resource:
		s, ok := raw.(string)
		if !ok || s == "" {
			want()
			return false
		}
		if a.Resolve == nil {
			a.Fail(path, "resource references cannot be set here")
			return false
		}
		r, err := a.Resolve(s)
		if err != nil {
			a.Fail(path, "%v", err)
			return false
		}
		field.Set(reflect.ValueOf(r))
	}
	return ok
}

// parse sets field to o.Parse(s), recording its error; it reports
// whether it did.
func (a *Applier) parse(o *Option, field reflect.Value, s string, path []string) bool {
	v, err := o.Parse(s)
	if err != nil {
		a.Errors = append(a.Errors, &ConfigError{Source: a.File.Source(path), Path: append([]string{}, path...), Message: err.Error(), Fix: o.Fix})
		return false
	}
	field.Set(reflect.ValueOf(v))
	return true
}

func (a *Applier) setString(o *Option, field reflect.Value, s string) {
	kind := o.Kind
	if kind == Secrets {
		kind = Secret
	}
	if conv := a.Convert[kind]; conv != nil {
		field.Set(reflect.ValueOf(conv(s)))
		return
	}
	field.Set(reflect.ValueOf(s).Convert(field.Type()))
}

func toInt(raw any) (int64, bool) {
	switch n := raw.(type) {
	case int:
		return int64(n), true
	case int64:
		return n, true
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > 1<<53 {
			return 0, false
		}
		return int64(n), true
	case string:
		x, err := strconv.ParseInt(n, 10, 64)
		return x, err == nil
	}
	return 0, false
}

func toStrings(raw any) ([]string, bool) {
	switch l := raw.(type) {
	case string:
		var out []string
		for _, s := range strings.Split(l, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out, true
	case []any:
		out := make([]string, len(l))
		for i, x := range l {
			s, ok := x.(string)
			if !ok {
				return nil, false
			}
			out[i] = s
		}
		return out, true
	case []string:
		return l, true
	}
	return nil, false
}

func describeKind(k Kind) string {
	switch k {
	case Duration:
		return "a duration such as 90s or 336h"
	case Bool:
		return "true or false"
	case Int:
		return "an integer"
	case Strings, Secrets:
		return "a list of strings"
	}
	return "a " + k.String()
}

func describeValue(raw any, k Kind) string {
	if k == Secret || k == Secrets {
		return "another type"
	}
	switch v := raw.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return Quote(v)
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("%v", raw)
}

// Nearest returns the candidate nearest to name when it is a likely typo.
func Nearest(name string, candidates []string) string {
	best, bestDist := "", 1<<30
	for _, c := range candidates {
		if d := levenshtein(name, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best != "" && bestDist <= max(2, len(name)/3) {
		return best
	}
	return ""
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
