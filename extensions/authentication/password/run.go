package password

import (
	"context"
	"errors"
	"fmt"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/resource"
)

// Errors of the strategy's run-time methods.
var (
	// ErrNoStrategy: the resource declares no password strategy.
	ErrNoStrategy = errors.New("kiln/password: the resource has no password strategy")
	// ErrNotBuilt: a method was called on the strategy as declared, not
	// on the one For returns, which holds the handles on its actions.
	ErrNotBuilt = errors.New("kiln/password: the strategy is not built; use the one password.For returns")
	// ErrNotResettable: RequestReset or Reset on a strategy without
	// Resettable.
	ErrNotResettable = errors.New("kiln/password: the strategy is not resettable")
)

// For returns the password strategy of auth's resource as the domain built
// it: its methods run the strategy's actions, by their configured names.
// With several password strategies, it is the first.
func For(auth *authentication.Auth) (Password, error) {
	for _, s := range auth.Config().Strategies {
		if p, ok := s.(Password); ok && p.built != nil {
			return p, nil
		}
	}
	return Password{}, fmt.Errorf("%w: %q", ErrNoStrategy, auth.Resource().Name())
}

// RegisterInput is the input of Register.
type RegisterInput struct {
	// Identity is the value of the identity field (IdentityField).
	Identity string
	Password string
	// PasswordConfirmation must equal Password; it is not read when the
	// strategy is ConfirmationOptional.
	PasswordConfirmation string
	// ExtraData is stored with the session token's row.
	ExtraData map[string]any
}

// SignInInput is the input of SignIn.
type SignInInput struct {
	// Identity is the value of the identity field (IdentityField).
	Identity string
	Password string
	// SignInToken issues a one-shot sign-in token (SignInTokenLifetime)
	// instead of a session token, to be exchanged with SignInWithToken.
	SignInToken bool
	// ExtraData is stored with the session token's row.
	ExtraData map[string]any
}

// SignInWithTokenInput is the input of SignInWithToken: the action's own,
// argument by argument.
type SignInWithTokenInput struct {
	// Token is a one-shot sign-in token, from SignIn with SignInToken.
	Token string `kiln:"token,sensitive"`
	// ExtraData is stored with the session token's row.
	ExtraData map[string]any `kiln:"extra_data"`
}

// ChangeInput is the input of Change.
type ChangeInput struct {
	CurrentPassword string
	Password        string
	// PasswordConfirmation must equal Password; it is not read when the
	// strategy is ConfirmationOptional.
	PasswordConfirmation string
	// ExtraData is stored with the fresh session token's row.
	ExtraData map[string]any
}

// SetInput is the input of Set.
type SetInput struct {
	Password string
	// PasswordConfirmation must equal Password; it is not read when the
	// strategy is ConfirmationOptional.
	PasswordConfirmation string
}

// ResetInput is the input of Reset.
type ResetInput struct {
	// ResetToken is the token the Sender delivered.
	ResetToken string
	Password   string
	// PasswordConfirmation must equal Password; it is not read when the
	// strategy is ConfirmationOptional.
	PasswordConfirmation string
	// ExtraData is stored with the session token's row.
	ExtraData map[string]any
}

// actions returns the strategy's views, or ErrNotBuilt.
func (p Password) actions() (*views, error) {
	if p.built == nil {
		return nil, ErrNotBuilt
	}
	return p.built, nil
}

// newPassword is the input of a new password and its confirmation.
func (p Password) newPassword(password, confirmation string) resource.Input {
	in := resource.Input{ArgPassword: password}
	if !p.ConfirmationOptional {
		in[ArgPasswordConfirmation] = confirmation
	}
	return in
}

// withExtra adds the extra data to in, when there is any.
func withExtra(in resource.Input, extra map[string]any) resource.Input {
	if extra != nil {
		in[ArgExtraData] = extra
	}
	return in
}

