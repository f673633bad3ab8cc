package testdb

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
)

// service is one server the tests can use, named by its variable.
type service struct {
	env     string
	name    string // for people: "PostgreSQL"
	example string // a URL for a local server
}

// services lists the servers in the order Main reports them.
var services = []service{
	{PostgresEnv, "PostgreSQL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"},
	{RedisEnv, "Redis", "redis://127.0.0.1:6379/0"},
	{NATSEnv, "NATS", "nats://127.0.0.1:4222"},
}

func serviceOf(env string) service {
	for _, s := range services {
		if s.env == env {
			return s
		}
	}
	return service{env: env, name: env}
}

// skipped counts, by variable, the tests of this test binary that skipped
// because the variable is not set.
var skipped = struct {
	sync.Mutex
	byEnv map[string]int
}{byEnv: map[string]int{}}

func recordSkip(env string) {
	skipped.Lock()
	defer skipped.Unlock()
	skipped.byEnv[env]++
}

// Main runs a package's tests and then says, one line per service, which
// tests skipped because the service's variable is not set, and how to run
// them. A package whose tests use PostgresURL, RedisURL, NATSURL or the
// helpers built on them calls it from its TestMain:
//
//	func TestMain(m *testing.M) { testdb.Main(m) }
//
// go test ./... shows what a passing package prints only under -v (or
// -json), where the lines go to the standard output. Without it, the lines
// go to the go command's own standard error (see goStderr), which go test
// shows, when it is a terminal or a pipe; else to the terminal (/dev/tty)
// when there is one; else to the standard output, which go test hides. A
// result go test replays from its cache prints no lines; -count=1 runs the
// tests again.
func Main(m *testing.M) {
	code := m.Run()
	lines := skipLines(packagePath())
	if len(lines) == 0 {
		os.Exit(code)
	}
	w, closeW := reportWriter()
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	closeW()
	os.Exit(code)
}

// skipLines says which services the tests skipped, one line each.
func skipLines(pkg string) []string {
	skipped.Lock()
	defer skipped.Unlock()
	var lines []string
	for _, s := range services {
		n := skipped.byEnv[s.env]
		if n == 0 {
			continue
		}
		tests := "tests"
		if n == 1 {
			tests = "test"
		}
		lines = append(lines, fmt.Sprintf("kiln: %s skipped %d %s %s: set %s=%s to run them",
			pkg, n, s.name, tests, s.env, s.example))
	}
	return lines
}

// packagePath is the import path of the package under test, read from the
// test binary's build information ("…/resource.test").
func packagePath() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Path != "" {
		return strings.TrimSuffix(bi.Path, ".test")
	}
	return "this package"
}

// reportWriter returns where Main's lines are seen: the standard output
// under -v, else the go command's standard error, else the terminal, else
// the standard output.
func reportWriter() (io.Writer, func()) {
	if testing.Verbose() {
		return os.Stdout, func() {}
	}
	for _, open := range []func() (*os.File, error){goStderr, tty} {
		if f, err := open(); err == nil {
			return f, func() { f.Close() }
		}
	}
	return os.Stdout, func() {}
}

// goStderr opens the standard error of the go command that runs this test
// binary (its parent, found through Linux's /proc) when that is a terminal
// or a pipe: go test keeps a passing package's output to itself unless -v
// is given, but what its own standard error gets is seen. A regular file is
// not opened: a second writer at its own offset would write over the go
// command's output (go test ./... >log 2>&1).
func goStderr() (*os.File, error) {
	parent := fmt.Sprintf("/proc/%d/", os.Getppid())
	exe, err := os.Readlink(parent + "exe")
	if err != nil {
		return nil, err
	}
	if filepath.Base(exe) != "go" {
		return nil, fmt.Errorf("testdb: the test binary's parent is %s, not the go command", exe)
	}
	fi, err := os.Stat(parent + "fd/2")
	if err != nil {
		return nil, err
	}
	if fi.Mode()&(fs.ModeNamedPipe|fs.ModeCharDevice) == 0 {
		return nil, fmt.Errorf("testdb: the go command's standard error is a %v, not a terminal or a pipe", fi.Mode().Type())
	}
	return os.OpenFile(parent+"fd/2", os.O_WRONLY|os.O_APPEND, 0)
}

// tty opens the terminal.
func tty() (*os.File, error) { return os.OpenFile("/dev/tty", os.O_WRONLY, 0) }
