package bunlayer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"
	"github.com/uptrace/bun/migrate"
)

// MigrationsTable is the table in which ApplyMigrations records the
// migrations it applied (bun's migrate.Migration rows: the version, the
// group, the time).
const MigrationsTable = "kiln_migrations"

// versionLayout is the UTC time that starts a migration file's name.
const versionLayout = "20060102150405"

var (
	migrationNameRE = regexp.MustCompile(`^[0-9a-z_\-]+$`)
	migrationFileRE = regexp.MustCompile(`^(\d{14})_([0-9a-z_\-]+)\.up\.sql$`)
)

// Migration is a migration file of a migrations folder.
type Migration struct {
	// Name is the file's name without ".up.sql": its version (a UTC time,
	// YYYYMMDDhhmmss) and its name, "20260102150405_add_plan".
	Name string
	// Path is the file's path in the migrations folder,
	// "sqlite/20260102150405_add_plan.up.sql".
	Path string
	// SQL is the file's contents.
	SQL string

	version string
}

// readMigrations reads the migration files of a dialect's folder, oldest
// first. A folder that does not exist has none.
func readMigrations(fsys fs.FS, dialectName string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dialectName)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kiln/bunlayer: read migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		p := path.Join(dialectName, name)
		m := migrationFileRE.FindStringSubmatch(name)
		if m == nil {
			return nil, fmt.Errorf("kiln/bunlayer: migration file %s: name it <version>_<name>.up.sql, the version a UTC time YYYYMMDDhhmmss and the name lower-case letters, digits, _ and -", p)
		}
		if i := slices.IndexFunc(out, func(have Migration) bool { return have.version == m[1] }); i >= 0 {
			return nil, fmt.Errorf("kiln/bunlayer: migration files %s and %s have the same version %s: give one a later version", out[i].Path, p, m[1])
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("kiln/bunlayer: read migration: %w", err)
		}
		out = append(out, Migration{Name: strings.TrimSuffix(name, ".up.sql"), Path: p, SQL: string(b), version: m[1]})
	}
	slices.SortFunc(out, func(a, b Migration) int { return strings.Compare(a.version, b.version) })
	return out, nil
}

// GenerateOptions are the choices of GenerateMigrations.
type GenerateOptions struct {
	// Name is the migration's name, after its version in the file names:
	// lower-case letters, digits, _ and -. Zero value: "initial" for the
	// folder's first migration, "update" after it.
	Name string
	// AllowDrop drops what the declarations no longer have (see
	// DiffOptions.AllowDrop).
	AllowDrop bool
}

// Generated is a migration GenerateMigrations wrote for a dialect.
type Generated struct {
	Dialect string
	// Migration and Snapshot are the paths of the files written.
	Migration, Snapshot string
	// Summary says what the migration does (Changes.Summary).
	Summary []string
}

// GenerateMigrations writes the migration from the last snapshot kept in
// the migrations folder dir to the registered resources, for each dialect
// (sqlite and pg): dir/<dialect>/<version>_<name>.up.sql, its SQL as Diff
// writes it, and the new dir/<dialect>/snapshot.json. All share a version:
// the current UTC time, later than every version in the folder. It writes
// nothing, and returns none, when the declarations are those of the
// snapshots; and nothing when Diff reports a problem.
func (l *Layer) GenerateMigrations(dir string, opts GenerateOptions) ([]Generated, error) {
	var snaps []*Snapshot
	for _, d := range dialects {
		snap, err := l.Snapshot(d)
		if err != nil {
			return nil, err
		}
		snaps = append(snaps, snap)
	}
	return writeMigrations(dir, snaps, opts)
}

