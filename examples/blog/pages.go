package main

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"

	"github.com/google/uuid"

	"github.com/kiln-go/kiln/examples/accounts/users"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/web"
)

const layout = `{{define "layout"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · kiln blog</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style nonce="{{.Nonce}}">
body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}
nav{display:flex;gap:1rem;align-items:center;flex-wrap:wrap;border-bottom:1px solid #ddd;padding-bottom:.5rem;margin-bottom:1rem}
nav form{display:inline;margin:0}
label{display:block;margin:.6rem 0 .2rem}
input,textarea{width:100%;max-width:36rem;padding:.4rem;font:inherit}
textarea{min-height:5rem}
button{font:inherit;padding:.3rem .9rem;margin-top:.8rem;cursor:pointer}
nav button{margin:0}
.error{background:#fde8e8;border:1px solid #e99;padding:.5rem .8rem}
.byline{color:#666;font-size:.9rem;margin-top:0}
.body{white-space:pre-wrap}
#status[data-status=live]{color:#080}#status[data-status=signed-out]{color:#b00}
</style></head><body>
<nav><strong>kiln blog</strong>
{{if .User}}<a href="/">Posts</a><span>{{.User.Email}}</span><span id="status" data-status="connecting">connecting…</span>
<form method="post" action="/sign-out"><button id="sign-out">Sign out</button></form>
{{else}}<a href="/sign-in">Sign in</a><a href="/register">Register</a>{{end}}
</nav>
{{if .Error}}<p class="error" id="error">{{.Error}}</p>{{end}}
{{template "body" .}}
{{if .User}}<script src="/live/client.js"></script>
<script nonce="{{.Nonce}}">
(function () {
  // Every signed-in page holds a live socket, so that it signs out the
  // moment its session is revoked; a post's page also hears its comments.
  var status = document.getElementById("status"), list = document.getElementById("comments");
  KilnLive.connect({
    url: {{.LiveURL}},
    onStatus: function (s) { status.dataset.status = s; status.textContent = s; },
    onEvent: function (event, c) {
      if (event !== "comment" || !list || document.getElementById("comment-" + c.id)) return;
      var li = document.createElement("li"), who = document.createElement("strong"), body = document.createElement("span");
      li.className = "comment"; li.id = "comment-" + c.id;
      who.textContent = c.author; body.className = "body"; body.textContent = c.body;
      li.append(who, " ", body);
      list.append(li);
    }
  });
})();
</script>{{end}}
</body></html>{{end}}`

var pages = map[string]string{
	"sign-in": `{{define "body"}}<h1>Sign in</h1>
<form method="post" action="/auth/user/password/sign_in">
<label for="email">Email</label><input id="email" name="email" type="email" required autocomplete="username">
<label for="password">Password</label><input id="password" name="password" type="password" required autocomplete="current-password">
<button id="submit">Sign in</button></form>
<p><a href="/register">Register</a></p>{{end}}`,

	"register": `{{define "body"}}<h1>Register</h1>
<form method="post" action="/auth/user/password/register">
<label for="email">Email</label><input id="email" name="email" type="email" required autocomplete="username">
<label for="password">Password (at least 8 characters)</label><input id="password" name="password" type="password" required autocomplete="new-password">
<label for="password_confirmation">Confirm password</label><input id="password_confirmation" name="password_confirmation" type="password" required autocomplete="new-password">
<button id="submit">Register</button></form>{{end}}`,

	"posts": `{{define "body"}}<h1>Posts</h1>
{{range .Posts.Records}}<article class="post" id="post-{{.ID}}"><h2><a href="/posts/{{.ID}}">{{.Title}}</a></h2>
<p class="byline">by {{.Author.Email}}, {{.CreatedAt.Format "2 Jan 2006 15:04"}}</p></article>
{{else}}<p>No posts yet.</p>{{end}}
{{if .Posts.More}}<p><a id="next" href="/?after={{.Posts.Next}}">Next page</a></p>{{end}}
<h2>Write a post</h2>
<form method="post" action="/posts">
<label for="title">Title</label><input id="title" name="title" required maxlength="200">
<label for="body">Text</label><textarea id="body" name="body" required></textarea>
<button id="submit">Publish</button></form>{{end}}`,

	"post": `{{define "body"}}<article><h1>{{.Post.Title}}</h1>
<p class="byline">by {{.Post.Author.Email}}, {{.Post.CreatedAt.Format "2 Jan 2006 15:04"}}</p>
<div class="body">{{.Post.Body}}</div></article>
<h2>Comments</h2>
<ol id="comments">{{range .Post.Comments}}
<li class="comment" id="comment-{{.ID}}"><strong>{{.Author.Email}}</strong> <span class="body">{{.Body}}</span></li>{{end}}
</ol>
<form method="post" action="/posts/{{.Post.ID}}/comments">
<label for="body">Your comment</label><textarea id="body" name="body" required maxlength="2000"></textarea>
<button id="submit">Comment</button></form>{{end}}`,
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
	Title string
	User  *users.User
	Error string
	Posts resource.Page[Post]
	Post  *Post
	// LiveURL is where the page's live socket connects.
	LiveURL string
	// Nonce lets the page's inline style and script run under the
	// Content-Security-Policy of web.SecurityHeaders.
	Nonce string
}

