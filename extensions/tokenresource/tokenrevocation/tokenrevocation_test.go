package tokenrevocation_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/extensions/tokenresource/tokenrevocation"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
)

var databases = []string{"sqlite", "postgres"}

// disconnect is one call of Endpoint.Disconnect.
type disconnect struct {
	SocketID string
	Reason   revocation.Reason
}

// recorder is a revocation.Endpoint that records its calls and answers
// err.
type recorder struct {
	mu    sync.Mutex
	calls []disconnect
	err   error
}

var _ revocation.Endpoint = (*recorder)(nil)

func (r *recorder) Disconnect(_ context.Context, socketID string, reason revocation.Reason) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, disconnect{socketID, reason})
	return r.err
}

// take returns the calls so far, sorted, and forgets them.
func (r *recorder) take() []disconnect {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	slices.SortFunc(out, func(a, b disconnect) int { return strings.Compare(a.SocketID, b.SocketID) })
	return out
}

func template(s tokenresource.SocketID) string { return "users_sessions:" + s.JTI }

func idOf(c *authentication.Claims) string { return template(c.SocketID()) }

func expect(t *testing.T, r *recorder, what string, want ...disconnect) {
	t.Helper()
	slices.SortFunc(want, func(a, b disconnect) int { return strings.Compare(a.SocketID, b.SocketID) })
	if got := r.take(); !slices.Equal(got, want) {
		t.Fatalf("%s: Disconnect calls\n%v\nwant\n%v", what, got, want)
	}
}

// build builds the accounts with the notifier on the token store and
// attaches eps.
func build(t *testing.T, db string, eps ...revocation.Endpoint) *accountstest.Accounts {
	t.Helper()
	a := accountstest.Build(t, db, accountstest.Options{
		Template:       template,
		TokenNotifiers: []resource.Notifier{tokenrevocation.Notifier{}},
	})
	parts := make([]any, len(eps))
	for i, ep := range eps {
		parts[i] = ep
	}
	if err := a.Domain.Attach(parts...); err != nil {
		t.Fatal(err)
	}
	return a
}