// writeMigrations writes, for each snapshot, the migration from the last
// snapshot of its dialect in the folder dir to it (see
// GenerateMigrations).
func writeMigrations(dir string, snapshots []*Snapshot, opts GenerateOptions) ([]Generated, error) {
	if opts.Name != "" && !migrationNameRE.MatchString(opts.Name) {
		return nil, fmt.Errorf("kiln/bunlayer: migration name %q: use lower-case letters, digits, _ and -", opts.Name)
	}
	fsys := os.DirFS(dir)
	type plan struct {
		to      *Snapshot
		changes *Changes
	}
	var plans []plan
	var problems []error
	first := true
	for _, to := range snapshots {
		if _, err := fs.Stat(fsys, path.Join(to.Dialect, SnapshotFile)); err == nil {
			first = false
		}
		from, err := ReadSnapshot(fsys, to.Dialect)
		if err != nil {
			return nil, err
		}
		ch, err := Diff(from, to, DiffOptions{AllowDrop: opts.AllowDrop})
		if err != nil {
			// The dialects report the same problems once.
			if !slices.ContainsFunc(problems, func(p error) bool { return p.Error() == err.Error() }) {
				problems = append(problems, err)
			}
			continue
		}
		if !ch.Empty() {
			plans = append(plans, plan{to, ch})
		}
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	if len(plans) == 0 {
		return nil, nil
	}
	name := opts.Name
	switch {
	case name != "":
	case first:
		name = "initial"
	default:
		name = "update"
	}
	version, err := nextVersion(fsys, time.Now())
	if err != nil {
		return nil, err
	}
	var out []Generated
	for _, p := range plans {
		if err := os.MkdirAll(filepath.Join(dir, p.to.Dialect), 0o755); err != nil {
			return out, fmt.Errorf("kiln/bunlayer: generate: %w", err)
		}
		g := Generated{Dialect: p.to.Dialect, Summary: p.changes.Summary(),
			Migration: filepath.Join(dir, p.to.Dialect, version+"_"+name+".up.sql")}
		if err := os.WriteFile(g.Migration, []byte(p.changes.SQL()), 0o644); err != nil {
			return out, fmt.Errorf("kiln/bunlayer: generate: %w", err)
		}
		if g.Snapshot, err = writeSnapshot(dir, p.to); err != nil {
			return out, fmt.Errorf("kiln/bunlayer: generate: %w", err)
		}
		out = append(out, g)
	}
	return out, nil
}

// nextVersion is the version of a new migration: now, or a second after
// the latest version of the folder when that is not earlier.
func nextVersion(fsys fs.FS, now time.Time) (string, error) {
	v := now.UTC().Truncate(time.Second)
	for _, d := range dialects {
		ms, err := readMigrations(fsys, d)
		if err != nil {
			return "", err
		}
		for _, m := range ms {
			if t, err := time.Parse(versionLayout, m.version); err == nil && !t.Before(v) {
				v = t.Add(time.Second)
			}
		}
	}
	return v.Format(versionLayout), nil
}

// CheckMigrations returns an error when the registered resources differ
// from the last snapshot of the layer's dialect in the migrations folder
// fsys: a declaration changed and no migration was generated for it, so
// the tables are not what the resources expect. The error says what
// differs. A folder without a snapshot of the dialect is an error too.
func (l *Layer) CheckMigrations(fsys fs.FS) error {
	d := l.Dialect()
	if _, err := fs.Stat(fsys, path.Join(d, SnapshotFile)); err != nil {
		return fmt.Errorf("kiln/bunlayer: the migrations folder has no %s/%s: run migrate generate", d, SnapshotFile)
	}
	from, err := ReadSnapshot(fsys, d)
	if err != nil {
		return err
	}
	to, err := l.Snapshot(d)
	if err != nil {
		return err
	}
	ch, err := Diff(from, to, DiffOptions{})
	if err != nil {
		return fmt.Errorf("kiln/bunlayer: the declarations differ from the migrations folder's %s/%s: %w", d, SnapshotFile, err)
	}
	if !ch.Empty() {
		return fmt.Errorf("kiln/bunlayer: the declarations differ from the migrations folder's %s/%s (%s): run migrate generate, review the new migration, then migrate",
			d, SnapshotFile, strings.Join(ch.Summary(), "; "))
	}
	return nil
}

// PendingMigrations returns the migrations of the migrations folder fsys,
// for the layer's dialect, that the database has not applied, oldest
// first. It writes nothing.
func (l *Layer) PendingMigrations(ctx context.Context, fsys fs.FS) ([]Migration, error) {
	ms, err := readMigrations(fsys, l.Dialect())
	if err != nil {
		return nil, err
	}
	applied, err := l.appliedVersions(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(ms, func(m Migration) bool { return slices.Contains(applied, m.version) }), nil
}

// appliedVersions reads the versions MigrationsTable records; none when
// it does not exist.
func (l *Layer) appliedVersions(ctx context.Context) ([]string, error) {
	exists := "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?"
	if l.db.Dialect().Name() == dialect.PG {
		exists = "SELECT to_regclass(?) IS NOT NULL"
	}
	var ok bool
	if err := l.db.NewRaw(exists, MigrationsTable).Scan(ctx, &ok); err != nil {
		return nil, fmt.Errorf("kiln/bunlayer: read applied migrations: %w", err)
	}
	if !ok {
		return nil, nil
	}
	var versions []string
	if err := l.db.NewSelect().Column("name").Table(MigrationsTable).Scan(ctx, &versions); err != nil {
		return nil, fmt.Errorf("kiln/bunlayer: read applied migrations: %w", err)
	}
	return versions, nil
}

// ApplyOption is an option of ApplyMigrations.
type ApplyOption func(*applyConfig)

type applyConfig struct {
	wait func()
}

// OnWait calls f, once, when another process or layer is applying
// migrations to the database, before ApplyMigrations waits for it.
func OnWait(f func()) ApplyOption {
	return func(c *applyConfig) { c.wait = f }
}

// ApplyMigrations applies, oldest first, the migrations of the migrations
// folder fsys (its <dialect>/ folder for the layer's dialect) that the
// database has not applied, with github.com/uptrace/bun/migrate, which
// records each in MigrationsTable; it returns their names.
//
// It holds a lock while it runs, so that processes that start at once
// apply each migration once: the others wait (see OnWait) until it is
// done, then find nothing left to apply. The lock is the database's own
// and ends with its holder, so a process killed mid-migration leaves none:
//
//   - on PostgreSQL, a transaction-level advisory lock of the current
//     schema, held on a connection of the pool while the migrations run
//     on another (a pool of one connection cannot migrate); each migration
//     runs in its own transaction and is recorded when it commits;
//   - on SQLite, the database's write lock: every pending migration runs
//     in one transaction (BEGIN IMMEDIATE), with foreign key enforcement
//     off, as a table rebuild needs, and every foreign key is checked
//     before it commits. A file database is migrated on a connection of
//     its own; an in-memory one, which no other process can open, on the
//     layer's.
//
// It does not compare the declarations with the folder's snapshot:
// CheckMigrations does.
func (l *Layer) ApplyMigrations(ctx context.Context, fsys fs.FS, opts ...ApplyOption) ([]string, error) {
	cfg := applyConfig{wait: func() {}}
	for _, o := range opts {
		o(&cfg)
	}
	ms, err := readMigrations(fsys, l.Dialect())
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("kiln/bunlayer: the migrations folder has no migration for %s: run migrate generate", l.Dialect())
	}
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	if l.db.Dialect().Name() == dialect.PG {
		return l.applyPG(ctx, ms, cfg)
	}
	return l.applySQLite(ctx, ms, cfg)
}

// pgMigrationLock is the key of the advisory lock of the migrations of the
// current schema: tests and apps may share a database, each in a schema.
const pgMigrationLock = "hashtext(current_schema() || '." + MigrationsTable + "')"

func (l *Layer) applyPG(ctx context.Context, ms []Migration, cfg applyConfig) ([]string, error) {
	lock, err := l.db.DB.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("kiln/bunlayer: migrate: %w", err)
	}
	defer lock.Rollback() // releases the lock
	var locked bool
	if err := lock.QueryRowContext(ctx, "SELECT pg_try_advisory_xact_lock("+pgMigrationLock+")").Scan(&locked); err != nil {
		return nil, fmt.Errorf("kiln/bunlayer: migrate: lock: %w", err)
	}
	if !locked {
		cfg.wait()
		if _, err := lock.ExecContext(ctx, "SELECT pg_advisory_xact_lock("+pgMigrationLock+")"); err != nil {
			return nil, fmt.Errorf("kiln/bunlayer: migrate: waiting for another migration: %w", err)
		}
	}
	return runMigrations(ctx, l.db, ms, func(ctx context.Context, q string) error {
		tx, err := l.db.DB.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return errors.Join(err, tx.Rollback())
		}
		return tx.Commit()
	})
}

