// Package authroute is how a strategy or an add-on of the authentication
// extension serves its own HTTP routes through kiln's web glue.
//
// A strategy or add-on as built (the value its Transform returns) that
// implements Provider gets a Router when web.Web.Routes builds its
// handler, and registers its routes on it. web finds the providers among
// the built section's strategies and add-ons (Auth.Config().Strategies,
// then AddOns, in declaration order); it imports none of them. The Router
// gives a route what web has: the request's signed-in user, the form
// reader, the rate limiter, the session and the AuthController's answers.
//
// This package imports neither web nor any strategy, so both can import
// it.
package authroute

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/web/ratelimit"
)

// Activity names what an auth route did, for web's AuthController:
// "password/sign_in", "log_out_everywhere", "sign_out". A provider names
// its own; DefaultController sends a failure of an activity it does not
// know back to its sign-in page.
type Activity string

// Provider is a strategy or add-on, as built, that serves HTTP routes.
// web.Web.Routes calls Routes once for each provider, with a Router whose
// routes live under /auth/<subject>/.
type Provider interface {
	Routes(r Router)
}

// Router is what web offers a Provider's routes.
type Router interface {
	// Handle serves h for method at /auth/<subject>/<path>, behind web's
	// cross-origin protection (Web.Protect) and its Middleware, so that User
	// knows who is signed in. Like http.ServeMux.Handle, it panics when the
	// pattern conflicts with one registered already.
	Handle(method, path string, h http.Handler)
	// Auth is the authentication of the resource the routes serve.
	Auth() *authentication.Auth
	// Input reads a form post or a JSON object of at most web.MaxFormBytes,
	// keeping only the named fields, each a string given at most once. Its
	// error is a *web.RequestError (400, 413 or 415): give it to Answer.
	Input(r *http.Request, fields ...string) (map[string]string, error)
	// ExtraData is what a token issued for r stores with its row: the
	// request's user agent, cut to web.MaxUserAgentBytes.
	ExtraData(r *http.Request) map[string]any
	// User is r's signed-in user (*T); without one, an error wrapping
	// web.ErrNotSignedIn, which Answer answers with 401.
	User(r *http.Request) (any, error)
	// RateLimiter limits sign-ins, reset requests and registrations;
	// answer its refusals with ratelimit.Deny.
	RateLimiter() *ratelimit.Limiter
	// Answer answers through web's AuthController: Failure with err when
	// err is not nil; otherwise Success with s, which signs the session in
	// (s nil: the activity succeeded without signing anyone in).
	Answer(w http.ResponseWriter, r *http.Request, activity Activity, s *authentication.Session, err error)
	// SignOut runs revoke, when not nil, then signs the request out as
	// POST /sign-out does (Web.ClearSession) and answers the
	// AuthController's SignOut. It fails closed: when revoke or the
	// sign-out fails, the session and its cookie stay as they were and
	// Failure answers for activity with the error, wrapped in
	// web.ErrRevocationFailed (503) unless web answers it with a 4xx
	// (a forbidden action, say).
	SignOut(w http.ResponseWriter, r *http.Request, activity Activity, revoke func(context.Context) error)
	// Logger is web's logger.
	Logger() *slog.Logger
}
