// Package bunlayer is kiln's DataLayer on github.com/uptrace/bun, for
// SQLite (embedded, through driver/sqliteshim: pure Go, no cgo needed) and
// PostgreSQL (through pgx).
//
//	layer, err := bunlayer.Open(ctx, "file:accounts.db")            // SQLite
//	layer, err := bunlayer.Open(ctx, "postgres://localhost/accounts") // PostgreSQL
//	accounts, err := resource.NewDomain("accounts", Users).Build(ctx, layer)
//	err = layer.Migrate(ctx) // tables, unique indexes and foreign keys
//
// Migrate creates what is missing and alters nothing. Versioned migrations
// follow the declarations as they change: GenerateMigrations writes the
// difference between them and the snapshot kept in a migrations folder as
// a SQL file per dialect (Diff), and ApplyMigrations applies the files a
// database has not applied, with github.com/uptrace/bun/migrate, under the
// database's lock.
package bunlayer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"
	"github.com/uptrace/bun/schema"

	"github.com/kiln-go/kiln/resource"
)

// Layer is a resource.DataLayer on a *bun.DB. It is safe for concurrent use.
type Layer struct {
	db *bun.DB
	// writes lines up the write transactions of a SQLite file; nil for
	// other databases.
	writes *writeQueue
	// checkpoints copies a SQLite file's WAL into it in the background;
	// nil when SQLite checkpoints in its commits (see Open).
	checkpoints *checkpointer

	mu      sync.RWMutex
	schemas []*resource.Schema

	// applyMu serializes ApplyMigrations in this process; the database's
	// lock serializes it between processes.
	applyMu sync.Mutex
}

var _ resource.DataLayer = (*Layer)(nil)

// New returns a Layer on db, whose dialect must be SQLite or PostgreSQL.
// A SQLite database must enforce foreign keys, which SQLite does only when
// each connection asks: open it with _pragma=foreign_keys(1) in the DSN, as
// Open does.
func New(db *bun.DB) *Layer { return &Layer{db: db} }

// OpenOption adjusts Open.
type OpenOption func(*openConfig)

type openConfig struct {
	maxConns           int
	checkpointInterval time.Duration
	noBackstop         bool // the background checkpoints alone (tests)
}

// MinMaxConns is the smallest bound WithMaxConns takes: ApplyMigrations
// holds its lock on one connection while it migrates on another.
const MinMaxConns = 2

// WithMaxConns bounds the PostgreSQL connection pool at n connections: a
// query or transaction that finds them all in use waits for one (until its
// context ends) instead of opening another. n is at least MinMaxConns;
// 0 keeps DefaultMaxConns. The pool keeps its connections open between
// bursts, up to n. It does not apply to SQLite, whose connections are the
// process's own (an in-memory database has one).
func WithMaxConns(n int) OpenOption { return func(c *openConfig) { c.maxConns = n } }

// DefaultMaxConns is the bound of a PostgreSQL pool that Open is not given
// one: twice GOMAXPROCS, at least 4 and at most 16, read when Open is
// called. A node's queries are short and wait on the network more than on
// its cores, so twice its cores keeps them busy; with 16 at most, four
// nodes, their pub/sub connections and a command run beside them stay
// under PostgreSQL's default max_connections of 100.
func DefaultMaxConns() int { return min(max(2*runtime.GOMAXPROCS(0), 4), 16) }

