// Package web is kiln's HTTP glue for any router built on net/http:
// cookie sessions, the current-user middleware, SetLiveSocketID,
// StoreInSession and ClearSession, the live endpoint's authenticator, and
// the authentication routes as one mountable http.Handler.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
	"github.com/kiln-go/kiln/web/ratelimit"
)

// ErrNotSignedIn: the request carries no valid session or bearer token.
var ErrNotSignedIn = errors.New("kiln/web: not signed in")

// ErrRevocationFailed: a token the request asked to revoke (by signing out,
// logging out everywhere, or signing in over its session) could not be
// revoked, so it still authenticates. The session cookie is left as it was,
// so that the request can be retried. StatusOf answers 503.
var ErrRevocationFailed = errors.New("kiln/web: the session could not be signed out")

// Web is the glue between HTTP and an authenticated resource.
type Web struct {
	auth       *authentication.Auth
	sessions   *Sessions
	template   func(tokenresource.SocketID) string
	controller AuthController
	logger     *slog.Logger
	csrf       *http.CrossOriginProtection
	limiter    *ratelimit.Limiter
	// public is the public URL, nil without one; trusted are the trusted
	// origins.
	public  *url.URL
	trusted []*url.URL
}

// Option configures a Web.
type Option func(*Web)

// WithController customises the responses of the auth routes. Default:
// DefaultController.
func WithController(c AuthController) Option { return func(w *Web) { w.controller = c } }

// WithRateLimiter limits sign-ins, reset requests and registrations per
// identity and per client address (see web/ratelimit). Default: the
// default limits in a memory store of this node, client addresses from
// the connection (no proxy trusted).
func WithRateLimiter(l *ratelimit.Limiter) Option { return func(w *Web) { w.limiter = l } }

// WithLogger sets the logger. Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(w *Web) { w.logger = l } }

// WithPublicURL says where the app is served from, as its users see it
// (behind a TLS-terminating proxy, that is the proxy's URL). When its
// scheme is https, session cookies are Secure (Sessions.Secure), whether or
// not the request reached the app over TLS. Protect then also refuses a
// browser request whose Origin is not exactly that URL's scheme, host and
// port (or a trusted origin): http://app.example.com may not post to
// https://app.example.com.
func WithPublicURL(u *url.URL) Option {
	return func(w *Web) {
		if strings.EqualFold(u.Scheme, "https") {
			w.sessions.Secure = true
		}
		w.public = u
	}
}

// Protect refuses cross-origin browser requests that change state
// (net/http's CrossOriginProtection: Sec-Fetch-Site, then Origin against
// Host) and, with a public URL, any request whose Origin is not the public
// URL's origin or a trusted one. The auth routes are protected; wrap an
// app's own form routes with it too.
func (w *Web) Protect(h http.Handler) http.Handler {
	inner := w.csrf.Handler(h)
	if w.public == nil {
		return inner
	}
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if o := r.Header.Get("Origin"); o != "" && !w.trustedOrigin(o) {
				http.Error(rw, "cross-origin request refused", http.StatusForbidden)
				return
			}
		}
		inner.ServeHTTP(rw, r)
	})
}

func (w *Web) trustedOrigin(o string) bool {
	if live.SameOrigin(o, w.public) {
		return true
	}
	return slices.ContainsFunc(w.trusted, func(u *url.URL) bool { return live.SameOrigin(o, u) })
}

// WithTrustedOrigins lets these origins post to the auth routes, which
// otherwise refuse cross-origin browser requests.
func WithTrustedOrigins(origins ...string) Option {
	return func(w *Web) {
		for _, o := range origins {
			if err := w.csrf.AddTrustedOrigin(o); err != nil {
				w.logger.Error("kiln/web: bad trusted origin", "origin", o, "err", err)
				continue
			}
			if u, err := url.Parse(o); err == nil {
				w.trusted = append(w.trusted, u)
			}
		}
	}
}