func (a *app) render(w http.ResponseWriter, r *http.Request, name string, v view) {
	v.User = user(r)
	v.Nonce = web.CSPNonce(r.Context())
	v.Error = takeFlash(w, r)
	if reason := r.URL.Query().Get("reason"); reason != "" && v.Error == "" {
		v.Error = "signed out: " + reason
	}
	if v.LiveURL == "" {
		v.LiveURL = "/live/websocket"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := templates[name].ExecuteTemplate(w, "layout", v); err != nil {
		a.logger.Error("blog: render", "page", name, "err", err)
	}
}

// user is the signed-in user, or nil.
func user(r *http.Request) *users.User {
	u, _ := web.CurrentUser(r.Context()).(*users.User)
	return u
}

// flashCookie carries an error message to the page a failed post goes
// back to. A cookie, not the URL: a link cannot put words in the page.
const flashCookie = "blog_error"

// setFlash keeps msg for the next page this browser renders.
func setFlash(w http.ResponseWriter, msg string) {
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: url.QueryEscape(msg), Path: "/", MaxAge: 60,
		HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// takeFlash returns the kept message, if any, and forgets it.
func takeFlash(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	msg, err := url.QueryUnescape(c.Value)
	if err != nil {
		return ""
	}
	return msg
}

// fail answers an action's error: invalid input goes back to the page
// it came from, which shows the message once; the rest gets its status.
func (a *app) fail(w http.ResponseWriter, r *http.Request, back string, err error) {
	status, msg := web.StatusOf(err)
	switch {
	case status == http.StatusUnprocessableEntity && back != "":
		setFlash(w, msg)
		http.Redirect(w, r, back, http.StatusSeeOther)
	case errors.Is(err, resource.ErrNotFound):
		takeFlash(w, r) // a message for a page that is not there
		http.NotFound(w, r)
	default:
		if status >= http.StatusInternalServerError {
			a.logger.Error("blog: action failed", "path", r.URL.Path, "err", err)
		}
		http.Error(w, msg, status)
	}
}

func (a *app) signInPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, "sign-in", view{Title: "Sign in"})
}

func (a *app) registerPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, "register", view{Title: "Register"})
}

// postsPage shows a page of posts, newest first, with their authors: the
// page after the cursor ?after= when it is given.
func (a *app) postsPage(w http.ResponseWriter, r *http.Request) {
	page, err := newest.Page(r.Context(), a.domain, resource.NoInput{},
		resource.PageRequest{After: r.URL.Query().Get("after")}, resource.Load("author"))
	if err != nil {
		a.fail(w, r, "", err)
		return
	}
	a.render(w, r, "posts", view{Title: "Posts", Posts: page})
}

// postPage shows a post with its author, and its comments with theirs.
func (a *app) postPage(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	post, err := show.Run(r.Context(), a.domain, ByID{ID: id}, resource.Load("author", "comments.author"))
	if err != nil {
		a.fail(w, r, "", err)
		return
	}
	a.render(w, r, "post", view{Title: post.Title, Post: post, LiveURL: "/live/websocket?post=" + post.ID.String()})
}

// publish publishes a post by the signed-in user.
func (a *app) publish(w http.ResponseWriter, r *http.Request) {
	form, err := web.PostForm(r)
	if err != nil {
		a.fail(w, r, "", err)
		return
	}
	ctx := resource.WithActor(r.Context(), user(r))
	post, err := publish.Run(ctx, a.domain, NewPost{Title: form.Get("title"), Body: form.Get("body")})
	if err != nil {
		a.fail(w, r, "/", err)
		return
	}
	http.Redirect(w, r, "/posts/"+post.ID.String(), http.StatusSeeOther)
}

// comment comments on a post as the signed-in user; commentFeed pushes
// the comment to the post's open pages once it is committed.
func (a *app) comment(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	form, err := web.PostForm(r)
	if err != nil {
		a.fail(w, r, "", err)
		return
	}
	ctx := resource.WithActor(r.Context(), user(r))
	c, err := comment.Run(ctx, a.domain, NewComment{PostID: id, Body: form.Get("body")})
	if err != nil {
		a.fail(w, r, "/posts/"+id.String(), err)
		return
	}
	http.Redirect(w, r, "/posts/"+id.String()+"#comment-"+c.ID.String(), http.StatusSeeOther)
}
