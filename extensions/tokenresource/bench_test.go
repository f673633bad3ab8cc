package tokenresource_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/kiln-go/kiln/extensions/tokenresource"
)

// BenchmarkStore runs the token store's reads on a request's path: Get
// (the presence check), IsRevoked (the revocation check), and Check of a
// batch of 100 jtis (the live safety net).
func BenchmarkStore(b *testing.B) {
	for _, db := range databases {
		s := newStore(b, db, tokenresource.Token{})
		jtis := make([]string, 100)
		for i := range jtis {
			jtis[i] = fmt.Sprintf("jti-%03d", i)
			s.put(b, jtis[i], "user?id=1", tokenresource.PurposeUser, hour())
		}
		ctx := context.Background()
		b.Run("get/"+db, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.s.Get(ctx, jtis[0], tokenresource.PurposeUser); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("is-revoked/"+db, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if revoked, err := s.s.IsRevoked(ctx, jtis[0]); err != nil || revoked {
					b.Fatal(revoked, err)
				}
			}
		})
		b.Run("check-100/"+db, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if out, err := s.s.Check(ctx, jtis, true); err != nil || len(out) != 0 {
					b.Fatal(out, err)
				}
			}
		})
	}
}
