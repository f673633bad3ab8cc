package bunlayer_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-go/kiln/resource/bunlayer"
)

// TestSQLiteCheckpointSettings: a SQLite file's WAL is checkpointed in
// the background, SQLite's own checkpoint moved to 4,000 pages as a
// backstop, and its file cut back to 16 MiB. A URL that sets
// wal_autocheckpoint, whose writers are not lined up (_txlock=deferred)
// or that is not in WAL mode keeps SQLite's own checkpoints, and so does
// a read-only one.
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
		{"sqlite:" + filepath.Join(t.TempDir(), "c.db"), 4000, 16 << 20, true},
		{"sqlite:" + filepath.Join(t.TempDir(), "c.db") + "?_pragma=journal_size_limit(1024)", 4000, 1024, true},
		{"sqlite:" + filepath.Join(t.TempDir(), "c.db") + "?_pragma=wal_autocheckpoint(500)", 500, 16 << 20, false},
		{"sqlite:" + filepath.Join(t.TempDir(), "c.db") + "?_txlock=deferred", 1000, 16 << 20, false},
		{"sqlite:" + filepath.Join(t.TempDir(), "c.db") + "?_pragma=journal_mode(DELETE)", 1000, 16 << 20, false},
		{"sqlite:" + filepath.Join(t.TempDir(), "c.db") + "?_pragma=journal_mode=delete", 1000, 16 << 20, false},
		{"sqlite:" + filepath.Join(t.TempDir(), "c.db") + "?_pragma=wal_autocheckpoint%28500%29", 500, 16 << 20, false},
		{"sqlite:" + existing + "?mode=ro", 1000, 16 << 20, false},
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
		background := bunlayer.CheckpointsInBackground(l)
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
// still starts over, so its file stays small, and every commit is kept:
//   - by the background rounds alone (no backstop): PASSIVE checkpoints
//     beside the writers would never let SQLite start the WAL over, and it
//     would grow by every commit (here about 100 MB);
//   - by SQLite's own checkpoint at 4,000 pages when the rounds do not
//     run.
func TestCheckpointsBoundTheWAL(t *testing.T) {
	for _, c := range []struct {
		name string
		opts []bunlayer.OpenOption
	}{
		{"rounds", []bunlayer.OpenOption{bunlayer.WithCheckpointInterval(5 * time.Millisecond), bunlayer.WithoutCheckpointBackstop()}},
		{"backstop", []bunlayer.OpenOption{bunlayer.WithCheckpointInterval(time.Hour)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "w.db")
			l, err := bunlayer.Open(ctx, "sqlite:"+path, c.opts...)
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
			salt := walSalt(t, path)
			// The writers stop once the WAL has started over a few times
			// after enough commits, or after far more commits than that
			// when it does not (the test then fails).
			const enough, most, restarts = 12000, 60000, 3
			var commits atomic.Int64
			var mu sync.Mutex
			var largest int64 // the WAL file's largest size seen, under mu
			var failed atomic.Pointer[error]
			fail := func(err error) { failed.CompareAndSwap(nil, &err) }
			var writers sync.WaitGroup
			for w := range 4 {
				writers.Go(func() {
					for i := 0; ; i++ {
						n := commits.Load()
						if i%100 == 0 {
							if fi, err := os.Stat(path + "-wal"); err == nil {
								mu.Lock()
								largest = max(largest, fi.Size())
								mu.Unlock()
							}
						}
						if n >= most || n >= enough && i%100 == 0 && walSalt(t, path)-salt >= restarts {
							return
						}
						if err := insert(ctx, l, fmt.Sprint("subject", w, "-", i%50)); err != nil {
							fail(err)
							return
						}
						commits.Add(1)
					}
				})
			}
			writers.Wait()
			if err := failed.Load(); err != nil {
				t.Fatal(*err)
			}
			if got := walSalt(t, path) - salt; got < restarts {
				t.Errorf("after %d commits the WAL started over %d times, want at least %d", commits.Load(), got, restarts)
			}
			if bound := int64(32 << 20); largest > bound {
				t.Errorf("over %d commits the WAL grew to %d MiB, want at most %d", commits.Load(), largest>>20, bound>>20)
			}
			var rows int64
			if err := l.DB().QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&rows); err != nil {
				t.Fatal(err)
			}
			if rows != commits.Load() {
				t.Errorf("%d rows after %d commits", rows, commits.Load())
			}
		})
	}
}

// walSalt is the first salt in the header of the WAL of the SQLite file
// at path, which SQLite adds one to each time the WAL starts over.
func walSalt(t *testing.T, path string) uint32 {
	f, err := os.Open(path + "-wal")
	if err != nil {
		t.Error(err)
		return 0
	}
	defer f.Close()
	var header [20]byte
	if _, err := f.ReadAt(header[:], 0); err != nil {
		t.Error(err)
		return 0
	}
	return binary.BigEndian.Uint32(header[16:])
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
