package logouteverywhere_test

import (
	"context"
	"testing"

	"github.com/kiln-go/kiln/extensions/authentication/logouteverywhere"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/internal/testdb"
)

// BenchmarkLogOutEverywhere revokes the 1,000 stored tokens of one user
// (plus its registration token) per op, with one notification each, and
// reports the SQL statements per op: BEGIN, the epoch's upsert, one
// UPDATE … RETURNING, COMMIT. Between ops the revoked rows are made
// sessions again, off the clock. It runs on SQLite in memory, on a SQLite
// file in WAL mode (as the example app's) and on PostgreSQL.
func BenchmarkLogOutEverywhere(b *testing.B) {
	const tokens = 1000
	for _, db := range []string{"sqlite", "sqlite-file", "postgres"} {
		b.Run(db, func(b *testing.B) {
			e := build(b, db, logouteverywhere.LogOutEverywhere{})
			ada := e.register(b, "ada@example.com")
			user := ada.Record.(*accountstest.User)
			seedTokens(b, e, ada.Claims.Subject, tokens)
			ctx := context.Background()
			h := &testdb.Statements{}
			e.layer.DB().AddQueryHook(h)
			var statements, data, notified int
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if _, err := e.layer.DB().NewUpdate().TableExpr("tokens").Set("purpose = ?", tokenresource.PurposeUser).
					Where("subject = ? AND purpose = ?", ada.Claims.Subject, tokenresource.PurposeRevocation).Exec(ctx); err != nil {
					b.Fatal(err)
				}
				e.rec.Reset()
				h.Record()
				b.StartTimer()
				n, err := e.logOutEverywhere(ctx, user)
				b.StopTimer()
				verbs := testdb.Verbs(h.Stop())
				if err != nil || n != tokens+1 {
					b.Fatalf("revoked %d, %v; want %d", n, err, tokens+1)
				}
				for _, s := range verbs {
					statements++
					if s != "BEGIN" && s != "COMMIT" {
						data++
					}
				}
				notified += e.rec.Len()
				b.StartTimer()
			}
			b.ReportMetric(float64(statements)/float64(b.N), "stmts/op")
			b.ReportMetric(float64(data)/float64(b.N), "data-stmts/op")
			b.ReportMetric(float64(notified)/float64(b.N), "notifications/op")
		})
	}
}
