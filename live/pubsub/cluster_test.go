package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/revocation"
	"github.com/kiln-go/kiln/web"
)

// node is a livetest node with its transport connection and what the
// tests observe of it.
type node struct {
	*livetest.Node
	name string
	ps   *observed
	logs *logRecorder
}

// cluster is the nodes of one test on one database and one channel.
type cluster struct {
	t       testing.TB
	tr      transport
	db      *livetest.Shared
	channel string
}

func newCluster(t testing.TB, tr transport) *cluster {
	t.Helper()
	return &cluster{t: t, tr: tr, db: livetest.SharedPostgres(t), channel: testdb.UniqueName("kiln_test_")}
}

// node starts a node with a transport connection of its own.
func (c *cluster) node(o livetest.NodeOptions) *node {
	c.t.Helper()
	name := testdb.UniqueName("kiln_node_")
	logs := &logRecorder{}
	ps := observe(c.tr.open(c.t, c.channel, name, slog.New(logs)))
	o.PubSub = ps
	return &node{Node: livetest.NewNode(c.t, c.db, o), name: name, ps: ps, logs: logs}
}

// short bounds the waits of a test: long enough for a loaded CI machine,
// much shorter than the sweep intervals the tests that rely on messages
// set, so that a message lost for good fails them.
const short = 10 * time.Second

func forEachTransport(t *testing.T, withInProcess bool, fn func(t *testing.T, tr transport)) {
	all := transports()
	if withInProcess {
		all = append([]transport{inProcess}, all...)
	}
	for _, tr := range all {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			fn(t, tr)
		})
	}
}

// dialCookie opens a socket on n with a session cookie.
func dialCookie(t *testing.T, n *node, c *http.Cookie) *livetest.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), short)
	defer cancel()
	return n.MustDial(t, ctx, livetest.CookieHeader(c))
}

// expectRefused dials n with header and wants a 401 before any upgrade.
func expectRefused(t *testing.T, n *node, header http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), short)
	defer cancel()
	c, status, err := n.Dial(ctx, header)
	if err == nil {
		c.Conn.Close()
		t.Fatalf("socket %s opened on %s; want 401", c.SocketID, n.name)
	}
	if status != http.StatusUnauthorized {
		t.Fatalf("dial %s: status %d (%v); want 401", n.name, status, err)
	}
}

// post posts a form to n with a session cookie and wants a redirect.
func post(t *testing.T, n *node, path string, c *http.Cookie) {
	t.Helper()
	resp, body := n.PostForm(t, path, url.Values{}, livetest.CookieHeader(c))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST %s on %s: status %d: %s", path, n.name, resp.StatusCode, body)
	}
}

// TestCrossNodeDisconnect: three nodes, each with its own connection to
// the transport. A sign-out on one node closes that session's sockets on
// the others, and only them; log out everywhere on another closes the
// rest. Cookies of one node open sockets on every other (shared keys).
func TestCrossNodeDisconnect(t *testing.T) {
	forEachTransport(t, true, func(t *testing.T, tr transport) {
		c := newCluster(t, tr)
		a, b, cc := c.node(livetest.NodeOptions{}), c.node(livetest.NodeOptions{}), c.node(livetest.NodeOptions{})
		email := "cross@example.com"
		a.Register(t, email)
		s1 := a.SignInCookie(t, email)
		s2 := b.SignInCookie(t, email)
		s3 := cc.SignInCookie(t, email)

		b1 := dialCookie(t, b, s1) // a cookie of node A opens on B and C
		c1 := dialCookie(t, cc, s1)
		c2 := dialCookie(t, cc, s2)
		a3 := dialCookie(t, a, s3)

		post(t, a, "/sign-out", s1)
		expectClose(t, b1, short, live.CloseSignedOut, "signed out")
		expectClose(t, c1, short, live.CloseSignedOut, "signed out")
		expectOpen(t, c2)
		expectOpen(t, a3)

		post(t, b, "/auth/user/log_out_everywhere", s2)
		expectClose(t, c2, short, live.CloseSignedOut, "signed out everywhere")
		expectClose(t, a3, short, live.CloseSignedOut, "signed out everywhere")
		for _, n := range []*node{a, b, cc} {
			expectRefused(t, n, livetest.CookieHeader(s3))
		}
	})
}

