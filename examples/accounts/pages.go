package main

import (
	"errors"
	"html/template"
	"net/http"
	"time"

	"github.com/kiln-go/kiln/examples/accounts/users"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
	"github.com/kiln-go/kiln/web"
)

const layout = `{{define "layout"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · kiln accounts</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style nonce="{{.Nonce}}">
body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}
nav{display:flex;gap:1rem;align-items:center;flex-wrap:wrap;border-bottom:1px solid #ddd;padding-bottom:.5rem;margin-bottom:1rem}
nav form{display:inline;margin:0}
label{display:block;margin:.6rem 0 .2rem}
input[type=email],input[type=password]{width:100%;max-width:22rem;padding:.4rem}
button,input{font:inherit}
button{padding:.3rem .9rem;margin-top:.8rem;cursor:pointer}
#submit{display:block}
nav button,td button{margin:0}
.error{background:#fde8e8;border:1px solid #e99;padding:.5rem .8rem}
.notice{background:#e8f4fd;border:1px solid #9be;padding:.5rem .8rem}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eee;padding:.4rem;text-align:left;font-size:.9rem}
#status[data-status=live]{color:#080}#status[data-status=signed-out]{color:#b00}
code{font-size:.85rem}
</style></head><body>
<nav><strong>kiln accounts</strong>
{{if .User}}<a href="/">Live</a><a href="/sessions">Your sessions</a><a href="/change-password">Change password</a>{{if .Dev}}<a href="/dev/mailbox">Mailbox</a>{{end}}
<span>{{.User.Email}}</span>
<form method="post" action="/sign-out"><button id="sign-out">Sign out</button></form>
<form method="post" action="/auth/user/log_out_everywhere"><button id="sign-out-everywhere">Sign out everywhere</button></form>
{{else}}<a href="/sign-in">Sign in</a><a href="/register">Register</a>{{if .Dev}}<a href="/dev/mailbox">Mailbox</a>{{end}}{{end}}
</nav>
{{if .Error}}<p class="error" id="error">{{.Error}}</p>{{end}}
{{if .Notice}}<p class="notice" id="notice">{{.Notice}}</p>{{end}}
{{template "body" .}}
</body></html>{{end}}`