// Open opens a database by URL and returns a Layer on it:
//
//   - "postgres://…" or "postgresql://…": PostgreSQL through pgx, with the
//     simple query protocol unless the URL sets default_query_exec_mode,
//     on a pool of at most DefaultMaxConns connections (see WithMaxConns);
//   - "sqlite::memory:" or ":memory:": a private in-memory SQLite database;
//     both SQLite kinds enforce foreign keys on every connection;
//   - "file:path.db", "sqlite:path.db" or a plain path: a SQLite file, in WAL
//     mode with synchronous=NORMAL (as Rails ships for production SQLite:
//     a commit survives the app crashing or being killed; a power loss or
//     an OS crash may undo the last commits (with background checkpoints,
//     about the last second's: the WAL is synced at each), and never
//     corrupts the file; add ?_pragma=synchronous(FULL) to the URL to make
//     every commit wait for the disk), its write transactions taken at
//     BEGIN so that concurrent writers wait for each other instead of
//     failing mid-transaction. Its WAL is checkpointed (copied into the
//     database file, both synced) every second on a goroutine of the
//     layer's, not in the commit that takes it past 1,000 pages as SQLite
//     does by default: that commit, and the writers behind it, would wait
//     a few milliseconds. SQLite's own checkpoint stays as a backstop at
//     4,000 pages; set wal_autocheckpoint in the URL to have SQLite's
//     alone, as _txlock=deferred, another journal mode or mode=ro also do.
//     The WAL file is cut back to 16 MiB when it starts over
//     (journal_size_limit). Temporary files are kept in memory
//     (temp_store=MEMORY), the statement journal among them, in small
//     pieces: SQLite writes one for savepoints, which nested actions take,
//     and with the default temp_store keeps it in a 64 KiB buffer that the
//     pure-Go driver maps and unmaps each time. A sort no index serves,
//     CREATE INDEX, a temporary table or VACUUM then holds its temporary
//     data in memory, outside the Go heap, as much as the data it works on;
//     _pragma=temp_store(FILE) gives SQLite's default. The layer's own write
//     transactions take the lock in turn, in the order they began, each
//     waiting as long as the ones before it take or until its context
//     ends; a 10 s busy timeout bounds the wait for another process's
//     writer (the CLI's, another layer's), after which the transaction
//     fails with "database is locked", and so do the layer's transactions
//     that waited their turn meanwhile. A pragma or _txlock in the URL's
//     query replaces kiln's; with _txlock=deferred, transactions are not
//     lined up (they take the lock at their first write, and SQLite's busy
//     handler does not queue writers fairly).
func Open(ctx context.Context, rawURL string, opts ...OpenOption) (*Layer, error) {
	var o openConfig
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxConns != 0 && o.maxConns < MinMaxConns {
		return nil, fmt.Errorf("kiln/bunlayer: WithMaxConns(%d): want at least %d connections (ApplyMigrations holds its lock on one while it migrates on another), or 0 for the default", o.maxConns, MinMaxConns)
	}
	if o.maxConns == 0 {
		o.maxConns = DefaultMaxConns()
	}
	if o.checkpointInterval == 0 {
		o.checkpointInterval = checkpointInterval
	}
	var db *bun.DB
	var writes *writeQueue
	checkpoints := false // in the background, on dsn
	var dsn string
	switch {
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		u, err := url.Parse(rawURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("kiln/bunlayer: bad PostgreSQL URL: want postgres://user@host:port/database")
		}
		// bun puts the arguments into the query text, so every query is new
		// to the server: pgx's default (prepare and cache each statement)
		// costs an extra round trip per query and churns the cache. The simple
		// protocol sends the text once, as bun's own driver does.
		if q := u.Query(); !q.Has("default_query_exec_mode") {
			q.Set("default_query_exec_mode", "simple_protocol")
			u.RawQuery = q.Encode()
			rawURL = u.String()
		}
		sqldb, err := sql.Open("pgx", rawURL)
		if err != nil {
			return nil, fmt.Errorf("kiln/bunlayer: open PostgreSQL: %w", err)
		}
		// Every connection is one of the server's max_connections, which
		// all the nodes share: a burst waits for the pool's instead of
		// opening more. The idle ones stay open (database/sql keeps 2),
		// so that bursts do not connect anew each time.
		sqldb.SetMaxOpenConns(o.maxConns)
		sqldb.SetMaxIdleConns(o.maxConns)
		db = bun.NewDB(sqldb, pgdialect.New())
	default:
		var memory bool
		dsn, memory = sqliteDSN(rawURL)
		if !memory {
			if err := prepareFile(dsn); err != nil {
				return nil, err
			}
			writes = newWriteQueue(dsn)
			if checkpoints = backgroundCheckpoints(dsn, writes); checkpoints {
				dsn = withBackstop(dsn, o.noBackstop)
			}
		}
		sqldb, err := sql.Open(sqliteshim.ShimName, dsn)
		if err != nil {
			return nil, fmt.Errorf("kiln/bunlayer: open SQLite: %w", err)
		}
		if memory {
			// One connection: every connection to ":memory:" is a new database.
			sqldb.SetMaxOpenConns(1)
		}
		sqldb.SetConnMaxLifetime(0)
		sqldb.SetMaxIdleConns(4)
		db = bun.NewDB(sqldb, sqlitedialect.New())
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		if db.Dialect().Name() == dialect.SQLite {
			return nil, fmt.Errorf("kiln/bunlayer: open SQLite database %s: %w", sqliteName(rawURL), err)
		}
		return nil, fmt.Errorf("kiln/bunlayer: connect: %w", err)
	}
	l := New(db)
	l.writes = writes
	if checkpoints {
		l.checkpoints = startCheckpoints(dsn, sqliteName(rawURL), writes, o.checkpointInterval)
	}
	return l, nil
}

