package bunlayer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
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

// backstopFrames is the wal_autocheckpoint of a layer whose WAL is
// checkpointed in the background: past it, SQLite checkpoints in each
// commit again, as it does by default at 1,000 pages, for when the rounds
// fall behind (writes faster than 4,000 pages a second) or cannot start
// the WAL over. Like SQLite's default, it cannot either while writers
// from outside the queue keep the lock all along.
const backstopFrames = 4000

// restartWait is the busy timeout of a round's checkpoint under the
// write queue's turn: how long it waits for the readers still reading the
// WAL, and for a writer from outside the queue, while the process's
// writers wait for it. SQLite's busy handler sleeps in steps, so the wait
// can reach some 10 ms.
const restartWait = 5 * time.Millisecond

// walSizeLimit is the journal_size_limit of a SQLite file: the first
// commit after the WAL starts over truncates the file to this size, so
// that a burst's WAL does not keep its disk space.
const walSizeLimit = 16 << 20

// checkpointer copies a SQLite file's WAL into the database file on a
// goroutine of its own, ahead of SQLite's automatic checkpoint, which
// runs inside the commit that takes the WAL past its threshold: that
// commit returns only once the pages are copied and both files synced,
// a few milliseconds, and the writers lined up behind it wait as long.
//
// Each round runs a PASSIVE checkpoint beside the writers: it copies what
// the WAL holds without waiting for anyone. SQLite starts the WAL over
// only when a write begins while everything in it is copied and no
// reader still reads it, which steady writers and readers beside the
// checkpoint rarely let happen. So when the WAL is past restartFrames,
// the round then takes the write queue's turn, as a writer would, and
// runs a RESTART checkpoint: it copies what was committed meanwhile and
// waits, at most restartWait, for the readers to leave the WAL, so that
// the next writer starts it over. Writers arriving then wait for that
// second checkpoint, which copies only the last commits. SQLite's own
// checkpoint stays as a backstop, at backstopFrames.
type checkpointer struct {
	// db is a connection of the checkpointer's own: the layer's *bun.DB
	// runs its query hooks on every statement.
	db     *sql.DB
	file   string // for the log
	writes *writeQueue
	logger *slog.Logger
	stop   context.CancelFunc
	done   chan struct{}
	// failing is whether the last round failed (run's goroutine only).
	failing bool
}

// startCheckpoints opens a connection to the SQLite file of dsn, which
// the layer has just opened with the same driver, and checkpoints its WAL
// every interval until stopped.
func startCheckpoints(dsn, file string, writes *writeQueue, interval time.Duration) *checkpointer {
	// sql.Open only checks that the driver is registered, and the layer's
	// own sql.Open found it.
	db, _ := sql.Open(sqliteshim.ShimName, dsn)
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	ctx, stop := context.WithCancel(context.Background())
	c := &checkpointer{db: db, file: file, writes: writes, logger: slog.Default(), stop: stop, done: make(chan struct{})}
	go c.run(ctx, interval)
	return c
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
			// A round that cannot copy everything (a reader holds the WAL)
			// leaves the rest to the next one.
			if err := c.round(ctx); ctx.Err() == nil {
				c.report(err)
			}
		}
	}
}

// report logs a round's error (the disk is full, say) when rounds begin
// failing, not every second while they go on failing.
func (c *checkpointer) report(err error) {
	if err != nil && !c.failing {
		c.logger.Warn("kiln/bunlayer: background checkpoint of the SQLite WAL failed; SQLite checkpoints in its commits past its threshold meanwhile",
			"file", c.file, "err", err)
	}
	c.failing = err != nil
}

// round checkpoints the WAL, and again under the write queue's turn when
// it is past restartFrames.
func (c *checkpointer) round(ctx context.Context) error {
	frames, err := c.checkpoint(ctx)
	if err != nil || frames < restartFrames {
		return err
	}
	// The connection first, as Begin takes it: the writers wait for the
	// turn, not for a connection.
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	done, err := c.writes.wait(ctx)
	if errors.Is(err, errLockedOut) {
		return nil // another process's writer: the next round tries again
	}
	if err != nil {
		return err
	}
	defer done()
	return restart(ctx, conn)
}

// checkpoint runs a PASSIVE checkpoint and returns the WAL's length in
// frames.
func (c *checkpointer) checkpoint(ctx context.Context) (frames int, err error) {
	var busy, copied int
	err = c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
	return frames, err
}

// restart runs a RESTART checkpoint on conn, waiting restartWait at most
// for the WAL's readers and writers (the DSN's busy timeout, 10 s, is for
// the layer's writers). When they outlast it, SQLite says so in the first
// column, which is no error: the next round tries again.
func restart(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", restartWait.Milliseconds())); err != nil {
		return err
	}
	var busy, frames, copied int
	return conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(RESTART)").Scan(&busy, &frames, &copied)
}

// close stops the rounds and closes the connection; c may be nil.
func (c *checkpointer) close() error {
	if c == nil {
		return nil
	}
	c.stop()
	<-c.done
	return c.db.Close()
}
