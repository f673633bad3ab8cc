package dsl_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kiln-go/kiln/dsl"
)

// settings is a builder struct for the Bind tests.
type settings struct {
	Enabled  bool
	Name     string
	Retries  int
	Interval time.Duration
	Origins  []string
	Secret   fmt.Stringer
	Hook     func()
	Inner    inner
	hidden   string
}

type inner struct {
	Size int
}

// bindPanic binds s to settings and returns what Bind panicked with, or
// "" when it did not.
func bindPanic(s *dsl.Section) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	dsl.Bind[settings](s)
	return ""
}

func TestBind(t *testing.T) {
	s := dsl.Bind[settings](&dsl.Section{
		Name:   "settings",
		GoType: "dsl_test.settings",
		Options: []dsl.Option{
			{Name: "enabled", Field: "Enabled", Kind: dsl.Bool},
			{Name: "name", Field: "Name", Kind: dsl.String, Default: "kiln", Rules: "min=2"},
			{Name: "retries", Field: "Retries", Kind: dsl.Int, Default: 3, Rules: "gte=0"},
			{Name: "interval", Field: "Interval", Kind: dsl.Duration, Default: time.Second},
			{Name: "origins", Field: "Origins", Kind: dsl.Strings},
			{Name: "secret", Field: "Secret", Kind: dsl.Secret},
			{Name: "hook", Field: "Hook", Kind: dsl.Code},
		},
		Sections: []*dsl.Section{{Name: "inner", Field: "Inner",
			Options: []dsl.Option{{Name: "size", Field: "Size", Kind: dsl.Int}}}},
	})
	if s.Type() != reflect.TypeFor[settings]() || s.Sub("inner").Type() != reflect.TypeFor[inner]() {
		t.Errorf("bound to %v, inner to %v; want settings and inner", s.Type(), s.Sub("inner").Type())
	}
	if got := (&dsl.Section{}).Type(); got != nil {
		t.Errorf("an unbound section's Type() = %v, want nil", got)
	}
	// The same section bound again to the same type is fine; to another
	// type it is not.
	dsl.Bind[settings](s)
	func() {
		defer func() {
			want := "kiln/dsl: schema settings (dsl_test.inner): is bound to dsl_test.settings already"
			if r := recover(); fmt.Sprint(r) != want {
				t.Errorf("binding to another type panicked with %v, want %s", r, want)
			}
		}()
		dsl.Bind[inner](s)
	}()
}

func TestBindRefusesMismatches(t *testing.T) {
	const prefix = "kiln/dsl: schema s (dsl_test.settings): "
	for _, c := range []struct {
		name string
		opts []dsl.Option
		subs []*dsl.Section
		want []string
	}{
		{"misspelt field", []dsl.Option{{Name: "retries", Field: "Retires", Kind: dsl.Int}}, nil,
			[]string{"option retries: dsl_test.settings has no field Retires; did you mean Retries?"}},
		{"no field", []dsl.Option{{Name: "retries", Kind: dsl.Int}}, nil,
			[]string{"option retries: names no field"}},
		{"unexported field", []dsl.Option{{Name: "hidden", Field: "hidden", Kind: dsl.String}}, nil,
			[]string{"option hidden: field hidden of dsl_test.settings is not exported"}},
		{"int option on a string", []dsl.Option{{Name: "name", Field: "Name", Kind: dsl.Int}}, nil,
			[]string{"option name: field Name is string; an option of kind int needs a signed integer type other than time.Duration"}},
		{"int option on a duration", []dsl.Option{{Name: "interval", Field: "Interval", Kind: dsl.Int}}, nil,
			[]string{"option interval: field Interval is time.Duration; an option of kind int needs a signed integer type other than time.Duration"}},
		{"duration option on an int", []dsl.Option{{Name: "retries", Field: "Retries", Kind: dsl.Duration}}, nil,
			[]string{"option retries: field Retries is int; an option of kind duration needs a time.Duration"}},
		{"resource option on a string", []dsl.Option{{Name: "name", Field: "Name", Kind: dsl.Resource}}, nil,
			[]string{"option name: field Name is string; an option of kind resource name needs an interface (such as resource.Ref)"}},
		{"no kind", []dsl.Option{{Name: "name", Field: "Name"}}, nil,
			[]string{"option name: field Name is string; the option has no Kind"}},
		{"default of another type", []dsl.Option{{Name: "retries", Field: "Retries", Kind: dsl.Int, Default: "3"}}, nil,
			[]string{"option retries: field Retries is int; its Default is a string"}},
		{"unknown rule", []dsl.Option{{Name: "retries", Field: "Retries", Kind: dsl.Int, Rules: "gte=0,positive"}}, nil,
			[]string{`option retries: field Retries is int; bad Rules "gte=0,positive": Undefined validation function 'positive'`}},
		{"option twice", []dsl.Option{{Name: "name", Field: "Name", Kind: dsl.String}, {Name: "name", Field: "Name", Kind: dsl.String}}, nil,
			[]string{"option name is declared twice"}},
		{"nested section's field", nil, []*dsl.Section{{Name: "inner", Field: "Iner"}},
			[]string{"section inner: dsl_test.settings has no field Iner; did you mean Inner?"}},
		{"nested section on a non-struct", nil, []*dsl.Section{{Name: "name", Field: "Name"}},
			nil},
		{"every problem at once",
			[]dsl.Option{{Name: "retries", Field: "Retires", Kind: dsl.Int}, {Name: "name", Field: "Name", Kind: dsl.Bool}},
			[]*dsl.Section{{Name: "inner", Field: "Inner", Options: []dsl.Option{{Name: "size", Field: "Sise", Kind: dsl.Int}}}},
			[]string{
				"option retries: dsl_test.settings has no field Retires; did you mean Retries?",
				"option name: field Name is string; an option of kind bool needs a bool",
				"\x00kiln/dsl: schema s.inner (dsl_test.inner): option size: dsl_test.inner has no field Sise; did you mean Size?",
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var want []string
			for _, w := range c.want {
				if rest, ok := strings.CutPrefix(w, "\x00"); ok {
					want = append(want, rest)
				} else {
					want = append(want, prefix+w)
				}
			}
			if c.want == nil {
				want = []string{"kiln/dsl: schema s.name (string): is not a struct"}
			}
			got := bindPanic(&dsl.Section{Name: "s", Options: c.opts, Sections: c.subs})
			if got != strings.Join(want, "\n") {
				t.Errorf("Bind panicked with\n%s\nwant\n%s", got, strings.Join(want, "\n"))
			}
		})
	}
	// A GoType that names another type.
	got := bindPanic(&dsl.Section{Name: "s", GoType: "dsl_test.Settings"})
	if want := prefix + `GoType is "dsl_test.Settings"; want "dsl_test.settings"`; got != want {
		t.Errorf("Bind panicked with %q, want %q", got, want)
	}
}

func TestOptionDefaultText(t *testing.T) {
	for _, c := range []struct {
		def  any
		want string
	}{
		{nil, ""},
		{14 * 24 * time.Hour, "336h"},
		{90 * time.Minute, "1h30m"},
		{time.Minute, "1m"},
		{30 * time.Second, "30s"},
		{1500 * time.Millisecond, "1.5s"},
		{"HS256", `"HS256"`},
		{8, "8"},
		{[]string{"revocation"}, "[revocation]"},
	} {
		if got := (dsl.Option{Default: c.def}).DefaultText(); got != c.want {
			t.Errorf("DefaultText of %#v = %q, want %q", c.def, got, c.want)
		}
	}
}
