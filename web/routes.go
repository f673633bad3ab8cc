package web

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/resource"
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
	// SignOut is called after ClearSession.
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

// Failure implements AuthController.
func (c DefaultController) Failure(w http.ResponseWriter, r *http.Request, web *Web, activity Activity, err error) {
	c = c.paths()
	status, msg := StatusOf(err)
	if status >= 500 {
		web.logger.ErrorContext(r.Context(), "kiln/web: auth route failed", "activity", activity, "err", err)
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
// failed sign-in or a missing session, 403 for a forbidden action, 500
// (with a generic message) for the rest.
func StatusOf(err error) (int, string) {
	var ve *resource.ValidationError
	var ce *resource.ConflictError
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
	case errors.Is(err, errBadRequest):
		return http.StatusBadRequest, err.Error()
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

var errBadRequest = errors.New("bad request")

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// input reads a form post or a JSON body (at most 64 KiB) as action input,
// keeping only the named fields.
func input(r *http.Request, fields ...string) (resource.Input, error) {
	r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
	in := resource.Input{}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			return nil, errors.Join(errBadRequest, errors.New("the body is not a JSON object"))
		}
		for _, f := range fields {
			if v, ok := body[f]; ok {
				in[f] = v
			}
		}
		return in, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, errors.Join(errBadRequest, errors.New("the form cannot be read"))
	}
	for _, f := range fields {
		if vs, ok := r.PostForm[f]; ok && len(vs) > 0 {
			in[f] = vs[0]
		}
	}
	return in, nil
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
	if w.logOutAction != "" {
		mux.HandleFunc("POST /auth/"+subject+"/log_out_everywhere", w.logOutEverywhere)
	}
	mux.HandleFunc("POST /sign-out", w.signOut)
	return w.csrf.Handler(w.Middleware(mux))
}

func (w *Web) extraData(r *http.Request) map[string]any {
	return map[string]any{"user_agent": r.UserAgent()}
}

// run runs a token-issuing action and answers through the controller.
func (w *Web) run(rw http.ResponseWriter, r *http.Request, activity Activity, action string, in resource.Input, opts ...resource.RunOption) {
	s, err := authentication.Run(r.Context(), w.auth.Domain(), w.auth.Resource(), action, in, opts...)
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
	in[password.ArgExtraData] = w.extraData(r)
	w.run(rw, r, ActivityRegister, w.password.Actions.Register, in)
}

func (w *Web) signIn(rw http.ResponseWriter, r *http.Request) {
	in, err := input(r, w.password.IdentityField, password.ArgPassword)
	if err != nil {
		w.controller.Failure(rw, r, w, ActivitySignIn, err)
		return
	}
	in[password.ArgExtraData] = w.extraData(r)
	w.run(rw, r, ActivitySignIn, w.password.Actions.SignIn, in)
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
	in[password.ArgExtraData] = w.extraData(r)
	w.run(rw, r, ActivityChangePassword, w.password.Actions.Change, in, resource.OnRecord(p.User))
}

func (w *Web) resetRequest(rw http.ResponseWriter, r *http.Request) {
	in, err := input(r, w.password.IdentityField)
	if err != nil {
		w.controller.Failure(rw, r, w, ActivityResetRequest, err)
		return
	}
	if _, err := w.auth.Domain().Run(r.Context(), w.auth.Resource(), w.password.Actions.RequestReset, in); err != nil {
		var ve *resource.ValidationError
		if errors.As(err, &ve) {
			w.controller.Failure(rw, r, w, ActivityResetRequest, err)
			return
		}
		w.logger.ErrorContext(r.Context(), "kiln/web: reset request failed", "err", err)
	}
	w.controller.Success(rw, r, w, ActivityResetRequest, nil)
}

func (w *Web) reset(rw http.ResponseWriter, r *http.Request) {
	in, err := input(r, password.ArgResetToken, password.ArgPassword, password.ArgPasswordConfirmation)
	if err != nil {
		w.controller.Failure(rw, r, w, ActivityReset, err)
		return
	}
	in[password.ArgExtraData] = w.extraData(r)
	w.run(rw, r, ActivityReset, w.password.Actions.Reset, in)
}

func (w *Web) logOutEverywhere(rw http.ResponseWriter, r *http.Request) {
	p := CurrentPrincipal(r.Context())
	if p == nil {
		w.controller.Failure(rw, r, w, ActivityLogOutEverywhere, ErrNotSignedIn)
		return
	}
	if _, err := w.auth.Domain().Run(r.Context(), w.auth.Resource(), w.logOutAction, resource.Input{"user": p.User}); err != nil {
		w.controller.Failure(rw, r, w, ActivityLogOutEverywhere, err)
		return
	}
	if err := w.ClearSession(rw, r); err != nil {
		w.logger.ErrorContext(r.Context(), "kiln/web: clear session", "err", err)
	}
	w.controller.SignOut(rw, r, w)
}

func (w *Web) signOut(rw http.ResponseWriter, r *http.Request) {
	if err := w.ClearSession(rw, r); err != nil {
		w.logger.ErrorContext(r.Context(), "kiln/web: clear session", "err", err)
	}
	w.controller.SignOut(rw, r, w)
}
