package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
	"github.com/kiln-go/kiln/web/authroute"
	"github.com/kiln-go/kiln/web/ratelimit"
)

// Activity names what an auth route did, for the AuthController. The
// strategies and add-ons that serve routes name their own activities (see
// web/authroute).
type Activity = authroute.Activity

// The activities DefaultController knows: those of the password strategy
// (password.ActivityRegister…) and the log_out_everywhere add-on
// (logouteverywhere.Activity), whose failures it sends back to their pages,
// and the sign-out of POST /sign-out.
const (
	ActivityRegister         Activity = "password/register"
	ActivitySignIn           Activity = "password/sign_in"
	ActivityChangePassword   Activity = "password/change"
	ActivityResetRequest     Activity = "password/reset_request"
	ActivityReset            Activity = "password/reset"
	ActivityLogOutEverywhere Activity = "log_out_everywhere"
	ActivitySignOut          Activity = "sign_out"
)

// AuthController answers the auth routes, as the guide's AuthController
// does: success stores the session, failure explains, sign-out leaves.
type AuthController interface {
	// Success is called when an activity signed a user in (s is set) or
	// succeeded without a session (s is nil: a reset request).
	Success(w http.ResponseWriter, r *http.Request, web *Web, activity Activity, s *authentication.Session)
	// Failure is called with the error of a failed activity.
	Failure(w http.ResponseWriter, r *http.Request, web *Web, activity Activity, err error)
	// SignOut is called once ClearSession has revoked the request's
	// tokens; when it could not, Failure is called with
	// ErrRevocationFailed instead. POST /sign-out skips Middleware: during
	// it, CurrentUser is nil, here and in Failure, and its revocation has
	// no actor. The log_out_everywhere route's SignOut has the user.
	SignOut(w http.ResponseWriter, r *http.Request, web *Web)
}

// DefaultController answers form posts with 303 redirects and requests
// with Accept: application/json with JSON: {"token", "user"} on success,
// {"error"} with a 4xx status on failure.
type DefaultController struct {
	// SuccessPath is where a sign-in lands. Default: "/".
	SuccessPath string
	// SignInPath is where a sign-out lands, and sign-in failures return.
	// Default: "/sign-in".
	SignInPath string
	// RegisterPath is where registration failures return. Default: "/register".
	RegisterPath string
	// ChangePasswordPath is where change-password failures return.
	// Default: "/change-password".
	ChangePasswordPath string
	// ResetPath is where reset failures return. Default: "/reset".
	ResetPath string
}

func (c DefaultController) paths() DefaultController {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.SuccessPath, "/")
	def(&c.SignInPath, "/sign-in")
	def(&c.RegisterPath, "/register")
	def(&c.ChangePasswordPath, "/change-password")
	def(&c.ResetPath, "/reset")
	return c
}

// Success implements AuthController: it signs the session in (renewing it,
// with the live socket id) and answers.
func (c DefaultController) Success(w http.ResponseWriter, r *http.Request, web *Web, activity Activity, s *authentication.Session) {
	c = c.paths()
	if s == nil {
		if wantsJSON(r) {
			writeJSON(w, http.StatusOK, map[string]any{"ok": true})
			return
		}
		target := c.SignInPath
		if activity == ActivityResetRequest {
			target += "?notice=" + url.QueryEscape("If the address is known, a reset link is on its way.")
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	}
	if CurrentPrincipal(r.Context()) == nil || !CurrentPrincipal(r.Context()).Bearer {
		if err := web.SignIn(w, r, s); err != nil {
			c.Failure(w, r, web, activity, err)
			return
		}
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, map[string]any{"token": s.Token, "user": PublicFields(web.auth.Domain(), web.auth.Resource(), s.Record)})
		return
	}
	http.Redirect(w, r, c.SuccessPath, http.StatusSeeOther)
}

