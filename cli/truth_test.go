package cli_test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-go/kiln/cli"
)

// On a database without tables, tokens revoke shows the database's error;
// only a real not-found says "no user" or "no unexpired token".
func TestTokensRevokeShowsDatabaseErrors(t *testing.T) {
	e := newEnv(t)
	for _, args := range [][]string{
		{"--user", "alice@example.com"},
		{"--jti", "some-jti"},
		{"--subject", "user?id=1"},
	} {
		_, errOut, err := run(t, e.args(append([]string{"tokens", "revoke"}, args...)...)...)
		if err == nil || !strings.Contains(err.Error(), "no such table") {
			t.Errorf("revoke %v on an unmigrated database: %v; want the database's error", args, err)
		}
		if err != nil && (strings.Contains(err.Error(), "no user") || strings.Contains(err.Error(), "no unexpired token")) {
			t.Errorf("revoke %v on an unmigrated database says %q", args, err)
		}
		if !strings.Contains(errOut, "no such table") {
			t.Errorf("revoke %v printed %q on stderr", args, errOut)
		}
		if code := cli.ExitCode(err); code != cli.ExitError {
			t.Errorf("revoke %v: exit code %d, want %d", args, code, cli.ExitError)
		}
	}
}

// An unknown command is an error, with the nearest command when there is
// one, at every level; a command group alone prints its help.
func TestUnknownCommand(t *testing.T) {
	clearEnv(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate" for "kilntest"`},
		{[]string{"migrat"}, `unknown command "migrat" for "kilntest"; did you mean migrate?`},
		{[]string{"tokens", "frobnicate"}, `unknown command "frobnicate" for "kilntest tokens"`},
		{[]string{"tokens", "revok"}, `unknown command "revok" for "kilntest tokens"; did you mean revoke?`},
		{[]string{"tokens", "expunge", "now"}, `"kilntest tokens expunge" takes no arguments; got "now"`},
		{[]string{"migrate", "--prnt"}, "unknown flag: --prnt"},
		// An unknown command comes first, before the flags meant for it.
		{[]string{"tokens", "revok", "--user", "ada@example.com"}, `unknown command "revok" for "kilntest tokens"; did you mean revoke?`},
		{[]string{"migrat", "--print"}, `unknown command "migrat" for "kilntest"; did you mean migrate?`},
		{[]string{"tokens", "--user", "ada@example.com"}, "unknown flag: --user"},
		// help on a command that does not exist is as wrong as running it.
		{[]string{"help", "frobnicate"}, `unknown command "frobnicate" for "kilntest"`},
		{[]string{"help", "migrat"}, `unknown command "migrat" for "kilntest"; did you mean migrate?`},
		{[]string{"help", "tokens", "revok"}, `unknown command "revok" for "kilntest tokens"; did you mean revoke?`},
	} {
		out, errOut, err := run(t, c.args...)
		if err == nil || err.Error() != c.want {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
		if code := cli.ExitCode(err); code != cli.ExitUsage {
			t.Errorf("%v: exit code %d, want %d", c.args, code, cli.ExitUsage)
		}
		if out != "" || !strings.Contains(errOut, "Error: "+c.want) {
			t.Errorf("%v printed %q, and %q on stderr", c.args, out, errOut)
		}
	}
	for _, args := range [][]string{{"tokens"}, {"help", "tokens"}} {
		out, _, err := run(t, args...)
		if err != nil || !strings.Contains(out, "\n  revoke ") {
			t.Errorf("%v: %v, printed %q; want the help of tokens", args, err, out)
		}
	}
	if out, _, err := run(t, "help", "tokens", "revoke"); err != nil || !strings.Contains(out, "--jti string") {
		t.Errorf("help tokens revoke: %v, printed %q; want its help", err, out)
	}
}

// migrate --print writes nothing: no data folder, no development secret,
// no database file, with or without secrets.
func TestMigratePrintWritesNothing(t *testing.T) {
	clearEnv(t)
	for name, extra := range map[string][]string{
		"development secrets": nil,
		"signing secret":      {"--token-signing-secret", testSecret},
		"both secrets":        {"--token-signing-secret", testSecret, "--cookie-keys", testCookieKey},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		db := filepath.Join(t.TempDir(), "elsewhere", "x.db")
		for _, args := range [][]string{
			append([]string{"migrate", "--print", "--data-dir", dir}, extra...),
			append([]string{"migrate", "--print", "--data-dir", dir, "--database-url", "sqlite:" + db}, extra...),
		} {
			out := mustRun(t, args...)
			if !strings.Contains(out, `CREATE TABLE IF NOT EXISTS "tokens"`) {
				t.Errorf("%s: migrate --print printed %q", name, out)
			}
			for _, p := range []string{dir, filepath.Dir(db)} {
				if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s: migrate --print made %s: %v", name, p, err)
				}
			}
		}
	}
}

