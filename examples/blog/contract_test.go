package main

// The example's HTTP surface, driven with plain HTTP clients and real
// WebSockets against the app that build() makes, on SQLite and, when
// KILN_TEST_POSTGRES_URL is set, on PostgreSQL.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/uptrace/bun"

	"github.com/kiln-go/kiln/cli"
	"github.com/kiln-go/kiln/dsl"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/revocation"
)

const testPassword = "correct horse battery"

func TestBlog(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			a := startApp(t, db)
			t.Run("pages", a.testPages)
			t.Run("publish", a.testPublish)
			t.Run("post page", a.testPostPage)
			t.Run("comment", a.testComment)
			t.Run("live feed", a.testLiveFeed)
			t.Run("auto sign-out", a.testAutoSignOut)
			t.Run("cross origin", a.testCrossOrigin)
			// On an app of its own: it reads every post.
			t.Run("pages of posts", func(t *testing.T) { startApp(t, db).testPagesOfPosts(t) })
		})
	}
}

// blogApp is the example as build() makes it, migrated and started,
// behind an httptest server.
type blogApp struct {
	url string
	db  *bun.DB
}

// lockedBuffer collects the app's log, shown when a test fails.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startApp builds the example on a SQLite file in a fresh folder, or on a
// PostgreSQL schema of its own, and serves it until t ends.
func startApp(t *testing.T, database string) *blogApp {
	t.Helper()
	dir := t.TempDir()
	cfg := cli.Config{
		Addr:               "127.0.0.1:0",
		DataDir:            dir,
		DatabaseURL:        "sqlite:" + filepath.Join(dir, "blog.db"),
		TokenSigningSecret: "blog-test-token-signing-secret-0123456789abcdef",
		CookieKeys:         []string{"blog-test-cookie-key-0123456789abcdef0123"},
		DSL:                dsl.FromEnv("KILN", nil),
	}
	if database == "postgres" {
		cfg.DatabaseURL = testdb.PostgresSchemaURL(t)
	}
	cfg.DSL.Register(blog().Sections...) // as the command line does
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	rt, err := build(ctx, &cfg, logger)
	if err != nil {
		cancel()
		t.Fatalf("build: %v", err)
	}
	if err := rt.Layer.Migrate(ctx); err != nil {
		cancel()
		rt.Close()
		t.Fatalf("migrate: %v", err)
	}
	rt.Start(ctx)
	srv := httptest.NewServer(rt.Handler)
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := rt.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		srv.Close()
		cancel()
		rt.Close()
		if t.Failed() {
			t.Logf("the app's log:\n%s", logs)
		}
	})
	return &blogApp{url: srv.URL, db: rt.Layer.DB()}
}

// rows counts the rows of a table.
func (a *blogApp) rows(t *testing.T, table string) int {
	t.Helper()
	n, err := a.db.NewSelect().Table(table).Count(context.Background())
	if err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return int(n)
}

// client is one user agent: a cookie jar, no redirects followed.
type client struct {
	t     *testing.T
	app   *blogApp
	jar   *cookiejar.Jar
	hc    *http.Client
	email string
}

func (a *blogApp) client(t *testing.T) *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, app: a, jar: jar, hc: &http.Client{
		Jar:           jar,
		Timeout:       time.Minute, // a guard against hangs: bcrypt on a busy machine is slow
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// register registers a new user with the register form and returns the
// client, signed in.
func (a *blogApp) register(t *testing.T, name string) *client {
	t.Helper()
	c := a.client(t)
	c.email = name + "-" + uuid.NewString()[:8] + "@example.com"
	resp := c.post("/auth/user/password/register", url.Values{
		"email": {c.email}, "password": {testPassword}, "password_confirmation": {testPassword}})
	wantRedirect(t, "register", resp, "/")
	if c.session() == "" {
		t.Fatal("register set no session cookie")
	}
	return c
}

// session is the client's session cookie value, "" when it has none.
func (c *client) session() string {
	u, _ := url.Parse(c.app.url)
	for _, ck := range c.jar.Cookies(u) {
		if ck.Name == "kiln_session" {
			return ck.Value
		}
	}
	return ""
}

func (c *client) do(method, path string, body io.Reader, header http.Header) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.app.url+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp, string(b)
}