// Failure implements AuthController: JSON clients get {"error", "fields"}
// with the status of StatusOf; browsers are sent back to the activity's
// page with ?error=, except when a revocation failed (503): they stay
// where they are, with a short page saying the session is still signed in.
func (c DefaultController) Failure(w http.ResponseWriter, r *http.Request, web *Web, activity Activity, err error) {
	c = c.paths()
	status, msg := StatusOf(err)
	if status >= 500 {
		web.logger.ErrorContext(r.Context(), "kiln/web: auth route failed", "activity", activity, "err", err)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
		if !wantsJSON(r) {
			http.Error(w, msg, status)
			return
		}
	}
	if wantsJSON(r) {
		body := map[string]any{"error": msg}
		if fields := fieldErrors(err); len(fields) > 0 {
			body["fields"] = fields
		}
		writeJSON(w, status, body)
		return
	}
	back := c.SignInPath
	switch activity {
	case ActivityRegister:
		back = c.RegisterPath
	case ActivityChangePassword:
		back = c.ChangePasswordPath
	case ActivityReset:
		back = c.ResetPath
	}
	http.Redirect(w, r, back+"?error="+url.QueryEscape(msg), http.StatusSeeOther)
}

// SignOut implements AuthController.
func (c DefaultController) SignOut(w http.ResponseWriter, r *http.Request, _ *Web) {
	c = c.paths()
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
		return
	}
	http.Redirect(w, r, c.SignInPath, http.StatusSeeOther)
}

// StatusOf maps an error of an auth route to an HTTP status and a message
// safe to show: 422 for invalid input, 409 for a taken identity, 401 for a
// failed sign-in or a missing session, 403 for a forbidden action, a
// *RequestError's status (400, 413, 415) for a body that cannot be read,
// 503 for ErrRevocationFailed, 500 (with a generic message) for the rest.
func StatusOf(err error) (int, string) {
	var ve *resource.ValidationError
	var ce *resource.ConflictError
	var re *RequestError
	switch {
	case errors.As(err, &ve):
		msgs := []string{}
		for _, f := range resource.ValidationErrors(err) {
			if f.Field != "" {
				msgs = append(msgs, f.Field+" "+f.Message)
			} else {
				msgs = append(msgs, f.Message)
			}
		}
		return http.StatusUnprocessableEntity, strings.Join(msgs, "; ")
	case errors.As(err, &ce):
		return http.StatusConflict, strings.Join(ce.Fields, ", ") + " has already been taken"
	case errors.Is(err, authentication.ErrAuthenticationFailed):
		return http.StatusUnauthorized, "authentication failed"
	case errors.Is(err, ErrNotSignedIn), errors.Is(err, authentication.ErrInvalidToken):
		return http.StatusUnauthorized, "not signed in"
	case errors.Is(err, resource.ErrForbidden):
		return http.StatusForbidden, "forbidden"
	case errors.As(err, &re):
		return re.Status, re.Message
	case errors.Is(err, ErrRevocationFailed):
		return http.StatusServiceUnavailable, "the session could not be signed out and is still signed in; try again"
	case errors.Is(err, revocation.ErrNotAnnounced):
		return http.StatusServiceUnavailable, "the change could not be made now (it would sign sessions out, and the other servers could not be told); nothing changed; try again"
	}
	return http.StatusInternalServerError, "internal error"
}

func fieldErrors(err error) map[string]string {
	out := map[string]string{}
	for _, ve := range resource.ValidationErrors(err) {
		if ve.Field != "" {
			if prev, ok := out[ve.Field]; ok {
				out[ve.Field] = prev + "; " + ve.Message
			} else {
				out[ve.Field] = ve.Message
			}
		}
	}
	return out
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Routes returns the auth routes of the resource, protected against
// cross-origin form posts (Protect), behind Middleware but for POST
// /sign-out. The strategies and add-ons that serve routes
// (web/authroute's Provider) bring their own, under /auth/<subject>/; the
// password strategy and log_out_everywhere serve:
//
//	POST /auth/<subject>/password/register        email, password, password_confirmation
//	POST /auth/<subject>/password/sign_in         email, password
//	POST /auth/<subject>/password/change          current_password, password, password_confirmation
//	POST /auth/<subject>/password/reset_request   email
//	POST /auth/<subject>/password/reset           reset_token, password, password_confirmation
//	POST /auth/<subject>/log_out_everywhere
//
// and Routes adds
//
//	POST /sign-out
//
// Mount it at the root of a mux: mux.Handle("/auth/", routes) and
// mux.Handle("/sign-out", routes). Routes panics, as http.ServeMux does,
// when two providers register the same route.
func (w *Web) Routes() http.Handler {
	mux := http.NewServeMux()
	rt := router{web: w, mux: mux, prefix: "/auth/" + w.auth.Config().SubjectName + "/"}
	cfg := w.auth.Config()
	for _, s := range cfg.Strategies {
		if p, ok := s.(authroute.Provider); ok {
			p.Routes(rt)
		}
	}
	for _, o := range cfg.AddOns {
		if p, ok := o.(authroute.Provider); ok {
			p.Routes(rt)
		}
	}
	// POST /sign-out revokes what the request carries (ClearSession),
	// whoever it is: it goes around Middleware, whose reads of the
	// token's row and of the user would only delay the revocation. Its
	// controller finds no CurrentUser, and its revocation has no actor.
	// The inner mux still has the route, so that another method gets 405,
	// as on every route.
	signOut := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.signOut(rw, r, ActivitySignOut, nil)
	})
	mux.Handle("POST /sign-out", signOut)
	outer := http.NewServeMux()
	outer.Handle("/", w.Middleware(mux))
	outer.Handle("POST /sign-out", signOut)
	return w.Protect(outer)
}

