package web_test

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/revocation"
	"github.com/kiln-go/kiln/web"
)

// cookieFor seals a session for a token the way the sign-in routes do.
func cookieFor(t *testing.T, h *livetest.Harness, token string, claims *authentication.Claims) http.Header {
	t.Helper()
	sess := web.Session{}
	h.Web.StoreInSession(sess, token, claims)
	h.Web.SetLiveSocketID(sess, claims)
	v, err := h.Web.Sessions().Seal(sess)
	if err != nil {
		t.Fatal(err)
	}
	return livetest.CookieHeader(&http.Cookie{Name: h.Web.Sessions().Name, Value: v})
}

// An admin's Store.Revoke, from Go code, closes the token's socket with
// "revoked"; the user's other sessions stay.
func TestAdminRevokeClosesTheSocket(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			h := livetest.New(t, db, livetest.Options{EndpointOptions: []live.Option{subscribeUser()}})
			ctx := testCtx(t)
			ada := h.Register(t, "ada@example.com")
			second := h.SignIn(t, "ada@example.com")
			c1 := h.MustDial(t, ctx, livetest.Bearer(ada.Token))
			c2 := h.MustDial(t, ctx, cookieFor(t, h, second.Token, second.Claims))

			if err := h.Auth.Tokens().Revoke(ctx, ada.Token, revocation.Revoked); err != nil {
				t.Fatal(err)
			}
			expectClose(t, ctx, c1, "revoked")
			expectOpen(t, ctx, h, c2, userTopic(ada.Claims.Subject))

			if err := h.Auth.Tokens().RevokeJTI(ctx, second.Claims.JTI, second.Claims.Subject, revocation.Revoked); err != nil {
				t.Fatal(err)
			}
			expectClose(t, ctx, c2, "revoked")
			if err := h.Auth.Tokens().Revoke(ctx, ada.Token, revocation.Revoked); !errors.Is(err, tokenresource.ErrAlreadyRevoked) {
				t.Fatalf("second revoke: %v, want ErrAlreadyRevoked", err)
			}
		})
	}
}

// A revoked or expired token opens no socket (401 before the upgrade) and
// passes no route.
func TestRevokedAndExpiredTokensAreRefused(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			h := livetest.New(t, db, livetest.Options{})
			ctx := testCtx(t)
			ada := h.Register(t, "ada@example.com")
			user := ada.Record

			revoked := h.SignIn(t, "ada@example.com")
			if err := h.Auth.Tokens().Revoke(ctx, revoked.Token, revocation.Revoked); err != nil {
				t.Fatal(err)
			}
			expiredToken, expiredClaims, err := h.Auth.Issue(ctx, user, authentication.IssueOptions{Lifetime: -time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			forged := ada.Token[:len(ada.Token)-4] + "AAAA"

			for name, hd := range map[string]http.Header{
				"revoked bearer": livetest.Bearer(revoked.Token),
				"revoked cookie": cookieFor(t, h, revoked.Token, revoked.Claims),
				"expired bearer": livetest.Bearer(expiredToken),
				"expired cookie": cookieFor(t, h, expiredToken, expiredClaims),
				"forged bearer":  livetest.Bearer(forged),
				"nothing":        nil,
			} {
				t.Run(name, func(t *testing.T) {
					expectRefused(t, ctx, h, hd, http.StatusUnauthorized)
					resp, body := h.PostJSON(t, "/auth/user/password/change", jsonOf(newPassword), hd)
					if resp.StatusCode != http.StatusUnauthorized || body["error"] != "not signed in" {
						t.Fatalf("JSON change answered %d: %v", resp.StatusCode, body)
					}
					fresp, _ := h.PostForm(t, "/auth/user/password/change", newPassword, hd)
					if fresp.StatusCode != http.StatusSeeOther || fresp.Header.Get("Location") != "/change-password?error=not+signed+in" {
						t.Fatalf("form change answered %d to %q", fresp.StatusCode, fresp.Header.Get("Location"))
					}
					if hd.Get("Cookie") != "" {
						if c := h.SessionCookie(fresp); c == nil || c.MaxAge >= 0 {
							t.Fatalf("the stale session cookie was not cleared: %v", c)
						}
					}
				})
			}
			// None of it changed the password: the valid token still works
			// and the old password still signs in.
			h.MustDial(t, ctx, livetest.Bearer(ada.Token))
			h.SignIn(t, "ada@example.com")
		})
	}
}

