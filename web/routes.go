package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/web/ratelimit"
)

// Activity names what an auth route did, for the AuthController.
type Activity string

// The activities of the auth routes.
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
	// succeeded without a session (s is nil: a reset request, log out
	// everywhere).
	Success(w http.ResponseWriter, r *http.Request, web *Web, activity Activity, s *authentication.Session)
	// Failure is called with the error of a failed activity.
	Failure(w http.ResponseWriter, r *http.Request, web *Web, activity Activity, err error)
	// SignOut is called once ClearSession has revoked the request's
	// tokens; when it could not, Failure is called with
	// ErrRevocationFailed instead.
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
// cross-origin form posts (net/http's CrossOriginProtection):
//
//	POST /auth/<subject>/password/register        email, password, password_confirmation
//	POST /auth/<subject>/password/sign_in         email, password
//	POST /auth/<subject>/password/change          current_password, password, password_confirmation
//	POST /auth/<subject>/password/reset_request   email
//	POST /auth/<subject>/password/reset           reset_token, password, password_confirmation
//	POST /auth/<subject>/log_out_everywhere
//	POST /sign-out
//
// Mount it at the root of a mux: mux.Handle("/auth/", routes) and
// mux.Handle("/sign-out", routes).
func (w *Web) Routes() http.Handler {
	mux := http.NewServeMux()
	subject := w.auth.Config().SubjectName
	if w.hasPW {
		base := "POST /auth/" + subject + "/" + w.password.Name + "/"
		mux.HandleFunc(base+"register", w.register)
		mux.HandleFunc(base+"sign_in", w.signIn)
		mux.HandleFunc(base+"change", w.changePassword)
		if w.password.Resettable != nil {
			mux.HandleFunc(base+"reset_request", w.resetRequest)
			mux.HandleFunc(base+"reset", w.reset)
		}
	}
	if w.hasLogOut {
		mux.HandleFunc("POST /auth/"+subject+"/log_out_everywhere", w.logOutEverywhere)
	}
	mux.HandleFunc("POST /sign-out", w.signOut)
	return w.Protect(w.Middleware(mux))
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

// answer answers a token-issuing activity through the controller.
func (w *Web) answer(rw http.ResponseWriter, r *http.Request, activity Activity, s *authentication.Session, err error) {
	if err != nil {
		w.controller.Failure(rw, r, w, activity, err)
		return
	}
	w.controller.Success(rw, r, w, activity, s)
}

func (w *Web) register(rw http.ResponseWriter, r *http.Request) {
	in, err := input(r, w.password.IdentityField, password.ArgPassword, password.ArgPasswordConfirmation)
	if err != nil {
		w.controller.Failure(rw, r, w, ActivityRegister, err)
		return
	}
	if err := w.limiter.Register(r); err != nil {
		ratelimit.Deny(rw, r, err)
		return
	}
	s, err := w.password.Register(r.Context(), w.auth.Domain(), password.RegisterInput{
		Identity: in[w.password.IdentityField], Password: in[password.ArgPassword],
		PasswordConfirmation: in[password.ArgPasswordConfirmation], ExtraData: w.extraData(r)})
	w.answer(rw, r, ActivityRegister, s, err)
}

func (w *Web) signIn(rw http.ResponseWriter, r *http.Request) {
	in, err := input(r, w.password.IdentityField, password.ArgPassword)
	if err != nil {
		w.controller.Failure(rw, r, w, ActivitySignIn, err)
		return
	}
	identity := in[w.password.IdentityField]
	attempt, err := w.limiter.SignIn(r, identity)
	if err != nil {
		ratelimit.Deny(rw, r, err)
		return
	}
	s, err := w.password.SignIn(r.Context(), w.auth.Domain(), password.SignInInput{
		Identity: identity, Password: in[password.ArgPassword], ExtraData: w.extraData(r)})
	if err != nil {
		if !errors.Is(err, authentication.ErrAuthenticationFailed) || errors.Is(err, authentication.ErrCredentialChanged) {
			// Only wrong credentials count against the limits, not a
			// right one refused because a revocation raced it.
			attempt.Succeeded(r.Context())
		}
		w.controller.Failure(rw, r, w, ActivitySignIn, err)
		return
	}
	attempt.Succeeded(r.Context())
	w.controller.Success(rw, r, w, ActivitySignIn, s)
}

func (w *Web) changePassword(rw http.ResponseWriter, r *http.Request) {
	p := CurrentPrincipal(r.Context())
	if p == nil {
		w.controller.Failure(rw, r, w, ActivityChangePassword, ErrNotSignedIn)
		return
	}
	in, err := input(r, password.ArgCurrentPassword, password.ArgPassword, password.ArgPasswordConfirmation)
	if err != nil {
		w.controller.Failure(rw, r, w, ActivityChangePassword, err)
		return
	}
	s, err := w.password.Change(r.Context(), w.auth.Domain(), p.User, password.ChangeInput{
		CurrentPassword: in[password.ArgCurrentPassword], Password: in[password.ArgPassword],
		PasswordConfirmation: in[password.ArgPasswordConfirmation], ExtraData: w.extraData(r)})
	w.answer(rw, r, ActivityChangePassword, s, err)
}

// resetRequest answers before it looks the identity up: the answer, and
// the time it takes, are the same whether or not the identity exists. The
// request is then served on the same connection, so a client's next
// request on it comes after the mail is sent.
func (w *Web) resetRequest(rw http.ResponseWriter, r *http.Request) {
	in, err := input(r, w.password.IdentityField)
	if err != nil {
		w.controller.Failure(rw, r, w, ActivityResetRequest, err)
		return
	}
	identity := in[w.password.IdentityField]
	if strings.TrimSpace(identity) == "" {
		w.controller.Failure(rw, r, w, ActivityResetRequest, &resource.ValidationError{
			Resource: w.auth.Resource().Name(), Action: w.password.Actions.RequestReset, Field: w.password.IdentityField, Message: "is required"})
		return
	}
	if err := w.limiter.ResetRequest(r, identity); err != nil {
		ratelimit.Deny(rw, r, err)
		return
	}
	answer := &bufferedResponse{header: http.Header{}}
	w.controller.Success(answer, r, w, ActivityResetRequest, nil)
	answer.sendTo(rw)
	ctx := context.WithoutCancel(r.Context())
	if err := w.password.RequestReset(ctx, w.auth.Domain(), identity); err != nil {
		w.logger.ErrorContext(ctx, "kiln/web: reset request failed", "err", err)
	}
}

// bufferedResponse holds a response until sendTo writes it whole, with its
// length, and flushes it: the client has its answer while the handler
// goes on.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) sendTo(rw http.ResponseWriter) {
	for k, v := range b.header {
		rw.Header()[k] = v
	}
	rw.Header().Set("Content-Length", strconv.Itoa(b.body.Len()))
	if b.status == 0 {
		b.status = http.StatusOK
	}
	rw.WriteHeader(b.status)
	_, _ = rw.Write(b.body.Bytes())
	_ = http.NewResponseController(rw).Flush()
}

