package main

// Auto sign-out in a real browser: the example runs as a process, and
// headless Chromium (Debian's, driven by chromedp) opens two windows with
// cookie jars of their own, signed in as the same user. What one window
// does signs the other out at once, and only the other.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kiln-go/kiln/internal/browsertest"
)

// signOutWithin is how soon a revocation must show in the other window.
const signOutWithin = 10 * time.Second

func TestBrowserAutoSignOut(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a browser")
	}
	chromium := browsertest.Chromium(t)
	app := startExample(t, exec.Command(buildExample(t)), time.Minute)
	b := startBrowser(t, chromium)
	artifacts := newArtifacts(t, app)

	t.Run("password change", func(t *testing.T) {
		email := fmt.Sprintf("change-%d@example.com", time.Now().UnixNano())
		first, second := b.window(t, artifacts, "first"), b.window(t, artifacts, "second")
		first.register(t, app.URL, email, "first password")
		second.signIn(t, app.URL, email, "first password")
		oldID := first.text(t, "#socket-id")

		first.navigate(t, app.URL+"/change-password")
		first.fill(t, map[string]string{"current_password": "first password", "password": "second password", "password_confirmation": "second password"})
		start := time.Now()
		first.submit(t, "#submit")

		second.waitSignedOut(t, "password changed", start)
		// The first window stays signed in, on a fresh session, and live.
		first.waitLive(t)
		if id := first.text(t, "#socket-id"); id == oldID || !strings.HasPrefix(id, "users_sessions:") {
			t.Errorf("the first window's socket id is %q after the change, was %q: want a fresh session's", id, oldID)
		}
		first.waitTick(t)
		if first.location(t) != app.URL+"/" {
			t.Errorf("the first window is at %s", first.location(t))
		}
		// The second window signs in with the new password only.
		second.signIn(t, app.URL, email, "second password")
	})

	t.Run("password change with fetch", func(t *testing.T) {
		// A single-page app changes the password with fetch(): its page
		// stays, and its socket comes back on the fresh session cookie.
		email := registerOverHTTP(t, app.URL, "spa", "first password")
		first, second := b.window(t, artifacts, "first"), b.window(t, artifacts, "second")
		first.signIn(t, app.URL, email, "first password")
		second.signIn(t, app.URL, email, "first password")
		oldID := first.text(t, "#socket-id")

		start := time.Now()
		first.eval(t, `window.kilnSamePage = "yes";
fetch("/auth/user/password/change", {
  method: "POST",
  headers: {Accept: "application/json"},
  body: new URLSearchParams({current_password: "first password", password: "second password", password_confirmation: "second password"}),
}).then((r) => { window.kilnChange = String(r.status); }, (e) => { window.kilnChange = String(e); });
"sent"`)
		first.waitFor(t, "the fetch() answered", `window.kilnChange !== undefined`, 10*time.Second)
		if got := first.eval(t, "window.kilnChange"); got != "200" {
			t.Fatalf("the fetch() password change answered %s", got)
		}
		second.waitSignedOut(t, "password changed", start)
		first.waitFor(t, "the first window live on a fresh session",
			fmt.Sprintf(`document.getElementById("status").dataset.status === "live" && document.getElementById("socket-id").textContent !== %q`, oldID), 10*time.Second)
		if id := first.text(t, "#socket-id"); !strings.HasPrefix(id, "users_sessions:") {
			t.Errorf("the first window's socket id is %q after the change: want a fresh session's", id)
		}
		if first.eval(t, `window.kilnSamePage || "reloaded"`) != "yes" || first.location(t) != app.URL+"/" {
			t.Errorf("the first window left its page: at %s", first.location(t))
		}
		first.waitTick(t)
		// The second window signs in with the new password only.
		second.signIn(t, app.URL, email, "second password")
	})

	t.Run("sign out everywhere", func(t *testing.T) {
		email := registerOverHTTP(t, app.URL, "everywhere", "a good password")
		first, second := b.window(t, artifacts, "first"), b.window(t, artifacts, "second")
		first.signIn(t, app.URL, email, "a good password")
		second.signIn(t, app.URL, email, "a good password")

		start := time.Now()
		first.submit(t, "#sign-out-everywhere")
		second.waitSignedOut(t, "signed out everywhere", start)
		first.waitFor(t, "the first window on /sign-in", `location.pathname === "/sign-in" && document.getElementById("email") !== null`, 10*time.Second)
		for _, w := range []*window{first, second} {
			w.navigate(t, app.URL+"/")
			if got := w.location(t); got != app.URL+"/sign-in" {
				t.Errorf("the %s window reaches %s after signing out everywhere, want /sign-in", w.name, got)
			}
		}
	})

	t.Run("revoke a session", func(t *testing.T) {
		email := registerOverHTTP(t, app.URL, "revoke", "a good password")
		first, second := b.window(t, artifacts, "first"), b.window(t, artifacts, "second")
		first.signIn(t, app.URL, email, "a good password")
		second.signIn(t, app.URL, email, "a good password")
		// The first window keeps a live tab open while another of its tabs
		// (same cookies) revokes the second window's session.
		sessions := first.tab(t, artifacts, "first-sessions")
		sessions.navigate(t, app.URL+"/sessions")
		secondJTI := strings.TrimPrefix(second.text(t, "#socket-id"), "users_sessions:")
		firstJTI := strings.TrimPrefix(first.text(t, "#socket-id"), "users_sessions:")
		row := func(jti string) string { return fmt.Sprintf(`tr[data-jti=%q]`, jti) }
		if got := sessions.text(t, row(firstJTI)+" td"); !strings.Contains(got, "(this session)") {
			t.Errorf("the first window's own row says %q, want (this session)", got)
		}
		if got := sessions.text(t, row(secondJTI)+" td"); strings.Contains(got, "(this session)") {
			t.Errorf("the second window's row says %q: it is not this session", got)
		}
		tick := first.text(t, "#clock")

		start := time.Now()
		sessions.submit(t, row(secondJTI)+" button.revoke")
		second.waitSignedOut(t, "revoked", start)

		if got := sessions.location(t); got != app.URL+"/sessions?notice=session+revoked" {
			t.Errorf("after the revoke the sessions tab is at %s", got)
		}
		if n := sessions.count(t, row(secondJTI)); n != 0 {
			t.Errorf("the revoked session is still listed")
		}
		// The revoking window is still live: same socket, clock ticking.
		first.waitFor(t, "the first window's clock ticking after the revoke",
			fmt.Sprintf(`document.getElementById("status").dataset.status === "live" && document.getElementById("clock").textContent !== %q`, tick), 5*time.Second)
		if got := first.text(t, "#socket-id"); got != "users_sessions:"+firstJTI {
			t.Errorf("the first window's socket id changed to %s", got)
		}
	})
}

