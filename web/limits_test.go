package web_test

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/internal/livetest"
)

// TestSignInIsRateLimited: after ten wrong passwords for one identity, the
// eleventh attempt — even with the right password — answers 429 with
// Retry-After, and never reaches the password check; another identity is
// not affected. A successful sign-in does not count.
func TestSignInIsRateLimited(t *testing.T) {
	h := livetest.New(t, "sqlite", livetest.Options{})
	h.Register(t, "ada@example.com")
	h.Register(t, "bob@example.com")
	for i := range 12 {
		resp, _ := h.PostForm(t, "/auth/user/password/sign_in", url.Values{"email": {"bob@example.com"}, "password": {"password123"}}, http.Header{"Accept": {"application/json"}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("successful sign-in %d answered %d", i, resp.StatusCode)
		}
	}
	for i := range 10 {
		resp, _ := h.PostForm(t, "/auth/user/password/sign_in", url.Values{"email": {"ada@example.com"}, "password": {"wrong-password"}}, http.Header{"Accept": {"application/json"}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password %d answered %d, want 401", i, resp.StatusCode)
		}
	}
	for _, pw := range []string{"wrong-password", "password123"} {
		resp, body := h.PostJSON(t, "/auth/user/password/sign_in", map[string]any{"email": "ADA@example.com", "password": pw}, nil)
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("attempt after the limit with %q answered %d %v, want 429", pw, resp.StatusCode, body)
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
		}
		if body["error"] == nil || body["token"] != nil {
			t.Errorf("body %v", body)
		}
	}
	resp, _ := h.PostForm(t, "/auth/user/password/sign_in", url.Values{"email": {"bob@example.com"}, "password": {"password123"}}, http.Header{"Accept": {"application/json"}})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("another identity answered %d", resp.StatusCode)
	}
}

// TestResetRequestAnswersBeforeLookingUp: the answer to a reset request
// comes before the mail is sent (here, while the sender is held), so it
// takes the same time whether or not the identity exists.
func TestResetRequestAnswersBeforeLookingUp(t *testing.T) {
	mailbox := &accountstest.Mailbox{Hold: make(chan struct{})}
	h := livetest.New(t, "sqlite", livetest.Options{Mailbox: mailbox})
	h.Register(t, "ada@example.com")
	resp, _ := h.PostForm(t, "/auth/user/password/reset_request", url.Values{"email": {"ada@example.com"}}, http.Header{"Accept": {"application/json"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reset request answered %d", resp.StatusCode)
	}
	if mailbox.Last("ada@example.com") != "" {
		t.Fatal("the mail was sent before the answer")
	}
	mailbox.Hold <- struct{}{}
	waitMail(t, h, "ada@example.com")
	resp, body := h.PostJSON(t, "/auth/user/password/reset_request", map[string]any{"email": " "}, nil)
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("a blank identity answered %d %v, want 422", resp.StatusCode, body)
	}
}

// waitMail returns the last reset token mailed to email, waiting for it:
// a reset request sends its mail after answering, and the harness's next
// request on the same connection is served after that.
func waitMail(t *testing.T, h *livetest.Harness, email string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if tok := h.Mailbox.Last(email); tok != "" {
			return tok
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reset mail to %s", email)
		}
		h.Do(t, http.MethodGet, "/healthz", nil, nil)
	}
}