// The notifier calls Disconnect once per revoked token, with the token's
// socket id and the revocation's reason, for every kind of revocation;
// issuing tokens (register, sign in, reset requests) calls nothing.
func TestDisconnectsOncePerRevokedToken(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			rec := &recorder{}
			a := build(t, db, rec)
			ctx := t.Context()
			store := a.Auth.Tokens()

			ada := a.Register(t, "ada@example.com")
			s1 := a.SignIn(t, "ada@example.com")
			s2 := a.SignIn(t, "ada@example.com")
			bob := a.Register(t, "bob@example.com")
			if _, err := a.Domain.Run(ctx, a.Users, "request_password_reset", resource.Input{"email": "ada@example.com"}); err != nil {
				t.Fatal(err)
			}
			expect(t, rec, "register, sign in, reset request")

			if err := store.Revoke(ctx, s1.Token, revocation.SignedOut); err != nil {
				t.Fatal(err)
			}
			expect(t, rec, "revoke_token", disconnect{idOf(s1.Claims), revocation.SignedOut})
			if err := store.Revoke(ctx, s1.Token, revocation.SignedOut); !errors.Is(err, tokenresource.ErrAlreadyRevoked) {
				t.Fatalf("second revoke: %v", err)
			}
			if err := store.RevokeJTI(ctx, s1.Claims.JTI, s1.Claims.Subject, revocation.SignedOut); !errors.Is(err, tokenresource.ErrAlreadyRevoked) {
				t.Fatalf("revoke_jti of a revoked token: %v", err)
			}
			expect(t, rec, "revoking a revoked token")

			if err := store.RevokeJTI(ctx, s2.Claims.JTI, s2.Claims.Subject, revocation.Revoked); err != nil {
				t.Fatal(err)
			}
			expect(t, rec, "revoke_jti", disconnect{idOf(s2.Claims), revocation.Revoked})

			// A jti that was never stored: the revocation row is new.
			if err := store.RevokeJTI(ctx, "never-stored", ada.Claims.Subject, revocation.Revoked); err != nil {
				t.Fatal(err)
			}
			expect(t, rec, "revoke_jti of an unknown jti", disconnect{"users_sessions:never-stored", revocation.Revoked})

			// Password change: every stored token of ada (the session of
			// the registration, s3, the reset token), not bob's, not the
			// fresh one.
			s3 := a.SignIn(t, "ada@example.com")
			expect(t, rec, "sign in")
			reset, err := a.Auth.Parse(ctx, a.Mailbox.Last("ada@example.com"))
			if err != nil {
				t.Fatalf("the reset token: %v", err)
			}
			changed, err := a.Password.Change(ctx, a.Domain, ada.Record, password.ChangeInput{
				CurrentPassword: "password123", Password: "a new password", PasswordConfirmation: "a new password"})
			if err != nil {
				t.Fatal(err)
			}
			expect(t, rec, "change_password",
				disconnect{idOf(ada.Claims), revocation.PasswordChanged},
				disconnect{idOf(s3.Claims), revocation.PasswordChanged},
				disconnect{idOf(reset), revocation.PasswordChanged})

			// log_out_everywhere: the token of the change, and one more.
			s4, err := a.Password.SignIn(ctx, a.Domain, password.SignInInput{Identity: "ada@example.com", Password: "a new password"})
			if err != nil {
				t.Fatal(err)
			}
			res, err := a.Domain.Run(ctx, a.Users, "log_out_everywhere", resource.Input{"user": ada.Record})
			if err != nil {
				t.Fatal(err)
			}
			if res.Value != 2 || len(res.NotifyErrors) != 0 {
				t.Fatalf("log_out_everywhere revoked %v, notify errors %v", res.Value, res.NotifyErrors)
			}
			expect(t, rec, "log_out_everywhere",
				disconnect{idOf(changed.Claims), revocation.LogOutEverywhere},
				disconnect{idOf(s4.Claims), revocation.LogOutEverywhere})
			res, err = a.Domain.Run(ctx, a.Users, "log_out_everywhere", resource.Input{"user": ada.Record})
			if err != nil || res.Value != 0 {
				t.Fatalf("second log_out_everywhere: %v %v", res, err)
			}
			expect(t, rec, "log_out_everywhere with nothing left")

			// Bulk, from Go: one call per token, with the given reason.
			b2 := a.SignIn(t, "bob@example.com")
			n, err := store.RevokeAllForSubject(ctx, bob.Claims.Subject, revocation.Revoked, tokenresource.RevokeAllOptions{})
			if err != nil || n != 2 {
				t.Fatalf("revoke all: %d %v", n, err)
			}
			expect(t, rec, "revoke_all_stored_for_subject",
				disconnect{idOf(bob.Claims), revocation.Revoked},
				disconnect{idOf(b2.Claims), revocation.Revoked})
		})
	}
}

// Expunging expired tokens notifies each with reason expired; unexpired
// tokens are kept and not notified.
func TestExpungeDisconnectsExpired(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			rec := &recorder{}
			a := build(t, db, rec)
			ctx := t.Context()
			ada := a.Register(t, "ada@example.com")
			var want []disconnect
			for range 3 {
				_, c, err := a.Auth.Issue(ctx, ada.Record, authentication.IssueOptions{Lifetime: -time.Minute})
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, disconnect{idOf(c), revocation.Expired})
			}
			expect(t, rec, "issuing")
			n, err := a.Auth.Tokens().ExpungeExpired(ctx)
			if err != nil || n != 3 {
				t.Fatalf("expunged %d: %v", n, err)
			}
			expect(t, rec, "expunge", want...)
			n, err = a.Auth.Tokens().ExpungeExpired(ctx)
			if err != nil || n != 0 {
				t.Fatalf("second expunge: %d %v", n, err)
			}
			expect(t, rec, "second expunge")
			if _, err := a.Auth.Tokens().Get(ctx, ada.Claims.JTI, tokenresource.PurposeUser); err != nil {
				t.Fatalf("the unexpired token was expunged: %v", err)
			}
		})
	}
}

