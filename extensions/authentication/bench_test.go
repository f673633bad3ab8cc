package authentication_test

import (
	"context"
	"testing"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/internal/accountstest"
)

// BenchmarkIssue signs a session token; with store-all it also stores its
// row (one INSERT in its own transaction).
func BenchmarkIssue(b *testing.B) {
	b.Run("sign-only", func(b *testing.B) {
		e := newEnv(b, "sqlite", authentication.Authentication{Tokens: sessionTokens(authentication.SecretString(secret))})
		u := e.user(b, "ada@example.com")
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := e.auth.Issue(ctx, u, authentication.IssueOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, db := range databases {
		b.Run("stored/"+db, func(b *testing.B) {
			e := newEnv(b, db, authentication.Authentication{Tokens: presenceTokens(authentication.SecretString(secret))})
			u := e.user(b, "ada@example.com")
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := e.auth.Issue(ctx, u, authentication.IssueOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParse checks a token's signature and claims, no store.
func BenchmarkParse(b *testing.B) {
	a := accountstest.Build(b, "sqlite", accountstest.Options{})
	s := a.Register(b, "ada@example.com")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Auth.Parse(ctx, s.Token); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify checks a session token and consults the store: the
// stored row when presence is required (the accounts' configuration), the
// revocation row otherwise.
func BenchmarkVerify(b *testing.B) {
	for _, db := range databases {
		b.Run("presence/"+db, func(b *testing.B) {
			a := accountstest.Build(b, db, accountstest.Options{})
			s := a.Register(b, "ada@example.com")
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Auth.Verify(ctx, s.Token); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("revocation/"+db, func(b *testing.B) {
			e := newEnv(b, db, authentication.Authentication{Tokens: sessionTokens(authentication.SecretString(secret))})
			tok, _ := e.issue(b, e.user(b, "ada@example.com"), authentication.IssueOptions{})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.auth.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
