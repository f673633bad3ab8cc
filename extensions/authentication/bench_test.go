package authentication_test

import (
	"context"
	"testing"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource"
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
// revocation row otherwise. The knowledge variants are a node whose token
// store follows a prompt feed (tokenresource.Store.Follow): after the
// first read, the check is answered from memory.
func BenchmarkVerify(b *testing.B) {
	for _, db := range databases {
		for _, knowledge := range []bool{false, true} {
			name := func(mode string) string {
				if knowledge {
					return mode + "+knowledge/" + db
				}
				return mode + "/" + db
			}
			b.Run(name("presence"), func(b *testing.B) {
				a := accountstest.Build(b, db, accountstest.Options{})
				s := a.Register(b, "ada@example.com")
				if knowledge {
					follow(b, a.Domain, a.Auth.Tokens())
				}
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					if _, err := a.Auth.Verify(ctx, s.Token); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(name("revocation"), func(b *testing.B) {
				e := newEnv(b, db, authentication.Authentication{Tokens: sessionTokens(authentication.SecretString(secret))})
				tok, _ := e.issue(b, e.user(b, "ada@example.com"), authentication.IssueOptions{})
				if knowledge {
					follow(b, e.d, e.auth.Tokens())
				}
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
}

// follow makes the store of d follow a live endpoint on a prompt
// transport of this process (livetest.PromptInProcess), attached to d, as the token
// revocation notifier's Attach does with the endpoint of a node on a
// network transport.
func follow(b *testing.B, d *resource.Domain, store *tokenresource.Store) {
	b.Helper()
	ep, err := live.New(live.WithPubSub(&livetest.PromptInProcess{}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ep.Shutdown(context.Background()) })
	store.Follow(ep)
	if err := d.Attach(ep); err != nil {
		b.Fatal(err)
	}
}