// An endpoint's error is reported in Result.NotifyErrors and never fails
// the revocation, which is committed; the other endpoints are still told.
func TestEndpointErrorIsReportedNotFatal(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			boom := errors.New("endpoint down")
			failing := &recorder{err: boom}
			working := &recorder{}
			a := build(t, db, failing, working)
			ctx := t.Context()
			ada := a.Register(t, "ada@example.com")
			s := a.SignIn(t, "ada@example.com")

			res, err := a.Domain.Run(ctx, a.Tokens, "revoke_token", resource.Input{"token": s.Token, "reason": string(revocation.SignedOut)})
			if err != nil {
				t.Fatalf("the revocation failed: %v", err)
			}
			if len(res.NotifyErrors) != 1 || !errors.Is(res.NotifyErrors[0], boom) {
				t.Fatalf("NotifyErrors %v, want one wrapping %v", res.NotifyErrors, boom)
			}
			var ne *resource.NotifyError
			if !errors.As(res.NotifyErrors[0], &ne) || ne.Notification.Resource != "token" {
				t.Fatalf("NotifyErrors[0] = %#v", res.NotifyErrors[0])
			}
			want := disconnect{idOf(s.Claims), revocation.SignedOut}
			expect(t, failing, "failing endpoint", want)
			expect(t, working, "working endpoint", want)
			if revoked, err := a.Auth.Tokens().IsRevoked(ctx, s.Claims.JTI); err != nil || !revoked {
				t.Fatalf("the token is not revoked: %v %v", revoked, err)
			}

			// Bulk: one error for the transaction's batch, joining one per
			// token; every token revoked.
			a.SignIn(t, "ada@example.com")
			res, err = a.Domain.Run(ctx, a.Users, "log_out_everywhere", resource.Input{"user": ada.Record})
			if err != nil {
				t.Fatal(err)
			}
			if res.Value != 2 || len(res.NotifyErrors) != 1 || !errors.Is(res.NotifyErrors[0], boom) ||
				strings.Count(res.NotifyErrors[0].Error(), boom.Error()) != 2 {
				t.Fatalf("revoked %v, NotifyErrors %v; want one joining two %q", res.Value, res.NotifyErrors, boom)
			}
			if got := len(working.take()); got != 2 {
				t.Fatalf("the working endpoint was told %d times, want 2", got)
			}
			if _, _, err := a.Auth.Authenticate(ctx, ada.Token); err == nil {
				t.Fatal("a token of the failed notification still authenticates")
			}
		})
	}
}