var pages = map[string]string{
	"sign-in": `{{define "body"}}<h1>Sign in</h1>
<form method="post" action="/auth/user/password/sign_in">
<label for="email">Email</label><input id="email" name="email" type="email" required autocomplete="username">
<label for="password">Password</label><input id="password" name="password" type="password" required autocomplete="current-password">
<button id="submit">Sign in</button></form>
<p><a href="/register">Register</a> · <a href="/reset-request">Forgot your password?</a></p>{{end}}`,

	"register": `{{define "body"}}<h1>Register</h1>
<form method="post" action="/auth/user/password/register">
<label for="email">Email</label><input id="email" name="email" type="email" required autocomplete="username">
<label for="password">Password (at least 8 characters)</label><input id="password" name="password" type="password" required autocomplete="new-password">
<label for="password_confirmation">Confirm password</label><input id="password_confirmation" name="password_confirmation" type="password" required autocomplete="new-password">
<button id="submit">Register</button></form>{{end}}`,

	"live": `{{define "body"}}<h1>Live</h1>
<p>Signed in as <strong>{{.User.Email}}</strong>. This page holds a live socket: sign out, change the
password or revoke this session from another window and it closes at once.</p>
<p>Connection: <strong id="status" data-status="connecting">connecting…</strong></p>
<p>Server time, pushed over the socket: <strong id="clock">–</strong></p>
<p>Socket id: <code id="socket-id">{{.SocketID}}</code></p>
<p id="reason"></p>
<script src="/live/client.js"></script>
<script nonce="{{.Nonce}}">
(function () {
  var status = document.getElementById("status");
  KilnLive.connect({
    onStatus: function (s, d) {
      status.dataset.status = s;
      status.textContent = s;
      if (s === "live") document.getElementById("socket-id").textContent = d.socketID;
      if (s === "signed-out") document.getElementById("reason").textContent = "signed out: " + d.reason;
    },
    onEvent: function (event, payload) {
      if (event === "tick") document.getElementById("clock").textContent = payload.time;
    }
  });
})();
</script>{{end}}`,

	"change-password": `{{define "body"}}<h1>Change password</h1>
<p>Your other sessions will be signed out; this one stays signed in.</p>
<form method="post" action="/auth/user/password/change">
<label for="current_password">Current password</label><input id="current_password" name="current_password" type="password" required autocomplete="current-password">
<label for="password">New password</label><input id="password" name="password" type="password" required autocomplete="new-password">
<label for="password_confirmation">Confirm new password</label><input id="password_confirmation" name="password_confirmation" type="password" required autocomplete="new-password">
<button id="submit">Change password</button></form>{{end}}`,

	"reset-request": `{{define "body"}}<h1>Reset your password</h1>
<form method="post" action="/auth/user/password/reset_request">
<label for="email">Email</label><input id="email" name="email" type="email" required>
<button id="submit">Send a reset link</button></form>
{{if .Dev}}<p>The mail arrives in the <a href="/dev/mailbox">development mailbox</a>.</p>{{end}}{{end}}`,

	"reset": `{{define "body"}}<h1>Choose a new password</h1>
<form method="post" action="/auth/user/password/reset">
<input type="hidden" name="reset_token" value="{{.Token}}">
<label for="password">New password</label><input id="password" name="password" type="password" required autocomplete="new-password">
<label for="password_confirmation">Confirm new password</label><input id="password_confirmation" name="password_confirmation" type="password" required autocomplete="new-password">
<button id="submit">Set password</button></form>{{end}}`,

	"sessions": `{{define "body"}}<h1>Your sessions</h1>
<table id="sessions"><tr><th>Device</th><th>Signed in</th><th>Expires</th><th></th></tr>
{{range .Sessions}}<tr data-jti="{{.JTI}}"><td>{{.Device}}{{if .Current}} <strong>(this session)</strong>{{end}}</td>
<td>{{.SignedIn.Format "2006-01-02 15:04:05"}}</td><td>{{.Expires.Format "2006-01-02 15:04"}}</td>
<td><form method="post" action="/sessions/revoke"><input type="hidden" name="jti" value="{{.JTI}}"><button class="revoke">Revoke</button></form></td></tr>
{{end}}</table>{{end}}`,

	"mailbox": `{{define "body"}}<h1>Development mailbox</h1>
<p>Reset mails land here instead of being sent.</p>
{{range .Mails}}<p class="mail">To <strong>{{.To}}</strong> at {{.Sent.Format "15:04:05"}}: <a href="{{.Link}}">reset your password</a></p>
{{else}}<p>No mail yet.</p>{{end}}{{end}}`,
}

var templates = func() map[string]*template.Template {
	out := map[string]*template.Template{}
	for name, body := range pages {
		out[name] = template.Must(template.Must(template.New(name).Parse(layout)).Parse(body))
	}
	return out
}()

// view is what every page renders.
type view struct {
	Title    string
	User     *users.User
	Error    string
	Notice   string
	SocketID string
	Token    string
	Sessions []sessionRow
	Mails    []Mail
	// Dev shows the development mailbox's links.
	Dev bool
	// Nonce lets the page's inline style and script run under the
	// Content-Security-Policy of web.SecurityHeaders.
	Nonce string
}

