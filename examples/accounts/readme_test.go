package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestREADMERun runs the README's command as a user would, from the module
// root: go run ./examples/accounts --dev, on a fresh data folder and a free
// port.
func TestREADMERun(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles and runs the example")
	}
	root := moduleRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const command = "go run ./examples/accounts --dev"
	if !strings.Contains(string(readme), command) {
		t.Errorf("the README does not show %q", command)
	}
	cmd := exec.Command("go", strings.Fields(command)[1:]...)
	cmd.Dir = root
	p := startExample(t, cmd, 3*time.Minute)

	// It serves the example: the live page sends a stranger to sign in.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(p.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/sign-in" {
		t.Errorf("GET / = %d to %q, want 303 to /sign-in", resp.StatusCode, resp.Header.Get("Location"))
	}
	// On SQLite in the data folder, with development secrets it warns about.
	for _, name := range []string{"accounts.db", "dev-token-signing-secret", "dev-cookie-key"} {
		if _, err := os.Stat(filepath.Join(p.DataDir, name)); err != nil {
			t.Errorf("the data folder lacks %s: %v", name, err)
		}
	}
	if logs := p.Logs.String(); !strings.Contains(logs, "using development secrets") || !strings.Contains(logs, "database=sqlite") ||
		!strings.Contains(logs, "kiln: development mode") {
		t.Errorf("the log does not say it runs on SQLite with development secrets, in development mode:\n%s", logs)
	}
	// The tour's password reset reads the development mailbox.
	resp, err = client.Get(p.URL + "/dev/mailbox")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /dev/mailbox = %d, want 200 in development mode", resp.StatusCode)
	}
}