// backgroundCheckpoints reports whether a layer on the SQLite file of dsn
// checkpoints its WAL in the background: when its writers are lined up
// (the second checkpoint of a round takes their turn), it writes, it is
// in WAL mode, and the URL does not set wal_autocheckpoint itself.
func backgroundCheckpoints(dsn string, writes *writeQueue) bool {
	_, query, _ := strings.Cut(dsn, "?")
	q, _ := url.ParseQuery(query)
	wal := true
	for _, p := range q["_pragma"] {
		if name, value := pragma(p); name == "journal_mode" {
			wal = strings.EqualFold(value, "wal")
		}
	}
	// givenIn matches wal_autocheckpoint with any value.
	return writes != nil && wal && q.Get("mode") != "ro" && !givenIn(query, "_pragma=wal_autocheckpoint(0)")
}

// withBackstop moves SQLite's automatic checkpoint in dsn to
// backstopFrames, or turns it off.
func withBackstop(dsn string, off bool) string {
	frames := backstopFrames
	if off {
		frames = 0
	}
	return dsn + fmt.Sprintf("&_pragma=wal_autocheckpoint(%d)", frames)
}

// sqliteDSN turns a kiln SQLite URL into a driver DSN.
func sqliteDSN(raw string) (dsn string, memory bool) {
	path := strings.TrimPrefix(raw, "sqlite:")
	path = strings.TrimPrefix(path, "file:")
	if path == "" || path == ":memory:" || strings.HasPrefix(path, ":memory:?") {
		return "file::memory:?_pragma=foreign_keys(1)", true
	}
	query := ""
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, query = path[:i], path[i+1:]
	}
	var params []string
	for _, p := range []string{"_pragma=busy_timeout(10000)", "_pragma=journal_mode(WAL)", "_pragma=synchronous(NORMAL)", fmt.Sprintf("_pragma=journal_size_limit(%d)", walSizeLimit), "_pragma=foreign_keys(1)", "_pragma=temp_store(MEMORY)", "_txlock=immediate"} {
		if !givenIn(query, p) {
			params = append(params, p)
		}
	}
	if query != "" {
		params = append(params, query)
	}
	return "file:" + path + "?" + strings.Join(params, "&"), false
}

// givenIn reports whether a DSN query sets the parameter of p itself: the
// same pragma (_pragma=name(…)) or the same key (_txlock=…). The URL's own
// setting is then the only one: the driver would apply kiln's too.
func givenIn(query, p string) bool {
	key, value, _ := strings.Cut(p, "=")
	want, _ := pragma(value)
	q, _ := url.ParseQuery(query) // the well-formed parameters, as the driver reads them
	for k, vs := range q {
		if !strings.EqualFold(k, key) {
			continue
		}
		if key != "_pragma" {
			return true
		}
		for _, v := range vs {
			if name, _ := pragma(v); name == want {
				return true
			}
		}
	}
	return false
}

// pragma splits a _pragma parameter, "name(value)" or "name=value", into
// its name, in lower case, and its value.
func pragma(p string) (name, value string) {
	i := strings.IndexAny(p, "(=")
	if i < 0 {
		return strings.ToLower(strings.TrimSpace(p)), ""
	}
	name, value = strings.ToLower(strings.TrimSpace(p[:i])), p[i+1:]
	if p[i] == '(' {
		value = strings.TrimSuffix(value, ")")
	}
	return name, strings.TrimSpace(value)
}