func (l *Layer) applySQLite(ctx context.Context, ms []Migration, cfg applyConfig) (_ []string, err error) {
	var file string
	if err := l.db.QueryRowContext(ctx, "SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&file); err != nil {
		return nil, fmt.Errorf("kiln/bunlayer: migrate: %w", err)
	}
	db := l.db
	if file != "" {
		// One connection, which waits for the write lock below itself.
		uri := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(file)
		sqldb, err := sql.Open(sqliteshim.ShimName, "file:"+uri+"?_pragma=foreign_keys(0)&_pragma=busy_timeout(0)")
		if err != nil {
			return nil, fmt.Errorf("kiln/bunlayer: migrate: %w", err)
		}
		sqldb.SetMaxOpenConns(1)
		db = bun.NewDB(sqldb, sqlitedialect.New())
		defer db.Close()
	} else {
		var fk bool
		if err := db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
			return nil, fmt.Errorf("kiln/bunlayer: migrate: %w", err)
		}
		if _, err := db.ExecContext(ctx, "PRAGMA foreign_keys = OFF"); err != nil {
			return nil, fmt.Errorf("kiln/bunlayer: migrate: %w", err)
		}
		if fk {
			defer func() {
				_, fkErr := db.ExecContext(context.WithoutCancel(ctx), "PRAGMA foreign_keys = ON")
				err = errors.Join(err, fkErr)
			}()
		}
	}
	if err := beginImmediate(ctx, db.DB, cfg.wait); err != nil {
		return nil, err
	}
	names, err := runMigrations(ctx, db, ms, func(ctx context.Context, q string) error {
		_, err := db.DB.ExecContext(ctx, q)
		return err
	})
	if err == nil {
		err = foreignKeyCheck(ctx, db.DB)
	}
	if err != nil {
		_, rbErr := db.DB.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return nil, errors.Join(err, rbErr)
	}
	if _, err := db.DB.ExecContext(ctx, "COMMIT"); err != nil {
		return nil, fmt.Errorf("kiln/bunlayer: migrate: %w", err)
	}
	return names, nil
}

