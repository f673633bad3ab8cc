package authentication

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kiln-go/kiln/extensions/tokenresource"
)

// ErrCredentialChanged: the credential a sign-in checked changed, or every
// token of its subject was revoked, before the token was issued; no token
// is. It always comes wrapped in ErrAuthenticationFailed.
var ErrCredentialChanged = errors.New("kiln/authentication: the credential changed during the check")

// Check is a credential check in progress: it remembers the subject's
// revocation epoch from before the check, so that the token the check
// earns is issued only if no revoke-all (sign out everywhere, a password
// change, an admin's revoke) committed since.
//
//	check, _ := auth.BeginCheck(ctx, began, user)  // before the password is checked
//	… check the password, outside any transaction …
//	domain.InTransaction(ctx, func(ctx context.Context) error {
//		if err := check.Confirm(ctx); err != nil { return err }
//		_, _, err := auth.Issue(ctx, user, opts)
//		return err
//	})
type Check struct {
	tokens  *tokenresource.Store
	subject string
	epoch   string
	began   time.Time
}

// beganKey is the context key of WithRequestBegan.
type beganKey struct{}

// WithRequestBegan returns ctx carrying when the request it serves arrived.
// A credential check (the password strategy's sign-in, reset and change)
// counts from then instead of from its own start: a revoke-all that
// commits after the request arrived but before the check began — while
// the request waited for a hash slot, say — refuses it too. The web glue
// sets it on every route of a strategy or add-on.
func WithRequestBegan(ctx context.Context, began time.Time) context.Context {
	return context.WithValue(ctx, beganKey{}, began)
}

// RequestBegan is the time WithRequestBegan put in ctx, or now when there
// is none: what to hand BeginCheck as began.
func RequestBegan(ctx context.Context) time.Time {
	if t, ok := ctx.Value(beganKey{}).(time.Time); ok {
		return t
	}
	return time.Now()
}

// BeginCheck starts the check of a credential of record (a *T); began is
// when the request for it arrived, before the record was looked up
// (RequestBegan).
func (a *Auth) BeginCheck(ctx context.Context, began time.Time, record any) (*Check, error) {
	subject, err := a.Subject(record)
	if err != nil {
		return nil, err
	}
	return a.BeginCheckSubject(ctx, began, subject)
}

// BeginCheckSubject starts the check of a credential of subject.
func (a *Auth) BeginCheckSubject(ctx context.Context, began time.Time, subject string) (*Check, error) {
	if a.tokens == nil {
		return &Check{}, nil
	}
	epoch, err := a.tokens.Epoch(ctx, subject)
	if err != nil {
		return nil, fmt.Errorf("kiln/authentication: read revocation epoch: %w", err)
	}
	return &Check{tokens: a.tokens, subject: subject, epoch: epoch, began: began}, nil
}

// Confirm, in the transaction that issues the token, locks the subject's
// revocation epoch until the transaction ends and fails with
// ErrAuthenticationFailed when a revoke-all committed since BeginCheck.
// A revoke-all that starts later waits for the lock, so it sees (and
// revokes) the token this transaction stores.
func (c *Check) Confirm(ctx context.Context) error {
	if c.tokens == nil {
		return nil
	}
	err := c.tokens.LockEpoch(ctx, c.subject, c.epoch, c.began)
	if errors.Is(err, tokenresource.ErrEpochChanged) {
		return fmt.Errorf("%w: %w: %w", ErrAuthenticationFailed, ErrCredentialChanged, err)
	}
	return err
}
