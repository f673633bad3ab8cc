// Package docs_test checks the guides in this folder: every ```go block of
// every *.md file must compile, and a program that ends with an
// "// Output:" comment must print exactly that. The docs cannot rot.
//
// A block that starts with `package` is a complete file: it must be
// gofmt-ed, and is written to a package of its own in a temporary folder
// inside the module (named with a leading "_" so that ./... patterns skip
// it) and checked with go vet; the programs are then linked into one
// binary and run several at once. Under -v the test logs each step and how
// long it took. A block that is not a complete file must be
// marked, on the line just before its fence, with
//
//	<!-- not compiled -->
//
// which is meant for small fragments only.
//
// getting-started.md is also followed as a reader would, commands and all,
// by TestGettingStarted (guide_test.go).
package docs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/format"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// skipMarker, on the line before a fence, exempts the block.
const skipMarker = "<!-- not compiled -->"

// snippet is one ```go block of a markdown file.
type snippet struct {
	doc  string // markdown file name, "resources.md"
	line int    // line of the first line of code (after the fence)
	code string
	skip bool
	// output is the expected output of a main package that ends with an
	// "// Output:" comment; hasOutput tells an empty one from none.
	output    string
	hasOutput bool
}

func (s snippet) String() string { return fmt.Sprintf("%s:%d", s.doc, s.line) }

// dirName is the package folder the snippet is written to.
func (s snippet) dirName() string {
	return strings.NewReplacer(".", "_", "-", "_").Replace(s.doc) + "_L" + strconv.Itoa(s.line)
}

// block is one fenced code block of a markdown file.
type block struct {
	lang  string   // the word after the fence: "go", "sh", or ""
	line  int      // line of the first line of code (after the fence)
	lines []string // the code
	// before is the text between the previous block, or the start of the
	// file, and this block's fence.
	before []string
}

// marker is the last non-blank line before the block's fence, or "".
func (b block) marker() string {
	for i := len(b.before) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(b.before[i]); l != "" {
			return l
		}
	}
	return ""
}

// fencedBlocks returns the fenced code blocks of a markdown file, in order.
func fencedBlocks(doc string, text []byte) ([]block, error) {
	var out []block
	lines := strings.Split(string(text), "\n")
	from := 0 // the first line after the previous block
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(trimmed, "```") {
			continue
		}
		fence := trimmed[:strings.IndexFunc(trimmed+"x", func(r rune) bool { return r != '`' })]
		start := i + 1
		end := start
		for end < len(lines) && strings.TrimSpace(lines[end]) != fence {
			end++
		}
		if end == len(lines) {
			return nil, fmt.Errorf("%s:%d: the code block is never closed", doc, i+1)
		}
		out = append(out, block{
			lang:   strings.TrimSpace(strings.TrimPrefix(trimmed, fence)),
			line:   start + 1,
			lines:  lines[start:end],
			before: lines[from:i],
		})
		from = end + 1
		i = end
	}
	return out, nil
}

// parseSnippets returns the ```go blocks of a markdown file.
func parseSnippets(doc string, text []byte) ([]snippet, error) {
	blocks, err := fencedBlocks(doc, text)
	if err != nil {
		return nil, err
	}
	var out []snippet
	for _, b := range blocks {
		if b.lang != "go" {
			continue
		}
		s := snippet{doc: doc, line: b.line, code: strings.Join(b.lines, "\n") + "\n", skip: b.marker() == skipMarker}
		s.output, s.hasOutput = expectedOutput(b.lines)
		out = append(out, s)
	}
	return out, nil
}

// expectedOutput reads an "// Output:" comment that ends a program: the
// comment lines after it, up to the closing brace of main.
func expectedOutput(code []string) (string, bool) {
	for i, l := range code {
		if strings.TrimSpace(l) != "// Output:" {
			continue
		}
		var want []string
		for _, o := range code[i+1:] {
			o = strings.TrimSpace(o)
			if !strings.HasPrefix(o, "//") {
				break
			}
			o = strings.TrimPrefix(o, "//")
			want = append(want, strings.TrimPrefix(o, " "))
		}
		return strings.Join(want, "\n"), true
	}
	return "", false
}

// packageName returns the package of a block that is a complete Go file
// (its first line of code, after comments, is a package clause), or "".
func packageName(code string) string {
	for _, l := range strings.Split(code, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "//") {
			continue
		}
		if name, ok := strings.CutPrefix(l, "package "); ok {
			return strings.TrimSpace(name)
		}
		return ""
	}
	return ""
}

// moduleRoot walks up from the working folder to the go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working folder")
		}
		dir = parent
	}
}

// vetLine is a go vet or compiler message: file:line:col: message.
var vetLine = regexp.MustCompile(`(?m)^(?:vet: )?(\S+?\.go):(\d+):(?:\d+:)? ?(.*)$`)