// TestSessionKeyRotation: node A still has only the old cookie key, node B
// has the new one first and the old one after it. A's cookies open on B;
// B's cookies are sealed with the new key, which A cannot open.
func TestSessionKeyRotation(t *testing.T) {
	oldKey := []byte("kiln-test-old-cookie-key-0123456789abcdef")
	newKey := []byte("kiln-test-new-cookie-key-0123456789abcdef")
	c := newCluster(t, inProcess)
	a := c.node(livetest.NodeOptions{CookieKeys: [][]byte{oldKey}})
	b := c.node(livetest.NodeOptions{CookieKeys: [][]byte{newKey, oldKey}})
	email := "rotate@example.com"
	a.Register(t, email)

	oldCookie := a.SignInCookie(t, email)
	onB := dialCookie(t, b, oldCookie) // old cookies still work after the rotation

	newCookie := b.SignInCookie(t, email)
	newOnly, err := web.NewSessions(newKey)
	if err != nil {
		t.Fatal(err)
	}
	if sess, err := newOnly.Open(newCookie.Value); err != nil || sess[web.SessionJTI] == "" {
		t.Fatalf("B's cookie does not open with the new key alone: %v %v", sess, err)
	}
	oldOnly, err := web.NewSessions(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oldOnly.Open(newCookie.Value); err == nil {
		t.Fatal("B's cookie opens with the old key: it was not sealed with the new one")
	}
	expectRefused(t, a, livetest.CookieHeader(newCookie))
	onB2 := dialCookie(t, b, newCookie)

	// The rotation changes nothing to auto sign-out.
	post(t, a, "/auth/user/log_out_everywhere", oldCookie)
	expectClose(t, onB, short, live.CloseSignedOut, "signed out everywhere")
	expectClose(t, onB2, short, live.CloseSignedOut, "signed out everywhere")
}

// TestSigningSecretRotation: node B signs with a new secret and keeps the
// old one in PreviousSecrets; node A still has only the old one. Tokens A
// signed verify on B; tokens B signs use the new secret only.
func TestSigningSecretRotation(t *testing.T) {
	const oldSecret = "kiln-test-old-signing-secret-0123456789"
	const newSecret = "kiln-test-new-signing-secret-0123456789"
	c := newCluster(t, inProcess)
	a := c.node(livetest.NodeOptions{SigningSecret: oldSecret})
	b := c.node(livetest.NodeOptions{SigningSecret: newSecret, PreviousSecrets: []string{oldSecret}})
	email := "secret@example.com"
	a.Register(t, email)
	ctx, cancel := context.WithTimeout(context.Background(), short)
	defer cancel()

	oldToken := a.SignIn(t, email).Token
	if _, err := b.Auth.Parse(ctx, oldToken); err != nil {
		t.Fatalf("B does not verify a token signed with its previous secret: %v", err)
	}
	onB := b.MustDial(t, ctx, livetest.Bearer(oldToken))

	newToken := b.SignIn(t, email).Token
	if _, err := a.Auth.Parse(ctx, newToken); err == nil {
		t.Fatal("A, which knows only the old secret, verifies B's new token: B signed it with the old secret")
	}
	bNewOnly := c.node(livetest.NodeOptions{SigningSecret: newSecret})
	if _, err := bNewOnly.Auth.Parse(ctx, newToken); err != nil {
		t.Fatalf("B's new token does not verify with the new secret alone: %v", err)
	}
	if _, err := bNewOnly.Auth.Parse(ctx, oldToken); err == nil {
		t.Fatal("a node without the previous secret verifies an old token")
	}
	expectRefused(t, a, livetest.Bearer(newToken))
	onB2 := b.MustDial(t, ctx, livetest.Bearer(newToken))

	if _, err := a.Auth.Tokens().RevokeAllForSubject(ctx, a.SignIn(t, email).Claims.Subject, revocation.LogOutEverywhere, tokenresource.RevokeAllOptions{}); err != nil {
		t.Fatal(err)
	}
	expectClose(t, onB, short, live.CloseSignedOut, "signed out everywhere")
	expectClose(t, onB2, short, live.CloseSignedOut, "signed out everywhere")
}

// TestTransportFault: node B's connection to the transport is broken from
// the server side. B's periodic sweep is an hour away, so only a message
// or the sweep B runs right after it resubscribes can close a socket.
//
// First, deterministically: a revocation whose message is lost (written
// straight to the database) is found by the sweep after B resubscribes.
// Then the connection is broken while a revocation happens on node A: B
// closes the socket either way. Then B hears messages again.
func TestTransportFault(t *testing.T) {
	forEachTransport(t, false, func(t *testing.T, tr transport) {
		c := newCluster(t, tr)
		a := c.node(livetest.NodeOptions{})
		b := c.node(livetest.NodeOptions{SweepInterval: time.Hour})
		email := "fault@example.com"
		a.Register(t, email)
		ctx, cancel := context.WithTimeout(context.Background(), 2*short)
		defer cancel()
		b.ps.wait(t, ctx, live.KindSubscribed) // the first subscription

		lost := a.SignInCookie(t, email)
		onB := dialCookie(t, b, lost)
		revokeInDatabase(t, a, lost)
		expectOpen(t, onB) // no message, no sweep yet
		tr.kill(t, c.channel, b.name, b.ps.PubSub)
		b.ps.wait(t, ctx, live.KindSubscribed)
		expectClose(t, onB, short, live.CloseSignedOut, "revoked")

		s1 := a.SignInCookie(t, email)
		onB = dialCookie(t, b, s1)
		tr.kill(t, c.channel, b.name, b.ps.PubSub)
		post(t, a, "/sign-out", s1)
		reason := expectClose(t, onB, short, live.CloseSignedOut, "signed out", "revoked")
		b.ps.wait(t, ctx, live.KindSubscribed)
		path := "the message"
		if reason == "revoked" {
			path = "the sweep after resubscribing (the message was lost)"
		}
		t.Logf("%s: the revocation during the fault was closed by %s", tr.name, path)

		// Resubscribed: messages reach B again. Its sweeps have run, so only
		// the message can close this one, with the sign-out's reason.
		s2 := a.SignInCookie(t, email)
		onB2 := dialCookie(t, b, s2)
		post(t, a, "/sign-out", s2)
		expectClose(t, onB2, short, live.CloseSignedOut, "signed out")
		if n := b.logs.count("reconnect"); n == 0 {
			t.Errorf("B logged no reconnection:\n%s", b.logs)
		}
	})
}

// revokeInDatabase revokes the session of cookie behind the notifiers'
// back, as if its message were lost: an UPDATE of its row's purpose.
func revokeInDatabase(t *testing.T, n *node, cookie *http.Cookie) {
	t.Helper()
	sess, err := n.Web.Sessions().Open(cookie.Value)
	if err != nil {
		t.Fatal(err)
	}
	res, err := n.Layer.DB().NewUpdate().Table("tokens").
		Set("purpose = ?", tokenresource.PurposeRevocation).
		Where("jti = ?", sess[web.SessionJTI]).Exec(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rows, _ := res.RowsAffected(); rows != 1 {
		t.Fatalf("revoked %d rows, want 1", rows)
	}
}

// TestNodeRestart: node B stops (its sockets get 1001 and reconnect), a
// session is revoked while it is down, and B comes back as a new process
// would: new endpoint, new transport connection. The revoked session is
// refused with 401, the other one opens, and revocations reach it.
func TestNodeRestart(t *testing.T) {
	forEachTransport(t, false, func(t *testing.T, tr transport) {
		c := newCluster(t, tr)
		a := c.node(livetest.NodeOptions{})
		b := c.node(livetest.NodeOptions{})
		email := "restart@example.com"
		a.Register(t, email)
		revoked := a.SignInCookie(t, email)
		kept := a.SignInCookie(t, email)
		s1 := dialCookie(t, b, revoked)
		s2 := dialCookie(t, b, kept)

		closed1, closed2 := closing(s1), closing(s2) // read, so that Stop need not wait for the replies
		b.Stop()
		for _, cl := range []<-chan closeResult{closed1, closed2} {
			r := <-cl
			if r.err != nil || r.code != live.CloseGoingAway {
				t.Fatalf("on stop: closed with %d %q (%v); want %d", r.code, r.reason, r.err, live.CloseGoingAway)
			}
		}
		post(t, a, "/sign-out", revoked)

		b2 := c.node(livetest.NodeOptions{})
		expectRefused(t, b2, livetest.CookieHeader(revoked))
		again := dialCookie(t, b2, kept)
		post(t, a, "/sign-out", kept)
		expectClose(t, again, short, live.CloseSignedOut, "signed out")
	})
}

// signInCookie signs email in on n through its HTTP route and returns the
// session cookie; unlike Harness.SignInCookie it may run outside the
// test's goroutine.
func signInCookie(ctx context.Context, n *node, email string) (*http.Cookie, error) {
	form := url.Values{"email": {email}, "password": {"password123"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.Server.URL+"/auth/user/password/sign_in", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := n.HTTPClient().Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("sign in: status %d", resp.StatusCode)
	}
	if c := n.SessionCookie(resp); c != nil && c.Value != "" {
		return c, nil
	}
	if strings.HasPrefix(resp.Header.Get("Location"), "/sign-in?error=") {
		return nil, errSignInRefused
	}
	return nil, errors.New("sign in: no session cookie")
}

// errSignInRefused: the sign-in was answered with the sign-in page and an
// error, as one racing a revocation of its user may be.
var errSignInRefused = errors.New("sign in: refused")

type closeResult struct {
	code   int
	reason string
	err    error
}

// closing reads c until it is closed, in the background.
func closing(c *livetest.Client) <-chan closeResult {
	ch := make(chan closeResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), short)
		defer cancel()
		code, reason, err := c.WaitClose(ctx)
		ch <- closeResult{code, reason, err}
	}()
	return ch
}

// TestSignInRacesRevocation: over and over, a socket opens on node B with
// a fresh token while node A revokes every token of the user, and a
// sign-in on B races the same revocation. Whatever the order, no socket
// of a revoked token is left open; the safety net is off, so the messages
// and the endpoint's checks must do it alone.
func TestSignInRacesRevocation(t *testing.T) {
	const rounds = 25
	forEachTransport(t, true, func(t *testing.T, tr transport) {
		c := newCluster(t, tr)
		a := c.node(livetest.NodeOptions{})
		b := c.node(livetest.NodeOptions{})
		email := "race@example.com"
		a.Register(t, email)
		subject := a.SignIn(t, email).Claims.Subject
		stats := map[string]int{}
		for i := range rounds {
			ctx, cancel := context.WithTimeout(context.Background(), 2*short)
			token := a.SignIn(t, email) // a session that exists before the revocation starts

			type dialed struct {
				client *livetest.Client
				jti    string
				status int
				err    error
			}
			var wg sync.WaitGroup
			var fresh, signedIn dialed
			var signInErr, revokeErr error
			signedInCh := make(chan struct{})
			wg.Go(func() {
				fresh.jti = token.Claims.JTI
				fresh.client, fresh.status, fresh.err = b.Dial(ctx, livetest.Bearer(token.Token))
			})
			wg.Go(func() {
				cookie, err := signInCookie(ctx, b, email)
				close(signedInCh) // committed (or failed)
				if err != nil {
					signInErr = err
					return
				}
				sess, err := b.Web.Sessions().Open(cookie.Value)
				if err != nil {
					signInErr = err
					return
				}
				signedIn.jti = sess[web.SessionJTI]
				signedIn.client, signedIn.status, signedIn.err = b.Dial(ctx, livetest.CookieHeader(cookie))
			})
			wg.Go(func() {
				if i%2 == 1 {
					// Odd rounds: revoke once the sign-in has committed,
					// racing the opening of its socket. Even rounds race
					// the sign-in itself.
					<-signedInCh
				}
				_, revokeErr = a.Auth.Tokens().RevokeAllForSubject(ctx, subject, revocation.LogOutEverywhere,
					tokenresource.RevokeAllOptions{ExcludePurposes: []string{tokenresource.PurposeRevocation}})
			})
			wg.Wait()
			refused := errors.Is(signInErr, errSignInRefused) && i%2 == 0
			if refused {
				// It began before the revocation committed: refused.
				stats["racing sign-in: refused"]++
			} else if signInErr != nil {
				t.Fatalf("round %d: sign in: %v", i, signInErr)
			}
			if revokeErr != nil {
				t.Fatalf("round %d: revoke: %v", i, revokeErr)
			}
			for _, d := range []struct {
				name string
				dialed
			}{{"fresh token", fresh}, {"racing sign-in", signedIn}} {
				if d.name == "racing sign-in" && refused {
					continue
				}
				revoked, err := a.Auth.Tokens().IsRevoked(ctx, d.jti)
				if err != nil {
					t.Fatalf("round %d: %s: %v", i, d.name, err)
				}
				if d.name == "fresh token" && !revoked {
					t.Fatalf("round %d: the token signed in before the revocation is not revoked", i)
				}
				switch {
				case d.err != nil:
					var ce *websocket.CloseError
					switch {
					case d.status == http.StatusUnauthorized && revoked:
						stats[d.name+": refused with 401"]++
					case d.status == http.StatusSwitchingProtocols && errors.As(d.err, &ce) && ce.Code == live.CloseSignedOut && revoked:
						stats[d.name+": closed before its hello"]++
					default:
						t.Fatalf("round %d: %s: dial: status %d, revoked %v: %v", i, d.name, d.status, revoked, d.err)
					}
				case revoked:
					r := expectClose(t, d.client, short, live.CloseSignedOut, "signed out everywhere", "revoked")
					d.client.Conn.Close()
					stats[d.name+": opened, then closed ("+r+")"]++
				default:
					expectOpen(t, d.client) // signed in after the revocation: it stays
					d.client.Conn.Close()
					stats[d.name+": signed in after the revocation, open"]++
				}
			}
			cancel()
		}
		var lines []string
		for k, v := range stats {
			lines = append(lines, fmt.Sprintf("%3d %s", v, k))
		}
		t.Logf("%s, %d rounds:\n%s", tr.name, rounds, strings.Join(lines, "\n"))
	})
}

// TestBadMessages: garbage and unknown kinds written straight on the
// channel are logged and ignored by every node, which then still acts on
// a valid disconnect.
func TestBadMessages(t *testing.T) {
	forEachTransport(t, false, func(t *testing.T, tr transport) {
		c := newCluster(t, tr)
		a := c.node(livetest.NodeOptions{})
		b := c.node(livetest.NodeOptions{})
		email := "garbage@example.com"
		a.Register(t, email)
		s1 := a.SignInCookie(t, email)
		onB := dialCookie(t, b, s1)

		bad := []string{
			"not json at all",
			"",
			"[1, 2, 3]",
			`{"kind": "explode", "socket_id": "` + onB.SocketID + `"}`,
			`{"kind": "subscribed"}`,
			`{"kind": "disconnect"}`,
			`{"kind": "disconnect", "socket_id": 42}`,
			`{"kind": "broadcast", "event": "tick"}`,
			`{"kind": "disconnect", "socket_id": "` + onB.SocketID + `"`, // cut short
			strings.Repeat("{", 5000),
		}
		if tr.name != "postgres" { // NOTIFY payloads are text: no NUL, valid UTF-8
			bad = append(bad, "\x00\xff\xfe binary \x01")
		}
		for _, p := range bad {
			tr.raw(t, c.channel, []byte(p))
		}
		expectOpen(t, onB)
		post(t, a, "/sign-out", s1)
		expectClose(t, onB, short, live.CloseSignedOut, "signed out")
		// Every bad message was delivered before the valid one, so B has
		// logged them all by now.
		if n := b.logs.count("message ignored"); n != len(bad) {
			t.Errorf("B logged %d ignored messages, want %d:\n%s", n, len(bad), b.logs)
		}
	})
}
