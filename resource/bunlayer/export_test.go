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

// CheckpointRestarts is the number of checkpoint rounds that took the
// write queue's turn; -1 when the layer has no background checkpoints.
func CheckpointRestarts(l *Layer) int {
	if l.checkpoints == nil {
		return -1
	}
	return int(l.checkpoints.restarts.Load())
}
