package main

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/kiln-go/kiln/dsl"
)

// module is the import path of the repository's root.
const module = "github.com/kiln-go/kiln"

// fieldDoc is what one schema says of one field of a builder struct.
type fieldDoc struct {
	// text is the comment without the default.
	text string
	// dflt is the default's sentence, or "".
	dflt string
	// page is the reference page of the schema, for a default that
	// differs between the sections that hold the struct.
	page string
}

// fieldDocs collects, for every struct a schema is bound to, what the
// schemas say of each of its fields.
func fieldDocs() (map[reflect.Type]map[string][]fieldDoc, error) {
	out := map[reflect.Type]map[string][]fieldDoc{}
	var walk func(s *dsl.Section, page string) error
	walk = func(s *dsl.Section, page string) error {
		t := s.Type()
		if t == nil {
			return fmt.Errorf("the schema %s is not bound to its struct: declare it with dsl.Bind", s.Name)
		}
		if out[t] == nil {
			out[t] = map[string][]fieldDoc{}
		}
		for _, o := range s.Options {
			d := fieldDoc{text: fmt.Sprintf("%s is the %s option. %s", o.Field, o.Name, o.Doc), page: page}
			if o.Rules != "" {
				d.text += " Rules: " + o.Rules + "."
			}
			if o.Default != nil {
				d.dflt = "Default: " + o.DefaultText() + "."
			}
			out[t][o.Field] = append(out[t][o.Field], d)
		}
		for _, sub := range s.Sections {
			out[t][sub.Field] = append(out[t][sub.Field], fieldDoc{text: fmt.Sprintf("%s is the %s section. %s", sub.Field, sub.Name, sub.Doc), page: page})
			if err := walk(sub, page); err != nil {
				return err
			}
		}
		return nil
	}
	for _, p := range pages {
		if err := walk(p.section, p.section.Name+".md"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// comment is the doc comment of a field, from what the schemas say of it:
// the same text everywhere, and the default where they agree on it.
func comment(t reflect.Type, field string, docs []fieldDoc) (string, error) {
	text, dflt := docs[0].text, docs[0].dflt
	for _, d := range docs[1:] {
		if d.text != text {
			return "", fmt.Errorf("%s.%s is documented twice, differently:\n%s\n%s", t, field, text, d.text)
		}
		if d.dflt != dflt {
			dflt = "Its default depends on the section that holds it: see docs/dsl/" + docs[0].page + "."
		}
	}
	if dflt != "" {
		text += " " + dflt
	}
	return text, nil
}

// sources returns, by path below root, every Go file that declares a
// struct a schema is bound to, with the doc comment of each field the
// schema describes written from the schema.
func sources(root string) (map[string]string, error) {
	docs, err := fieldDocs()
	if err != nil {
		return nil, err
	}
	types := make([]reflect.Type, 0, len(docs))
	for t := range docs {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool { return types[i].String() < types[j].String() })
	// Edits by file, collected over every struct before any is applied.
	edits := map[string][]edit{}
	contents := map[string][]byte{}
	for _, t := range types {
		path, st, fset, src, err := findStruct(root, t)
		if err != nil {
			return nil, err
		}
		contents[path] = src
		found := map[string]bool{}
		for _, f := range st.Fields.List {
			if len(f.Names) != 1 || docs[t][f.Names[0].Name] == nil {
				continue
			}
			name := f.Names[0].Name
			found[name] = true
			text, err := comment(t, name, docs[t][name])
			if err != nil {
				return nil, err
			}
			edits[path] = append(edits[path], fieldEdits(fset, src, f, text)...)
		}
		for name := range docs[t] {
			if !found[name] {
				return nil, fmt.Errorf("%s: the field %s of %s is not declared on a line of its own", path, name, t)
			}
		}
	}
	out := map[string]string{}
	for path, src := range contents {
		es := edits[path]
		slices.SortFunc(es, func(a, b edit) int { return b.start - a.start })
		b := slices.Clone(src)
		for _, e := range es {
			b = slices.Concat(b[:e.start], []byte(e.text), b[e.end:])
		}
		formatted, err := format.Source(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out[path] = string(formatted)
	}
	return out, nil
}

// edit replaces src[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// fieldEdits writes text as the doc comment of f, in place of the one it
// has, and drops its line comment.
func fieldEdits(fset *token.FileSet, src []byte, f *ast.Field, text string) []edit {
	var out []edit
	at := f.Pos()
	if f.Doc != nil {
		at = f.Doc.Pos()
	}
	start := fset.Position(at).Offset
	lineStart := bytes.LastIndexByte(src[:start], '\n') + 1
	indent := string(src[lineStart:start])
	lines := wrap(text, 76-len(strings.ReplaceAll(indent, "\t", "    "))-3)
	doc := "// " + strings.Join(lines, "\n"+indent+"// ")
	if f.Doc != nil {
		out = append(out, edit{start, fset.Position(f.Doc.End()).Offset, doc})
	} else {
		out = append(out, edit{start, start, doc + "\n" + indent})
	}
	if f.Comment != nil {
		out = append(out, edit{fset.Position(f.Comment.Pos()).Offset, fset.Position(f.Comment.End()).Offset, ""})
	}
	return out
}

// wrap breaks text into lines of at most width bytes, between words.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}

// findStruct finds the declaration of the struct t in its package's
// folder below root, and returns its file's path below root and source.
func findStruct(root string, t reflect.Type) (string, *ast.StructType, *token.FileSet, []byte, error) {
	rel, ok := strings.CutPrefix(t.PkgPath(), module+"/")
	if !ok {
		return "", nil, nil, nil, fmt.Errorf("%s is not declared in %s", t, module)
	}
	names, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(rel), "*.go"))
	if err != nil {
		return "", nil, nil, nil, err
	}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			return "", nil, nil, nil, err
		}
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, name, src, parser.ParseComments)
		if err != nil {
			return "", nil, nil, nil, err
		}
		var st *ast.StructType
		ast.Inspect(file, func(n ast.Node) bool {
			if ts, ok := n.(*ast.TypeSpec); ok && ts.Name.Name == t.Name() {
				st, _ = ts.Type.(*ast.StructType)
			}
			return st == nil
		})
		if st != nil {
			path, err := filepath.Rel(root, name)
			return filepath.ToSlash(path), st, fset, src, err
		}
	}
	return "", nil, nil, nil, errors.New("no declaration of " + t.String() + " in " + rel)
}