// prepareFile creates the file of a SQLite DSN, when it does not exist,
// readable and writable by its owner only (SQLite would make it 0644).
// SQLite gives its -wal, -shm and -journal files the database file's mode.
// A read-only or in-memory DSN creates nothing. It then checks that the
// file opens as the DSN asks, so that a path SQLite cannot open is
// reported with its name and the reason (SQLite says only "unable to open
// database file").
func prepareFile(dsn string) error {
	path, query, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	q, _ := url.ParseQuery(query)
	if q.Get("mode") == "memory" {
		return nil
	}
	path, err := url.PathUnescape(path) // SQLite decodes a URI filename's %XX
	if err != nil {
		return nil // SQLite reports the bad name
	}
	cannot := func(reason string) error {
		return fmt.Errorf("kiln/bunlayer: cannot open SQLite database %s: %s", path, reason)
	}
	flag := os.O_RDWR
	if q.Get("mode") == "ro" {
		flag = os.O_RDONLY
	} else {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		switch {
		case err == nil:
			if err := f.Close(); err != nil {
				return cannot(err.Error())
			}
		case errors.Is(err, fs.ErrExist):
		case errors.Is(err, fs.ErrNotExist):
			return cannot("its folder " + filepath.Dir(path) + " does not exist")
		case errors.Is(err, syscall.ENOTDIR):
			return cannot("a part of its folder path " + filepath.Dir(path) + " is a file, not a folder")
		default:
			return cannot(reason(err))
		}
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return cannot("it is a folder, not a file")
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return cannot("it does not exist")
		}
		return cannot(reason(err))
	}
	return f.Close()
}

// reason is the cause of a file error, without the path it names.
func reason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// SQLiteFile is the file a SQLite URL names (sqlite:path, file:path or
// a bare path, without its query); ok is false for a PostgreSQL URL and
// for an in-memory database.
func SQLiteFile(rawURL string) (path string, ok bool) {
	if strings.HasPrefix(rawURL, "postgres://") || strings.HasPrefix(rawURL, "postgresql://") {
		return "", false
	}
	if _, memory := sqliteDSN(rawURL); memory {
		return "", false
	}
	path = strings.TrimPrefix(strings.TrimPrefix(rawURL, "sqlite:"), "file:")
	path, _, _ = strings.Cut(path, "?")
	return path, true
}

// sqliteName names a SQLite database in errors.
func sqliteName(rawURL string) string {
	if path, ok := SQLiteFile(rawURL); ok {
		return path
	}
	return ":memory:"
}

// DB returns the underlying *bun.DB.
func (l *Layer) DB() *bun.DB { return l.db }

// Dialect is the database's dialect name: "sqlite" or "pg".
func (l *Layer) Dialect() string { return l.db.Dialect().Name().String() }

// Close stops the background checkpoints of a SQLite file and closes the
// database.
func (l *Layer) Close() error {
	return errors.Join(l.checkpoints.close(), l.db.Close())
}

// Ping checks that the database answers.
func (l *Layer) Ping(ctx context.Context) error { return l.db.PingContext(ctx) }