func (c *client) get(path string) (*http.Response, string) {
	c.t.Helper()
	return c.do(http.MethodGet, path, nil, nil)
}

// page gets a page that must answer 200.
func (c *client) page(path string) string {
	c.t.Helper()
	resp, body := c.get(path)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET %s = %d, want 200: %s", path, resp.StatusCode, body)
	}
	return body
}

// post posts a form the way a browser does.
func (c *client) post(path string, form url.Values) *http.Response {
	c.t.Helper()
	resp, _ := c.do(http.MethodPost, path, strings.NewReader(form.Encode()),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	return resp
}

var postPath = regexp.MustCompile(`^/posts/([0-9a-f-]{36})$`)

// publish publishes a post with the form and returns its id.
func (c *client) publish(title, body string) string {
	c.t.Helper()
	resp := c.post("/posts", url.Values{"title": {title}, "body": {body}})
	m := postPath.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || m == nil {
		c.t.Fatalf("publish %q answered %d to %q, want 303 to /posts/<id>", title, resp.StatusCode, resp.Header.Get("Location"))
	}
	return m[1]
}

var commentPath = regexp.MustCompile(`^/posts/([0-9a-f-]{36})#comment-([0-9a-f-]{36})$`)

// comment comments on a post with the form and returns the comment's id.
func (c *client) comment(post, body string) string {
	c.t.Helper()
	resp := c.post("/posts/"+post+"/comments", url.Values{"body": {body}})
	m := commentPath.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || m == nil || m[1] != post {
		c.t.Fatalf("comment answered %d to %q, want 303 to /posts/%s#comment-<id>", resp.StatusCode, resp.Header.Get("Location"), post)
	}
	return m[2]
}

func wantRedirect(t *testing.T, what string, resp *http.Response, location string) {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != location {
		t.Errorf("%s answered %d, Location %q; want 303 to %q", what, resp.StatusCode, resp.Header.Get("Location"), location)
	}
}

func (a *blogApp) testPages(t *testing.T) {
	c := a.client(t)
	for _, path := range []string{"/", "/posts/" + uuid.NewString()} {
		resp, _ := c.get(path)
		wantRedirect(t, "GET "+path+" signed out", resp, "/sign-in")
	}
	// A post signed out is refused, not redirected.
	if resp := c.post("/posts", url.Values{"title": {"t"}, "body": {"b"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("publish signed out = %d, want 401", resp.StatusCode)
	}
	for path, action := range map[string]string{"/sign-in": "/auth/user/password/sign_in", "/register": "/auth/user/password/register"} {
		if body := c.page(path); !strings.Contains(body, `action="`+action+`"`) {
			t.Errorf("GET %s has no form to %s", path, action)
		}
	}
	// Signed in, the posts page opens a live socket.
	ada := a.register(t, "ada")
	body := ada.page("/")
	for _, want := range []string{ada.email, `action="/posts"`, `src="/live/client.js"`, `url: "/live/websocket"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the posts page lacks %s", want)
		}
	}
}

func (a *blogApp) testPublish(t *testing.T) {
	ada := a.register(t, "ada")
	id := ada.publish("On engines", "The analytical engine <weaves> patterns.")
	body := ada.page("/posts/" + id)
	for _, want := range []string{"<h1>On engines</h1>", "by " + ada.email, "The analytical engine &lt;weaves&gt; patterns."} {
		if !strings.Contains(body, want) {
			t.Errorf("the post page lacks %q", want)
		}
	}
	// The author is the signed-in user.
	var author string
	if err := a.db.NewSelect().Table("posts").Column("author_id").Where("id = ?", id).Scan(context.Background(), &author); err != nil {
		t.Fatal(err)
	}
	var adaID string
	if err := a.db.NewSelect().Table("users").Column("id").Where("email = ?", ada.email).Scan(context.Background(), &adaID); err != nil {
		t.Fatal(err)
	}
	if author != adaID {
		t.Errorf("the post's author_id is %s, want ada's %s", author, adaID)
	}
	// Invalid input goes back to the posts page, with every problem.
	before := a.rows(t, "posts")
	wantRedirect(t, "publish nothing", ada.post("/posts", url.Values{}), "/")
	if got := ada.page("/"); !strings.Contains(got, `id="error">title is required; body is required<`) {
		t.Errorf("the posts page does not show the errors")
	}
	if got := ada.page("/"); strings.Contains(got, `id="error"`) {
		t.Errorf("the posts page shows the error a second time")
	}
	// A link cannot put words in the page.
	if got := ada.page("/?error=" + url.QueryEscape("call 555")); strings.Contains(got, "call 555") {
		t.Errorf("the posts page shows text from its URL")
	}
	if n := a.rows(t, "posts"); n != before {
		t.Errorf("an invalid publish wrote %d posts", n-before)
	}
	resp, _ := ada.get("/posts/" + uuid.NewString())
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET an unknown post = %d, want 404", resp.StatusCode)
	}
	resp, _ = ada.get("/posts/not-a-uuid")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /posts/not-a-uuid = %d, want 404", resp.StatusCode)
	}
}

// comments matches the comments of a post page: author, body.
var comments = regexp.MustCompile(`<li class="comment" id="comment-([0-9a-f-]{36})"><strong>([^<]*)</strong> <span class="body">([^<]*)</span></li>`)

func (a *blogApp) testPostPage(t *testing.T) {
	ada, bob := a.register(t, "ada"), a.register(t, "bob")
	id := ada.publish("Notes", "On the engine.")
	first := bob.comment(id, "Brilliant")
	second := ada.comment(id, "Thank you, <Bob>")
	got := comments.FindAllStringSubmatch(bob.page("/posts/"+id), -1)
	want := [][]string{{first, bob.email, "Brilliant"}, {second, ada.email, "Thank you, &lt;Bob&gt;"}}
	if len(got) != len(want) {
		t.Fatalf("the post page shows %d comments, want %d", len(got), len(want))
	}
	for i, w := range want {
		if g := got[i][1:]; g[0] != w[0] || g[1] != w[1] || g[2] != w[2] {
			t.Errorf("comment %d = %q, want %q", i, g, w)
		}
	}
	if body := bob.page("/posts/" + id); !strings.Contains(body, `url: "/live/websocket?post=`+id+`"`) {
		t.Errorf("the post page's socket does not ask for the post's comments")
	}
}

func (a *blogApp) testComment(t *testing.T) {
	ada := a.register(t, "ada")
	id := ada.publish("Comments", "Say something.")
	ada.comment(id, "Something")
	before := a.rows(t, "comments")
	wantRedirect(t, "an empty comment", ada.post("/posts/"+id+"/comments", url.Values{"body": {""}}), "/posts/"+id)
	if got := ada.page("/posts/" + id); !strings.Contains(got, `id="error">body is required<`) {
		t.Errorf("the post page does not show the error")
	}
	nowhere := uuid.NewString()
	wantRedirect(t, "a comment on no post", ada.post("/posts/"+nowhere+"/comments", url.Values{"body": {"x"}}), "/posts/"+nowhere)
	if resp, _ := ada.get("/posts/" + nowhere); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the redirect to a missing post = %d, want 404", resp.StatusCode)
	}
	if got := ada.page("/"); strings.Contains(got, `id="error"`) {
		t.Errorf("the missing post's message shows on the next page")
	}
	resp := ada.post("/posts/not-a-uuid/comments", url.Values{"body": {"x"}})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("a comment on /posts/not-a-uuid = %d, want 404", resp.StatusCode)
	}
	if resp := a.client(t).post("/posts/"+id+"/comments", url.Values{"body": {"x"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a comment signed out = %d, want 401", resp.StatusCode)
	}
	if n := a.rows(t, "comments"); n != before {
		t.Errorf("refused comments wrote %d rows", n-before)
	}
}

// socket is a live socket of a page.
type socket struct {
	t    *testing.T
	conn *websocket.Conn
}

// open opens the live socket of the page whose socket URL is path, as
// the page's script does, and reads its hello.
func (c *client) open(path string) *socket {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	header := http.Header{"Cookie": {"kiln_session=" + c.session()}}
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(c.app.url, "http")+path, header)
	if err != nil {
		c.t.Fatalf("dial %s: %v", path, err)
	}
	c.t.Cleanup(func() { conn.Close() })
	s := &socket{t: c.t, conn: conn}
	if f := s.next(); f.Event != "hello" {
		c.t.Fatalf("first frame = %s, want hello", f.Event)
	}
	return s
}

// next reads the next frame.
func (s *socket) next() live.Frame {
	s.t.Helper()
	_ = s.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var f live.Frame
	if err := s.conn.ReadJSON(&f); err != nil {
		s.t.Fatalf("read a frame: %v", err)
	}
	return f
}

// nextComment reads the next frame, which must be a comment.
func (s *socket) nextComment() feedComment {
	s.t.Helper()
	f := s.next()
	var c feedComment
	if f.Event != "comment" || json.Unmarshal(f.Payload, &c) != nil {
		s.t.Fatalf("frame = %s %s, want a comment", f.Event, f.Payload)
	}
	return c
}

// closed reads until the server closes the socket, and returns the close
// code and reason.
func (s *socket) closed() (int, string) {
	s.t.Helper()
	_ = s.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		if _, _, err := s.conn.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Text
			}
			s.t.Fatalf("the socket ended without a close frame: %v", err)
		}
	}
}

func (a *blogApp) testLiveFeed(t *testing.T) {
	ada, bob := a.register(t, "ada"), a.register(t, "bob")
	engines := ada.publish("Engines", "Cogs.")
	looms := ada.publish("Looms", "Cards.")
	onEngines := ada.open("/live/websocket?post=" + engines)
	onLooms := ada.open("/live/websocket?post=" + looms)

	// Bob's comment on Engines reaches the Engines page, once committed.
	id := bob.comment(engines, "Turning <now>")
	if c := onEngines.nextComment(); c.ID.String() != id || c.Author != bob.email || c.Body != "Turning <now>" {
		t.Errorf("the Engines page got %+v, want comment %s by %s", c, id, bob.email)
	}
	// The Looms page did not get it: its first comment is its own post's,
	// published after (the transport keeps the order).
	id = bob.comment(looms, "Weaving")
	if c := onLooms.nextComment(); c.ID.String() != id || c.Body != "Weaving" {
		t.Errorf("the Looms page's first comment is %+v, want %s on Looms", c, id)
	}
	// A socket with a post id that does not parse is subscribed to nothing
	// more, and still works as the page's live socket.
	ada.open("/live/websocket?post=" + url.QueryEscape("clock"))
}

func (a *blogApp) testAutoSignOut(t *testing.T) {
	ada := a.register(t, "ada")
	id := ada.publish("Sign out", "Watch the socket.")
	postSocket := ada.open("/live/websocket?post=" + id)
	listSocket := ada.open("/live/websocket")
	session := ada.session()
	wantRedirect(t, "sign out", ada.post("/sign-out", nil), "/sign-in")
	want := live.ReasonText(revocation.SignedOut)
	for name, s := range map[string]*socket{"post page": postSocket, "posts page": listSocket} {
		if code, reason := s.closed(); code != live.CloseSignedOut || reason != want {
			t.Errorf("the %s's socket closed with %d %q, want %d %q", name, code, reason, live.CloseSignedOut, want)
		}
	}
	// The revoked session opens nothing.
	stale := a.client(t)
	u, _ := url.Parse(a.url)
	stale.jar.SetCookies(u, []*http.Cookie{{Name: "kiln_session", Value: session, Path: "/"}})
	resp, _ := stale.get("/posts/" + id)
	wantRedirect(t, "the post page after sign-out", resp, "/sign-in")
}

func (a *blogApp) testCrossOrigin(t *testing.T) {
	ada := a.register(t, "ada")
	id := ada.publish("Origins", "Only from here.")
	evil := http.Header{
		"Content-Type":   {"application/x-www-form-urlencoded"},
		"Origin":         {"http://evil.example"},
		"Sec-Fetch-Site": {"cross-site"},
	}
	posts, comments := a.rows(t, "posts"), a.rows(t, "comments")
	for path, form := range map[string]url.Values{
		"/posts":                     {"title": {"Forged"}, "body": {"x"}},
		"/posts/" + id + "/comments": {"body": {"forged"}},
	} {
		if resp, _ := ada.do(http.MethodPost, path, strings.NewReader(form.Encode()), evil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-origin POST %s = %d, want 403", path, resp.StatusCode)
		}
	}
	if a.rows(t, "posts") != posts || a.rows(t, "comments") != comments {
		t.Errorf("cross-origin posts wrote rows")
	}
}

// articles matches the posts of the posts page: id, title, author.
var articles = regexp.MustCompile(`<article class="post" id="post-([0-9a-f-]{36})"><h2><a href="/posts/[0-9a-f-]{36}">([^<]*)</a></h2>\s*<p class="byline">by ([^,]*),`)

// nextLink matches the posts page's link to the next page.
var nextLink = regexp.MustCompile(`<a id="next" href="/\?after=([^"]+)">`)

func (a *blogApp) testPagesOfPosts(t *testing.T) {
	ada, bob := a.register(t, "ada"), a.register(t, "bob")
	var titles []string
	for i := range 12 {
		c := ada
		if i%3 == 0 {
			c = bob
		}
		title := fmt.Sprintf("Post %d", i+1)
		c.publish(title, "Text.")
		titles = append([]string{title}, titles...) // newest first
	}
	type row struct{ title, author string }
	read := func(path string) (rows []row, next string) {
		t.Helper()
		body := ada.page(path)
		for _, m := range articles.FindAllStringSubmatch(body, -1) {
			rows = append(rows, row{m[2], m[3]})
		}
		if m := nextLink.FindStringSubmatch(body); m != nil {
			next = "/?after=" + m[1]
		}
		return rows, next
	}
	author := func(title string) string {
		var n int
		fmt.Sscanf(title, "Post %d", &n)
		if (n-1)%3 == 0 {
			return bob.email
		}
		return ada.email
	}

	first, next := read("/")
	if len(first) != 10 || next == "" {
		t.Fatalf("the first page has %d posts and next %q, want 10 and a next page", len(first), next)
	}
	for i, r := range first {
		if r.title != titles[i] || r.author != author(titles[i]) {
			t.Errorf("post %d of the first page = %+v, want %s by %s", i, r, titles[i], author(titles[i]))
		}
	}
	// A post published now is newer than the cursor: the next page does
	// not move.
	bob.publish("Post 13", "Late.")
	second, last := read(next)
	if len(second) != 2 || second[0] != (row{"Post 2", ada.email}) || second[1] != (row{"Post 1", bob.email}) {
		t.Errorf("the second page = %+v, want Post 2 by ada, Post 1 by bob", second)
	}
	if last != "" {
		t.Errorf("the last page links to a next page %q", last)
	}
	if resp, _ := ada.get("/?after=not-a-cursor"); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("a bad cursor = %d, want 422", resp.StatusCode)
	}
}