// The notifier finds its endpoints when the domain is attached, once:
// before Attach it closes nothing, after it every attached endpoint is
// told, parts that are not endpoints are ignored, and a second Attach is
// refused. Endpoints without a template, or the notifier on a resource
// without a token section, fail Attach with a message that says so.
func TestAttach(t *testing.T) {
	rec := &recorder{}
	a := accountstest.Build(t, "sqlite", accountstest.Options{
		Template:       template,
		TokenNotifiers: []resource.Notifier{tokenrevocation.Notifier{}},
	})
	s := a.Register(t, "ada@example.com")
	res, err := a.Domain.Run(t.Context(), a.Tokens, "revoke_token", resource.Input{"token": s.Token})
	if err != nil || len(res.NotifyErrors) != 0 {
		t.Fatalf("before Attach: %v %v", res, err)
	}
	s = a.SignIn(t, "ada@example.com")
	if err := a.Domain.Attach("not an endpoint", rec); err != nil {
		t.Fatal(err)
	}
	if err := a.Auth.Tokens().Revoke(t.Context(), s.Token, revocation.Revoked); err != nil {
		t.Fatal(err)
	}
	expect(t, rec, "after Attach", disconnect{idOf(s.Claims), revocation.Revoked})
	if err := a.Domain.Attach(&recorder{}); err == nil || err.Error() != "kiln/resource: Attach called twice; attach every part in one call" {
		t.Fatalf("second Attach: %v", err)
	}

	b := accountstest.Build(t, "sqlite", accountstest.Options{TokenNotifiers: []resource.Notifier{tokenrevocation.Notifier{}}})
	want := "kiln/resource: attach token: kiln/tokenrevocation: token has live endpoints attached but no LiveSocketIDTemplate; set it in the token section, the same template the sign-in side uses"
	if err := b.Domain.Attach(rec); err == nil || err.Error() != want {
		t.Fatalf("endpoints without a template: %v\nwant %s", err, want)
	}
	// No endpoints at all: nothing to do, no error.
	if err := b.Domain.Attach(); err != nil {
		t.Fatal(err)
	}
	s = b.Register(t, "ada@example.com")
	res, err = b.Domain.Run(t.Context(), b.Tokens, "revoke_token", resource.Input{"token": s.Token})
	if err != nil || len(res.NotifyErrors) != 0 {
		t.Fatalf("without endpoints: %v %v", res, err)
	}
	expect(t, rec, "without a template")

	if _, err := (tokenrevocation.Notifier{}).Attach(b.Domain, b.Users, []any{rec}); err == nil ||
		err.Error() != "kiln/tokenrevocation: user has no token section; declare the notifier on the token resource" {
		t.Fatalf("on the user resource: %v", err)
	}
}

// Notify ignores writes that revoke nothing and refuses notifications it
// cannot read, attached or not.
func TestNotifyDirectly(t *testing.T) {
	rec := &recorder{}
	a := build(t, "sqlite")
	declared := tokenrevocation.Notifier{}
	nf, err := declared.Attach(a.Domain, a.Tokens, []any{rec})
	if err != nil {
		t.Fatal(err)
	}
	row := &accountstest.Token{Fields: tokenresource.Fields{JTI: "j1", Subject: "user?id=1", Purpose: tokenresource.PurposeRevocation}}
	ctx := t.Context()

	if err := nf.Notify(ctx, resource.Notification{Resource: "token", Action: "store_token", Record: row, Domain: a.Domain}); err != nil {
		t.Fatalf("a write without a reason: %v", err)
	}
	expect(t, rec, "a write without a reason")
	reason := map[string]any{tokenresource.ReasonKey: revocation.Revoked}
	if err := nf.Notify(ctx, resource.Notification{Resource: "token", Record: row, Metadata: reason, Domain: a.Domain}); err != nil {
		t.Fatal(err)
	}
	expect(t, rec, "a revocation", disconnect{"users_sessions:j1", revocation.Revoked})
	if err := nf.Notify(ctx, resource.Notification{Resource: "user", Record: &accountstest.User{}, Metadata: reason, Domain: a.Domain}); err == nil {
		t.Fatal("a record that is not a token was accepted")
	}
	if err := declared.Notify(ctx, resource.Notification{Resource: "user", Record: &accountstest.User{}, Metadata: reason, Domain: a.Domain}); err == nil {
		t.Fatal("before Attach, a record that is not a token was accepted")
	}
	expect(t, rec, "refused notifications")
}

// batchRecorder is a revocation.BatchEndpoint that records each
// DisconnectMany call.
type batchRecorder struct {
	recorder
	batches [][]revocation.Disconnect
}

var _ revocation.BatchEndpoint = (*batchRecorder)(nil)

func (r *batchRecorder) DisconnectMany(_ context.Context, ds []revocation.Disconnect) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, slices.Clone(ds))
	return r.err
}