// Register implements resource.DataLayer: it checks that bun maps the
// record type to the same columns as kiln.
func (l *Layer) Register(s *resource.Schema) error {
	switch l.db.Dialect().Name() {
	case dialect.SQLite, dialect.PG:
	default:
		return fmt.Errorf("kiln/bunlayer: dialect %s is not supported; use SQLite or PostgreSQL", l.db.Dialect().Name())
	}
	t := l.db.Table(s.Type)
	for _, a := range s.Attributes {
		if _, ok := t.FieldMap[a.Name]; !ok {
			return fmt.Errorf("bun does not map attribute %q of %s; check its bun tag", a.Name, s.Type)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	others := slices.DeleteFunc(slices.Clone(l.schemas), func(have *resource.Schema) bool { return have.Table == s.Table })
	if err := checkNames(s, others); err != nil {
		return err
	}
	l.schemas = append(others, s)
	return nil
}

// relation is a table or index the layer creates, by name, with what it
// is for.
type relation struct{ name, of string }

// relations lists the table and indexes the layer creates for s, and the
// names PostgreSQL gives the primary key's index and sequences.
func relations(s *resource.Schema) []relation {
	rs := []relation{{s.Table, "the table of " + s.Resource}, {s.Table + "_pkey", "the primary key index of " + s.Resource}}
	for _, a := range s.PrimaryKey {
		rs = append(rs, relation{s.Table + "_" + a.Name + "_seq", fmt.Sprintf("the sequence PostgreSQL would give %s of %s", a.Name, s.Resource)})
	}
	for _, ix := range indexesOf(s) {
		rs = append(rs, relation{ix.Name, ix.of})
	}
	return rs
}

// pgNameLen is how many bytes of a name PostgreSQL keeps.
const pgNameLen = 63

// sameName is how a database compares names: as PostgreSQL keeps them
// (pgName), and without case, as SQLite does.
func sameName(a, b string) bool { return strings.EqualFold(pgName(a), pgName(b)) }

// pgName is name as PostgreSQL keeps it: its first 63 bytes, cut where a
// character begins.
func pgName(name string) string {
	if len(name) <= pgNameLen {
		return name
	}
	i := pgNameLen
	for i > 0 && !utf8.RuneStart(name[i]) {
		i--
	}
	return name[:i]
}

// checkNames refuses a table or index of s whose name is, to PostgreSQL
// or SQLite (see sameName), another's: of s, or of the schemas
// registered before it. Tables and indexes share one namespace in a
// PostgreSQL schema and in a SQLite database; the second CREATE … IF NOT
// EXISTS would create nothing.
func checkNames(s *resource.Schema, registered []*resource.Schema) error {
	var others []relation
	for _, have := range registered {
		others = append(others, relations(have)...)
	}
	var errs []error
	mine := relations(s)
	for i, r := range mine {
		for _, o := range append(slices.Clone(mine[:i]), others...) {
			if !sameName(r.name, o.name) {
				continue
			}
			same := fmt.Sprintf("is named %q, as %s is", r.name, o.of)
			switch {
			case pgName(r.name) != pgName(o.name):
				same = fmt.Sprintf("is named %q and %s %q, the same to SQLite, which ignores case", r.name, o.of, o.name)
			case r.name != o.name:
				same = fmt.Sprintf("is named %q and %s %q: PostgreSQL keeps the first %d bytes of a name, the same", r.name, o.of, o.name, pgNameLen)
			}
			errs = append(errs, fmt.Errorf("%s %s; give one its own name (resource.Index{Name: …}, an identity's Name, a relationship's name)", r.of, same))
			break
		}
	}
	return errors.Join(errs...)
}

// Begin implements resource.DataLayer.
// On a SQLite file, the transaction first waits for the process's other
// write transactions to end, in arrival order (see writeQueue).
func (l *Layer) Begin(ctx context.Context) (resource.Tx, error) {
	if l.writes == nil {
		tx, err := l.db.BeginTx(ctx, nil)
		if err != nil {
			return nil, err
		}
		return &txn{layer: l, idb: tx, tx: tx, done: func() {}}, nil
	}
	// The connection first: opening one is slow, and must not hold up the
	// transactions behind this one.
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	turn, err := l.writes.wait(ctx)
	if err != nil {
		conn.Close()
		return nil, err
	}
	tx, err := conn.BeginTx(ctx, nil)
	l.writes.began(err)
	if err != nil {
		turn()
		conn.Close()
		return nil, err
	}
	return &txn{layer: l, idb: tx, tx: tx, done: sync.OnceFunc(func() {
		turn()
		conn.Close() // back to the pool
	})}, nil
}

// Select implements resource.Querier outside a transaction.
func (l *Layer) Select(ctx context.Context, s *resource.Schema, q *resource.Query, dest any) error {
	return (&txn{layer: l, idb: l.db}).Select(ctx, s, q, dest)
}

// Count implements resource.Querier outside a transaction.
func (l *Layer) Count(ctx context.Context, s *resource.Schema, f resource.Filter) (int, error) {
	return (&txn{layer: l, idb: l.db}).Count(ctx, s, f)
}

// Migrate creates every registered table and its indexes, when they do
// not exist (an index is created on a table that exists too): one unique
// index per identity, named <table>_<identity>_idx, and one per declared
// index (resource.Index), named as Schema.IndexName says. A
// `bun:",unique"` column is an identity (resource.Identity), so its index
// is the identity's: the table itself has no UNIQUE constraint. A table's
// foreign keys (its belongs-to relationships) are created with it, after
// the tables they reference, with an index on each key attribute that no
// other index starts with.
func (l *Layer) Migrate(ctx context.Context) error {
	stmts, err := l.migration()
	if err != nil {
		return err
	}
	return l.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		for _, q := range stmts {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("kiln/bunlayer: migrate: %w", err)
			}
		}
		return nil
	})
}