// check compiles and runs the snippets inside the module at root and
// returns one problem per failure, each naming the markdown file and line.
// logf, when not nil, is told of each step and how long it took.
func check(ctx context.Context, root string, snippets []snippet, logf func(format string, args ...any)) []string {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var problems []string
	dir, err := os.MkdirTemp(root, "_doccheck-")
	if err != nil {
		return []string{err.Error()}
	}
	defer os.RemoveAll(dir)
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		return []string{err.Error()}
	}

	byDir := map[string]snippet{}
	var pkgs, mains []string
	for _, s := range snippets {
		if s.skip {
			continue
		}
		pkgName := packageName(s.code)
		if pkgName == "" {
			problems = append(problems, fmt.Sprintf("%s: the go block is not a complete file; start it with a package clause, or mark a small fragment %s", s, skipMarker))
			continue
		}
		if s.hasOutput && pkgName != "main" {
			problems = append(problems, fmt.Sprintf("%s: only a program (package main) can have an // Output: comment", s))
			s.hasOutput = false
		}
		if formatted, err := format.Source([]byte(s.code)); err == nil && string(formatted) != s.code {
			problems = append(problems, fmt.Sprintf("%s: the go block is not gofmt-ed", s))
		}
		pkgDir := filepath.Join(dir, s.dirName())
		if err := os.Mkdir(pkgDir, 0o755); err != nil {
			return append(problems, err.Error())
		}
		if err := os.WriteFile(filepath.Join(pkgDir, "snippet.go"), []byte(s.code), 0o644); err != nil {
			return append(problems, err.Error())
		}
		pkg := "./" + filepath.ToSlash(filepath.Join(rel, s.dirName()))
		byDir[s.dirName()] = s
		pkgs = append(pkgs, pkg)
		if s.hasOutput {
			mains = append(mains, s.dirName())
		}
	}
	if len(pkgs) == 0 {
		return problems
	}

	// go vet type-checks every package, then vets it. The programs that
	// pass are built into one binary and run.
	start := time.Now()
	out, err := goCmd(ctx, root, append([]string{"vet"}, pkgs...)...)
	logf("go vet of %d blocks: %v", len(pkgs), time.Since(start).Round(time.Millisecond))
	if err != nil {
		found, failed := attribute(out, byDir)
		problems = append(problems, found...)
		mains = slices.DeleteFunc(mains, func(name string) bool { return failed[name] })
	}
	if len(mains) == 0 {
		return problems
	}
	start = time.Now()
	bin, out, err := buildPrograms(ctx, root, dir, mains, byDir)
	logf("go build of %d programs as one binary: %v", len(mains), time.Since(start).Round(time.Millisecond))
	if err != nil {
		return append(problems, err.Error())
	}
	if bin == "" {
		found, _ := attribute(out, byDir)
		return append(problems, found...)
	}
	return append(problems, runPrograms(ctx, bin, dir, mains, byDir, logf)...)
}

// buildPrograms links the programs, by folder, into one binary that runs
// the program named by its first argument: one link instead of one per
// program. Each program is copied into dir/programs/<folder> as a package
// of that name whose main is called RunSnippet; lines are unchanged, so
// compiler messages map back to the markdown. When the build fails it
// returns no binary and the go command's output.
func buildPrograms(ctx context.Context, root, dir string, mains []string, byDir map[string]snippet) (bin, out string, err error) {
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", "", err
	}
	m := moduleLine.FindSubmatch(gomod)
	if m == nil {
		return "", "", errors.New("go.mod has no module line")
	}
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		return "", "", err
	}
	progDir := filepath.Join(dir, "programs")
	var imports, cases strings.Builder
	for _, name := range mains {
		code := packageMain.ReplaceAllString(byDir[name].code, "package "+name)
		code = funcMain.ReplaceAllString(code, "func RunSnippet() {")
		if err := os.MkdirAll(filepath.Join(progDir, name), 0o755); err != nil {
			return "", "", err
		}
		if err := os.WriteFile(filepath.Join(progDir, name, "snippet.go"), []byte(code), 0o644); err != nil {
			return "", "", err
		}
		fmt.Fprintf(&imports, "\t%q\n", path.Join(string(m[1]), filepath.ToSlash(rel), "programs", name))
		fmt.Fprintf(&cases, "\tcase %q:\n\t\t%s.RunSnippet()\n", name, name)
	}
	driver := "package main\n\nimport (\n\t\"os\"\n\n" + imports.String() + ")\n\nfunc main() {\n\tswitch os.Args[1] {\n" + cases.String() + "\tdefault:\n\t\tos.Exit(2)\n\t}\n}\n"
	if err := os.WriteFile(filepath.Join(progDir, "main.go"), []byte(driver), 0o644); err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "programs.bin")
	if out, err := goCmd(ctx, root, "build", "-o", bin, "./"+filepath.ToSlash(filepath.Join(rel, "programs"))); err != nil {
		return "", out, nil
	}
	return bin, "", nil
}

