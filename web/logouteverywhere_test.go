package web_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
)

func TestLogOutEverywhereClosesEverySocket(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			h := livetest.New(t, db, livetest.Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s1 := h.Register(t, "ada@example.com")
			s2 := h.SignIn(t, "ada@example.com")
			c1, _, err := h.Dial(ctx, livetest.Bearer(s1.Token))
			if err != nil {
				t.Fatal(err)
			}
			c2, _, err := h.Dial(ctx, livetest.Bearer(s2.Token))
			if err != nil {
				t.Fatal(err)
			}
			user := s1.Record
			if _, err := h.LogOutEverywhere.Run(ctx, h.Domain, user); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*livetest.Client{c1, c2} {
				code, reason, err := c.WaitClose(ctx)
				t.Log(c.SocketID, code, reason, err)
				if code != 4001 {
					t.Fatalf("code %d", code)
				}
			}
			_, status, err := h.Dial(ctx, livetest.Bearer(s1.Token))
			t.Log(status, err)
			if status != 401 {
				t.Fatalf("status %d", status)
			}
		})
	}
}

// The log_out_everywhere route closes every socket of the user, whatever
// authenticated it, with "signed out everywhere"; another user's sockets
// stay open. With a cookie it answers a redirect and clears the cookie,
// with a bearer token and Accept: application/json it answers JSON.
func TestLogOutEverywhereRoute(t *testing.T) {
	for _, db := range databases {
		for _, via := range []string{"cookie", "bearer"} {
			t.Run(db+"/"+via, func(t *testing.T) {
				h := livetest.New(t, db, livetest.Options{EndpointOptions: []live.Option{subscribeUser()}})
				ctx := testCtx(t)
				ada := h.Register(t, "ada@example.com")
				bob := h.Register(t, "bob@example.com")
				adaCookie := livetest.CookieHeader(h.SignInCookie(t, "ada@example.com"))
				adaBearer := livetest.Bearer(h.SignIn(t, "ada@example.com").Token)
				adas := []*livetest.Client{
					h.MustDial(t, ctx, livetest.Bearer(ada.Token)),
					h.MustDial(t, ctx, adaCookie),
					h.MustDial(t, ctx, adaBearer),
				}
				bobs := []*livetest.Client{
					h.MustDial(t, ctx, livetest.Bearer(bob.Token)),
					h.MustDial(t, ctx, livetest.CookieHeader(h.SignInCookie(t, "bob@example.com"))),
				}

				if via == "cookie" {
					resp, body := h.PostForm(t, "/auth/user/log_out_everywhere", nil, adaCookie)
					if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/sign-in" {
						t.Fatalf("log out everywhere answered %d to %q: %s", resp.StatusCode, resp.Header.Get("Location"), body)
					}
					if c := h.SessionCookie(resp); c == nil || c.MaxAge >= 0 {
						t.Fatalf("the session cookie was not cleared: %v", c)
					}
				} else {
					resp, body := h.PostJSON(t, "/auth/user/log_out_everywhere", map[string]any{}, adaBearer)
					if resp.StatusCode != http.StatusOK || body["ok"] != true {
						t.Fatalf("log out everywhere answered %d: %v", resp.StatusCode, body)
					}
				}
				for _, c := range adas {
					expectClose(t, ctx, c, "signed out everywhere")
				}
				for _, c := range bobs {
					expectOpen(t, ctx, h, c, userTopic(bob.Claims.Subject))
				}
				if n := h.Endpoint.Len(); n != len(bobs) {
					t.Fatalf("%d sockets open, want bob's %d", n, len(bobs))
				}
				for _, hd := range []http.Header{livetest.Bearer(ada.Token), adaCookie, adaBearer} {
					expectRefused(t, ctx, h, hd, http.StatusUnauthorized)
				}
				// Ada signs in again: a new session works.
				h.MustDial(t, ctx, livetest.Bearer(h.SignIn(t, "ada@example.com").Token))
			})
		}
	}
}

// Without a session the route refuses and revokes nothing.
func TestLogOutEverywhereRouteNeedsASession(t *testing.T) {
	h := livetest.New(t, "sqlite", livetest.Options{EndpointOptions: []live.Option{subscribeUser()}})
	ctx := testCtx(t)
	ada := h.Register(t, "ada@example.com")
	c := h.MustDial(t, ctx, livetest.Bearer(ada.Token))
	resp, body := h.PostJSON(t, "/auth/user/log_out_everywhere", map[string]any{}, nil)
	if resp.StatusCode != http.StatusUnauthorized || body["error"] != "not signed in" {
		t.Fatalf("answered %d: %v", resp.StatusCode, body)
	}
	expectOpen(t, ctx, h, c, userTopic(ada.Claims.Subject))
}
