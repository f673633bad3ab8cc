// Package configfile reads configuration files, YAML or TOML, into a
// dsl.File, with viper; each key of a YAML file is known by its line. It
// is apart from package dsl so that the packages that only declare and
// read sections (resource, live, the extensions) do not import viper: the
// command line (package cli) loads files, the core does not.
package configfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/kiln-go/kiln/dsl"
)

// formats are the formats of configuration, by extension: YAML and TOML.
// viper reads others (JSON, .env, HCL…); kiln refuses them, so that a
// file is written one way, as the docs show it.
var formats = []string{"yaml", "yml", "toml"}

// errFormat is the error of a format other than YAML or TOML.
func errFormat(format string) error {
	if format == "" {
		return errors.New("has no extension; name a YAML (.yaml, .yml) or TOML (.toml) file")
	}
	return fmt.Errorf("is in an unsupported format (.%s); use YAML (.yaml, .yml) or TOML (.toml)", format)
}

// Load reads a YAML or TOML file (by its extension: .yaml, .yml,
// .toml) with viper; another extension, a folder or a file that cannot be
// read is an error naming the file. Each key of a YAML file is known by
// its line; a TOML file's, by the file.
func Load(path string) (*dsl.File, error) {
	format := strings.ToLower(strings.TrimPrefix(filepath.Ext(path), "."))
	if fi, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("kiln/dsl/configfile: %s: %w", path, errors.New("does not exist"))
	} else if err != nil {
		return nil, fmt.Errorf("kiln/dsl/configfile: %s: %w", path, err)
	} else if fi.IsDir() {
		return nil, fmt.Errorf("kiln/dsl/configfile: %s: %w", path, errors.New("is a folder; name a YAML or TOML file"))
	}
	if !slices.Contains(formats, format) {
		return nil, fmt.Errorf("kiln/dsl/configfile: %s: %w", path, errFormat(format))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kiln/dsl/configfile: %s: %w", path, err)
	}
	return Parse(path, format, data)
}

// Parse reads configuration in format ("yaml", "yml" or "toml") from
// data; name is used in messages. Another format is an error.
func Parse(name, format string, data []byte) (*dsl.File, error) {
	if !slices.Contains(formats, format) {
		return nil, fmt.Errorf("kiln/dsl/configfile: %s: %w", name, errFormat(format))
	}
	v := viper.New()
	v.SetConfigType(format)
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("kiln/dsl/configfile: %s: %w", name, err)
	}
	f := dsl.NewFile(name)
	f.Values = v.AllSettings()
	if format == "yaml" || format == "yml" {
		lines(f, data)
	}
	return f, nil
}

// lines records each key of a YAML document as written at its line,
// "name:line".
func lines(f *dsl.File, data []byte) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil || len(root.Content) == 0 {
		return
	}
	var walk func(n *yaml.Node, path []string)
	walk = func(n *yaml.Node, path []string) {
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := append(append([]string{}, path...), strings.ToLower(k.Value))
			f.SetSource(p, fmt.Sprintf("%s:%d", f.Name, k.Line))
			walk(v, p)
		}
	}
	walk(root.Content[0], nil)
}