// beginImmediate begins a write transaction on db's one connection, whose
// busy timeout is 0: when another connection writes, it calls wait and
// retries, a second at a time, until it gets the lock or ctx ends.
func beginImmediate(ctx context.Context, db *sql.DB, wait func()) error {
	for waited := false; ; {
		_, err := db.ExecContext(ctx, "BEGIN IMMEDIATE")
		if err == nil {
			return nil
		}
		if !isBusy(err) {
			return fmt.Errorf("kiln/bunlayer: migrate: %w", err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("kiln/bunlayer: migrate: waiting for another migration: %w", ctx.Err())
		}
		if !waited {
			waited = true
			wait()
			if _, err := db.ExecContext(ctx, "PRAGMA busy_timeout = 1000"); err != nil {
				return fmt.Errorf("kiln/bunlayer: migrate: %w", err)
			}
		}
	}
}

// foreignKeyCheck returns an error naming the rows whose foreign keys
// reference no row (PRAGMA foreign_key_check), at most five of them.
func foreignKeyCheck(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return fmt.Errorf("kiln/bunlayer: migrate: %w", err)
	}
	defer rows.Close()
	var bad []string
	n := 0
	for rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fkid int
		if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
			return fmt.Errorf("kiln/bunlayer: migrate: %w", err)
		}
		if n++; len(bad) < 5 {
			bad = append(bad, fmt.Sprintf("row %d of %s references no row of %s", rowid.Int64, table, parent))
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("kiln/bunlayer: migrate: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("kiln/bunlayer: migrate: %d row(s) break a foreign key after the migrations, so none was applied: %s", n, strings.Join(bad, "; "))
	}
	return nil
}

// runMigrations applies the migrations db has not recorded in
// MigrationsTable, with bun's migrator, running each file's SQL with exec,
// and returns the names of those applied.
func runMigrations(ctx context.Context, db *bun.DB, ms []Migration, exec func(ctx context.Context, q string) error) ([]string, error) {
	if _, err := db.NewCreateTable().Model((*migrate.Migration)(nil)).ModelTableExpr(MigrationsTable).IfNotExists().Exec(ctx); err != nil {
		return nil, fmt.Errorf("kiln/bunlayer: migrate: %w", err)
	}
	bms := migrate.NewMigrations()
	for _, m := range ms {
		bms.Add(migrate.Migration{Name: m.version, Comment: strings.TrimPrefix(m.Name, m.version+"_"),
			Up: func(ctx context.Context, _ *migrate.Migrator, _ *migrate.Migration) error {
				if err := exec(ctx, m.SQL); err != nil {
					return fmt.Errorf("%s: %w", m.Path, err)
				}
				return nil
			}})
	}
	group, err := migrate.NewMigrator(db, bms, migrate.WithTableName(MigrationsTable), migrate.WithMarkAppliedOnSuccess(true)).Migrate(ctx)
	var names []string
	for _, m := range group.Migrations {
		names = append(names, m.String())
	}
	if err != nil {
		// The last one is the migration that failed.
		return names[:max(len(names)-1, 0)], fmt.Errorf("kiln/bunlayer: migrate: %w", err)
	}
	return names, nil
}