// New returns the glue for auth's resource, keeping sessions in sessions.
func New(auth *authentication.Auth, sessions *Sessions, opts ...Option) *Web {
	w := &Web{auth: auth, sessions: sessions, logger: slog.Default(), csrf: http.NewCrossOriginProtection()}
	w.controller = DefaultController{}
	if store := auth.Tokens(); store != nil {
		w.template = store.Config().LiveSocketIDTemplate
	}
	if w.template == nil {
		w.template = func(s tokenresource.SocketID) string { return s.JTI }
	}
	for _, o := range opts {
		o(w)
	}
	if w.limiter == nil {
		// The default limits are valid: New fails only on bad limits.
		w.limiter, _ = ratelimit.New(nil, ratelimit.Limits{}, ratelimit.WithLogger(w.logger))
	}
	return w
}

// RateLimiter is the limiter of the auth routes.
func (w *Web) RateLimiter() *ratelimit.Limiter { return w.limiter }

// Auth is the authentication the glue uses.
func (w *Web) Auth() *authentication.Auth { return w.auth }

// Sessions are the cookie sessions.
func (w *Web) Sessions() *Sessions { return w.sessions }

// SocketID is the live socket id of a token, from the token section's
// template (the token's jti when the section has none).
func (w *Web) SocketID(s tokenresource.SocketID) string { return w.template(s) }

// SetLiveSocketID stores the live socket id of the token in the session:
// the template applied to the token's claims, the same typed value the
// revocation side builds from the stored row.
func (w *Web) SetLiveSocketID(sess Session, claims *authentication.Claims) {
	sess[LiveSocketIDKey] = w.template(claims.SocketID())
}

// StoreInSession stores the token in the session: its jti (SessionJTI) or
// the token itself (SessionUnsafe).
func (w *Web) StoreInSession(sess Session, token string, claims *authentication.Claims) {
	delete(sess, SessionToken)
	delete(sess, SessionJTI)
	if w.auth.Config().Tokens.SessionIdentifier == authentication.SessionUnsafe {
		sess[SessionToken] = token
	} else {
		sess[SessionJTI] = claims.JTI
	}
	sess[SessionSubject] = claims.Subject
}

// SignIn renews the session for a signed-in user: it revokes the token of
// the session the request carries, if any (reason "signed out", so its live
// socket closes), then writes a fresh session with the new token and its
// live socket id to the cookie. When that revocation fails, the error wraps
// ErrRevocationFailed and the cookie is left as it was.
func (w *Web) SignIn(rw http.ResponseWriter, r *http.Request, s *authentication.Session) error {
	if old := w.sessions.Load(r); old[SessionJTI] != s.Claims.JTI {
		if err := w.revokeSession(r.Context(), old); err != nil {
			return err
		}
	}
	sess := Session{}
	w.StoreInSession(sess, s.Token, s.Claims)
	w.SetLiveSocketID(sess, s.Claims)
	return w.sessions.Save(rw, r, sess)
}

// revokeSession revokes the token of sess with reason "signed out": its
// stored row (none, or one revoked already, leaves nothing to do), or the
// token itself when it verifies.
func (w *Web) revokeSession(ctx context.Context, sess Session) error {
	store := w.auth.Tokens()
	var err error
	switch {
	case sess[SessionJTI] != "":
		var row *tokenresource.Fields
		if row, err = store.Get(ctx, sess[SessionJTI], tokenresource.PurposeUser); err == nil {
			err = store.RevokeJTI(ctx, row.JTI, row.Subject, revocation.SignedOut)
		} else if errors.Is(err, resource.ErrNotFound) {
			err = nil
		}
	case sess[SessionToken] != "":
		err = w.revokeToken(ctx, sess[SessionToken])
	}
	return revocationFailed(err)
}

// revokeToken revokes token with reason "signed out" when it verifies.
func (w *Web) revokeToken(ctx context.Context, token string) error {
	if _, err := w.auth.Parse(ctx, token); err != nil {
		return nil // not a token of ours: nothing it could authenticate
	}
	return w.auth.Tokens().Revoke(ctx, token, revocation.SignedOut)
}

