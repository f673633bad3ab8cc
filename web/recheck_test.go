package web_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/revocation"
	"github.com/kiln-go/kiln/web"
)

// TestLiveRecheck: the glue's LiveAuthenticator is a live.Rechecker: the
// check the endpoint makes once a socket is registered accepts the bearer
// token or the session cookie that authenticated it, and refuses them
// once revoked, and a request with neither.
func TestLiveRecheck(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			h := livetest.New(t, db, livetest.Options{})
			rc, ok := h.Web.LiveAuthenticator().(live.Rechecker)
			if !ok {
				t.Fatal("LiveAuthenticator is not a live.Rechecker")
			}
			ctx := context.Background()
			ada := h.Register(t, "ada@example.com")
			cookie := h.SignInCookie(t, "ada@example.com")
			for _, c := range []struct {
				name   string
				header http.Header
				revoke func() error
			}{
				{"bearer", livetest.Bearer(ada.Token), func() error { return h.Auth.Tokens().Revoke(ctx, ada.Token, revocation.SignedOut) }},
				{"cookie", livetest.CookieHeader(cookie), func() error {
					_, err := h.Auth.Tokens().RevokeAllForSubject(ctx, ada.Claims.Subject, revocation.LogOutEverywhere, tokenresource.RevokeAllOptions{})
					return err
				}},
			} {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL(), nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header = c.header
				if err := rc.RecheckSocket(req); err != nil {
					t.Fatalf("%s: a good session refused: %v", c.name, err)
				}
				if err := c.revoke(); err != nil {
					t.Fatal(err)
				}
				if err := rc.RecheckSocket(req); !errors.Is(err, web.ErrNotSignedIn) {
					t.Fatalf("%s: a revoked session: %v; want ErrNotSignedIn", c.name, err)
				}
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := rc.RecheckSocket(req); !errors.Is(err, web.ErrNotSignedIn) {
				t.Fatalf("no credentials: %v; want ErrNotSignedIn", err)
			}
		})
	}
}