// registerOverHTTP registers a fresh user with the JSON API and returns
// the email.
func registerOverHTTP(t *testing.T, base, name, password string) string {
	t.Helper()
	email := fmt.Sprintf("%s-%d@example.com", name, time.Now().UnixNano())
	req, err := http.NewRequest(http.MethodPost, base+"/auth/user/password/register", strings.NewReader(url.Values{
		"email": {email}, "password": {password}, "password_confirmation": {password}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("register %s: %d %v %v", email, resp.StatusCode, out, err)
	}
	return email
}

// browser is one headless Chromium with a fresh profile.
type browser struct {
	ctx context.Context
}

func startBrowser(t *testing.T, path string) *browser {
	t.Helper()
	profile, err := os.MkdirTemp("", "kiln-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The browser has stopped (cleanups run last to first); a child
		// process may still be writing, so this is best effort.
		if err := os.RemoveAll(profile); err != nil {
			t.Logf("remove the browser profile: %v", err)
		}
	})
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1000, 800),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	// The first run starts the browser, which lives as long as the
	// context of that run: no timeout here.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{ctx: ctx}
}

// window is a tab; windows made by browser.window have cookie jars of
// their own (a browser context each, like separate profiles).
type window struct {
	name string
	ctx  context.Context

	mu      sync.Mutex
	console []string
}

// window opens a tab in a new browser context, closed when t ends.
func (b *browser) window(t *testing.T, a *artifacts, name string) *window {
	t.Helper()
	return openTab(t, a, name, b.ctx, chromedp.WithNewBrowserContext())
}

// tab opens another tab that shares w's cookies.
func (w *window) tab(t *testing.T, a *artifacts, name string) *window {
	t.Helper()
	return openTab(t, a, name, w.ctx)
}

func openTab(t *testing.T, a *artifacts, name string, parent context.Context, opts ...chromedp.ContextOption) *window {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent, opts...)
	t.Cleanup(cancel)
	w := &window{name: name, ctx: ctx}
	messages := chromedp.Console(ctx) // opens the tab
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			w.mu.Lock()
			w.console = append(w.console, fmt.Sprintf("%s %s (%s:%d)", m.Time.Format("15:04:05.000"), m, m.URL, m.Line))
			w.mu.Unlock()
		}
	}()
	a.watch(t, w) // after cancel: cleanups run last to first, so the tab is still open
	return w
}

// run runs actions in the tab, failing t with what it was doing.
func (w *window) run(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s window: %s: %v", w.name, what, err)
	}
}

func (w *window) navigate(t *testing.T, u string) {
	t.Helper()
	w.run(t, "navigate to "+u, chromedp.Navigate(u))
}

// fill types into the inputs with these ids.
func (w *window) fill(t *testing.T, fields map[string]string) {
	t.Helper()
	for id, v := range fields {
		w.run(t, "type into #"+id, chromedp.SendKeys(chromedp.ID(id), v))
	}
}

// submit clicks a form's button and waits for the page it leads to.
func (w *window) submit(t *testing.T, selector string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, 15*time.Second)
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(selector))); err != nil {
		t.Fatalf("%s window: click %s: %v", w.name, selector, err)
	}
}