// A log out everywhere closes every revoked token's sockets with one
// DisconnectMany on an endpoint that has it, and one Disconnect per token
// on an endpoint that has not.
func TestLogOutEverywhereDisconnectsInOneBatch(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			perToken, batched := &recorder{}, &batchRecorder{}
			a := build(t, db, perToken, batched)
			ctx := t.Context()
			ada := a.Register(t, "ada@example.com")
			want := []disconnect{{idOf(ada.Claims), revocation.LogOutEverywhere}}
			for range 5 {
				s := a.SignIn(t, "ada@example.com")
				want = append(want, disconnect{idOf(s.Claims), revocation.LogOutEverywhere})
			}
			res, err := a.Domain.Run(ctx, a.Users, "log_out_everywhere", resource.Input{"user": ada.Record})
			if err != nil || len(res.NotifyErrors) != 0 {
				t.Fatalf("log_out_everywhere: %v, notify errors %v", err, res.NotifyErrors)
			}
			expect(t, perToken, "the per-token endpoint", slices.Clone(want)...)
			if calls := batched.take(); len(calls) != 0 {
				t.Fatalf("Disconnect called on the batch endpoint: %v", calls)
			}
			if len(batched.batches) != 1 {
				t.Fatalf("%d DisconnectMany calls, want 1", len(batched.batches))
			}
			var got []disconnect
			for _, d := range batched.batches[0] {
				got = append(got, disconnect{d.SocketID, d.Reason})
			}
			slices.SortFunc(got, func(a, b disconnect) int { return strings.Compare(a.SocketID, b.SocketID) })
			slices.SortFunc(want, func(a, b disconnect) int { return strings.Compare(a.SocketID, b.SocketID) })
			if !slices.Equal(got, want) {
				t.Fatalf("DisconnectMany\n%v\nwant\n%v", got, want)
			}
		})
	}
}

// failingAnnouncer is an endpoint whose announcements fail, as the live
// endpoint's do when its pub/sub link is down for longer than
// live.EchoTimeout; it records the disconnects it is asked for.
type failingAnnouncer struct {
	recorder
	announced atomic.Int64
}

var errLinkDown = errors.New("the pub/sub link is down")

func (f *failingAnnouncer) Announce(context.Context, []revocation.Disconnect) error {
	f.announced.Add(1)
	return errLinkDown
}

// A revocation that cannot be announced fails, with nothing revoked and
// nothing disconnected, while the knowledge is on (other nodes may answer
// from memory); with the knowledge disabled it is logged and commits.
func TestUnannouncedRevocation(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			for _, disabled := range []bool{false, true} {
				t.Run(fmt.Sprintf("knowledge disabled %v", disabled), func(t *testing.T) {
					ep := &failingAnnouncer{}
					a := accountstest.Build(t, db, accountstest.Options{
						Template:       template,
						TokenNotifiers: []resource.Notifier{tokenrevocation.Notifier{}},
						Knowledge:      tokenresource.KnowledgeOptions{Disabled: disabled},
					})
					if err := a.Domain.Attach(ep); err != nil {
						t.Fatal(err)
					}
					ctx := t.Context()
					s := a.Register(t, "ada@example.com")
					err := a.Auth.Tokens().Revoke(ctx, s.Token, revocation.SignedOut)
					if ep.announced.Load() != 1 {
						t.Fatalf("announced %d times; want once", ep.announced.Load())
					}
					_, verr := a.Auth.Verify(ctx, s.Token)
					if disabled {
						if err != nil {
							t.Fatalf("revoke with the knowledge disabled: %v", err)
						}
						if !errors.Is(verr, authentication.ErrInvalidToken) {
							t.Fatalf("the token verifies after its revocation: %v", verr)
						}
						expect(t, &ep.recorder, "revoked, unannounced", disconnect{idOf(s.Claims), revocation.SignedOut})
						return
					}
					if !errors.Is(err, revocation.ErrNotAnnounced) || !errors.Is(err, errLinkDown) {
						t.Fatalf("revoke: %v; want ErrNotAnnounced wrapping the endpoint's error", err)
					}
					if verr != nil {
						t.Fatalf("the token does not verify after a revocation that failed: %v", verr)
					}
					expect(t, &ep.recorder, "not revoked")
				})
			}
		})
	}
}
