package logouteverywhere_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/kiln-go/kiln/extensions/authentication/logouteverywhere"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/internal/testdb"
)

// BenchmarkLogOutEverywhere revokes the stored tokens of one user (plus
// its registration token) per op, with one notification each, in a table
// that holds other users' sessions besides: 1,000 tokens beside 10,000
// (log out everywhere over many sessions), and 10 beside 100,000 (a user's
// few sessions in a big table, where reading the whole table would cost
// the most). It reports the SQL statements per op: BEGIN, the epoch's
// upsert, one UPDATE … RETURNING, COMMIT. Between ops the revoked rows are
// made sessions again, off the clock. It runs on SQLite in memory, on a
// SQLite file in WAL mode (as the example app's) and on PostgreSQL.
func BenchmarkLogOutEverywhere(b *testing.B) {
	for _, size := range []struct{ tokens, others int }{{1000, 10_000}, {10, 100_000}} {
		for _, db := range []string{"sqlite", "sqlite-file", "postgres"} {
			b.Run(fmt.Sprintf("%s/%d-of-%d", db, size.tokens, size.tokens+size.others), func(b *testing.B) {
				benchmarkLogOutEverywhere(b, db, size.tokens, size.others)
			})
		}
	}
}

func benchmarkLogOutEverywhere(b *testing.B, db string, tokens, others int) {
	e := build(b, db, logouteverywhere.LogOutEverywhere{})
	ada := e.register(b, "ada@example.com")
	user := ada.Record.(*accountstest.User)
	seedTokens(b, e, ada.Claims.Subject, tokens)
	// Other users' sessions, 100 each, which the revocation must not read.
	for i := range others / 100 {
		seedTokens(b, e, fmt.Sprintf("user?id=other-%d", i), 100)
	}
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
}
