package password

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/web/authroute"
	"github.com/kiln-go/kiln/web/ratelimit"
)

// The activities of the strategy's routes, whatever its Name, for web's
// AuthController.
const (
	ActivityRegister     authroute.Activity = "password/register"
	ActivitySignIn       authroute.Activity = "password/sign_in"
	ActivityChange       authroute.Activity = "password/change"
	ActivityResetRequest authroute.Activity = "password/reset_request"
	ActivityReset        authroute.Activity = "password/reset"
)

var _ authroute.Provider = Password{}

// Routes implements authroute.Provider: the strategy as built serves, under
// /auth/<subject>/<name>/,
//
//	POST register        <identity>, password, password_confirmation
//	POST sign_in         <identity>, password
//	POST change          current_password, password, password_confirmation (signed in)
//	POST reset_request   <identity>            (with Resettable)
//	POST reset           reset_token, password, password_confirmation (with Resettable)
//
// Registration, sign-in and reset requests go through the router's rate
// limiter. The strategy as declared serves nothing.
func (p Password) Routes(rt authroute.Router) {
	if p.built == nil {
		return
	}
	h := handlers{p: p, rt: rt}
	route := func(name string, f http.HandlerFunc) { rt.Handle(http.MethodPost, p.Name+"/"+name, f) }
	route("register", h.register)
	route("sign_in", h.signIn)
	route("change", h.change)
	if p.Resettable != nil {
		route("reset_request", h.resetRequest)
		route("reset", h.reset)
	}
}

// handlers are the strategy's routes on a router.
type handlers struct {
	p  Password
	rt authroute.Router
}

func (h handlers) domain() *resource.Domain { return h.rt.Auth().Domain() }

func (h handlers) register(w http.ResponseWriter, r *http.Request) {
	in, err := h.rt.Input(r, h.p.IdentityField, ArgPassword, ArgPasswordConfirmation)
	if err != nil {
		h.rt.Answer(w, r, ActivityRegister, nil, err)
		return
	}
	if err := h.rt.RateLimiter().Register(r); err != nil {
		ratelimit.Deny(w, r, err)
		return
	}
	s, err := h.p.Register(r.Context(), h.domain(), RegisterInput{
		Identity: in[h.p.IdentityField], Password: in[ArgPassword],
		PasswordConfirmation: in[ArgPasswordConfirmation], ExtraData: h.rt.ExtraData(r)})
	h.rt.Answer(w, r, ActivityRegister, s, err)
}

func (h handlers) signIn(w http.ResponseWriter, r *http.Request) {
	in, err := h.rt.Input(r, h.p.IdentityField, ArgPassword)
	if err != nil {
		h.rt.Answer(w, r, ActivitySignIn, nil, err)
		return
	}
	identity := in[h.p.IdentityField]
	attempt, err := h.rt.RateLimiter().SignIn(r, identity)
	if err != nil {
		ratelimit.Deny(w, r, err)
		return
	}
	s, err := h.p.SignIn(r.Context(), h.domain(), SignInInput{
		Identity: identity, Password: in[ArgPassword], ExtraData: h.rt.ExtraData(r)})
	if err == nil || !errors.Is(err, authentication.ErrAuthenticationFailed) || errors.Is(err, authentication.ErrCredentialChanged) {
		// Only wrong credentials count against the limits, not a right
		// one refused because a revocation raced it.
		attempt.Succeeded(r.Context())
	}
	h.rt.Answer(w, r, ActivitySignIn, s, err)
}

func (h handlers) change(w http.ResponseWriter, r *http.Request) {
	user, err := h.rt.User(r)
	if err != nil {
		h.rt.Answer(w, r, ActivityChange, nil, err)
		return
	}
	in, err := h.rt.Input(r, ArgCurrentPassword, ArgPassword, ArgPasswordConfirmation)
	if err != nil {
		h.rt.Answer(w, r, ActivityChange, nil, err)
		return
	}
	s, err := h.p.Change(r.Context(), h.domain(), user, ChangeInput{
		CurrentPassword: in[ArgCurrentPassword], Password: in[ArgPassword],
		PasswordConfirmation: in[ArgPasswordConfirmation], ExtraData: h.rt.ExtraData(r)})
	h.rt.Answer(w, r, ActivityChange, s, err)
}

// resetRequest answers before it looks the identity up: the answer, and
// the time it takes, are the same whether or not the identity exists. The
// request is then served on the same connection, so a client's next
// request on it comes after the mail is sent.
func (h handlers) resetRequest(w http.ResponseWriter, r *http.Request) {
	in, err := h.rt.Input(r, h.p.IdentityField)
	if err != nil {
		h.rt.Answer(w, r, ActivityResetRequest, nil, err)
		return
	}
	identity := in[h.p.IdentityField]
	if strings.TrimSpace(identity) == "" {
		h.rt.Answer(w, r, ActivityResetRequest, nil, &resource.ValidationError{
			Resource: h.rt.Auth().Resource().Name(), Action: h.p.Actions.RequestReset, Field: h.p.IdentityField, Message: "is required"})
		return
	}
	if err := h.rt.RateLimiter().ResetRequest(r, identity); err != nil {
		ratelimit.Deny(w, r, err)
		return
	}
	answer := &bufferedResponse{header: http.Header{}}
	h.rt.Answer(answer, r, ActivityResetRequest, nil, nil)
	answer.sendTo(w)
	ctx := context.WithoutCancel(r.Context())
	if err := h.p.RequestReset(ctx, h.domain(), identity); err != nil {
		h.rt.Logger().ErrorContext(ctx, "kiln/password: reset request failed", "err", err)
	}
}

func (h handlers) reset(w http.ResponseWriter, r *http.Request) {
	in, err := h.rt.Input(r, ArgResetToken, ArgPassword, ArgPasswordConfirmation)
	if err != nil {
		h.rt.Answer(w, r, ActivityReset, nil, err)
		return
	}
	s, err := h.p.Reset(r.Context(), h.domain(), ResetInput{
		ResetToken: in[ArgResetToken], Password: in[ArgPassword],
		PasswordConfirmation: in[ArgPasswordConfirmation], ExtraData: h.rt.ExtraData(r)})
	h.rt.Answer(w, r, ActivityReset, s, err)
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

func (b *bufferedResponse) sendTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(b.body.Len()))
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
	_ = http.NewResponseController(w).Flush()
}
