package web_test

import (
	"bytes"
	"net/http"
	"net/url"
	"testing"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/web"
)

// The session cookie is HttpOnly and SameSite=Lax, and Secure exactly when
// the request came over TLS; a socket opens with it over ws and wss.
func TestSessionCookieAttributes(t *testing.T) {
	for _, tls := range []bool{false, true} {
		name := "http"
		if tls {
			name = "https"
		}
		t.Run(name, func(t *testing.T) {
			h := livetest.New(t, "sqlite", livetest.Options{TLS: tls})
			ctx := testCtx(t)
			h.Register(t, "ada@example.com")
			c := h.SignInCookie(t, "ada@example.com")
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure != tls || c.Path != "/" || c.MaxAge <= 0 {
				t.Fatalf("cookie %s: HttpOnly %v, SameSite %v, Secure %v, Path %q, MaxAge %d", name, c.HttpOnly, c.SameSite, c.Secure, c.Path, c.MaxAge)
			}
			h.MustDial(t, ctx, livetest.CookieHeader(c))

			resp, _ := h.PostForm(t, "/sign-out", nil, livetest.CookieHeader(c))
			cleared := h.SessionCookie(resp)
			if cleared == nil || cleared.MaxAge >= 0 || !cleared.HttpOnly || cleared.Secure != tls {
				t.Fatalf("cleared cookie %+v", cleared)
			}
		})
	}
}

// Signing in renews the session: a new cookie value, holding only the new
// token, whatever the request's cookie held before (no fixation); a session
// it replaces is signed out.
func TestSignInRenewsTheSession(t *testing.T) {
	h := livetest.New(t, "sqlite", livetest.Options{})
	ctx := testCtx(t)
	h.Register(t, "ada@example.com")
	first := h.SignInCookie(t, "ada@example.com")

	planted, err := h.Web.Sessions().Seal(web.Session{web.SessionJTI: "planted", "attacker": "was here", web.LiveSocketIDKey: "users_sessions:planted"})
	if err != nil {
		t.Fatal(err)
	}
	for _, prior := range []string{first.Value, planted} {
		resp, body := h.PostForm(t, "/auth/user/password/sign_in", url.Values{"email": {"ada@example.com"}, "password": {"password123"}},
			livetest.CookieHeader(&http.Cookie{Name: first.Name, Value: prior}))
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign in: %d %s", resp.StatusCode, body)
		}
		next := h.SessionCookie(resp)
		if next == nil || next.Value == prior {
			t.Fatalf("sign in did not renew the cookie")
		}
		sess, err := h.Web.Sessions().Open(next.Value)
		if err != nil {
			t.Fatal(err)
		}
		old, _ := h.Web.Sessions().Open(prior)
		if sess[web.SessionJTI] == "" || sess[web.SessionJTI] == old[web.SessionJTI] || sess["attacker"] != "" ||
			sess[web.LiveSocketIDKey] != "users_sessions:"+sess[web.SessionJTI] {
			t.Fatalf("renewed session %v (was %v)", sess, old)
		}
		c := h.MustDial(t, ctx, livetest.CookieHeader(next))
		if c.SocketID != sess[web.LiveSocketIDKey] {
			t.Fatalf("socket id %s, session says %s", c.SocketID, sess[web.LiveSocketIDKey])
		}
	}
	// Signing in over the first session signed it out.
	expectRefused(t, ctx, h, livetest.CookieHeader(first), http.StatusUnauthorized)
}

// A tampered cookie is ignored: it authenticates nothing, and the
// middleware clears it.
func TestTamperedCookieIsIgnored(t *testing.T) {
	h := livetest.New(t, "sqlite", livetest.Options{})
	ctx := testCtx(t)
	h.Register(t, "ada@example.com")
	c := h.SignInCookie(t, "ada@example.com")
	raw := []byte(c.Value)
	for i, tamper := range []func([]byte) []byte{
		func(b []byte) []byte { b[len(b)/2] ^= 1; return b },                           // a flipped bit
		func(b []byte) []byte { return b[:len(b)-1] },                                  // truncated
		func(b []byte) []byte { return append(b, 'A') },                                // extended
		func(b []byte) []byte { return bytes.Repeat([]byte("A"), len(b)) },             // replaced
		func(b []byte) []byte { return []byte("not base64!") },                         // garbage
		func(b []byte) []byte { return append(bytes.Clone(b[:12]), b[len(b)-40:]...) }, // spliced
	} {
		v := string(tamper(bytes.Clone(raw)))
		if v == c.Value {
			t.Fatalf("tamper %d changed nothing", i)
		}
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.AddCookie(&http.Cookie{Name: c.Name, Value: v})
		if sess := h.Web.Sessions().Load(req); len(sess) != 0 {
			t.Fatalf("tamper %d: the session loaded: %v", i, sess)
		}
		hd := livetest.CookieHeader(&http.Cookie{Name: c.Name, Value: v})
		expectRefused(t, ctx, h, hd, http.StatusUnauthorized)
		resp, _ := h.PostForm(t, "/auth/user/password/change", newPassword, hd)
		if loc := resp.Header.Get("Location"); loc != "/change-password?error=not+signed+in" {
			t.Fatalf("tamper %d: change went to %q", i, loc)
		}
		if cl := h.SessionCookie(resp); cl == nil || cl.MaxAge >= 0 {
			t.Fatalf("tamper %d: the bad cookie was not cleared", i)
		}
	}
	h.MustDial(t, ctx, livetest.CookieHeader(c))
}

