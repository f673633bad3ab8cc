package web_test

import (
	"maps"
	"net/http"
	"net/url"
	"testing"

	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/web"
)

var newPassword = url.Values{
	"current_password":      {"password123"},
	"password":              {"correct horse battery"},
	"password_confirmation": {"correct horse battery"},
}

func jsonOf(v url.Values) map[string]any {
	m := map[string]any{}
	for k := range v {
		m[k] = v.Get(k)
	}
	return m
}

// A password change signs every session of the user out ("password
// changed"), the changing one's old token included, and gives the changing
// session a fresh token that opens a new socket. Another user is not
// touched.
func TestPasswordChangeClosesEverySessionAndRenewsTheChangingOne(t *testing.T) {
	for _, db := range databases {
		for _, via := range []string{"form", "json"} {
			t.Run(db+"/"+via, func(t *testing.T) {
				h := livetest.New(t, db, livetest.Options{EndpointOptions: []live.Option{subscribeUser()}})
				ctx := testCtx(t)
				ada := h.Register(t, "ada@example.com")
				bob := h.Register(t, "bob@example.com")
				bobSocket := h.MustDial(t, ctx, livetest.Bearer(bob.Token))

				var changer http.Header
				var changerCookie *http.Cookie
				if via == "form" {
					changerCookie = h.SignInCookie(t, "ada@example.com")
					changer = livetest.CookieHeader(changerCookie)
				} else {
					changer = livetest.Bearer(h.SignIn(t, "ada@example.com").Token)
				}
				others := []http.Header{
					livetest.Bearer(ada.Token),
					livetest.CookieHeader(h.SignInCookie(t, "ada@example.com")),
				}
				own := h.MustDial(t, ctx, changer)
				var otherSockets []*livetest.Client
				for _, hd := range others {
					otherSockets = append(otherSockets, h.MustDial(t, ctx, hd))
				}

				var fresh http.Header
				if via == "form" {
					resp, body := h.PostForm(t, "/auth/user/password/change", newPassword, changer)
					if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
						t.Fatalf("change answered %d to %q: %s", resp.StatusCode, resp.Header.Get("Location"), body)
					}
					c := h.SessionCookie(resp)
					if c == nil || c.Value == "" || c.Value == changerCookie.Value {
						t.Fatalf("change set no fresh session cookie: %v", c)
					}
					before, err := h.Web.Sessions().Open(changerCookie.Value)
					if err != nil {
						t.Fatal(err)
					}
					after, err := h.Web.Sessions().Open(c.Value)
					if err != nil {
						t.Fatal(err)
					}
					if after[web.SessionJTI] == "" || after[web.SessionJTI] == before[web.SessionJTI] {
						t.Fatalf("the new session keeps jti %q (was %q)", after[web.SessionJTI], before[web.SessionJTI])
					}
					fresh = livetest.CookieHeader(c)
				} else {
					resp, body := h.PostJSON(t, "/auth/user/password/change", jsonOf(newPassword), changer)
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("change answered %d: %v", resp.StatusCode, body)
					}
					token, _ := body["token"].(string)
					if token == "" || "Bearer "+token == changer.Get("Authorization") {
						t.Fatalf("change answered no fresh token: %v", body)
					}
					if user, _ := body["user"].(map[string]any); user["email"] != "ada@example.com" || user["hashed_password"] != nil {
						t.Fatalf("change answered user %v", body["user"])
					}
					if c := h.SessionCookie(resp); c != nil {
						t.Fatalf("a bearer request got a session cookie: %v", c)
					}
					fresh = livetest.Bearer(token)
				}

				for _, c := range otherSockets {
					expectClose(t, ctx, c, "password changed")
				}
				// The changing session's socket was opened with the old
				// token, which is revoked too.
				expectClose(t, ctx, own, "password changed")
				expectOpen(t, ctx, h, bobSocket, userTopic(bob.Claims.Subject))

				renewed := h.MustDial(t, ctx, fresh)
				if renewed.SocketID == own.SocketID {
					t.Fatalf("the fresh token has the old socket id %s", own.SocketID)
				}
				expectOpen(t, ctx, h, renewed, userTopic(ada.Claims.Subject))
				for _, hd := range append(others, changer) {
					expectRefused(t, ctx, h, hd, http.StatusUnauthorized)
				}

				// The old credential cannot change the password again.
				again := url.Values{"current_password": {"correct horse battery"}, "password": {"another password"}, "password_confirmation": {"another password"}}
				if via == "form" {
					resp, _ := h.PostForm(t, "/auth/user/password/change", again, changer)
					if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/change-password?error=not+signed+in" {
						t.Fatalf("the old cookie changed the password: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
					}
				} else {
					resp, body := h.PostJSON(t, "/auth/user/password/change", jsonOf(again), changer)
					if resp.StatusCode != http.StatusUnauthorized {
						t.Fatalf("the old token changed the password: %d %v", resp.StatusCode, body)
					}
				}
				// The new password signs in; the old one does not.
				resp, body := h.PostJSON(t, "/auth/user/password/sign_in", map[string]any{"email": "ada@example.com", "password": "correct horse battery"}, nil)
				if resp.StatusCode != http.StatusOK || body["token"] == nil {
					t.Fatalf("sign in with the new password: %d %v", resp.StatusCode, body)
				}
				resp, body = h.PostJSON(t, "/auth/user/password/sign_in", map[string]any{"email": "ada@example.com", "password": "password123"}, nil)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("sign in with the old password: %d %v", resp.StatusCode, body)
				}
				expectOpen(t, ctx, h, renewed, userTopic(ada.Claims.Subject))
			})
		}
	}
}