// MigrationSQL returns the statements Migrate runs, for a migration file.
func (l *Layer) MigrationSQL() (string, error) {
	stmts, err := l.migration()
	if err != nil {
		return "", err
	}
	return strings.Join(stmts, ";\n") + ";\n", nil
}

func (l *Layer) migration() ([]string, error) {
	l.mu.RLock()
	schemas := slices.Clone(l.schemas)
	l.mu.RUnlock()
	schemas, err := inDependencyOrder(schemas)
	if err != nil {
		return nil, err
	}
	ddl := l.ddl()
	var stmts []string
	for _, s := range schemas {
		// The identities' indexes below replace the UNIQUE constraints
		// bun would add for `bun:",unique"` columns.
		ddl.Table(s.Type).Unique = nil
		model := reflect.New(s.Type).Interface()
		q := ddl.NewCreateTable().Model(model).ModelTableExpr("?", bun.Ident(s.Table)).IfNotExists()
		q = withForeignKeys(q, s)
		stmts = append(stmts, q.String())
		for _, ix := range indexesOf(s) {
			stmts = append(stmts, createIndex(s.Table, ix.Index))
		}
	}
	return stmts, nil
}

// ddl returns a *bun.DB on the layer's database whose dialect, and so
// whose table models, are its own: migration adjusts them without
// touching the models bun keeps for the layer's queries (or for the
// owner of a *bun.DB given to New). The dialect has the layer's dialect's
// features.
func (l *Layer) ddl() *bun.DB {
	var d schema.Dialect
	switch have := l.db.Dialect(); have.Name() {
	case dialect.PG:
		d = pgdialect.New(pgdialect.WithoutFeature(pgdialect.New().Features() &^ have.Features()))
	default:
		d = sqlitedialect.New(sqlitedialect.WithoutFeature(sqlitedialect.New().Features() &^ have.Features()))
	}
	return bun.NewDB(l.db.DB, d)
}

// txn is a transaction (or, for reads outside one, the database).
type txn struct {
	layer *Layer
	idb   bun.IDB
	tx    bun.Tx
	// done passes the write queue's turn on; nil outside a transaction.
	done func()
}

var _ resource.Savepointer = (*txn)(nil)

// Savepoint implements resource.Savepointer.
func (t *txn) Savepoint(ctx context.Context, name string) error {
	_, err := t.tx.ExecContext(ctx, "SAVEPOINT "+name)
	return err
}

// RollbackTo implements resource.Savepointer.
func (t *txn) RollbackTo(ctx context.Context, name string) error {
	_, err := t.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+name)
	return err
}

// Release implements resource.Savepointer.
func (t *txn) Release(ctx context.Context, name string) error {
	_, err := t.tx.ExecContext(ctx, "RELEASE SAVEPOINT "+name)
	return err
}

func (t *txn) Commit() error {
	defer t.done()
	return t.tx.Commit()
}

func (t *txn) Rollback() error {
	defer t.done()
	return t.tx.Rollback()
}

func (t *txn) table(s *resource.Schema) (string, []any) {
	return "? AS ?TableAlias", []any{bun.Ident(s.Table)}
}

func (t *txn) Select(ctx context.Context, s *resource.Schema, q *resource.Query, dest any) error {
	expr, args := t.table(s)
	sq := t.idb.NewSelect().Model(dest).ModelTableExpr(expr, args...)
	if q.Filter != nil {
		where, wargs, err := whereSQL(s, q.Filter)
		if err != nil {
			return err
		}
		sq = sq.Where(where, wargs...)
	}
	for _, o := range q.Sort {
		order, oargs, err := t.orderSQL(s, o)
		if err != nil {
			return err
		}
		sq = sq.OrderExpr(order, oargs...)
	}
	if q.Limit > 0 {
		sq = sq.Limit(int64(q.Limit))
	}
	if q.Offset > 0 {
		sq = sq.Offset(int64(q.Offset))
		if q.Limit <= 0 && t.layer.db.Dialect().Name() == dialect.SQLite {
			// SQLite has no OFFSET without LIMIT.
			sq = sq.Limit(math.MaxInt64)
		}
	}
	if q.Lock && t.layer.db.Dialect().Name() == dialect.PG {
		sq = sq.For("UPDATE")
	}
	if err := sq.Scan(ctx); err != nil {
		return err
	}
	inUTC(s, dest)
	return nil
}

