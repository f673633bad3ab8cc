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

// BenchmarkKnowledge runs the checks of BenchmarkStore on a store that
// follows a prompt feed, answered from memory (after the first read), on
// many goroutines at once: the cost a check adds to a token's signature
// check when the node knows the token.
func BenchmarkKnowledge(b *testing.B) {
	s := newStore(b, "sqlite", tokenresource.Token{})
	f := &feed{prompt: true}
	s.s.Follow(f)
	if err := s.d.Attach(f); err != nil {
		b.Fatal(err)
	}
	jtis := make([]string, 1000)
	for i := range jtis {
		jtis[i] = fmt.Sprintf("jti-%04d", i)
		s.put(b, jtis[i], "user?id=1", tokenresource.PurposeUser, hour())
	}
	ctx := context.Background()
	b.Run("is-revoked", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if revoked, err := s.s.IsRevoked(ctx, jtis[i%len(jtis)]); err != nil || revoked {
					b.Fatal(revoked, err)
				}
			}
		})
	})
	b.Run("session", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if _, err := s.s.Session(ctx, jtis[i%len(jtis)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
