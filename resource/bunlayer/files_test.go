package bunlayer_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
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
