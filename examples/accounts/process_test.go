package main

// Helpers that run the example as a real process: built with go build or
// started with go run, on a fresh data folder and a free port.

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// moduleRoot is the folder of go.mod, two levels above this package.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s: %v", root, err)
	}
	return root
}

// buildExample builds the example into a temporary folder and returns the
// binary's path.
func buildExample(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the process tests use process groups")
	}
	bin := filepath.Join(t.TempDir(), "accounts")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// exampleProcess is the example running as a process group of its own.
type exampleProcess struct {
	URL     string
	DataDir string
	Logs    *lockedBuffer
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
}

// servingLine is the log line serve writes once it listens.
var servingLine = regexp.MustCompile(`msg="kiln: serving".* url=(http://\S+)`)

// startExample starts cmd (the example, or go run of it) with a fresh
// data folder and a free port, and returns once it serves /healthz.
// The process group is ended when t ends.
func startExample(t *testing.T, cmd *exec.Cmd, startup time.Duration) *exampleProcess {
	t.Helper()
	// Port 0: the example binds a port of the kernel's choosing, which it
	// logs; a port picked free beforehand may be taken by the time it binds.
	dataDir := t.TempDir()
	env := []string{"KILN_DATA_DIR=" + dataDir, "KILN_ADDR=127.0.0.1:0"}
	for _, kv := range os.Environ() {
		// The app is configured here alone, not by the caller's KILN_….
		if !strings.HasPrefix(kv, "KILN_") || strings.HasPrefix(kv, "KILN_TEST_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &exampleProcess{DataDir: dataDir, Logs: &lockedBuffer{}, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout = p.Logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	serving := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		r := bufio.NewReader(stderr)
		for {
			line, err := r.ReadString('\n')
			p.Logs.Write([]byte(line))
			if m := servingLine.FindStringSubmatch(line); m != nil {
				select {
				case serving <- m[1]:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		<-copied // Wait must not run before the pipe is read to its end
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })

	timer := time.NewTimer(startup)
	defer timer.Stop()
	select {
	case p.URL = <-serving:
	case <-p.done:
		t.Fatalf("the example exited before serving: %v\n%s", cmd.ProcessState, p.Logs)
	case <-timer.C:
		t.Fatalf("the example did not serve within %s:\n%s", startup, p.Logs)
	}
	if !strings.HasPrefix(p.URL, "http://127.0.0.1:") || strings.HasSuffix(p.URL, ":0") {
		t.Errorf("the example serves on %s, want a port of 127.0.0.1 (KILN_ADDR 127.0.0.1:0)", p.URL)
	}
	resp, err := http.Get(p.URL + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("GET /healthz = %d %q, want 200 ok", resp.StatusCode, body)
	}
	return p
}

// stop ends the process group: SIGINT, on which the app shuts down cleanly
// (and go run waits for its child), then SIGKILL when it has not exited
// within ten seconds.
func (p *exampleProcess) stop(t *testing.T) {
	pgid := p.cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGINT); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Errorf("interrupt the example: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-p.done:
	case <-ctx.Done():
		t.Errorf("the example did not stop on SIGINT within 10s; killing it:\n%s", p.Logs)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// A go run leaves its child in the group: make sure nothing is left.
	if err := syscall.Kill(-pgid, 0); err == nil {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		t.Errorf("a process of the example's group outlived it")
	}
}
