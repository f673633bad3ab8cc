package web_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
	"github.com/kiln-go/kiln/web"
)

// fullTemplate uses every field of SocketID, so that any difference
// between the sign-in side (claims) and the revocation side (the stored
// row) changes the id.
func fullTemplate(s tokenresource.SocketID) string {
	return fmt.Sprintf("sessions:%s|%s|%s|%s", s.JTI, s.Subject, s.Purpose, s.ExpiresAt.Format(time.RFC3339Nano))
}

// revocationIDs records, for every revocation notification of the token
// store, the action and the socket id the revocation side computes.
type revocationIDs struct {
	mu  sync.Mutex
	ids []string
	act []string
}

func (r *revocationIDs) Notify(_ context.Context, n resource.Notification) error {
	if _, ok := n.Metadata[tokenresource.ReasonKey]; !ok {
		return nil
	}
	rec := n.Record.(tokenresource.Record).TokenFields()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, fullTemplate(tokenresource.SocketIDOf(rec)))
	r.act = append(r.act, n.Action)
	return nil
}

func (r *revocationIDs) take() ([]string, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids, act := r.ids, r.act
	r.ids, r.act = nil, nil
	return ids, act
}

// The hello frame is the first frame and carries the template applied to
// the token's claims; the revocation side applies the same template to the
// stored row (tokenresource.SocketIDOf) and gets the same id, for every
// kind of revocation, revoke_jti included; and the socket closes.
func TestSocketIDAgreesAtBothEnds(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			rec := &revocationIDs{}
			h := livetest.New(t, db, livetest.Options{Template: fullTemplate, TokenNotifiers: []resource.Notifier{rec}})
			ctx := testCtx(t)
			ada := h.Register(t, "ada@example.com")
			store := h.Auth.Tokens()

			cases := []struct {
				name   string
				action string // the token action whose notification closes it
				cookie bool
				revoke func(token string, hd http.Header) error
				reason string
			}{
				{"revoke_token", "revoke_stored", false, func(token string, _ http.Header) error {
					return store.Revoke(ctx, token, revocation.Revoked)
				}, "revoked"},
				{"revoke_jti", "revoke_stored", true, func(token string, _ http.Header) error {
					c, err := h.Auth.Parse(ctx, token)
					if err != nil {
						return err
					}
					return store.RevokeJTI(ctx, c.JTI, c.Subject, revocation.Revoked)
				}, "revoked"},
				{"sign-out route (revoke_jti of the cookie's jti)", "revoke_stored", true, func(_ string, hd http.Header) error {
					if resp, body := h.PostForm(t, "/sign-out", nil, hd); resp.StatusCode != http.StatusSeeOther {
						return fmt.Errorf("sign-out: %d %s", resp.StatusCode, body)
					}
					return nil
				}, "signed out"},
				{"revoke_all_stored_for_subject", "revoke_stored", false, func(token string, _ http.Header) error {
					_, err := store.RevokeAllForSubject(ctx, ada.Claims.Subject, revocation.Revoked, tokenresource.RevokeAllOptions{})
					return err
				}, "revoked"},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					s := h.SignIn(t, "ada@example.com")
					want := fullTemplate(s.Claims.SocketID())
					hd := livetest.Bearer(s.Token)
					if tc.cookie {
						sess := web.Session{}
						h.Web.StoreInSession(sess, s.Token, s.Claims)
						h.Web.SetLiveSocketID(sess, s.Claims)
						if sess[web.LiveSocketIDKey] != want {
							t.Fatalf("SetLiveSocketID stored %q, want %q", sess[web.LiveSocketIDKey], want)
						}
						v, err := h.Web.Sessions().Seal(sess)
						if err != nil {
							t.Fatal(err)
						}
						hd = livetest.CookieHeader(&http.Cookie{Name: h.Web.Sessions().Name, Value: v})
					}
					c := h.MustDial(t, ctx, hd)
					if c.SocketID != want {
						t.Fatalf("hello socket id %q, want the template of the claims %q", c.SocketID, want)
					}
					if got := h.Web.SocketID(s.Claims.SocketID()); got != want {
						t.Fatalf("Web.SocketID %q, want %q", got, want)
					}
					rec.take()
					if err := tc.revoke(s.Token, hd); err != nil {
						t.Fatal(err)
					}
					ids, acts := rec.take()
					found := false
					for i, id := range ids {
						if id == want {
							found = true
							if acts[i] != tc.action {
								t.Errorf("revoked by action %q, want %q", acts[i], tc.action)
							}
						}
					}
					if !found {
						t.Fatalf("the revocation side computed %q, none is the socket's %q", ids, want)
					}
					expectClose(t, ctx, c, tc.reason)
				})
			}
		})
	}
}

// The hello frame comes first, before anything the socket is sent on open.
func TestHelloIsTheFirstFrame(t *testing.T) {
	h := livetest.New(t, "sqlite", livetest.Options{EndpointOptions: []live.Option{sendOnOpen()}})
	ctx := testCtx(t)
	ada := h.Register(t, "ada@example.com")
	c, _, err := h.Dialer().DialContext(ctx, h.URL(), livetest.Bearer(ada.Token))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl := &livetest.Client{Conn: c}
	for i, want := range []string{"hello", "welcome"} {
		f, err := cl.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.Event != want {
			t.Fatalf("frame %d is %q, want %q", i, f.Event, want)
		}
	}
}
