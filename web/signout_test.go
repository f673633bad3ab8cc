package web_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// Two sessions of one user: signing one out closes its socket only, with
// 4001 "signed out"; the other keeps its socket and its broadcasts.
func TestSignOutClosesOnlyThatSessionsSocket(t *testing.T) {
	for _, db := range databases {
		for _, via := range []string{"cookie", "bearer"} {
			t.Run(db+"/"+via, func(t *testing.T) {
				h := livetest.New(t, db, livetest.Options{EndpointOptions: []live.Option{subscribeUser()}})
				ctx := testCtx(t)
				reg := h.Register(t, "ada@example.com")
				topic := userTopic(reg.Claims.Subject)

				var leaving http.Header
				if via == "cookie" {
					leaving = livetest.CookieHeader(h.SignInCookie(t, "ada@example.com"))
				} else {
					leaving = livetest.Bearer(h.SignIn(t, "ada@example.com").Token)
				}
				staying := livetest.CookieHeader(h.SignInCookie(t, "ada@example.com"))
				gone := h.MustDial(t, ctx, leaving)
				kept := h.MustDial(t, ctx, staying)
				if gone.SocketID == kept.SocketID {
					t.Fatalf("two sessions share the socket id %s", gone.SocketID)
				}
				expectOpen(t, ctx, h, gone, topic)
				expectOpen(t, ctx, h, kept, topic)

				resp, body := h.PostForm(t, "/sign-out", nil, leaving)
				if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/sign-in" {
					t.Fatalf("sign-out answered %d to %q: %s", resp.StatusCode, resp.Header.Get("Location"), body)
				}
				if c := h.SessionCookie(resp); c == nil || c.MaxAge >= 0 {
					t.Fatalf("sign-out did not clear the session cookie: %v", c)
				}
				expectClose(t, ctx, gone, "signed out")
				expectOpen(t, ctx, h, kept, topic)
				if n := h.Endpoint.Len(); n != 1 {
					t.Fatalf("%d sockets open, want 1", n)
				}

				expectRefused(t, ctx, h, leaving, http.StatusUnauthorized)
				again := h.MustDial(t, ctx, staying)
				if again.SocketID != kept.SocketID {
					t.Fatalf("the kept session dialed again as %s, want %s", again.SocketID, kept.SocketID)
				}
			})
		}
	}
}

// Signing out with the session cookie and a bearer token of another
// session revokes both, as ClearSession promises.
func TestSignOutRevokesCookieAndBearerTokens(t *testing.T) {
	h := livetest.New(t, "sqlite", livetest.Options{EndpointOptions: []live.Option{subscribeUser()}})
	ctx := testCtx(t)
	reg := h.Register(t, "ada@example.com")
	cookie := livetest.CookieHeader(h.SignInCookie(t, "ada@example.com"))
	bearer := livetest.Bearer(h.SignIn(t, "ada@example.com").Token)
	bystander := h.MustDial(t, ctx, livetest.Bearer(reg.Token))
	byCookie := h.MustDial(t, ctx, cookie)
	byBearer := h.MustDial(t, ctx, bearer)

	both := cookie.Clone()
	both.Set("Authorization", bearer.Get("Authorization"))
	resp, body := h.PostForm(t, "/sign-out", nil, both)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out answered %d: %s", resp.StatusCode, body)
	}
	expectClose(t, ctx, byCookie, "signed out")
	expectClose(t, ctx, byBearer, "signed out")
	expectOpen(t, ctx, h, bystander, userTopic(reg.Claims.Subject))
	expectRefused(t, ctx, h, cookie, http.StatusUnauthorized)
	expectRefused(t, ctx, h, bearer, http.StatusUnauthorized)

	// Signing out again is harmless: nothing is left to revoke.
	resp, body = h.PostForm(t, "/sign-out", nil, both)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("second sign-out answered %d: %s", resp.StatusCode, body)
	}
	expectOpen(t, ctx, h, bystander, userTopic(reg.Claims.Subject))
}

// POST /sign-out goes around Middleware: revoking a bearer token reads
// neither the user nor the token's row, only writes the revocation; a
// session cookie costs one read of its row, which the revocation needs.
// The revocation has no actor; its record names the subject. Another
// method still gets 405.
func TestSignOutReadsNoUser(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			var mu sync.Mutex
			var revoked []resource.Notification
			h := livetest.New(t, db, livetest.Options{TokenNotifiers: []resource.Notifier{
				resource.NotifierFunc(func(_ context.Context, n resource.Notification) error {
					if _, ok := n.Metadata[tokenresource.ReasonKey]; ok {
						mu.Lock()
						revoked = append(revoked, n)
						mu.Unlock()
					}
					return nil
				})}})
			ctx := testCtx(t)
			subject := h.Register(t, "ada@example.com").Claims.Subject
			hook := &testdb.Statements{}
			h.Domain.DataLayer().(*bunlayer.Layer).DB().AddQueryHook(hook)
			for _, via := range []string{"bearer", "cookie"} {
				var hd http.Header
				if via == "bearer" {
					hd = livetest.Bearer(h.SignIn(t, "ada@example.com").Token)
				} else {
					hd = livetest.CookieHeader(h.SignInCookie(t, "ada@example.com"))
				}
				conn := h.MustDial(t, ctx, hd)
				hook.Record()
				resp, body := h.PostForm(t, "/sign-out", nil, hd)
				var selects []string
				queries := hook.Stop()
				for i, verb := range testdb.Verbs(queries) {
					if verb == "SELECT" {
						selects = append(selects, queries[i])
					}
				}
				if resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("%s: sign-out answered %d: %s", via, resp.StatusCode, body)
				}
				expectClose(t, ctx, conn, "signed out")
				want := 0
				if via == "cookie" {
					want = 1 // the session row, whose subject the revocation writes
				}
				if len(selects) != want {
					t.Errorf("%s: sign-out ran %d reads, want %d: %q", via, len(selects), want, selects)
				}
				for _, q := range selects {
					if strings.Contains(q, `"users"`) {
						t.Errorf("%s: sign-out read the user: %s", via, q)
					}
				}
				expectRefused(t, ctx, h, hd, http.StatusUnauthorized)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(revoked) != 2 {
				t.Fatalf("%d revocations notified, want 2", len(revoked))
			}
			for _, n := range revoked {
				if n.Actor != nil {
					t.Errorf("a sign-out's revocation has the actor %v, want none", n.Actor)
				}
				if got := n.Record.(tokenresource.Record).TokenFields().Subject; got != subject {
					t.Errorf("a sign-out's revocation names %q, want %q", got, subject)
				}
			}
			resp, _ := h.Do(t, http.MethodGet, "/sign-out", nil, nil)
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("GET /sign-out answered %d, want 405", resp.StatusCode)
			}
		})
	}
}
