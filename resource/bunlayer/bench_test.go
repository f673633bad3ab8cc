package bunlayer_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-go/kiln/internal/latency"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// benchAccount is the record the benchmarks write: a primary key, an
// identity (email), a validated attribute and timestamps, as a typical
// resource has.
type benchAccount struct {
	ID        int64     `bun:",pk,autoincrement"`
	Email     string    `bun:",unique,notnull" validate:"required,email"`
	Team      string    `bun:",notnull"`
	Status    string    `bun:",notnull"`
	CreatedAt time.Time `bun:",notnull" kiln:"readonly,default:now"`
	UpdatedAt time.Time `bun:",notnull" kiln:"readonly,default:now,update_default:now"`
}

// benchDBs are the databases every benchmark runs on. The in-memory SQLite
// database has one connection; the file has several, in WAL mode.
var benchDBs = []struct {
	name string
	open func(testing.TB) *bunlayer.Layer
}{
	{"sqlite-memory", testdb.SQLite},
	{"sqlite-file", testdb.SQLiteFile},
	{"postgres", testdb.Postgres},
}

// benchDomain builds a domain of benchAccount on a fresh database of the
// given kind and migrates it. notified counts notifications.
func benchDomain(b *testing.B, open func(testing.TB) *bunlayer.Layer, notified *atomic.Int64) (*resource.Resource[benchAccount], *resource.Domain) {
	b.Helper()
	ctx := context.Background()
	accounts := resource.New[benchAccount]("account",
		resource.Table("accounts"),
		resource.Actions{
			resource.Create{Name: "create", Accept: []string{"email", "team", "status"}},
			resource.Read{Name: "by_email", GetBy: []string{"email"}},
			resource.Read{Name: "list"},
			resource.Update{Name: "set_status", Accept: []string{"status"}},
		},
		resource.Notifiers(resource.NotifierFunc(func(context.Context, resource.Notification) error {
			notified.Add(1)
			return nil
		})),
	)
	layer := open(b)
	d, err := resource.NewDomain("bench", accounts).Build(ctx, layer)
	if err != nil {
		b.Fatal(err)
	}
	if err := layer.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	return accounts, d
}

