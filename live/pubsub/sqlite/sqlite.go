// Package sqlite is a live.PubSub through a table of the SQLite database
// that the processes of one machine share: the running app and the CLI
// commands started beside it (`accounts tokens revoke` closes the app's
// sockets at once). Publish inserts a row; each subscriber polls for rows
// newer than the last it saw, one indexed query per interval.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/live/pubsub/internal/transport"
)

// Defaults of the transport's options.
const (
	DefaultTable    = "kiln_live_messages"
	DefaultInterval = 200 * time.Millisecond
	// keep is how long a message stays in the table: far longer than any
	// poll interval, so that no subscriber misses one, yet a bounded table.
	keep = time.Minute
)

var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// ErrClosed is what Publish and Subscribe return once the transport is
// closed.
var ErrClosed = errors.New("kiln/pubsub/sqlite: the transport is closed")

// PubSub is the SQLite transport. Make it with New; it is safe for
// concurrent use. It is a prometheus.Collector: register it to export its
// metrics, kiln_pubsub_* with transport="sqlite" (see
// docs/operations.md). It is connected while every subscriber's last poll
// succeeded; a successful poll after failed ones counts as a
// reconnection.
type PubSub struct {
	db       *sql.DB
	table    string
	interval time.Duration
	logger   *slog.Logger
	metrics  *transport.Metrics

	mu      sync.Mutex
	closed  bool
	closing chan struct{}  // closed by Close: the pollers stop
	pollers sync.WaitGroup // one per Subscribe
}

var (
	_ live.Prompter        = (*PubSub)(nil)
	_ live.PayloadLimiter  = (*PubSub)(nil)
	_ prometheus.Collector = (*PubSub)(nil)
)

// Option configures the transport.
type Option func(*PubSub)

// WithTable names the table. Default: DefaultTable.
func WithTable(name string) Option { return func(p *PubSub) { p.table = name } }

// WithInterval sets how often a subscriber looks for new messages: the
// most a disconnect from another process waits. Default: DefaultInterval.
func WithInterval(d time.Duration) Option { return func(p *PubSub) { p.interval = d } }

// WithLogger sets the logger. Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(p *PubSub) { p.logger = l } }

// New makes the transport on db, a SQLite database (a file: an in-memory
// database is seen by one process only), creating its table.
func New(ctx context.Context, db *sql.DB, opts ...Option) (*PubSub, error) {
	p := &PubSub{db: db, table: DefaultTable, interval: DefaultInterval, logger: slog.Default(), metrics: transport.NewMetrics("sqlite"), closing: make(chan struct{})}
	for _, o := range opts {
		o(p)
	}
	if !tableName.MatchString(p.table) {
		return nil, fmt.Errorf("kiln/pubsub/sqlite: table name %q: want lower-case letters, digits and underscores", p.table)
	}
	if p.interval <= 0 {
		return nil, fmt.Errorf("kiln/pubsub/sqlite: interval %v: want a positive duration", p.interval)
	}
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS "`+p.table+`" (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		payload TEXT NOT NULL,
		created_at INTEGER NOT NULL)`)
	if err != nil {
		return nil, fmt.Errorf("kiln/pubsub/sqlite: create table: %w", err)
	}
	return p, nil
}

// Close implements io.Closer: the subscribers stop polling, and Close
// returns once none will use the database or call its fn again; Publish
// and Subscribe return ErrClosed from then on. The database is the
// caller's: it stays open. Close returns nil, a second call included. A
// subscriber's fn must not call it.
func (p *PubSub) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.closing)
	p.mu.Unlock()
	p.pollers.Wait()
	p.metrics.Closed()
	return nil
}

// Describe implements prometheus.Collector.
func (p *PubSub) Describe(ch chan<- *prometheus.Desc) { p.metrics.Describe(ch) }

// Collect implements prometheus.Collector.
func (p *PubSub) Collect(ch chan<- prometheus.Metric) { p.metrics.Collect(ch) }

// Prompt implements live.Prompter: the transport is not prompt. A message
// of another process arrives at the next poll, so the token store may not
// trust, between two polls, that a token it read as good still is.
func (p *PubSub) Prompt() bool { return false }

// PayloadLimit implements live.PayloadLimiter: a row has no size limit
// that matters (0).
func (p *PubSub) PayloadLimit() int { return 0 }

// Publish implements live.PubSub: one row, seen by every subscriber of
// every process within its interval.
func (p *PubSub) Publish(ctx context.Context, msg live.Message) error {
	err := p.publish(ctx, msg)
	p.metrics.Published(msg.Kind, err)
	return err
}

func (p *PubSub) publish(ctx context.Context, msg live.Message) error {
	select {
	case <-p.closing:
		return ErrClosed
	default:
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	_, err = p.db.ExecContext(ctx, `INSERT INTO "`+p.table+`" (payload, created_at) VALUES (?, ?)`, string(b), time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("kiln/pubsub/sqlite: publish: %w", err)
	}
	return nil
}

// Subscribe implements live.PubSub: fn gets every message published after
// it returns, in order, until ctx is done.
func (p *PubSub) Subscribe(ctx context.Context, fn func(live.Message)) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.pollers.Add(1)
	p.mu.Unlock()
	var last int64
	if err := p.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM "`+p.table+`"`).Scan(&last); err != nil {
		p.pollers.Done()
		return fmt.Errorf("kiln/pubsub/sqlite: subscribe: %w", err)
	}
	go func() {
		defer p.pollers.Done()
		link := p.metrics.Link()
		defer link.End()
		t := time.NewTicker(p.interval)
		defer t.Stop()
		polls := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-p.closing:
				return
			case <-t.C:
			}
			next, err := p.poll(ctx, last, fn)
			if err != nil {
				if ctx.Err() == nil {
					link.Lost()
					p.logger.WarnContext(ctx, "kiln/pubsub/sqlite: poll failed; retrying", "err", err)
				}
				continue
			}
			link.Restored()
			last = next
			if polls++; polls%int(keep/p.interval+1) == 0 {
				p.expunge(ctx)
			}
		}
	}()
	return nil
}

// poll hands fn the messages after last and returns the last id seen.
func (p *PubSub) poll(ctx context.Context, last int64, fn func(live.Message)) (int64, error) {
	rows, err := p.db.QueryContext(ctx, `SELECT id, payload FROM "`+p.table+`" WHERE id > ? ORDER BY id LIMIT 1000`, last)
	if err != nil {
		return last, err
	}
	type row struct {
		id      int64
		payload string
	}
	var got []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.payload); err != nil {
			rows.Close()
			return last, err
		}
		got = append(got, r)
	}
	if err := rows.Close(); err != nil {
		return last, err
	}
	// The rows are read and the statement closed before fn runs: fn may
	// publish, which writes to the same table.
	for _, r := range got {
		last = r.id
		var msg live.Message
		if err := json.Unmarshal([]byte(r.payload), &msg); err != nil {
			p.logger.WarnContext(ctx, "kiln/pubsub/sqlite: a message that is not JSON; ignored", "id", r.id)
			continue
		}
		p.metrics.Received(msg.Kind)
		fn(msg)
	}
	return last, nil
}

// expunge removes the messages older than keep.
func (p *PubSub) expunge(ctx context.Context) {
	cutoff := time.Now().Add(-keep).UnixMilli()
	if _, err := p.db.ExecContext(ctx, `DELETE FROM "`+p.table+`" WHERE created_at < ?`, cutoff); err != nil && ctx.Err() == nil {
		p.logger.WarnContext(ctx, "kiln/pubsub/sqlite: removing old messages failed", "err", err)
	}
}