// The endpoint refuses cross-origin upgrades with 403, and accepts
// same-origin ones, ones without an Origin (not a browser) and the allowed
// origins.
func TestCrossOriginUpgradeIsRefused(t *testing.T) {
	h := livetest.New(t, "sqlite", livetest.Options{EndpointOptions: []live.Option{live.WithAllowedOrigins("http://app.example")}})
	ctx := testCtx(t)
	ada := h.Register(t, "ada@example.com")
	withOrigin := func(origin string) http.Header {
		hd := livetest.Bearer(ada.Token)
		hd.Set("Origin", origin)
		return hd
	}
	expectRefused(t, ctx, h, withOrigin("http://evil.example"), http.StatusForbidden)
	expectRefused(t, ctx, h, withOrigin("null"), http.StatusForbidden)
	h.MustDial(t, ctx, withOrigin(h.Server.URL))
	h.MustDial(t, ctx, withOrigin("http://app.example"))
	h.MustDial(t, ctx, livetest.Bearer(ada.Token))

	// Without WithAllowedOrigins only the same origin passes.
	plain := livetest.New(t, "sqlite", livetest.Options{})
	bob := plain.Register(t, "bob@example.com")
	hd := livetest.Bearer(bob.Token)
	hd.Set("Origin", "http://app.example")
	expectRefused(t, ctx, plain, hd, http.StatusForbidden)
	hd.Set("Origin", plain.Server.URL)
	plain.MustDial(t, ctx, hd)
}

// A token that expires while its socket is open closes it with "expired".
func TestSocketClosesWhenItsTokenExpires(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			h := livetest.New(t, db, livetest.Options{EndpointOptions: []live.Option{subscribeUser()}})
			ctx := testCtx(t)
			ada := h.Register(t, "ada@example.com")
			token, claims, err := h.Auth.Issue(ctx, ada.Record, authentication.IssueOptions{Lifetime: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			short := h.MustDial(t, ctx, livetest.Bearer(token))
			shortCookie := h.MustDial(t, ctx, cookieFor(t, h, token, claims))
			long := h.MustDial(t, ctx, livetest.Bearer(ada.Token))
			expectClose(t, ctx, short, "expired")
			expectClose(t, ctx, shortCookie, "expired")
			if now := time.Now(); now.Before(claims.ExpiresAt) {
				t.Fatalf("closed at %s, before the expiry %s", now, claims.ExpiresAt)
			}
			expectOpen(t, ctx, h, long, userTopic(ada.Claims.Subject))
			expectRefused(t, ctx, h, livetest.Bearer(token), http.StatusUnauthorized)
		})
	}
}

// Cross-origin browser posts to the auth routes are refused by
// CrossOriginProtection, and revoke nothing; same-origin ones and trusted
// origins pass.
func TestCrossOriginPostsAreRefused(t *testing.T) {
	h := livetest.New(t, "sqlite", livetest.Options{
		EndpointOptions: []live.Option{subscribeUser()},
		WebOptions:      []web.Option{web.WithTrustedOrigins("https://trusted.example")},
	})
	ctx := testCtx(t)
	ada := h.Register(t, "ada@example.com")
	cookie := h.SignInCookie(t, "ada@example.com")
	c := h.MustDial(t, ctx, livetest.CookieHeader(cookie))
	signIn := url.Values{"email": {"ada@example.com"}, "password": {"password123"}}

	crossSite := func(extra ...string) http.Header {
		hd := livetest.CookieHeader(cookie)
		for i := 0; i+1 < len(extra); i += 2 {
			hd.Set(extra[i], extra[i+1])
		}
		return hd
	}
	for _, tc := range []struct {
		path string
		form url.Values
		hd   http.Header
	}{
		{"/sign-out", nil, crossSite("Sec-Fetch-Site", "cross-site")},
		{"/sign-out", nil, crossSite("Origin", "http://evil.example")},
		{"/auth/user/log_out_everywhere", nil, crossSite("Sec-Fetch-Site", "cross-site")},
		{"/auth/user/password/change", newPassword, crossSite("Sec-Fetch-Site", "cross-site")},
		{"/auth/user/password/sign_in", signIn, crossSite("Sec-Fetch-Site", "cross-site")},
		{"/auth/user/password/register", url.Values{"email": {"eve@example.com"}, "password": {"password123"}, "password_confirmation": {"password123"}}, crossSite("Sec-Fetch-Site", "cross-site")},
	} {
		resp, body := h.PostForm(t, tc.path, tc.form, tc.hd)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-origin POST %s (%v) answered %d: %s", tc.path, tc.hd, resp.StatusCode, body)
		}
		if c := h.SessionCookie(resp); c != nil {
			t.Errorf("cross-origin POST %s set a cookie", tc.path)
		}
	}
	expectOpen(t, ctx, h, c, userTopic(ada.Claims.Subject))
	h.MustDial(t, ctx, livetest.CookieHeader(cookie))

	for _, hd := range []http.Header{
		{"Sec-Fetch-Site": {"same-origin"}},
		{"Origin": {h.Server.URL}},
		{"Origin": {"https://trusted.example"}, "Sec-Fetch-Site": {"cross-site"}},
	} {
		resp, body := h.PostForm(t, "/auth/user/password/sign_in", signIn, hd)
		if resp.StatusCode != http.StatusSeeOther || h.SessionCookie(resp) == nil {
			t.Errorf("sign in with %v answered %d: %s", hd, resp.StatusCode, body)
		}
	}
	// A same-origin sign-out works.
	resp, _ := h.PostForm(t, "/sign-out", nil, crossSite("Sec-Fetch-Site", "same-origin"))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("same-origin sign-out answered %d", resp.StatusCode)
	}
	expectClose(t, ctx, c, "signed out")
}
