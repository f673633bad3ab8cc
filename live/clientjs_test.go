package live_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestClientJS runs client_test.mjs, the tests of client.js, with node's
// built-in test runner. It skips when node is not installed, except under
// CI=true, where it fails.
func TestClientJS(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is not on PATH; CI requires it to test client.js")
		}
		t.Skip("node is not on PATH")
	}
	files, err := filepath.Glob("client_test.*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no client_test.* next to client.js: %v", err)
	}
	args := append([]string{"--test", "--test-reporter=spec"}, files...)
	cmd := exec.CommandContext(t.Context(), node, args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "FORCE_COLOR=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test %v: %v\n%s", files, err, out)
	}
	if testing.Verbose() {
		t.Logf("%s", out)
	}
}
