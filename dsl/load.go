package dsl

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// File is configuration read from a file or the environment: nested maps
// with lower-case keys, and where each key was written.
type File struct {
	// Name is the file's path, or "environment".
	Name string
	// Values are the settings, nested by key.
	Values map[string]any
	// lines maps a dotted key path to its line (YAML only).
	lines map[string]int
	// origin maps a dotted key path to its source name, after Merge.
	origin map[string]string
}

// LoadFile reads a YAML or TOML file (by its extension) with viper.
func LoadFile(path string) (*File, error) {
	format := strings.TrimPrefix(filepath.Ext(path), ".")
	v := viper.New()
	v.SetConfigFile(path)
	if err := v.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("kiln/dsl: %s: %w", path, err)
	}
	f := &File{Name: path, Values: v.AllSettings()}
	if format == "yaml" || format == "yml" {
		if data, err := os.ReadFile(path); err == nil {
			f.lines = yamlLines(data)
		}
	}
	return f, nil
}

// LoadBytes reads configuration in format ("yaml" or "toml") from data;
// name is used in messages.
func LoadBytes(name, format string, data []byte) (*File, error) {
	v := viper.New()
	v.SetConfigType(format)
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("kiln/dsl: %s: %w", name, err)
	}
	f := &File{Name: name, Values: v.AllSettings()}
	if format == "yaml" || format == "yml" {
		f.lines = yamlLines(data)
	}
	return f, nil
}

// FromEnv reads settings from environment entries ("KEY=value") named
// prefix + "_" + the key path joined by "__": KILN_RESOURCES__USER__
// AUTHENTICATION__TOKENS__TOKEN_LIFETIME=24h. Lists are comma-separated.
func FromEnv(prefix string, environ []string) *File {
	f := &File{Name: "environment", Values: map[string]any{}}
	head := prefix + "_"
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, head) || !strings.Contains(k, "__") {
			continue
		}
		path := strings.Split(strings.ToLower(strings.TrimPrefix(k, head)), "__")
		setPath(f.Values, path, v)
	}
	return f
}

func setPath(m map[string]any, path []string, v any) {
	for _, p := range path[:len(path)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}

// Merge lays files over each other, later ones winning key by key.
func Merge(files ...*File) *File {
	out := &File{Name: "configuration", Values: map[string]any{}, lines: map[string]int{}, origin: map[string]string{}}
	for _, f := range files {
		if f == nil {
			continue
		}
		mergeInto(out, f, out.Values, f.Values, nil)
	}
	return out
}

func mergeInto(out, f *File, dst, src map[string]any, path []string) {
	for k, v := range src {
		p := append(append([]string{}, path...), k)
		if sub, ok := v.(map[string]any); ok {
			d, ok := dst[k].(map[string]any)
			if !ok {
				d = map[string]any{}
				dst[k] = d
			}
			mergeInto(out, f, d, sub, p)
			continue
		}
		dst[k] = v
		key := strings.Join(p, ".")
		out.origin[key] = f.source(key)
		if l, ok := f.lines[key]; ok {
			out.lines[key] = l
		} else {
			delete(out.lines, key)
		}
	}
}

// source is where the key was written: "file.yaml:12", "file.toml", or
// "environment".
func (f *File) source(key string) string {
	if o, ok := f.origin[key]; ok {
		return o
	}
	if l, ok := f.lines[key]; ok {
		return fmt.Sprintf("%s:%d", f.Name, l)
	}
	return f.Name
}

// Source is where the dotted key path was set, for messages.
func (f *File) Source(path []string) string {
	key := strings.Join(path, ".")
	for len(key) > 0 {
		if _, ok := f.origin[key]; ok {
			return f.source(key)
		}
		if _, ok := f.lines[key]; ok {
			return f.source(key)
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

// yamlLines maps each dotted key path of a YAML document to its line.
func yamlLines(data []byte) map[string]int {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil || len(root.Content) == 0 {
		return nil
	}
	out := map[string]int{}
	var walk func(n *yaml.Node, path []string)
	walk = func(n *yaml.Node, path []string) {
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := append(append([]string{}, path...), strings.ToLower(k.Value))
			out[strings.Join(p, ".")] = k.Line
			walk(v, p)
		}
	}
	walk(root.Content[0], nil)
	return out
}
