package web_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
)

// BenchmarkLiveAuthenticate authenticates a socket's upgrade request with
// a session cookie, as the endpoint does once per socket before the
// upgrade: the session's token, then its user. On the in-process
// transport both are reads of the database; on a prompt one
// (livetest.PromptInProcess stands for a network transport) the token is
// checked from memory, and the user is still read. The recheck cases are
// the check once the socket is registered (live.Rechecker): the token
// alone.
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
				h, req := signedInRequest(b, db, tr.ps())
				auth := h.Web.LiveAuthenticator()
				b.ReportAllocs()
				for b.Loop() {
					if _, err := auth.AuthenticateSocket(req); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(tr.name+"/recheck/"+db, func(b *testing.B) {
				h, req := signedInRequest(b, db, tr.ps())
				auth := h.Web.LiveAuthenticator().(live.Rechecker)
				b.ReportAllocs()
				for b.Loop() {
					if err := auth.RecheckSocket(req); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// signedInRequest is a harness on db and ps with a user signed in, and a
// request with the user's session cookie.
func signedInRequest(b *testing.B, db string, ps live.PubSub) (*livetest.Harness, *http.Request) {
	h := livetest.New(b, db, livetest.Options{PubSub: ps})
	h.Register(b, "ada@example.com")
	cookie := h.SignInCookie(b, "ada@example.com")
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, h.URL(), nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header = livetest.CookieHeader(cookie)
	return h, req
}