// revocationFailed wraps the error of a revocation with ErrRevocationFailed;
// a token revoked already is no error.
func revocationFailed(err error) error {
	if err == nil || errors.Is(err, tokenresource.ErrAlreadyRevoked) {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrRevocationFailed, err)
}

// ClearSession signs the request out: it revokes the session's token and
// the request's bearer token (either may be revoked already), then clears
// the session cookie. When a revocation fails, the error wraps
// ErrRevocationFailed and the cookie is not cleared: the request is still
// signed in, and signing out again may succeed.
func (w *Web) ClearSession(rw http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	err := w.revokeSession(ctx, w.sessions.Load(r))
	if token := bearer(r); token != "" {
		// Only a token that verifies may be revoked through this request.
		err = errors.Join(err, revocationFailed(w.revokeToken(ctx, token)))
	}
	if err != nil {
		return err
	}
	w.sessions.Clear(rw, r)
	return nil
}

// Principal is the signed-in user of a request.
type Principal struct {
	// User is the record (*T).
	User      any
	JTI       string
	Subject   string
	ExpiresAt time.Time
	// SocketID is the live socket id of the session's token.
	SocketID string
	// Bearer is true when the request authenticated with an Authorization
	// header rather than the session cookie.
	Bearer bool
	// Token is the bearer (or SessionUnsafe) token; empty for jti sessions.
	Token string
}

// Authenticate finds the request's principal: an Authorization: Bearer
// token first, then the session cookie. A revoked, expired or unknown
// token is ErrNotSignedIn.
func (w *Web) Authenticate(r *http.Request) (*Principal, error) { return w.principal(r, true) }

// principal is Authenticate; without withUser, it reads no user, and the
// principal's User is nil.
func (w *Web) principal(r *http.Request, withUser bool) (*Principal, error) {
	ctx := r.Context()
	verify := func(token string) (any, *authentication.Claims, error) {
		if withUser {
			return w.auth.Authenticate(ctx, token)
		}
		claims, err := w.auth.Verify(ctx, token)
		return nil, claims, err
	}
	if token := bearer(r); token != "" {
		user, claims, err := verify(token)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotSignedIn, err)
		}
		return &Principal{User: user, JTI: claims.JTI, Subject: claims.Subject, ExpiresAt: claims.ExpiresAt,
			SocketID: w.template(claims.SocketID()), Bearer: true, Token: token}, nil
	}
	sess := w.sessions.Load(r)
	switch {
	case sess[SessionJTI] != "":
		row, err := w.auth.Tokens().Session(ctx, sess[SessionJTI])
		if err != nil {
			return nil, notSignedIn(err)
		}
		var user any
		if withUser {
			if user, err = w.auth.RecordFor(ctx, row.Subject); err != nil {
				return nil, notSignedIn(err)
			}
		}
		id := sess[LiveSocketIDKey]
		if id == "" {
			id = w.template(tokenresource.SocketIDOf(row))
		}
		return &Principal{User: user, JTI: row.JTI, Subject: row.Subject, ExpiresAt: row.ExpiresAt.UTC(), SocketID: id}, nil
	case sess[SessionToken] != "":
		user, claims, err := verify(sess[SessionToken])
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotSignedIn, err)
		}
		id := sess[LiveSocketIDKey]
		if id == "" {
			id = w.template(claims.SocketID())
		}
		return &Principal{User: user, JTI: claims.JTI, Subject: claims.Subject, ExpiresAt: claims.ExpiresAt,
			SocketID: id, Token: sess[SessionToken]}, nil
	}
	return nil, ErrNotSignedIn
}

// errStoreFailed marks an ErrNotSignedIn whose cause is the store failing
// to answer, not the token: the session may well be valid.
var errStoreFailed = errors.New("kiln/web: the token store did not answer")