// MaxUserAgentBytes is how much of the User-Agent header the auth routes
// keep in the extra data of the tokens they issue.
const MaxUserAgentBytes = 256

func (w *Web) extraData(r *http.Request) map[string]any {
	return map[string]any{"user_agent": userAgent(r)}
}

// userAgent is the request's User-Agent as printable UTF-8, cut to at most
// MaxUserAgentBytes on a character boundary.
func userAgent(r *http.Request) string {
	ua := strings.Map(func(c rune) rune {
		if unicode.IsPrint(c) {
			return c
		}
		return -1
	}, strings.ToValidUTF8(r.UserAgent(), ""))
	if len(ua) > MaxUserAgentBytes {
		// Drops the last character's bytes when the cut splits it.
		ua = strings.ToValidUTF8(ua[:MaxUserAgentBytes], "")
	}
	return ua
}

// answer answers an activity through the controller: Failure with err,
// else Success with s.
func (w *Web) answer(rw http.ResponseWriter, r *http.Request, activity Activity, s *authentication.Session, err error) {
	if err != nil {
		w.controller.Failure(rw, r, w, activity, err)
		return
	}
	w.controller.Success(rw, r, w, activity, s)
}

// signOut answers the controller's SignOut only once revoke (when not
// nil) and ClearSession revoked what they revoke; otherwise the session
// and its cookie stay as they were and the controller's Failure answers
// (503 by default, when the revocation failed).
func (w *Web) signOut(rw http.ResponseWriter, r *http.Request, activity Activity, revoke func(context.Context) error) {
	if revoke != nil {
		if err := revoke(r.Context()); err != nil {
			if status, _ := StatusOf(err); status >= 500 {
				err = fmt.Errorf("%w: %w", ErrRevocationFailed, err)
			}
			w.controller.Failure(rw, r, w, activity, err)
			return
		}
	}
	if err := w.ClearSession(rw, r); err != nil {
		w.controller.Failure(rw, r, w, activity, err)
		return
	}
	w.controller.SignOut(rw, r, w)
}

// router is the authroute.Router of Routes: a provider's routes go to mux
// under prefix, /auth/<subject>/.
type router struct {
	web    *Web
	mux    *http.ServeMux
	prefix string
}

var _ authroute.Router = router{}

// Handle registers h; each request it serves carries the time it arrived
// (authentication.WithRequestBegan), so that a credential check counts
// from then.
func (rt router) Handle(method, path string, h http.Handler) {
	rt.mux.Handle(method+" "+rt.prefix+path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(authentication.WithRequestBegan(r.Context(), time.Now())))
	}))
}

func (rt router) Auth() *authentication.Auth { return rt.web.auth }

func (rt router) Input(r *http.Request, fields ...string) (map[string]string, error) {
	return input(r, fields...)
}

func (rt router) ExtraData(r *http.Request) map[string]any { return rt.web.extraData(r) }

func (rt router) User(r *http.Request) (any, error) {
	if p := CurrentPrincipal(r.Context()); p != nil {
		return p.User, nil
	}
	return nil, ErrNotSignedIn
}

func (rt router) RateLimiter() *ratelimit.Limiter { return rt.web.limiter }

func (rt router) Answer(w http.ResponseWriter, r *http.Request, activity Activity, s *authentication.Session, err error) {
	rt.web.answer(w, r, activity, s, err)
}

func (rt router) SignOut(w http.ResponseWriter, r *http.Request, activity Activity, revoke func(context.Context) error) {
	rt.web.signOut(w, r, activity, revoke)
}

func (rt router) Logger() *slog.Logger { return rt.web.logger }
