package cli_test

import (
	"testing"

	"github.com/kiln-go/kiln/cli"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// database_max_conns is unset (the data layer's default) unless a flag, a
// variable or the file sets it, and 0 is the default too; any other value
// under 2, or one that is not a whole number, is refused wherever it is
// written.
func TestConfigDatabaseMaxConns(t *testing.T) {
	clearEnv(t)
	secrets := []string{"--data-dir", t.TempDir(), "--token-signing-secret", testSecret, "--cookie-keys", testCookieKey}
	if cfg, err := load(t, secrets...); err != nil || cfg.DatabaseMaxConns != 0 {
		t.Fatalf("default: %v, database_max_conns %d; want 0 (unset)", err, maxConns(cfg))
	}
	file := writeFile(t, "kiln.yaml", "database_max_conns: 12\n")
	if cfg, err := load(t, append(secrets, "--config", file)...); err != nil || cfg.DatabaseMaxConns != 12 {
		t.Errorf("database_max_conns: 12 in the file: %v, %d", err, maxConns(cfg))
	}
	t.Setenv("KILN_DATABASE_MAX_CONNS", "8")
	if cfg, err := load(t, append(secrets, "--config", file)...); err != nil || cfg.DatabaseMaxConns != 8 {
		t.Errorf("KILN_DATABASE_MAX_CONNS=8 over the file: %v, %d", err, maxConns(cfg))
	}
	if cfg, err := load(t, append(secrets, "--config", file, "--database-max-conns", "2")...); err != nil || cfg.DatabaseMaxConns != 2 {
		t.Errorf("--database-max-conns 2 over the variable: %v, %d", err, maxConns(cfg))
	}
	t.Setenv("KILN_DATABASE_MAX_CONNS", "0")
	if cfg, err := load(t, append(secrets, "--config", file)...); err != nil || cfg.DatabaseMaxConns != 0 {
		t.Errorf("KILN_DATABASE_MAX_CONNS=0 over the file: %v, %d; want 0, the default", err, maxConns(cfg))
	}
	t.Setenv("KILN_DATABASE_MAX_CONNS", "")

	const fix = "; use at least 2 connections, such as 10, or 0 for the default"
	for _, c := range []struct{ value, want, inFile string }{
		{"1", "must be at least 2 (1)" + fix, ""},
		{"-4", "must be at least 2 (-4)" + fix, ""},
		{"ten", `want an integer, got "ten"`, ""},
		// YAML reads 2.5 as a number.
		{"2.5", `want an integer, got "2.5"`, "want an integer, got 2.5"},
	} {
		_, err := load(t, append(secrets, "--database-max-conns", c.value)...)
		if want := "kiln/dsl: flag --database-max-conns: database_max_conns: " + c.want; err == nil || err.Error() != want {
			t.Errorf("--database-max-conns %s: %v\nwant: %s", c.value, err, want)
		}
		t.Setenv("KILN_DATABASE_MAX_CONNS", c.value)
		_, err = load(t, secrets...)
		if want := "kiln/dsl: variable KILN_DATABASE_MAX_CONNS: database_max_conns: " + c.want; err == nil || err.Error() != want {
			t.Errorf("KILN_DATABASE_MAX_CONNS=%s: %v\nwant: %s", c.value, err, want)
		}
		t.Setenv("KILN_DATABASE_MAX_CONNS", "")
		if c.inFile == "" {
			c.inFile = c.want
		}
		bad := writeFile(t, "kiln.yaml", "database_max_conns: "+c.value+"\n")
		_, err = load(t, append(secrets, "--config", bad)...)
		if want := "kiln/dsl: " + bad + ":1: database_max_conns: " + c.inFile; err == nil || err.Error() != want {
			t.Errorf("database_max_conns: %s in the file: %v\nwant: %s", c.value, err, want)
		}
	}
}

func maxConns(cfg *cli.Config) int {
	if cfg == nil {
		return 0
	}
	return cfg.DatabaseMaxConns
}

// OpenDatabase bounds the PostgreSQL pool at database_max_conns, or at the
// data layer's default when it is not set.
func TestOpenDatabaseBoundsPool(t *testing.T) {
	clearEnv(t)
	u := testdb.PostgresSchemaURL(t)
	secrets := []string{"--data-dir", t.TempDir(), "--token-signing-secret", testSecret, "--cookie-keys", testCookieKey, "--database-url", u}
	for _, c := range []struct {
		variable string
		want     int
	}{{"", bunlayer.DefaultMaxConns()}, {"0", bunlayer.DefaultMaxConns()}, {"7", 7}, {"40", 40}} {
		t.Setenv("KILN_DATABASE_MAX_CONNS", c.variable)
		cfg, err := load(t, secrets...)
		if err != nil {
			t.Fatal(err)
		}
		l, err := cli.OpenDatabase(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.DB().Stats().MaxOpenConnections; got != c.want {
			t.Errorf("KILN_DATABASE_MAX_CONNS=%q: the pool opens at most %d connections, want %d", c.variable, got, c.want)
		}
		l.Close()
	}
}