// Rotating the cookie key keeps everyone signed in: a cookie sealed with
// the old key opens with NewSessions(newKey, oldKey), and new cookies are
// sealed with the new key.
func TestCookieKeyRotation(t *testing.T) {
	oldKey := livetest.CookieKey
	newKey := []byte("kiln-test-cookie-key-rotated-9876543210")
	before := livetest.New(t, "sqlite", livetest.Options{CookieKeys: [][]byte{oldKey}})
	ctx := testCtx(t)
	before.Register(t, "ada@example.com")
	oldCookie := before.SignInCookie(t, "ada@example.com")
	oldSess, err := before.Web.Sessions().Open(oldCookie.Value)
	if err != nil {
		t.Fatal(err)
	}

	newOnly, err := web.NewSessions(newKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newOnly.Open(oldCookie.Value); err == nil {
		t.Fatal("a cookie of the old key opened with the new key alone")
	}
	rotated, err := web.NewSessions(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := rotated.Open(oldCookie.Value)
	if err != nil || sess[web.SessionJTI] != oldSess[web.SessionJTI] {
		t.Fatalf("rotated open: %v %v", sess, err)
	}
	sealed, err := rotated.Seal(sess)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newOnly.Open(sealed); err != nil {
		t.Fatalf("a rotated seal does not open with the new key: %v", err)
	}
	oldOnly, _ := web.NewSessions(oldKey)
	if _, err := oldOnly.Open(sealed); err == nil {
		t.Fatal("a rotated seal opened with the old key: the old key still seals")
	}

	// End to end: on a server with the rotated keys, a cookie sealed with
	// the old key opens a socket; on one with the new key alone it does not.
	after := livetest.New(t, "sqlite", livetest.Options{CookieKeys: [][]byte{newKey, oldKey}})
	after.Register(t, "ada@example.com")
	s := after.SignIn(t, "ada@example.com")
	cookieSealedOld := cookieSealedWith(t, after, oldKey, s.Token, s)
	c := after.MustDial(t, ctx, cookieSealedOld)
	if c.SocketID != livetest.Template(s.Claims.SocketID()) {
		t.Fatalf("socket id %s", c.SocketID)
	}
	fresh := after.SignInCookie(t, "ada@example.com")
	if _, err := newOnly.Open(fresh.Value); err != nil {
		t.Fatalf("a cookie set after rotation is not sealed with the new key: %v", err)
	}
	unrotated := livetest.New(t, "sqlite", livetest.Options{CookieKeys: [][]byte{newKey}})
	unrotated.Register(t, "ada@example.com")
	s2 := unrotated.SignIn(t, "ada@example.com")
	expectRefused(t, ctx, unrotated, cookieSealedWith(t, unrotated, oldKey, s2.Token, s2), http.StatusUnauthorized)
}

// cookieSealedWith seals a session of s with key, as a server on that key
// would have.
func cookieSealedWith(t *testing.T, h *livetest.Harness, key []byte, token string, s *authentication.Session) http.Header {
	t.Helper()
	sessions, err := web.NewSessions(key)
	if err != nil {
		t.Fatal(err)
	}
	sess := web.Session{}
	h.Web.StoreInSession(sess, token, s.Claims)
	h.Web.SetLiveSocketID(sess, s.Claims)
	v, err := sessions.Seal(sess)
	if err != nil {
		t.Fatal(err)
	}
	return livetest.CookieHeader(&http.Cookie{Name: h.Web.Sessions().Name, Value: v})
}