func (w *window) location(t *testing.T) string {
	t.Helper()
	return w.eval(t, "location.href")
}

func (w *window) text(t *testing.T, selector string) string {
	t.Helper()
	return w.eval(t, fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent`, selector))
}

func (w *window) count(t *testing.T, selector string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, 15*time.Second)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, selector)))
	if err != nil {
		t.Fatalf("%s window: count %s: %v", w.name, selector, err)
	}
	return n
}

func (w *window) eval(t *testing.T, expr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, 15*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("%s window: %s: %v", w.name, expr, err)
	}
	return s
}

// waitFor polls a JavaScript condition until it holds, across the page
// loads that happen meanwhile (a poll does not survive a navigation: it
// starts again on the new page).
func (w *window) waitFor(t *testing.T, what, condition string, timeout time.Duration) {
	t.Helper()
	if err := w.poll(condition, time.Now().Add(timeout)); err != nil {
		t.Fatalf("%s window: %s: not within %s: %v (at %s)", w.name, what, timeout, err, w.location(t))
	}
}

func (w *window) poll(condition string, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(w.ctx, deadline)
	defer cancel()
	var last error
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return errors.Join(context.DeadlineExceeded, last)
		}
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](condition,
			chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(left)))
		switch {
		case err == nil:
			return nil
		case errors.Is(err, chromedp.ErrPollingTimeout), ctx.Err() != nil:
			return errors.Join(err, last)
		}
		last = err // the page changed under the poll
	}
}

// register registers through the register form, and waits for the live
// page.
func (w *window) register(t *testing.T, base, email, password string) {
	t.Helper()
	w.navigate(t, base+"/register")
	w.fill(t, map[string]string{"email": email, "password": password, "password_confirmation": password})
	w.submit(t, "#submit")
	w.waitLive(t)
}

// signIn signs in through the sign-in form, and waits for the live page.
func (w *window) signIn(t *testing.T, base, email, password string) {
	t.Helper()
	w.navigate(t, base+"/sign-in")
	w.fill(t, map[string]string{"email": email, "password": password})
	w.submit(t, "#submit")
	w.waitLive(t)
}

// waitLive waits for the live page with its socket open.
func (w *window) waitLive(t *testing.T) {
	t.Helper()
	w.waitFor(t, "the live page, live", `location.pathname === "/" && document.getElementById("status").dataset.status === "live"`, 10*time.Second)
}

// waitTick waits for the server's clock to tick on the live page.
func (w *window) waitTick(t *testing.T) {
	t.Helper()
	first := w.text(t, "#clock")
	w.waitFor(t, "the clock ticking", fmt.Sprintf(`document.getElementById("clock").textContent !== %q && document.getElementById("clock").textContent !== "–"`, first), 5*time.Second)
}

// waitSignedOut waits until the window is on /sign-in showing "signed
// out: reason", at most signOutWithin after start.
func (w *window) waitSignedOut(t *testing.T, reason string, start time.Time) {
	t.Helper()
	condition := fmt.Sprintf(`location.pathname === "/sign-in" && (document.getElementById("error") || {}).textContent === %q`, "signed out: "+reason)
	if err := w.poll(condition, start.Add(signOutWithin)); err != nil {
		t.Fatalf("%s window: not on /sign-in with %q within %s: %v (at %s, showing %q)", w.name, "signed out: "+reason, signOutWithin, err,
			w.location(t), w.text(t, "#error"))
	}
	if got, want := w.location(t), "reason="+url.QueryEscape(reason); !strings.Contains(strings.ReplaceAll(got, "%20", "+"), want) {
		t.Errorf("%s window is at %s, want the reason in the query", w.name, got)
	}
}

// artifacts saves what a failed test saw: screenshots and console logs of
// its windows, and the app's log.
type artifacts struct {
	app *exampleProcess
	dir string
}

func newArtifacts(t *testing.T, app *exampleProcess) *artifacts {
	return &artifacts{app: app, dir: filepath.Join(moduleRoot(t), "testdata-artifacts",
		strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+"-"+time.Now().Format("20060102-150405"))}
}

// watch saves w's screenshot and console when t fails.
func (a *artifacts) watch(t *testing.T, w *window) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		prefix := filepath.Join(a.dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+"-"+w.name)
		if err := os.MkdirAll(a.dir, 0o755); err != nil {
			t.Logf("artifacts: %v", err)
			return
		}
		ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
		defer cancel()
		if png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
			_ = os.WriteFile(prefix+".png", png, 0o644)
		} else {
			t.Logf("artifacts: screenshot of the %s window: %v", w.name, err)
		}
		w.mu.Lock()
		console := strings.Join(w.console, "\n")
		w.mu.Unlock()
		_ = os.WriteFile(prefix+"-console.log", []byte(console+"\n"), 0o644)
		_ = os.WriteFile(filepath.Join(a.dir, "app.log"), []byte(a.app.Logs.String()), 0o644)
		t.Logf("the %s window's screenshot and console, and the app's log, are in %s", w.name, a.dir)
	})
}
