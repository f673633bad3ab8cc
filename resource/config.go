package resource

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/kiln-go/kiln/dsl"
)

// Configurable is an Extension whose options a config file may set.
// Configure returns a copy of the extension with the values applied;
// problems go to the applier.
type Configurable interface {
	Extension
	Configure(a *dsl.Applier, values map[string]any, path []string) Extension
}

// OptionsDescriber is an Extension that prints its options (defaults
// applied) for Domain.Describe.
type OptionsDescriber interface {
	DescribeOptions(d *Declaration) string
}

// ConfigSection is the top-level section of a configuration that
// WithConfig applies: "resources".
const ConfigSection = "resources"

// WithConfig lays a configuration (configfile.Load, dsl.FromEnv, dsl.Merge)
// over the declarations in Go: code declares, config overrides. Its
// resources section holds one map per resource name; in it, "table" and
// one map per section (token, authentication …). Every unknown or invalid
// key is a build problem naming the file, line and key path. Other
// top-level sections must be registered on f (dsl.File.Register) by the
// app, for the packages that read them; any other top-level key is an
// unknown section.
func WithConfig(f *dsl.File) Option { return func(d *Domain) { d.config = f } }

// applyConfig applies d.config to the cloned declarations.
func (d *Domain) applyConfig(b *BuildContext, specs []Ref) []*BuildError {
	if d.config == nil {
		return nil
	}
	a := &dsl.Applier{File: d.config, Resolve: func(name string) (any, error) {
		for _, r := range specs {
			if r != nil && r.Name() == name {
				return r, nil
			}
		}
		var names []string
		for _, r := range specs {
			if r != nil {
				names = append(names, r.Name())
			}
		}
		return nil, fmt.Errorf("no resource %q in the domain%s", name, suggestion(name, names))
	}}
	known := append(d.config.Sections(), ConfigSection)
	for _, top := range dsl.Keys(d.config.Values) {
		if !slices.Contains(known, top) {
			a.Unknown([]string{top}, "section", known)
		}
	}
	if raw, ok := d.config.Values[ConfigSection]; ok {
		if _, isMap := raw.(map[string]any); !isMap {
			a.Fail([]string{ConfigSection}, "want a mapping of resources")
		}
	}
	resources := d.config.Map(ConfigSection)
	var names []string
	for _, decl := range b.resources {
		names = append(names, decl.Name)
	}
	for _, name := range dsl.Keys(resources) {
		path := []string{ConfigSection, name}
		var decl *Declaration
		for _, c := range b.resources {
			if c.Name == name {
				decl = c
			}
		}
		values, ok := resources[name].(map[string]any)
		switch {
		case decl == nil:
			a.Unknown(path, "resource", names)
			continue
		case !ok:
			a.Fail(path, "want a mapping of sections")
			continue
		}
		for _, key := range dsl.Keys(values) {
			p := append(append([]string{}, path...), key)
			if key == "table" {
				s, ok := values[key].(string)
				if !ok || s == "" {
					a.Fail(p, "want a table name")
					continue
				}
				decl.Table = s
				continue
			}
			var exts []string
			found := false
			for i, e := range decl.Extensions {
				exts = append(exts, e.ExtensionName())
				if e.ExtensionName() != key {
					continue
				}
				found = true
				c, ok := e.(Configurable)
				m, isMap := values[key].(map[string]any)
				switch {
				case !ok:
					a.Fail(p, "this section has no options to configure")
				case !isMap:
					a.Fail(p, "want a mapping of options")
				default:
					decl.Extensions[i] = c.Configure(a, m, p)
				}
			}
			if !found {
				a.Unknown(p, "section", append(exts, "table"))
			}
		}
	}
	for _, s := range a.Applied {
		if len(s.Path) < 3 || s.Path[0] != ConfigSection {
			continue
		}
		for _, decl := range b.resources {
			if decl.Name == s.Path[1] {
				if decl.configSources == nil {
					decl.configSources = map[string]string{}
				}
				decl.configSources[strings.Join(s.Path[2:], ".")] = s.Source
			}
		}
	}
	out := make([]*BuildError, 0, len(a.Errors))
	for _, e := range a.Errors {
		resourceName := ""
		path := e.Path
		if len(path) >= 2 && path[0] == ConfigSection {
			resourceName, path = path[1], path[2:]
		}
		out = append(out, &BuildError{Resource: resourceName, Path: path, Message: e.Message, Fix: e.Fix, Location: sourceLocation(e.Source)})
	}
	return out
}

// sourceLocation turns "file.yaml:12" into a Location.
func sourceLocation(src string) Location {
	if i := strings.LastIndexByte(src, ':'); i > 0 {
		if n, err := strconv.Atoi(src[i+1:]); err == nil {
			return Location{File: src[:i], Line: n}
		}
	}
	return Location{File: src}
}

// describeExtensions prints each extension's options, sorted by name.
func describeExtensions(decl *Declaration) []string {
	var out []string
	for _, e := range decl.Extensions {
		if od, ok := e.(OptionsDescriber); ok {
			out = append(out, fmt.Sprintf("  %s %s", e.ExtensionName(), od.DescribeOptions(decl)))
		}
	}
	sort.Strings(out)
	return out
}

// ConfigSchema is the schema of a resource's own keys in a config file
// (resources.<name>.…); its sections are those of its extensions.
var ConfigSchema = dsl.Bind[Declaration](&dsl.Section{
	Name: "resource",
	Doc:  "A resource's own settings in a config file; its other keys are the sections of its extensions (token, authentication …).",
	Options: []dsl.Option{
		{Name: "table", Field: "Table", Kind: dsl.String, Doc: "The table the resource is stored in, set in Go with resource.Table. Default: the resource's name with an s appended."},
	},
	GoExample:   `resource.New[User]("user", resource.Table("accounts"))`,
	YAMLExample: "resources:\n  user:\n    table: accounts",
})

// Check records, as build problems under prefix, every option of v that
// breaks the rules of section s. Extensions call it from Verify with their
// options (defaults applied), so their rules are the schema's.
func (d *Declaration) Check(s *dsl.Section, v any, prefix ...string) {
	for _, p := range s.Check(v) {
		d.Problem(d.Location, append(append([]string{}, prefix...), p.Path...), p.Message, p.Fix)
	}
}