// A failed change (wrong current password, mismatched confirmation) rolls
// back: no session is signed out.
func TestFailedPasswordChangeSignsNobodyOut(t *testing.T) {
	h := livetest.New(t, "sqlite", livetest.Options{EndpointOptions: []live.Option{subscribeUser()}})
	ctx := testCtx(t)
	ada := h.Register(t, "ada@example.com")
	other := h.MustDial(t, ctx, livetest.Bearer(h.SignIn(t, "ada@example.com").Token))
	changer := livetest.Bearer(ada.Token)
	own := h.MustDial(t, ctx, changer)
	for _, in := range []map[string]any{
		{"current_password": "wrong password", "password": "correct horse battery", "password_confirmation": "correct horse battery"},
		{"current_password": "password123", "password": "correct horse battery", "password_confirmation": "something else"},
	} {
		resp, body := h.PostJSON(t, "/auth/user/password/change", in, changer)
		if resp.StatusCode != http.StatusUnprocessableEntity || body["fields"] == nil {
			t.Fatalf("change with %v answered %d: %v", in, resp.StatusCode, body)
		}
	}
	expectOpen(t, ctx, h, other, userTopic(ada.Claims.Subject))
	expectOpen(t, ctx, h, own, userTopic(ada.Claims.Subject))
	h.MustDial(t, ctx, changer)
}

// A register with several bad fields is answered with every problem at
// once: in the JSON body's error and fields, and in the form's redirect.
func TestRegisterReportsEveryProblem(t *testing.T) {
	h := livetest.New(t, "sqlite", livetest.Options{})
	form := url.Values{"email": {"not-an-email"}, "password": {"short"}, "password_confirmation": {"other"}}
	want := map[string]any{
		"email":                 "must be a valid email address",
		"password":              "must be at least 8 characters long",
		"password_confirmation": "does not match the password",
	}
	msg := "email must be a valid email address; password must be at least 8 characters long; password_confirmation does not match the password"
	resp, body := h.PostJSON(t, "/auth/user/password/register", jsonOf(form), nil)
	fields, _ := body["fields"].(map[string]any)
	if resp.StatusCode != http.StatusUnprocessableEntity || body["error"] != msg || !maps.Equal(fields, want) {
		t.Errorf("JSON register: %d %v\nwant %d {error: %q, fields: %v}", resp.StatusCode, body, http.StatusUnprocessableEntity, msg, want)
	}
	resp, _ = h.PostForm(t, "/auth/user/password/register", form, nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/register?error="+url.QueryEscape(msg) {
		t.Errorf("form register: %d to %q, want %d to the form with every problem", resp.StatusCode, loc, http.StatusSeeOther)
	}
}
