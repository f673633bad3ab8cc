package bunlayer

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun/driver/sqliteshim"
)

// checkpointInterval is how often a layer on a SQLite file checkpoints its
// WAL (see checkpointer).
const checkpointInterval = time.Second

// restartFrames is the WAL length, in frames (pages), past which a
// checkpoint round also sees that the next commit starts the WAL over:
// SQLite's own automatic checkpoint runs at 1,000 pages.
const restartFrames = 1000

// walSizeLimit is the journal_size_limit of a layer's SQLite file: the
// first commit after the WAL starts over truncates the file to this size,
// so that a burst's WAL does not keep its disk space.
const walSizeLimit = 16 << 20

// checkpointer copies a SQLite file's WAL into the database file on a
// goroutine of its own, in place of SQLite's automatic checkpoint
// (wal_autocheckpoint(0)). SQLite runs that one inside the commit that
// takes the WAL past 1,000 pages: the commit returns only once the pages
// are copied and both files synced, a few milliseconds, and the writers
// lined up behind it wait as long.
//
// Each round runs a PASSIVE checkpoint beside the writers: it copies what
// the WAL holds without waiting for anyone. SQLite starts the WAL over
// only when a write begins while everything in it is copied, which steady
// writers beside the checkpoint never let happen; so when the WAL is past
// restartFrames, the round then takes the write queue's turn, as a writer
// would, and checkpoints again what was committed meanwhile: the next
// writer finds the WAL copied and starts it over. A writer arriving then
// waits for that second checkpoint, which copies only the last commits.
type checkpointer struct {
	// db is a connection of the checkpointer's own: the layer's *bun.DB
	// runs its query hooks on every statement.
	db     *sql.DB
	writes *writeQueue
	stop   context.CancelFunc
	done   chan struct{}
	// restarts counts the rounds that checkpointed under the turn.
	restarts atomic.Uint64
}

// startCheckpoints opens a connection to the SQLite file of dsn and
// checkpoints its WAL every interval until stopped.
func startCheckpoints(dsn string, writes *writeQueue, interval time.Duration) (*checkpointer, error) {
	db, err := sql.Open(sqliteshim.ShimName, dsn)
	if err != nil {
		return nil, fmt.Errorf("kiln/bunlayer: open SQLite for checkpoints: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	ctx, stop := context.WithCancel(context.Background())
	c := &checkpointer{db: db, writes: writes, stop: stop, done: make(chan struct{})}
	go c.run(ctx, interval)
	return c, nil
}

func (c *checkpointer) run(ctx context.Context, interval time.Duration) {
	defer close(c.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// A round that fails (another process checkpoints, a reader
			// holds the WAL) leaves the work to the next one.
			_ = c.round(ctx)
		}
	}
}

// round checkpoints the WAL, and again under the write queue's turn when
// it is past restartFrames.
func (c *checkpointer) round(ctx context.Context) error {
	frames, err := c.checkpoint(ctx)
	if err != nil || frames < restartFrames {
		return err
	}
	done, err := c.writes.wait(ctx)
	if err != nil {
		return err
	}
	defer done()
	if _, err := c.checkpoint(ctx); err != nil {
		return err
	}
	c.restarts.Add(1)
	return nil
}

// checkpoint runs a PASSIVE checkpoint and returns the WAL's length in
// frames.
func (c *checkpointer) checkpoint(ctx context.Context) (frames int, err error) {
	var busy, copied int
	err = c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
	return frames, err
}

// close stops the rounds and closes the connection.
func (c *checkpointer) close() error {
	c.stop()
	<-c.done
	return c.db.Close()
}