func (a *app) render(w http.ResponseWriter, r *http.Request, name string, v view) {
	v.Dev = a.mailbox != nil
	v.Nonce = web.CSPNonce(r.Context())
	if v.User == nil {
		if u, ok := web.CurrentUser(r.Context()).(*users.User); ok {
			v.User = u
		}
	}
	q := r.URL.Query()
	if v.Error == "" {
		v.Error = q.Get("error")
	}
	if reason := q.Get("reason"); reason != "" && v.Error == "" {
		v.Error = "signed out: " + reason
	}
	if v.Notice == "" {
		v.Notice = q.Get("notice")
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := templates[name].ExecuteTemplate(w, "layout", v); err != nil {
		a.logger.Error("accounts: render", "page", name, "err", err)
	}
}

func (a *app) livePage(w http.ResponseWriter, r *http.Request) {
	u, p, ok := a.currentUser(w, r)
	if !ok {
		return
	}
	a.render(w, r, "live", view{Title: "Live", User: u, SocketID: p.SocketID})
}

func (a *app) signInPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, "sign-in", view{Title: "Sign in"})
}

func (a *app) registerPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, "register", view{Title: "Register"})
}

func (a *app) changePasswordPage(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := a.currentUser(w, r); ok {
		a.render(w, r, "change-password", view{Title: "Change password"})
	}
}

func (a *app) resetRequestPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, "reset-request", view{Title: "Reset your password"})
}

func (a *app) resetPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, "reset", view{Title: "Choose a new password", Token: r.URL.Query().Get("token")})
}

func (a *app) mailboxPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, "mailbox", view{Title: "Mailbox", Mails: a.mailbox.Mails()})
}

// sessionRow is one session on the sessions page.
type sessionRow struct {
	JTI      string
	Device   string
	SignedIn time.Time
	Expires  time.Time
	Current  bool
}

func (a *app) sessionsPage(w http.ResponseWriter, r *http.Request) {
	u, p, ok := a.currentUser(w, r)
	if !ok {
		return
	}
	rows, err := users.SessionsOf.Run(r.Context(), a.domain, users.BySubject{Subject: p.Subject})
	if err != nil {
		http.Error(w, "cannot list sessions", http.StatusInternalServerError)
		return
	}
	v := view{Title: "Your sessions", User: u}
	for _, t := range rows {
		device, _ := t.ExtraData["user_agent"].(string)
		if device == "" {
			device = "unknown device"
		}
		v.Sessions = append(v.Sessions, sessionRow{JTI: t.JTI, Device: device, SignedIn: t.CreatedAt.Local(),
			Expires: t.ExpiresAt.Local(), Current: t.JTI == p.JTI})
	}
	a.render(w, r, "sessions", v)
}

// revokeSession revokes one of the current user's sessions; its live
// socket closes at once.
func (a *app) revokeSession(w http.ResponseWriter, r *http.Request) {
	_, p, ok := a.currentUser(w, r)
	if !ok {
		return
	}
	// web.PostForm reads the form with a bound and refuses multipart
	// bodies, so nothing is left in temporary files.
	form, err := web.PostForm(r)
	if err != nil {
		status, msg := web.StatusOf(err)
		http.Error(w, msg, status)
		return
	}
	jti := form.Get("jti")
	if jti == "" || len(form["jti"]) > 1 {
		http.Error(w, "jti: one session id is required", http.StatusBadRequest)
		return
	}
	row, err := a.auth.Tokens().Get(r.Context(), jti, tokenresource.PurposeUser)
	if err == nil && row.Subject != p.Subject {
		err = errNotYours
	}
	if err == nil {
		err = a.auth.Tokens().RevokeJTI(r.Context(), jti, p.Subject, revocation.Revoked)
	}
	switch {
	case errors.Is(err, resource.ErrNotFound), errors.Is(err, errNotYours), errors.Is(err, tokenresource.ErrAlreadyRevoked):
		http.Redirect(w, r, "/sessions?error=that+session+is+already+gone", http.StatusSeeOther)
	case err != nil:
		a.logger.Error("accounts: revoke session", "err", err)
		http.Error(w, "cannot revoke the session; it is still signed in, try again", http.StatusServiceUnavailable)
	case jti == p.JTI:
		a.web.Sessions().Clear(w, r)
		http.Redirect(w, r, "/sign-in?reason=revoked", http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/sessions?notice=session+revoked", http.StatusSeeOther)
	}
}
