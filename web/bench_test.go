package web_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
)

// BenchmarkLiveAuthenticate authenticates a socket's upgrade request with
// a session cookie, as the endpoint does twice per socket: the session's
// token, then its user. On the in-process transport both are reads of the
// database; on a prompt one (livetest.PromptInProcess stands for a network transport)
// the token is checked from memory, and the user is still read.
func BenchmarkLiveAuthenticate(b *testing.B) {
	for _, db := range databases {
		for _, tr := range []struct {
			name string
			ps   func() live.PubSub
		}{
			{"inprocess", func() live.PubSub { return &live.InProcess{} }},
			{"prompt", func() live.PubSub { return &livetest.PromptInProcess{} }},
		} {
			b.Run(tr.name+"/"+db, func(b *testing.B) {
				h := livetest.New(b, db, livetest.Options{PubSub: tr.ps()})
				h.Register(b, "ada@example.com")
				cookie := h.SignInCookie(b, "ada@example.com")
				req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, h.URL(), nil)
				if err != nil {
					b.Fatal(err)
				}
				req.Header = livetest.CookieHeader(cookie)
				auth := h.Web.LiveAuthenticator()
				b.ReportAllocs()
				for b.Loop() {
					if _, err := auth.AuthenticateSocket(req); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