// Count implements resource.Querier.
func (t *txn) Count(ctx context.Context, s *resource.Schema, f resource.Filter) (int, error) {
	expr, args := t.table(s)
	cq := t.idb.NewSelect().Model(reflect.New(s.Type).Interface()).ModelTableExpr(expr, args...)
	if f != nil {
		where, wargs, err := whereSQL(s, f)
		if err != nil {
			return 0, err
		}
		cq = cq.Where(where, wargs...)
	}
	n, err := cq.Count(ctx)
	return int(n), err
}

func (t *txn) Insert(ctx context.Context, s *resource.Schema, rec any, opts resource.InsertOptions) error {
	expr, args := t.table(s)
	iq := t.idb.NewInsert().Model(rec).ModelTableExpr(expr, args...).Returning("*")
	if opts.Upsert || opts.SkipOnConflict {
		cols := make([]string, len(opts.ConflictFields))
		for i, c := range opts.ConflictFields {
			cols[i] = string(t.layer.db.QueryGen().AppendIdent(nil, c))
		}
		if opts.SkipOnConflict || len(opts.UpdateFields) == 0 {
			iq = iq.On("CONFLICT (" + strings.Join(cols, ", ") + ") DO NOTHING")
		} else {
			iq = iq.On("CONFLICT (" + strings.Join(cols, ", ") + ") DO UPDATE")
			for _, f := range opts.UpdateFields {
				iq = iq.Set("? = EXCLUDED.?", bun.Ident(f), bun.Ident(f))
			}
		}
	}
	res, err := iq.Exec(ctx)
	if err != nil {
		return t.layer.writeError(err)
	}
	if opts.SkipOnConflict {
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return &resource.ConflictError{Fields: opts.ConflictFields, Err: errors.New("row exists")}
		}
	}
	inUTC(s, rec)
	return nil
}