// benchSeed creates n accounts in team, in one transaction.
func benchSeed(b *testing.B, accounts *resource.Resource[benchAccount], d *resource.Domain, team string, n int) []string {
	b.Helper()
	ctx := context.Background()
	emails := make([]string, n)
	err := d.InTransaction(ctx, func(ctx context.Context) error {
		for i := range emails {
			emails[i] = fmt.Sprintf("%s-%d@example.com", team, i)
			if _, err := accounts.Create(ctx, d, "create", resource.Input{"email": emails[i], "team": team, "status": "new"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return emails
}

// BenchmarkCreate runs a create action: input conversion, validation,
// defaults, one transaction with an INSERT … RETURNING, one notification.
func BenchmarkCreate(b *testing.B) {
	for _, db := range benchDBs {
		b.Run(db.name, func(b *testing.B) {
			var notified atomic.Int64
			accounts, d := benchDomain(b, db.open, &notified)
			ctx := context.Background()
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				in := resource.Input{"email": fmt.Sprintf("user-%d@example.com", i), "team": "a", "status": "new"}
				if _, err := accounts.Create(ctx, d, "create", in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(notified.Load())/float64(i), "notifications/op")
		})
	}
}

// BenchmarkReadByIdentity gets one record of 1,000 by a unique column with a
// Read action declared with GetBy.
func BenchmarkReadByIdentity(b *testing.B) {
	for _, db := range benchDBs {
		b.Run(db.name, func(b *testing.B) {
			var notified atomic.Int64
			accounts, d := benchDomain(b, db.open, &notified)
			emails := benchSeed(b, accounts, d, "a", 1000)
			ctx := context.Background()
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				email := emails[i%len(emails)]
				i++
				got, err := accounts.Get(ctx, d, "by_email", resource.Input{"email": email})
				if err != nil {
					b.Fatal(err)
				}
				if got.Email != email {
					b.Fatalf("got %s, want %s", got.Email, email)
				}
			}
		})
	}
}

// BenchmarkBulkUpdate1000 updates 1,000 records in one UPDATE … RETURNING
// statement; each op sends 1,000 notifications, one per record.
func BenchmarkBulkUpdate1000(b *testing.B) {
	const n = 1000
	for _, db := range benchDBs {
		b.Run(db.name, func(b *testing.B) {
			var notified atomic.Int64
			accounts, d := benchDomain(b, db.open, &notified)
			benchSeed(b, accounts, d, "bulk", n)
			benchSeed(b, accounts, d, "other", 100) // rows the filter must skip
			notified.Store(0)
			ctx := context.Background()
			ops := 0
			b.ReportAllocs()
			for b.Loop() {
				ops++
				updated, err := accounts.BulkUpdate(ctx, d, "set_status", resource.Eq("team", "bulk"), resource.Input{"status": fmt.Sprint("s", ops)})
				if err != nil {
					b.Fatal(err)
				}
				if len(updated) != n {
					b.Fatalf("updated %d records, want %d", len(updated), n)
				}
			}
			perOp := float64(notified.Load()) / float64(ops)
			if perOp != n {
				b.Fatalf("%v notifications per op, want %d", perOp, n)
			}
			b.ReportMetric(perOp, "notifications/op")
		})
	}
}

// BenchmarkPageDeep reads a page of 20 records 9,000 records deep into
// 10,000, in primary key order: after a cursor, which the database finds
// in the key's index, and at an offset, which it counts its way to.
func BenchmarkPageDeep(b *testing.B) {
	const n, depth, size = 10000, 9000, 20
	for _, db := range benchDBs {
		b.Run(db.name, func(b *testing.B) {
			var notified atomic.Int64
			accounts, d := benchDomain(b, db.open, &notified)
			benchSeed(b, accounts, d, "a", n)
			ctx := context.Background()
			before, err := accounts.Page(ctx, d, "list", nil, resource.PageRequest{Limit: 1, Offset: depth - 1})
			if err != nil {
				b.Fatal(err)
			}
			for _, by := range []struct {
				name string
				req  resource.PageRequest
			}{
				{"cursor", resource.PageRequest{Limit: size, After: before.Next}},
				{"offset", resource.PageRequest{Limit: size, Offset: depth}},
			} {
				b.Run(by.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						p, err := accounts.Page(ctx, d, "list", nil, by.req)
						if err != nil {
							b.Fatal(err)
						}
						if len(p.Records) != size || p.Records[0].ID != before.Records[0].ID+1 {
							b.Fatalf("page of %d starting at id %d, want %d from %d", len(p.Records), p.Records[0].ID, size, before.Records[0].ID+1)
						}
					}
				})
			}
		})
	}
}

// BenchmarkLoad1000 reads 1,000 articles with their writers and notes
// (2,000 of them): three statements per read however many articles, which
// statements/op reports.
func BenchmarkLoad1000(b *testing.B) {
	const n = 1000
	for _, db := range benchDBs {
		b.Run(db.name, func(b *testing.B) {
			var c statementCounter
			d := loadDomain(b, db.open, &c)
			seedArticles(b, d, n)
			c.n.Store(0)
			ops := 0
			b.ReportAllocs()
			for b.Loop() {
				ops++
				if got := loadArticles(b, d); len(got) != n || len(got[n-1].Notes) != 2 || got[n-1].Writer == nil {
					b.Fatalf("loaded %d articles, want %d with their writers and notes", len(got), n)
				}
			}
			b.ReportMetric(float64(c.n.Load())/float64(ops), "statements/op")
		})
	}
}

// BenchmarkCommitLatency times small write transactions (BEGIN, one
// INSERT or UPDATE, COMMIT) on a SQLite file, one begun every millisecond,
// with kiln's background checkpoints and with SQLite's own
// (wal_autocheckpoint(1000), SQLite's default: the commit that takes the
// WAL past 1,000 pages checkpoints it). It reports the percentiles of one
// commit (p50-µs, p99-µs, p999-µs, max-µs), where the checkpoints show,
// and the WAL file's size at the end (wal-MiB). Give it several seconds
// of commits, so that the background checkpoints (a round a second) run:
//
//	go test -run '^$' -bench CommitLatency -benchtime 5000x ./resource/bunlayer
func BenchmarkCommitLatency(b *testing.B) {
	for _, c := range []struct{ name, query string }{
		{"background", ""},
		{"in-commit", "?_pragma=wal_autocheckpoint(1000)"},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			path := b.TempDir() + "/c.db"
			l, err := bunlayer.Open(ctx, "file:"+path+c.query)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			db := l.DB()
			if _, err := db.ExecContext(ctx, "CREATE TABLE t (id TEXT PRIMARY KEY, subject TEXT, purpose TEXT, data TEXT)"); err != nil {
				b.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, "CREATE INDEX t_subject ON t (subject)"); err != nil {
				b.Fatal(err)
			}
			// A timer pending all along, as a server always has some (its
			// connections' deadlines, its sockets' pings): in a process with
			// none, the Go runtime parks its idle threads otherwise, and a
			// commit after an idle millisecond measures some 25 µs less, so
			// that the background checkpoints' ticker alone would count
			// against them.
			pending := time.AfterFunc(time.Hour, func() {})
			defer pending.Stop()
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			begin := time.Now()
			for i := range b.N {
				time.Sleep(time.Until(begin.Add(time.Duration(i) * time.Millisecond)))
				start := time.Now()
				tx, err := l.Begin(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if i%2 == 0 {
					err = bunlayer.ExecIn(ctx, tx, fmt.Sprintf(`INSERT INTO t VALUES ('id%d', 'subject%d', 'user', '{"user_agent":"Mozilla/5.0 (X11; Linux x86_64)"}')`, i, i%50))
				} else {
					err = bunlayer.ExecIn(ctx, tx, fmt.Sprintf("UPDATE t SET purpose = 'revocation' WHERE id = 'id%d'", i-1))
				}
				if err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(took)
			µs := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
			b.ReportMetric(µs(latency.Percentile(took, 50)), "p50-µs")
			b.ReportMetric(µs(latency.Percentile(took, 99)), "p99-µs")
			b.ReportMetric(µs(latency.Percentile(took, 99.9)), "p999-µs")
			b.ReportMetric(µs(took[len(took)-1]), "max-µs")
			if fi, err := os.Stat(path + "-wal"); err == nil {
				b.ReportMetric(float64(fi.Size())/(1<<20), "wal-MiB")
			}
		})
	}
}

// BenchmarkSavepointWrite runs a write transaction as a nested action
// does (BEGIN, SAVEPOINT, UPDATE … RETURNING, RELEASE, COMMIT) on a SQLite
// file, with kiln's temp_store=MEMORY and with SQLite's default
// (temp_store=FILE in the URL), where the savepoint's statement journal
// is a 64 KiB buffer that the pure-Go driver maps and unmaps for every
// transaction.
//
//	go test -run '^$' -bench SavepointWrite ./resource/bunlayer
func BenchmarkSavepointWrite(b *testing.B) {
	for _, c := range []struct{ name, query string }{
		{"temp_store=memory", ""},
		{"temp_store=file", "?_pragma=temp_store(FILE)"},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			l, err := bunlayer.Open(ctx, "file:"+b.TempDir()+"/s.db"+c.query)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			if _, err := l.DB().ExecContext(ctx, "CREATE TABLE t (id INTEGER PRIMARY KEY, purpose TEXT NOT NULL)"); err != nil {
				b.Fatal(err)
			}
			if _, err := l.DB().ExecContext(ctx, "INSERT INTO t VALUES (1, 'user')"); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				i++
				tx, err := l.Begin(ctx)
				if err != nil {
					b.Fatal(err)
				}
				sp := tx.(resource.Savepointer)
				if err := sp.Savepoint(ctx, "s"); err != nil {
					b.Fatal(err)
				}
				if err := bunlayer.ExecIn(ctx, tx, fmt.Sprintf("UPDATE t SET purpose = 'p%d' WHERE id = 1 RETURNING *", i)); err != nil {
					b.Fatal(err)
				}
				if err := sp.Release(ctx, "s"); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
