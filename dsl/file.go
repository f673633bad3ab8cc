package dsl

import (
	"slices"
	"sort"
	"strings"
)

// File is configuration read from a file, the environment or flags:
// nested maps with lower-case keys, and where each key was written.
type File struct {
	// Name is the file's path, "environment", "flags" or "configuration"
	// (a Merge); where a key's own source is unknown, it is this.
	Name string
	// Values are the settings, nested by key.
	Values map[string]any
	// sources maps a dotted key path, a section's or an option's, to
	// where it was written: "app.yaml:12", "app.toml", "variable
	// KILN_LIVE__SWEEP_INTERVAL", "flag --addr".
	sources map[string]string
	// sections are the top-level sections other packages read; see
	// Register.
	sections []string
}

// NewFile returns an empty configuration named name; Set fills it.
func NewFile(name string) *File {
	return &File{Name: name, Values: map[string]any{}, sources: map[string]string{}}
}

// Set sets the value at the key path, recording source as where it was
// written (and as where the sections on its path were, unless already
// known). A value already at path is replaced.
func (f *File) Set(path []string, value any, source string) {
	m := f.Values
	for i, p := range path[:len(path)-1] {
		key := strings.Join(path[:i+1], ".")
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
			f.sources[key] = source
		} else if _, known := f.sources[key]; !known {
			f.sources[key] = source
		}
		m = next
	}
	m[path[len(path)-1]] = value
	f.sources[strings.Join(path, ".")] = source
}

// SetSource records where the key path was written ("app.yaml:12")
// without touching its value: a loader that reads the values and their
// positions apart (dsl/configfile) tells each key's line with it.
func (f *File) SetSource(path []string, source string) {
	f.sources[strings.Join(path, ".")] = source
}

// Delete removes the key path and its sources.
func (f *File) Delete(path []string) {
	parent := f.Values
	if len(path) > 1 {
		parent = f.Map(path[:len(path)-1]...)
	}
	if parent == nil {
		return
	}
	delete(parent, path[len(path)-1])
	key := strings.Join(path, ".")
	for k := range f.sources {
		if k == key || strings.HasPrefix(k, key+".") {
			delete(f.sources, k)
		}
	}
}

// Register names top-level sections of this configuration that packages
// read on their own: live.SettingsSchema.Name, ratelimit.LimitsSchema.Name.
// A reader that checks the top level, as resource.WithConfig does, accepts
// them and reports any other key as unknown, with the nearest registered
// name. The command line registers the sections its app lists
// (cli.App.Sections). Merge keeps the registrations of every file.
func (f *File) Register(sections ...string) {
	for _, s := range sections {
		if !slices.Contains(f.sections, s) {
			f.sections = append(f.sections, s)
		}
	}
	sort.Strings(f.sections)
}

// Sections returns the registered top-level sections, sorted.
func (f *File) Sections() []string { return slices.Clone(f.sections) }

// FromEnv reads settings from environment entries ("KEY=value") named
// prefix + "_" + the key path joined by "__": KILN_RESOURCES__USER__
// AUTHENTICATION__TOKENS__TOKEN_LIFETIME=24h. A variable without "__" is
// not read (KILN_ADDR is a setting of the command line, which reads its
// own), nor is an empty one: it counts as unset. Lists are
// comma-separated. Each key's source is its variable: "variable
// KILN_LIVE__SWEEP_INTERVAL".
func FromEnv(prefix string, environ []string) *File {
	f := NewFile("environment")
	head := prefix + "_"
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" || !strings.HasPrefix(k, head) || !strings.Contains(k, "__") {
			continue
		}
		f.Set(strings.Split(strings.ToLower(strings.TrimPrefix(k, head)), "__"), v, "variable "+k)
	}
	return f
}

// Merge lays files over each other, later ones winning key by key. An
// option's source is the file it was taken from; a section's, the first
// file that wrote it.
func Merge(files ...*File) *File {
	out := NewFile("configuration")
	for _, f := range files {
		if f == nil {
			continue
		}
		out.Register(f.sections...)
		mergeInto(out, f, out.Values, f.Values, nil)
	}
	return out
}

func mergeInto(out, f *File, dst, src map[string]any, path []string) {
	for k, v := range src {
		p := append(append([]string{}, path...), k)
		key := strings.Join(p, ".")
		if sub, ok := v.(map[string]any); ok {
			d, ok := dst[k].(map[string]any)
			if !ok {
				d = map[string]any{}
				dst[k] = d
				out.sources[key] = f.Source(p)
			}
			mergeInto(out, f, d, sub, p)
			continue
		}
		dst[k] = v
		out.sources[key] = f.Source(p)
	}
}

// Source is where the dotted key path was set, for messages: its own
// source, else its nearest section's, else the file's name.
func (f *File) Source(path []string) string {
	key := strings.Join(path, ".")
	for len(key) > 0 {
		if s, ok := f.sources[key]; ok {
			return s
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return f.Name
}

// Map returns the nested map at path, or nil.
func (f *File) Map(path ...string) map[string]any {
	m := f.Values
	for _, p := range path {
		next, ok := m[p].(map[string]any)
		if !ok {
			return nil
		}
		m = next
	}
	return m
}

// Keys returns a map's keys, sorted.
func Keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
