package main

// Two nodes configured with only the token signing secret share sessions:
// their cookie key is derived from the secret, not made per node.

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/kiln-go/kiln/cli"
)

func TestTwoNodesShareCookiesWithOnlyTheSigningSecret(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "KILN_") && !strings.HasPrefix(k, "KILN_TEST_") {
			t.Setenv(k, "") // configured by the flags below alone
		}
	}
	db := "sqlite:" + filepath.Join(t.TempDir(), "accounts.db")
	var nodes []*contractApp
	for range 2 {
		fs := pflag.NewFlagSet("accounts", pflag.ContinueOnError)
		cli.AddFlags(fs)
		if err := fs.Parse([]string{"--data-dir", t.TempDir(), "--database-url", db,
			"--token-signing-secret", "two-node-token-signing-secret-0123456789abcdef"}); err != nil {
			t.Fatal(err)
		}
		cfg, err := cli.LoadConfig(fs, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.DevSecrets {
			t.Error("a node with a signing secret used a development cookie key")
		}
		app, _ := startApp(t, *cfg)
		nodes = append(nodes, app)
	}
	email := newEmail("two-node")
	nodes[0].register(t, email)
	a := nodes[0].signIn(t, email, contractPassword)
	if !a.signedIn() {
		t.Fatal("the session does not open the live page on the node that made it")
	}
	if b := nodes[1].withSession(t, a.session()); !b.signedIn() {
		t.Error("a session cookie sealed by one node is refused by the other")
	}
}
