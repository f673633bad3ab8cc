package bunlayer

import (
	"context"
	"time"

	"github.com/kiln-go/kiln/resource"
)

// PGMigrationLock is the SQL of the key of the advisory lock that
// ApplyMigrations holds on PostgreSQL, for tests that hold it themselves.
const PGMigrationLock = pgMigrationLock

// ExecIn runs a statement in a transaction Begin returned.
func ExecIn(ctx context.Context, tx resource.Tx, query string) error {
	_, err := tx.(*txn).tx.ExecContext(ctx, query)
	return err
}

// WritersWaiting is the number of write transactions waiting for their
// turn on a SQLite file's layer.
func WritersWaiting(l *Layer) int { return int(l.writes.waiting.Load()) }

// WithCheckpointInterval sets how often a SQLite file's WAL is
// checkpointed in the background.
func WithCheckpointInterval(d time.Duration) OpenOption {
	return func(c *openConfig) { c.checkpointInterval = d }
}

// WithoutCheckpointBackstop leaves a SQLite file's WAL to the background
// checkpoints alone (wal_autocheckpoint(0)).
func WithoutCheckpointBackstop() OpenOption { return func(c *openConfig) { c.noBackstop = true } }

// CheckpointsInBackground reports whether the layer checkpoints its SQLite
// file's WAL in the background.
func CheckpointsInBackground(l *Layer) bool { return l.checkpoints != nil }
