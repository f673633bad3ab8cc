package bunlayer_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/kiln-go/kiln/resource/bunlayer"
)

// A SQLite database file, and the -wal and -shm files beside it, are
// created readable and writable by their owner only: they hold password
// hashes and tokens.
func TestSQLiteFilesArePrivate(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no such file modes")
	}
	dir := t.TempDir()
	for _, url := range []string{
		"sqlite:" + filepath.Join(dir, "plain.db"),
		"file:" + filepath.Join(dir, "with space.db"),
		"file:" + filepath.Join(dir, "escaped%20name.db") + "?_pragma=synchronous(NORMAL)",
	} {
		l, err := bunlayer.Open(context.Background(), url)
		if err != nil {
			t.Fatalf("open %s: %v", url, err)
		}
		if _, err := l.DB().ExecContext(context.Background(), "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)"); err != nil {
			t.Fatalf("write %s: %v", url, err)
		}
		// The sidecars exist while the database is open.
		for _, suffix := range []string{"", "-wal", "-shm"} {
			for _, name := range []string{"plain.db", "with space.db", "escaped name.db"} {
				fi, err := os.Stat(filepath.Join(dir, name+suffix))
				if err != nil {
					continue // not made yet by this or an earlier URL
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s%s: mode %04o, want 0600", name, suffix, fi.Mode().Perm())
				}
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	for _, want := range []string{"plain.db", "with space.db", "escaped name.db"} {
		if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
			t.Errorf("%s was not made (the folder holds %q)", want, names)
		}
	}
	if len(names) != 3 {
		t.Errorf("the folder holds %q, want the three databases alone", names)
	}

	// An existing file keeps its mode: it is the owner's choice.
	shared := filepath.Join(dir, "shared.db")
	if err := os.WriteFile(shared, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	l, err := bunlayer.Open(context.Background(), "sqlite:"+shared)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if fi, err := os.Stat(shared); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("an existing database file: %v, mode %v; want it left at 0640", err, fi.Mode())
	}
}

// A SQLite path that cannot be opened is reported with its name and the
// reason, not SQLite's "unable to open database file: out of memory (14)".
func TestOpenUnopenableSQLite(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "folder.db"), 0o700); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("not a database "), 512), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ url, want string }{
		{"sqlite:" + filepath.Join(file, "x.db"),
			"kiln/bunlayer: cannot open SQLite database " + filepath.Join(file, "x.db") + ": a part of its folder path " + file + " is a file, not a folder"},
		{"sqlite:" + filepath.Join(dir, "missing", "x.db"),
			"kiln/bunlayer: cannot open SQLite database " + filepath.Join(dir, "missing", "x.db") + ": its folder " + filepath.Join(dir, "missing") + " does not exist"},
		{"sqlite:" + filepath.Join(dir, "folder.db"),
			"kiln/bunlayer: cannot open SQLite database " + filepath.Join(dir, "folder.db") + ": it is a folder, not a file"},
		{"file:" + filepath.Join(dir, "absent.db") + "?mode=ro",
			"kiln/bunlayer: cannot open SQLite database " + filepath.Join(dir, "absent.db") + ": it does not exist"},
		{"sqlite:" + junk, "kiln/bunlayer: open SQLite database " + junk + ": file is not a database"},
	} {
		l, err := bunlayer.Open(t.Context(), c.url)
		if err == nil {
			l.Close()
			t.Errorf("Open(%q) = a layer, want an error", c.url)
			continue
		}
		if !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("Open(%q) = %q, want it to start with %q", c.url, err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "absent.db")); !os.IsNotExist(err) {
		t.Errorf("a read-only open created its file: %v", err)
	}
}

// TestSQLiteSynchronous: a SQLite file is in WAL mode with synchronous
// NORMAL (1) and temp_store MEMORY (2) unless its URL asks for another
// level, which wins.
func TestSQLiteSynchronous(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		query                  string
		synchronous, tempStore int
	}{{"", 1, 2}, {"?_pragma=synchronous(FULL)", 2, 2}, {"?_pragma=temp_store(FILE)", 1, 1},
		{"?_pragma=temp_store%281%29", 1, 1}, {"?_pragma=temp_store=1", 1, 1}, {"?_pragma=SYNCHRONOUS%28full%29", 2, 2}} {
		l, err := bunlayer.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "s.db")+c.query)
		if err != nil {
			t.Fatal(err)
		}
		// Every connection of the pool, not only the first.
		conns := make([]*sql.Conn, 3)
		for i := range conns {
			if conns[i], err = l.DB().DB.Conn(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for i, conn := range conns {
			var level, temp int
			var mode string
			for _, p := range []struct {
				pragma string
				dest   any
			}{{"synchronous", &level}, {"journal_mode", &mode}, {"temp_store", &temp}} {
				if err := conn.QueryRowContext(ctx, "PRAGMA "+p.pragma).Scan(p.dest); err != nil {
					t.Fatal(err)
				}
			}
			if level != c.synchronous || mode != "wal" || temp != c.tempStore {
				t.Errorf("sqlite:…%s, connection %d: synchronous %d, journal_mode %s, temp_store %d; want %d, wal, %d",
					c.query, i, level, mode, temp, c.synchronous, c.tempStore)
			}
		}
		for _, conn := range conns {
			conn.Close()
		}
		l.Close()
	}
}
