package bunlayer_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-go/kiln/resource/bunlayer"
)

// TestSQLiteCheckpointSettings: a SQLite file's commits run no checkpoint
// (wal_autocheckpoint 0) and its WAL is cut back to 16 MiB; the layer
// checkpoints in the background. A URL that sets wal_autocheckpoint, or
// whose writers are not lined up (_txlock=deferred), keeps SQLite's own
// checkpoints, and so does a read-only one.
func TestSQLiteCheckpointSettings(t *testing.T) {
	ctx := context.Background()
	existing := filepath.Join(t.TempDir(), "ro.db")
	l, err := bunlayer.Open(ctx, "sqlite:"+existing)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	for _, c := range []struct {
		url        string
		auto       int
		limit      int
		background bool
	}{
		{"sqlite:" + filepath.Join(t.TempDir(), "c.db"), 0, 16 << 20, true},
		{"sqlite:" + filepath.Join(t.TempDir(), "c.db") + "?_pragma=journal_size_limit(1024)", 0, 1024, true},
		{"sqlite:" + filepath.Join(t.TempDir(), "c.db") + "?_pragma=wal_autocheckpoint(500)", 500, -1, false},
		{"sqlite:" + filepath.Join(t.TempDir(), "c.db") + "?_txlock=deferred", 1000, -1, false},
		{"sqlite:" + existing + "?mode=ro", 1000, -1, false},
	} {
		l, err := bunlayer.Open(ctx, c.url)
		if err != nil {
			t.Fatal(err)
		}
		var auto, limit int
		if err := l.DB().QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil {
			t.Fatal(err)
		}
		if err := l.DB().QueryRowContext(ctx, "PRAGMA journal_size_limit").Scan(&limit); err != nil {
			t.Fatal(err)
		}
		background := bunlayer.CheckpointRestarts(l) >= 0
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if auto != c.auto || limit != c.limit || background != c.background {
			t.Errorf("%s: wal_autocheckpoint %d, journal_size_limit %d, background checkpoints %v; want %d, %d, %v",
				c.url, auto, limit, background, c.auto, c.limit, c.background)
		}
	}
}

// TestCheckpointsBoundTheWAL: under writers that never pause, the WAL
// still starts over, so its file stays small: checkpoints beside the
// writers alone would never let SQLite start it over, and it would grow
// by every commit (here about 100 MB). Every commit is kept.
func TestCheckpointsBoundTheWAL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "w.db")
	l, err := bunlayer.Open(ctx, "sqlite:"+path, bunlayer.WithCheckpointInterval(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.DB().ExecContext(ctx, "CREATE TABLE t (id INTEGER PRIMARY KEY, subject TEXT, data TEXT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.DB().ExecContext(ctx, "CREATE INDEX t_subject ON t (subject)"); err != nil {
		t.Fatal(err)
	}
	// The writers stop once the WAL has started over a few times after
	// enough commits, or after far more commits than that when it never
	// does (the test then fails).
	const enough, most, restarts = 12000, 60000, 3
	var commits atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				n := commits.Load()
				if n >= most || n >= enough && bunlayer.CheckpointRestarts(l) >= restarts {
					return
				}
				if err := insert(ctx, l, fmt.Sprint("subject", w, "-", i%50)); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				commits.Add(1)
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatal(*err)
	}
	if got := bunlayer.CheckpointRestarts(l); got < restarts {
		t.Errorf("after %d commits the checkpoints took the writers' turn %d times, want at least %d", commits.Load(), got, restarts)
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if max := int64(24 << 20); fi.Size() > max {
		t.Errorf("after %d commits the WAL is %d MiB, want at most %d", commits.Load(), fi.Size()>>20, max>>20)
	}
	var rows int64
	if err := l.DB().QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != commits.Load() {
		t.Errorf("%d rows after %d commits", rows, commits.Load())
	}
}

// insert commits one row in a transaction of the layer's, lined up with
// its other writers.
func insert(ctx context.Context, l *bunlayer.Layer, subject string) error {
	tx, err := l.Begin(ctx)
	if err != nil {
		return err
	}
	if err := bunlayer.ExecIn(ctx, tx, "INSERT INTO t (subject, data) VALUES ('"+subject+"', '{\"user_agent\":\"Mozilla/5.0 (X11; Linux x86_64)\"}')"); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