// Register runs the register action: a new record with that identity and
// password, signed in.
func (p Password) Register(ctx context.Context, d *resource.Domain, in RegisterInput) (*authentication.Session, error) {
	v, err := p.actions()
	if err != nil {
		return nil, err
	}
	input := withExtra(p.newPassword(in.Password, in.PasswordConfirmation), in.ExtraData)
	input[p.IdentityField] = in.Identity
	res, err := v.register.CreateResult(ctx, d, input)
	if err != nil {
		return nil, err
	}
	return authentication.SessionOf(res)
}

// SignIn runs the sign-in action. A wrong password and an unknown identity
// fail alike, with ErrAuthenticationFailed.
func (p Password) SignIn(ctx context.Context, d *resource.Domain, in SignInInput) (*authentication.Session, error) {
	v, err := p.actions()
	if err != nil {
		return nil, err
	}
	input := withExtra(resource.Input{p.IdentityField: in.Identity, ArgPassword: in.Password}, in.ExtraData)
	if in.SignInToken {
		input[ArgSignInToken] = true
	}
	return session(resource.CallViewResult[any](ctx, d, v.signIn, input))
}

// SignInWithToken runs the action that exchanges a one-shot sign-in token,
// once, for a session.
func (p Password) SignInWithToken(ctx context.Context, d *resource.Domain, in SignInWithTokenInput) (*authentication.Session, error) {
	v, err := p.actions()
	if err != nil {
		return nil, err
	}
	return session(resource.CallViewResult[any](ctx, d, v.signInWithToken, in))
}

// Change runs the change action on user (a *T): it checks the current
// password, sets the new one and returns a fresh session.
func (p Password) Change(ctx context.Context, d *resource.Domain, user any, in ChangeInput) (*authentication.Session, error) {
	v, err := p.actions()
	if err != nil {
		return nil, err
	}
	input := withExtra(p.newPassword(in.Password, in.PasswordConfirmation), in.ExtraData)
	input[ArgCurrentPassword] = in.CurrentPassword
	res, err := v.change.UpdateResult(ctx, d, user, input)
	if err != nil {
		return nil, err
	}
	return authentication.SessionOf(res)
}

// Set runs the set action on user (a *T): a new password, the old one
// unchecked. It issues no token; it returns the updated record.
func (p Password) Set(ctx context.Context, d *resource.Domain, user any, in SetInput) (any, error) {
	v, err := p.actions()
	if err != nil {
		return nil, err
	}
	return v.set.Update(ctx, d, user, p.newPassword(in.Password, in.PasswordConfirmation))
}

// GetByIdentity runs the get-by-identity action with identity, normalised
// as sign-in does unless the strategy is CaseSensitiveIdentity. It returns
// the record (a *T), or an error matching resource.ErrNotFound.
func (p Password) GetByIdentity(ctx context.Context, d *resource.Domain, identity string) (any, error) {
	v, err := p.actions()
	if err != nil {
		return nil, err
	}
	if !p.CaseSensitiveIdentity {
		identity = NormalizeIdentity(identity)
	}
	return v.getByIdentity.Get(ctx, d, resource.Input{p.IdentityField: identity})
}

// RequestReset runs the reset request action: the Sender gets a reset
// token when a record has that identity. It succeeds either way.
func (p Password) RequestReset(ctx context.Context, d *resource.Domain, identity string) error {
	v, err := p.actions()
	if err != nil {
		return err
	}
	if v.requestReset == nil {
		return ErrNotResettable
	}
	_, err = resource.CallView[any](ctx, d, v.requestReset, resource.Input{p.IdentityField: identity})
	return err
}

// Reset runs the reset action: it uses the reset token up, sets the new
// password and returns a session.
func (p Password) Reset(ctx context.Context, d *resource.Domain, in ResetInput) (*authentication.Session, error) {
	v, err := p.actions()
	if err != nil {
		return nil, err
	}
	if v.reset == nil {
		return nil, ErrNotResettable
	}
	input := withExtra(p.newPassword(in.Password, in.PasswordConfirmation), in.ExtraData)
	input[ArgResetToken] = in.ResetToken
	return session(resource.CallViewResult[any](ctx, d, v.reset, input))
}

// session is the session of a token-issuing generic action's result.
func session(res *resource.ViewResult[any], err error) (*authentication.Session, error) {
	if err != nil {
		return nil, err
	}
	return authentication.SessionOf(res)
}
