package bunlayer

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// writeQueue lines up a SQLite layer's write transactions in the process,
// in arrival order, before they ask SQLite for the write lock.
//
// SQLite has one write lock per database, and a connection that finds it
// taken does not queue for it: its busy handler sleeps and retries, with
// sleeps growing to 100 ms, until the busy timeout is spent. Writers that
// wait that way are served in no order, and the lock stays idle between a
// commit and the next poll. Under a burst (many sign-ins issuing tokens at
// once) an unlucky writer loses every poll until its timeout is spent, and
// its request fails with "database is locked" though the lock was never
// held for long. Lined up here instead, the process's writers take the
// lock one after the other, each waiting as long as the ones before it
// take (or until its context ends), and SQLite's busy timeout bounds only
// the wait for other processes' writers (the CLI's).
type writeQueue struct {
	// turn holds a value while a write transaction of the process is
	// beginning or open.
	turn chan struct{}
	// lockedOut counts the BEGINs that waited out the busy timeout: another
	// process held the lock all along. The writers that were waiting their
	// turn meanwhile fail with them rather than wait out the busy timeout
	// one after the other.
	lockedOut atomic.Uint64
	// waiting counts the transactions waiting for their turn.
	waiting atomic.Int64
}

// errLockedOut is the error of a writer whose turn came after the writer
// before it waited out the busy timeout.
var errLockedOut = errors.New("kiln/bunlayer: database is locked: another process held the write lock past the busy timeout while this transaction waited its turn")

// newWriteQueue returns the queue of a SQLite file opened with dsn, or nil
// when its transactions are not writes from BEGIN on (_txlock=deferred):
// those take the lock at their first write, and a queue would serialise
// transactions that only read.
func newWriteQueue(dsn string) *writeQueue {
	_, query, _ := strings.Cut(dsn, "?")
	q, _ := url.ParseQuery(query)
	switch strings.ToLower(q.Get("_txlock")) {
	case "immediate", "exclusive":
		return &writeQueue{turn: make(chan struct{}, 1)}
	}
	return nil
}

// wait waits for the transaction's turn, until ctx ends, and returns the
// function that passes the turn on (it may be called more than once).
func (q *writeQueue) wait(ctx context.Context) (done func(), err error) {
	seen := q.lockedOut.Load()
	q.waiting.Add(1)
	select {
	case q.turn <- struct{}{}:
		q.waiting.Add(-1)
	case <-ctx.Done():
		q.waiting.Add(-1)
		return nil, fmt.Errorf("kiln/bunlayer: waiting for this process's other write transactions: %w", ctx.Err())
	}
	done = sync.OnceFunc(func() { <-q.turn })
	if q.lockedOut.Load() != seen {
		done()
		return nil, errLockedOut
	}
	return done, nil
}

// began records how BEGIN went: a "database is locked" means the busy
// timeout ran out on another process's lock.
func (q *writeQueue) began(err error) {
	if err != nil && isBusy(err) {
		q.lockedOut.Add(1)
	}
}

// isBusy reports whether err is SQLite's "database is locked".
func isBusy(err error) bool {
	return strings.Contains(err.Error(), "SQLITE_BUSY") || strings.Contains(err.Error(), "database is locked")
}