// notSignedIn wraps the error of a session lookup: ErrNotSignedIn, and
// errStoreFailed unless the token or its user is simply not found.
func notSignedIn(err error) error {
	if errors.Is(err, resource.ErrNotFound) {
		return fmt.Errorf("%w: %v", ErrNotSignedIn, err)
	}
	return fmt.Errorf("%w: %w: %v", ErrNotSignedIn, errStoreFailed, err)
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

type principalKey struct{}

// Middleware loads the request's principal into its context (see
// CurrentUser). A request whose token was revoked goes on as signed out,
// and its stale session cookie is cleared; when the token store could not
// answer, the request goes on as signed out but its cookie is kept.
func (w *Web) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		p, err := w.Authenticate(r)
		if err != nil {
			if _, cerr := r.Cookie(w.sessions.Name); cerr == nil && !errors.Is(err, errStoreFailed) {
				w.sessions.Clear(rw, r)
			}
			next.ServeHTTP(rw, r)
			return
		}
		ctx := context.WithValue(r.Context(), principalKey{}, p)
		ctx = resource.WithActor(ctx, p.User)
		next.ServeHTTP(rw, r.WithContext(ctx))
	})
}

// CurrentPrincipal returns what Middleware loaded, or nil.
func CurrentPrincipal(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// CurrentUser returns the signed-in user (*T) Middleware loaded, or nil.
func CurrentUser(ctx context.Context) any {
	if p := CurrentPrincipal(ctx); p != nil {
		return p.User
	}
	return nil
}

// RequireUser answers 401 (JSON) or redirects to signInPath (browsers)
// when Middleware found no user.
func RequireUser(signInPath string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if CurrentPrincipal(r.Context()) == nil {
			if wantsJSON(r) || r.Method != http.MethodGet {
				writeJSON(rw, http.StatusUnauthorized, map[string]string{"error": "not signed in"})
				return
			}
			http.Redirect(rw, r, signInPath, http.StatusSeeOther)
			return
		}
		next.ServeHTTP(rw, r)
	})
}

// LiveAuthenticator authenticates live sockets like Authenticate does, and
// gives the endpoint the session's socket id, jti and expiry. It is a
// live.Rechecker: once a socket is registered, the endpoint checks its
// token again without reading its user. An authenticator that wraps it
// keeps that only if it implements live.Rechecker too.
func (w *Web) LiveAuthenticator() live.Authenticator { return liveAuthenticator{w} }

// liveAuthenticator is LiveAuthenticator's: a live.Rechecker.
type liveAuthenticator struct{ w *Web }

var _ live.Rechecker = liveAuthenticator{}

// AuthenticateSocket implements live.Authenticator: Authenticate, the
// user included.
func (a liveAuthenticator) AuthenticateSocket(r *http.Request) (*live.Identity, error) {
	p, err := a.w.Authenticate(r)
	if err != nil {
		return nil, err
	}
	return &live.Identity{SocketID: p.SocketID, JTI: p.JTI, Subject: p.Subject, ExpiresAt: p.ExpiresAt, User: p.User}, nil
}

// RecheckSocket implements live.Rechecker: the request's token is checked
// as Authenticate checks it, and its user is not read again.
func (a liveAuthenticator) RecheckSocket(r *http.Request) error {
	_, err := a.w.principal(r, false)
	return err
}

// PublicFields returns a record's attributes without the sensitive ones,
// keyed by attribute name, for JSON answers.
func PublicFields(d *resource.Domain, r resource.Ref, rec any) map[string]any {
	decl := d.Declaration(r)
	rv := reflect.ValueOf(rec)
	if decl == nil || rv.Kind() != reflect.Pointer || rv.IsNil() {
		return nil
	}
	out := map[string]any{}
	for _, a := range decl.Attributes {
		if !a.Sensitive {
			out[a.Name] = rv.Elem().FieldByIndex(a.Index).Interface()
		}
	}
	return out
}

// SessionChecker is the live endpoint's safety-net checker: it asks the
// token store, in batches, which sessions' tokens are revoked or expired
// (or, with token presence required, gone).
func (w *Web) SessionChecker() live.Checker {
	presence := w.auth.Config().Tokens.RequireTokenPresenceForAuthentication
	return live.CheckerFunc(func(ctx context.Context, jtis []string) (map[string]revocation.Reason, error) {
		return w.auth.Tokens().Check(ctx, jtis, presence)
	})
}
