package main

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// servingLine is the log line serve writes once it listens.
var servingLine = regexp.MustCompile(`msg="kiln: serving".* url=(http://\S+)`)

// TestREADMERun runs the example as the README says, in development mode,
// from a fresh folder and on a free port: it keeps its data in blog-data
// there, and serves the blog.
func TestREADMERun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "go run ./examples/blog --dev") {
		t.Errorf("the README does not say go run ./examples/blog --dev")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "blog")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	cmd := exec.Command(bin, "--dev")
	cmd.Dir = dir
	cmd.Env = []string{"KILN_ADDR=" + addr} // no other KILN_… setting
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KILN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	serving := make(chan string, 1)
	logs := &lockedBuffer{}
	ended := make(chan struct{})
	go func() { // reads stderr to its end, so that the example never blocks on it
		defer close(ended)
		r := bufio.NewScanner(stderr)
		for r.Scan() {
			logs.Write([]byte(r.Text() + "\n"))
			if m := servingLine.FindStringSubmatch(r.Text()); m != nil {
				select {
				case serving <- m[1]:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		<-ended // Wait must not run before stderr is read to its end
		_ = cmd.Wait()
	})
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	var base string
	select {
	case base = <-serving:
	case <-ended: // the example exited
	case <-timer.C:
	}
	if base != "http://"+addr {
		t.Fatalf("the example did not serve on %s:\n%s", addr, logs)
	}

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/sign-in" {
		t.Errorf("GET / = %d to %q, want 303 to /sign-in", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, name := range []string{"blog.db", "dev-token-signing-secret", "dev-cookie-key"} {
		if _, err := os.Stat(filepath.Join(dir, "blog-data", name)); err != nil {
			t.Errorf("blog-data lacks %s: %v", name, err)
		}
	}
}
