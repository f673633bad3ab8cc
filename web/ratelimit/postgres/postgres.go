// Package postgres is a ratelimit.Store in a PostgreSQL table, shared by
// every node using the database.
//
// Each call is one statement, atomic per key under PostgreSQL's row lock,
// timed by the database's clock (so the nodes' clocks need not agree).
// The table is UNLOGGED: it is not written to the WAL, so it is fast, but
// it is emptied after a crash and is not copied to replicas; limits start
// afresh then.
package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/kiln-go/kiln/web/ratelimit"
)

// DefaultTable is the table the store keeps its buckets in.
const DefaultTable = "kiln_rate_limits"

// expungeEvery is how many Takes a store makes between two Expunges.
const expungeEvery = 1024

// Store is the PostgreSQL store. Each row is a bucket, kept as the moment
// it will be full again (full_at) and whether its last Take was let
// through.
type Store struct {
	db    *sql.DB
	table string
	takes atomic.Uint64

	take, refund, expunge string
}

var _ ratelimit.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithTable sets the table's name, optionally schema-qualified
// ("auth.rate_limits"). Default: DefaultTable.
func WithTable(name string) Option { return func(s *Store) { s.table = name } }

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$`)

// New returns a store on db, a PostgreSQL database opened with the pgx
// driver (a bunlayer.Layer's is layer.DB().DB), creating its table if it
// does not exist.
func New(ctx context.Context, db *sql.DB, opts ...Option) (*Store, error) {
	s := &Store{db: db, table: DefaultTable}
	for _, o := range opts {
		o(s)
	}
	if !identifier.MatchString(s.table) {
		return nil, fmt.Errorf("kiln/ratelimit/postgres: table name %q: want lower-case letters, digits and underscores, optionally schema.table", s.table)
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`CREATE UNLOGGED TABLE IF NOT EXISTS %s (
	key     text PRIMARY KEY,
	full_at timestamptz NOT NULL,
	allowed boolean NOT NULL
)`, s.table)); err != nil {
		return nil, fmt.Errorf("kiln/ratelimit/postgres: create table %s: %w", s.table, err)
	}
	// $1 key, $2 a token's interval in microseconds, $3 the burst. A
	// Take is let through when the bucket, after it, would be full again
	// within burst intervals (the generic cell rate algorithm).
	const (
		interval = `($2::bigint * interval '1 microsecond')`
		window   = `($2::bigint * $3::int * interval '1 microsecond')`
		next     = `(GREATEST(b.full_at, now()) + ` + interval + `)`
		fits     = `(` + next + ` - now() <= ` + window + `)`
	)
	s.take = fmt.Sprintf(`INSERT INTO %s AS b (key, full_at, allowed) VALUES ($1, now() + %s, true)
ON CONFLICT (key) DO UPDATE SET
	allowed = %s,
	full_at = CASE WHEN %s THEN %s ELSE b.full_at END
RETURNING allowed, CASE WHEN allowed THEN 0 ELSE ceil(extract(epoch FROM full_at + %s - %s - now()) * 1000000)::bigint END`,
		s.table, interval, fits, fits, next, interval, window)
	s.refund = fmt.Sprintf(`UPDATE %s SET full_at = full_at - %s WHERE key = $1`, s.table, interval)
	s.expunge = fmt.Sprintf(`DELETE FROM %s WHERE full_at <= now()`, s.table)
	return s, nil
}

func micros(r ratelimit.Rule) int64 { return r.Interval().Microseconds() }

// Take implements ratelimit.Store. Every 1024th Take of a store also
// expunges the buckets that are full again, so the table holds about the
// buckets in use.
func (s *Store) Take(ctx context.Context, key string, rule ratelimit.Rule) (bool, time.Duration, error) {
	var ok bool
	var retry int64
	if err := s.db.QueryRowContext(ctx, s.take, key, micros(rule), rule.Burst).Scan(&ok, &retry); err != nil {
		return false, 0, fmt.Errorf("kiln/ratelimit/postgres: take: %w", err)
	}
	if s.takes.Add(1)%expungeEvery == 0 {
		// Housekeeping: a failure leaves rows that the next round deletes,
		// and is not this Take's.
		_, _ = s.Expunge(ctx)
	}
	if ok {
		return true, 0, nil
	}
	return false, max(time.Duration(retry)*time.Microsecond, time.Microsecond), nil
}

// Refund implements ratelimit.Store.
func (s *Store) Refund(ctx context.Context, key string, rule ratelimit.Rule) error {
	if _, err := s.db.ExecContext(ctx, s.refund, key, micros(rule)); err != nil {
		return fmt.Errorf("kiln/ratelimit/postgres: refund: %w", err)
	}
	return nil
}

// Expunge deletes the buckets that are full again, which are the same as
// no bucket, and returns how many.
func (s *Store) Expunge(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.expunge)
	if err != nil {
		return 0, fmt.Errorf("kiln/ratelimit/postgres: expunge: %w", err)
	}
	return res.RowsAffected()
}