func (w *Web) reset(rw http.ResponseWriter, r *http.Request) {
	in, err := input(r, password.ArgResetToken, password.ArgPassword, password.ArgPasswordConfirmation)
	if err != nil {
		w.controller.Failure(rw, r, w, ActivityReset, err)
		return
	}
	s, err := w.password.Reset(r.Context(), w.auth.Domain(), password.ResetInput{
		ResetToken: in[password.ArgResetToken], Password: in[password.ArgPassword],
		PasswordConfirmation: in[password.ArgPasswordConfirmation], ExtraData: w.extraData(r)})
	w.answer(rw, r, ActivityReset, s, err)
}

func (w *Web) logOutEverywhere(rw http.ResponseWriter, r *http.Request) {
	p := CurrentPrincipal(r.Context())
	if p == nil {
		w.controller.Failure(rw, r, w, ActivityLogOutEverywhere, ErrNotSignedIn)
		return
	}
	if _, err := w.logOut.Run(r.Context(), w.auth.Domain(), p.User); err != nil {
		if status, _ := StatusOf(err); status >= 500 {
			err = fmt.Errorf("%w: %w", ErrRevocationFailed, err)
		}
		w.controller.Failure(rw, r, w, ActivityLogOutEverywhere, err)
		return
	}
	if err := w.ClearSession(rw, r); err != nil {
		w.controller.Failure(rw, r, w, ActivityLogOutEverywhere, err)
		return
	}
	w.controller.SignOut(rw, r, w)
}

// signOut answers the controller's SignOut only once ClearSession revoked
// the request's tokens; otherwise the session and its cookie stay as they
// were and the controller's Failure answers (503 by default).
func (w *Web) signOut(rw http.ResponseWriter, r *http.Request) {
	if err := w.ClearSession(rw, r); err != nil {
		w.controller.Failure(rw, r, w, ActivitySignOut, err)
		return
	}
	w.controller.SignOut(rw, r, w)
}