func (t *txn) Update(ctx context.Context, s *resource.Schema, rec any, fields []string) error {
	if len(fields) == 0 {
		// Nothing to write: check the record is still there.
		dest := reflect.New(reflect.SliceOf(reflect.PointerTo(s.Type)))
		if err := t.Select(ctx, s, &resource.Query{Filter: pkFilter(s, rec), Limit: 1}, dest.Interface()); err != nil {
			return err
		}
		if dest.Elem().Len() == 0 {
			return resource.ErrNotFound
		}
		reflect.ValueOf(rec).Elem().Set(dest.Elem().Index(0).Elem())
		return nil
	}
	expr, args := t.table(s)
	res, err := t.idb.NewUpdate().Model(rec).ModelTableExpr(expr, args...).Column(fields...).WherePK().Returning("*").Exec(ctx)
	if err != nil {
		return t.layer.writeError(err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return resource.ErrNotFound
	}
	inUTC(s, rec)
	return nil
}

func (t *txn) UpdateAll(ctx context.Context, s *resource.Schema, f resource.Filter, set map[string]any, dest any) error {
	expr, args := t.table(s)
	uq := t.idb.NewUpdate().Model(reflect.New(s.Type).Interface()).ModelTableExpr(expr, args...)
	cols := make([]string, 0, len(set))
	for c := range set {
		cols = append(cols, c)
	}
	slices.Sort(cols)
	for _, c := range cols {
		uq = uq.Set("? = ?", bun.Ident(c), normalize(set[c]))
	}
	where, wargs, err := whereSQL(s, f)
	if err != nil {
		return err
	}
	uq = uq.Where(where, wargs...).Returning("*")
	if err := uq.Scan(ctx, dest); err != nil {
		return t.layer.writeError(err)
	}
	inUTC(s, dest)
	return nil
}

func (t *txn) Delete(ctx context.Context, s *resource.Schema, rec any) error {
	expr, args := t.table(s)
	res, err := t.idb.NewDelete().Model(rec).ModelTableExpr(expr, args...).WherePK().Returning("*").Exec(ctx)
	if err != nil {
		return t.layer.writeError(err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return resource.ErrNotFound
	}
	inUTC(s, rec)
	return nil
}

func (t *txn) DeleteAll(ctx context.Context, s *resource.Schema, f resource.Filter, dest any) error {
	expr, args := t.table(s)
	where, wargs, err := whereSQL(s, f)
	if err != nil {
		return err
	}
	dq := t.idb.NewDelete().Model(reflect.New(s.Type).Interface()).ModelTableExpr(expr, args...).
		Where(where, wargs...).Returning("*")
	if err := dq.Scan(ctx, dest); err != nil {
		return t.layer.writeError(err)
	}
	inUTC(s, dest)
	return nil
}

// pkFilter matches the record rec (a *T of s) by its primary key.
func pkFilter(s *resource.Schema, rec any) resource.Filter {
	rv := reflect.ValueOf(rec).Elem()
	var and resource.And
	for _, a := range s.PrimaryKey {
		and = append(and, resource.Eq(a.Name, rv.FieldByIndex(a.Index).Interface()))
	}
	return and
}

// normalize puts times in UTC, so that SQLite's text timestamps compare in
// order.
func normalize(v any) any {
	if t, ok := v.(time.Time); ok {
		return t.UTC()
	}
	return v
}

var timeType = reflect.TypeFor[time.Time]()

// inUTC puts the time attributes of v (a *T or *[]*T of s) in UTC, as kiln
// promises: drivers return times in time.Local or in the zone they parsed.
func inUTC(s *resource.Schema, v any) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return
	}
	rv = rv.Elem()
	recs := []reflect.Value{rv}
	if rv.Kind() == reflect.Slice {
		recs = recs[:0]
		for i := 0; i < rv.Len(); i++ {
			if e := rv.Index(i); e.Kind() == reflect.Pointer && !e.IsNil() {
				recs = append(recs, e.Elem())
			}
		}
	}
	for _, rec := range recs {
		if rec.Kind() != reflect.Struct {
			continue
		}
		for _, a := range s.Attributes {
			f := rec.FieldByIndex(a.Index)
			switch {
			case a.Type == timeType:
				f.Set(reflect.ValueOf(f.Interface().(time.Time).UTC()))
			case a.Type == reflect.PointerTo(timeType) && !f.IsNil():
				utc := f.Elem().Interface().(time.Time).UTC()
				f.Set(reflect.ValueOf(&utc)) // a new pointer: the old one may be the caller's
			}
		}
	}
}

// mapError turns unique violations into *resource.ConflictError and no
// rows into resource.ErrNotFound.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return resource.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		ce := &resource.ConflictError{Fields: pgKeyFields(pgErr.Detail), Err: errors.New("unique violation on " + pgErr.ConstraintName)}
		if strings.HasSuffix(pgErr.ConstraintName, "_pkey") {
			ce.Identity = "primary_key"
		}
		return ce
	}
	msg := err.Error()
	if i := strings.Index(msg, "UNIQUE constraint failed: "); i >= 0 {
		rest := msg[i+len("UNIQUE constraint failed: "):]
		if j := strings.Index(rest, " ("); j >= 0 {
			rest = rest[:j]
		}
		var fields []string
		for _, col := range strings.Split(rest, ",") {
			col = strings.TrimSpace(col)
			if k := strings.LastIndexByte(col, '.'); k >= 0 {
				col = col[k+1:]
			}
			fields = append(fields, col)
		}
		return &resource.ConflictError{Fields: fields, Err: errors.New("unique violation")}
	}
	return err
}

// pgKeyFields reads the column names of "Key (a, b)=(…) already exists."
func pgKeyFields(detail string) []string {
	start := strings.Index(detail, "Key (")
	if start < 0 {
		return nil
	}
	rest := detail[start+len("Key ("):]
	end := strings.Index(rest, ")=")
	if end < 0 {
		return nil
	}
	var fields []string
	for _, f := range strings.Split(rest[:end], ",") {
		fields = append(fields, strings.Trim(strings.TrimSpace(f), `"`))
	}
	return fields
}