// exitMainEnv names the variable that makes TestExitCodes run cli.Main
// itself, with the JSON list of arguments it holds.
const exitMainEnv = "KILN_CLI_TEST_MAIN_ARGS"

// The exit codes of the command line, from a process that runs cli.Main:
// 0 success, 1 a failed command, 2 a wrong command line.
func TestExitCodes(t *testing.T) {
	if raw := os.Getenv(exitMainEnv); raw != "" {
		var args []string
		if err := json.Unmarshal([]byte(raw), &args); err != nil {
			os.Exit(99)
		}
		os.Args = append([]string{"kilntest"}, args...)
		cli.Main(testApp())
		return
	}
	e := newEnv(t)
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"--help"}, 0},
		{[]string{"tokens"}, 0},
		{e.args("migrate", "--print"), 0},
		{e.args("tokens", "revoke", "--user", "nobody@example.com"), 1}, // no such table yet
		{e.args("migrate"), 0},
		{e.args("tokens", "revoke", "--subject", "user?id=1"), 0},
		{e.args("tokens", "revoke", "--user", "nobody@example.com"), 1},
		{e.args("tokens", "revoke", "--jti", "no-such-jti"), 1},
		{e.args("tokens", "expunge"), 0},
		{[]string{"migrate", "--database-url", "mysql://db.example/kiln"}, 1},
		{[]string{"serve", "--data-dir", filepath.Join(e.dir, "kiln.db", "data")}, 1}, // the data folder is under a file
		{e.args("tokens", "revoke"), 2},
		{[]string{"tokens", "frobnicate"}, 2},
		{[]string{"frobnicate"}, 2},
		{[]string{"tokens", "revok", "--user", "ada@example.com"}, 2},
		{[]string{"help", "frobnicate"}, 2},
		{[]string{"help", "tokens"}, 0},
		{[]string{"migrate", "--no-such-flag"}, 2},
		{[]string{"serve", "extra"}, 2},
	} {
		raw, err := json.Marshal(c.args)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestExitCodes$")
		cmd.Env = append(os.Environ(), exitMainEnv+"="+string(raw))
		out, err := cmd.CombinedOutput()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code {
			t.Errorf("%v: exit code %d, want %d\n%s", c.args, code, c.code, out)
		}
	}
}

// The folder problems are reported as docs/cli.md says: the folder that
// could not be made, and why; a missing folder is made.
func TestFolderErrorsAsDocumented(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := []string{"--token-signing-secret", testSecret, "--cookie-keys", testCookieKey}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "--data-dir", filepath.Join(file, "data")}, "kiln: data_dir: mkdir " + file + ": not a directory"},
		{append([]string{"migrate", "--data-dir", dir, "--database-url", "sqlite:" + filepath.Join(file, "x.db")}, secrets...),
			"kiln: database folder: mkdir " + file + ": not a directory"},
		{append([]string{"migrate", "--data-dir", dir, "--database-url", "sqlite:" + dir}, secrets...),
			"kiln/bunlayer: cannot open SQLite database " + dir + ": it is a folder, not a file"},
	} {
		if _, _, err := run(t, c.args...); err == nil || err.Error() != c.want {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
	db := filepath.Join(dir, "new", "sub", "x.db")
	mustRun(t, append([]string{"migrate", "--data-dir", dir, "--database-url", "sqlite:" + db}, secrets...)...)
	if fi, err := os.Stat(filepath.Dir(db)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the database folder: %v, %v; want it made, 0700", fi, err)
	}

	guide, err := os.ReadFile(filepath.Join("..", "docs", "cli.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"`kiln: data_dir: mkdir DIR: REASON`", "`kiln: database folder: mkdir DIR: REASON`",
		"`not a directory`", "`it is a folder, not a file`", "A missing folder is made (`0700`)"} {
		if !strings.Contains(string(guide), want) {
			t.Errorf("docs/cli.md does not say %s", want)
		}
	}
	if strings.Contains(string(guide), "its folder DIR does not exist") {
		t.Error("docs/cli.md says a missing folder is an error; the command line makes it")
	}
}
