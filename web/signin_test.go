package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/web"
)

// Signing in, registering or resetting over a session signs that session
// out ("signed out"): its token no longer authenticates and its socket
// closes. The new session works.
func TestSignInOverASessionRevokesIt(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			h := livetest.New(t, db, livetest.Options{EndpointOptions: []live.Option{subscribeUser()}})
			ctx := testCtx(t)
			ada := h.Register(t, "ada@example.com")
			h.Register(t, "bob@example.com")
			bystander := h.MustDial(t, ctx, livetest.Bearer(ada.Token))

			current := h.SignInCookie(t, "ada@example.com")
			over := func(path string, form url.Values) {
				t.Helper()
				old := livetest.CookieHeader(current)
				socket := h.MustDial(t, ctx, old)
				resp, body := h.PostForm(t, path, form, old)
				if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
					t.Fatalf("%s over a session: %d to %q: %s", path, resp.StatusCode, resp.Header.Get("Location"), body)
				}
				next := h.SessionCookie(resp)
				if next == nil || next.Value == "" || next.Value == current.Value {
					t.Fatalf("%s set no fresh session cookie: %v", path, next)
				}
				expectClose(t, ctx, socket, "signed out")
				expectRefused(t, ctx, h, old, http.StatusUnauthorized)
				h.MustDial(t, ctx, livetest.CookieHeader(next))
				current = next
			}
			over("/auth/user/password/sign_in", url.Values{"email": {"ada@example.com"}, "password": {"password123"}})
			over("/auth/user/password/sign_in", url.Values{"email": {"bob@example.com"}, "password": {"password123"}})
			over("/auth/user/password/register", url.Values{"email": {"cy@example.com"}, "password": {"password123"}, "password_confirmation": {"password123"}})
			// Bob's reset, posted from Cy's session.
			resp, body := h.PostForm(t, "/auth/user/password/reset_request", url.Values{"email": {"bob@example.com"}}, nil)
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("reset request: %d %s", resp.StatusCode, body)
			}
			over("/auth/user/password/reset", url.Values{"reset_token": {waitMail(t, h, "bob@example.com")},
				"password": {"a new password"}, "password_confirmation": {"a new password"}})

			// Sessions that were not signed in over are untouched.
			expectOpen(t, ctx, h, bystander, userTopic(ada.Claims.Subject))
		})
	}
}

// A failed sign-in over a session leaves it signed in.
func TestFailedSignInOverASessionKeepsIt(t *testing.T) {
	h := livetest.New(t, "sqlite", livetest.Options{})
	ctx := testCtx(t)
	h.Register(t, "ada@example.com")
	cookie := livetest.CookieHeader(h.SignInCookie(t, "ada@example.com"))
	resp, _ := h.PostForm(t, "/auth/user/password/sign_in", url.Values{"email": {"ada@example.com"}, "password": {"wrong password"}}, cookie)
	if resp.StatusCode != http.StatusSeeOther || h.SessionCookie(resp) != nil {
		t.Fatalf("failed sign-in: %d, cookie %v", resp.StatusCode, h.SessionCookie(resp))
	}
	h.MustDial(t, ctx, cookie)
}

// The User-Agent kept in a token's extra data is printable UTF-8 of at most
// MaxUserAgentBytes, cut on a character boundary, however long the header.
func TestUserAgentIsBounded(t *testing.T) {
	h := livetest.New(t, "sqlite", livetest.Options{})
	ctx := testCtx(t)
	h.Register(t, "ada@example.com")
	for _, c := range []struct{ name, ua, want string }{
		{"short", "Mozilla/5.0 (X11)", "Mozilla/5.0 (X11)"},
		{"900 KB", strings.Repeat("a", 900<<10), strings.Repeat("a", web.MaxUserAgentBytes)},
		{"a character across the cut", "a" + strings.Repeat("é", 400), "a" + strings.Repeat("é", (web.MaxUserAgentBytes-1)/2)},
		{"a character ending at the cut", strings.Repeat("é", 400), strings.Repeat("é", web.MaxUserAgentBytes/2)},
		{"invalid UTF-8 and a tab", "a\xffb\tc", "abc"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := h.PostForm(t, "/auth/user/password/sign_in", url.Values{"email": {"ada@example.com"}, "password": {"password123"}},
				http.Header{"User-Agent": {c.ua}})
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("sign in: %d %s", resp.StatusCode, body)
			}
			sess, err := h.Web.Sessions().Open(h.SessionCookie(resp).Value)
			if err != nil {
				t.Fatal(err)
			}
			row, err := h.Auth.Tokens().Get(ctx, sess[web.SessionJTI], tokenresource.PurposeUser)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := row.ExtraData["user_agent"].(string)
			if got != c.want || len(got) > web.MaxUserAgentBytes || !utf8.ValidString(got) {
				t.Fatalf("stored user agent %q (%d bytes), want %q", got, len(got), c.want)
			}
		})
	}
}
