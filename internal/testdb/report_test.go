package testdb

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// goTestSkipper runs go test on the package testdata/skipper, whose test
// skips for want of Redis, without -v, in a session of its own (so without
// a terminal to write to), its output going to stdout and stderr.
func goTestSkipper(t *testing.T, stdout, stderr io.Writer) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs a test binary")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the go command's standard error is found through Linux's /proc")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	cmd := exec.CommandContext(t.Context(), gobin, "test", "-count=1", "./testdata/skipper")
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != RedisEnv && k != "CI" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Run(); err != nil {
		t.Fatalf("go test ./testdata/skipper: %v", err)
	}
}

const skipperLine = "kiln: github.com/kiln-go/kiln/internal/testdb/testdata/skipper skipped 1 Redis test: set KILN_TEST_REDIS_URL=redis://127.0.0.1:6379/0 to run them\n"

var skipperOK = regexp.MustCompile(`(?m)^ok  \tgithub\.com/kiln-go/kiln/internal/testdb/testdata/skipper\t[0-9.]+s\n`)

// go test ./... without -v and without a terminal, its output piped as a
// CI runner pipes it, shows the line of a package whose tests skipped.
func TestSkipLineWithoutTerminal(t *testing.T) {
	var out bytes.Buffer // a pipe, for exec
	goTestSkipper(t, &out, &out)
	if !strings.Contains(out.String(), skipperLine) || !skipperOK.MatchString(out.String()) {
		t.Fatalf("go test printed:\n%s\nwant the line\n%sand the package's ok", out.String(), skipperLine)
	}
}

// Written to a file (go test ./... >log 2>&1), the go command's output is
// left whole: the line is not written over it.
func TestSkipLineLeavesAFileWhole(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	goTestSkipper(t, f, f)
	f.Close()
	out, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if loc := skipperOK.FindIndex(out); loc == nil || loc[0] != 0 || loc[1] != len(out) {
		t.Fatalf("the log holds %q; want the package's ok line alone", out)
	}
}