var (
	moduleLine  = regexp.MustCompile(`(?m)^module\s+(\S+)`)
	packageMain = regexp.MustCompile(`(?m)^package main$`)
	funcMain    = regexp.MustCompile(`(?m)^func main\(\) \{`)
)

// runPrograms runs the programs, several at once, each in its own folder,
// and compares what they print with their // Output: comments. Problems
// come in the order of mains.
func runPrograms(ctx context.Context, bin, dir string, mains []string, byDir map[string]snippet, logf func(string, ...any)) []string {
	results := make([]string, len(mains))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, name := range mains {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			s := byDir[name]
			runCtx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			cmd := exec.CommandContext(runCtx, bin, name)
			cmd.Dir = filepath.Join(dir, name)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			err := cmd.Run()
			logf("%s: ran in %v", s, time.Since(start).Round(time.Millisecond))
			if err != nil {
				results[i] = fmt.Sprintf("%s: the program failed: %v\n%s", s, err, stderr.String())
				return
			}
			got := strings.TrimSpace(stdout.String())
			if want := strings.TrimSpace(s.output); got != want {
				results[i] = fmt.Sprintf("%s: the program printed\n%s\nbut its // Output: comment says\n%s", s, got, want)
			}
		})
	}
	wg.Wait()
	return slices.DeleteFunc(results, func(p string) bool { return p == "" })
}

// attribute maps the go tool's messages back to markdown lines, and tells
// which snippets (by folder) they are about. Output it cannot map is
// reported whole.
func attribute(out string, byDir map[string]snippet) (problems []string, failed map[string]bool) {
	failed = map[string]bool{}
	for _, m := range vetLine.FindAllStringSubmatch(out, -1) {
		name := filepath.Base(filepath.Dir(m[1]))
		s, ok := byDir[name]
		if !ok {
			continue
		}
		failed[name] = true
		n, _ := strconv.Atoi(m[2])
		problems = append(problems, fmt.Sprintf("%s:%d: %s", s.doc, s.line+n-1, m[3]))
	}
	if len(problems) == 0 {
		problems = append(problems, "go failed:\n"+out)
		for name := range byDir {
			failed[name] = true
		}
	}
	return problems, failed
}

func goCmd(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestSnippets checks every go block of every guide in this folder.
func TestSnippets(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not available")
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	docs, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("no markdown files in the docs folder")
	}
	var all []snippet
	for _, doc := range docs {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		s, err := parseSnippets(doc, text)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, s...)
	}
	for _, p := range check(t.Context(), root, all, t.Logf) {
		t.Error(p)
	}
}

// TestCheckFindsBrokenSnippets makes sure the check fails where it should:
// a block that does not compile, a fragment that is not marked, a program
// whose output differs, a block that is not gofmt-ed. A marked fragment
// passes.
func TestCheckFindsBrokenSnippets(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join([]string{
		"# broken",          // 1
		"```go",             // 2
		"package broken",    // 3
		"",                  // 4
		"var x int = \"x\"", // 5
		"```",               // 6
		"```go",             // 7
		"x := 1",            // 8
		"```",               // 9
		skipMarker,          // 10
		"```go",             // 11
		"y := 2",            // 12
		"```",               // 13
		"```go",             // 14
		"package main",      // 15
		"",                  // 16
		"import \"fmt\"",    // 17
		"",                  // 18
		"func main() {",     // 19
		"\tfmt.Println(1)",  // 20
		"\t// Output:",      // 21
		"\t// 2",            // 22
		"}",                 // 23
		"```",               // 24
		"```go",             // 25
		"package  ugly",     // 26
		"```",               // 27
	}, "\n")
	snippets, err := parseSnippets("broken.md", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(snippets) != 5 || !snippets[2].skip || snippets[3].output != "2" {
		t.Fatalf("parsed %+v", snippets)
	}
	problems := check(t.Context(), root, snippets, t.Logf)
	want := []string{
		"broken.md:8: the go block is not a complete file",
		"broken.md:26: the go block is not gofmt-ed",
		"broken.md:5: cannot use \"x\"",
		"broken.md:15: the program printed\n1\nbut its // Output: comment says\n2",
	}
	if len(problems) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(problems), len(want), strings.Join(problems, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(problems[i], w) {
			t.Errorf("problem %d:\n%s\nwant it to start with\n%s", i, problems[i], w)
		}
	}
}
