package tokenresource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/kiln-go/kiln/resource"
)

// ErrAlreadyRevoked is returned when a token or jti to revoke is revoked
// already.
var ErrAlreadyRevoked = errors.New("kiln/tokenresource: token has already been revoked")

// ErrNotTokenResource is returned by For when the resource has no Token
// section.
var ErrNotTokenResource = errors.New("kiln/tokenresource: not a token resource")

// Store is the Go API of a built token resource. It is cheap to make and
// safe for concurrent use. It is a prometheus.Collector of the token
// store's metrics (see Describe).
type Store struct {
	domain  *resource.Domain
	ref     resource.Ref
	cfg     Token
	metrics *metrics // the built resource's, shared by its Stores
}

// For returns the Store of token resource r in domain d.
func For(d *resource.Domain, r resource.Ref) (*Store, error) {
	decl := d.Declaration(r)
	if decl == nil {
		return nil, fmt.Errorf("%w: %q is not in domain %q", resource.ErrUnknownResource, r.Name(), d.Name())
	}
	ext, ok := decl.Extension("token").(Token)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotTokenResource, r.Name())
	}
	return &Store{domain: d, ref: d.Resource(r.Name()), cfg: ext.Config(), metrics: ext.metrics}, nil
}

// Config is the token section, with defaults applied.
func (s *Store) Config() Token { return s.cfg }

// Domain is the store's domain.
func (s *Store) Domain() *resource.Domain { return s.domain }

// Resource is the token resource.
func (s *Store) Resource() resource.Ref { return s.ref }

// StoreToken stores an issued token.
func (s *Store) StoreToken(ctx context.Context, f Fields) error {
	in := resource.Input{"jti": f.JTI, "subject": f.Subject, "expires_at": f.ExpiresAt, "purpose": f.Purpose}
	if f.ExtraData != nil {
		in["extra_data"] = f.ExtraData
	}
	_, err := s.domain.Run(ctx, s.ref, s.cfg.Actions.StoreToken, in)
	s.metrics.failed(opStore, err)
	return err
}

// Get returns the unexpired row of jti, of the given purpose unless purpose
// is empty; resource.ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, jti, purpose string) (*Fields, error) {
	in := resource.Input{"jti": jti}
	if purpose != "" {
		in["purpose"] = purpose
	}
	res, err := s.domain.Run(ctx, s.ref, s.cfg.Actions.GetToken, in)
	s.metrics.lookup(opGet, err)
	if err != nil {
		return nil, err
	}
	return res.Record.(Record).TokenFields(), nil
}

// Revoke revokes a token (a JWT string) for reason: its stored row, or a
// new revocation row when it was not stored. A second revoke of the same
// token fails with ErrAlreadyRevoked.
func (s *Store) Revoke(ctx context.Context, token string, reason Reason) error {
	_, err := s.domain.Run(ctx, s.ref, s.cfg.Actions.RevokeToken, resource.Input{"token": token, "reason": string(reason)})
	s.metrics.failed(opRevoke, err)
	return err
}

// RevokeJTI revokes a token by jti and subject.
func (s *Store) RevokeJTI(ctx context.Context, jti, subject string, reason Reason) error {
	_, err := s.domain.Run(ctx, s.ref, s.cfg.Actions.RevokeJTI, resource.Input{"jti": jti, "subject": subject, "reason": string(reason)})
	s.metrics.failed(opRevoke, err)
	return err
}

// RevokeAllOptions narrow RevokeAllForSubject by purpose.
type RevokeAllOptions struct {
	// IncludePurposes revokes only rows of these purposes; nil means all.
	IncludePurposes []string
	// ExcludePurposes keeps rows of these purposes.
	ExcludePurposes []string
}

// RevokeAllForSubject revokes every stored token of subject in one
// statement and returns how many it revoked; each sends a notification.
func (s *Store) RevokeAllForSubject(ctx context.Context, subject string, reason Reason, opts RevokeAllOptions) (int, error) {
	in := resource.Input{"subject": subject, "reason": string(reason)}
	if opts.IncludePurposes != nil {
		in["include_purposes"] = opts.IncludePurposes
	}
	if opts.ExcludePurposes != nil {
		in["exclude_purposes"] = opts.ExcludePurposes
	}
	n, err := resource.Call[int](ctx, s.domain, s.ref, s.cfg.Actions.RevokeAllStoredForSubject, in)
	s.metrics.failed(opRevoke, err)
	return n, err
}

// IsRevoked reports whether jti is revoked. It fails closed: when the
// store cannot answer, the error is returned and revoked is true.
func (s *Store) IsRevoked(ctx context.Context, jti string) (bool, error) {
	// One read, outside any transaction: the revoked? action answers the
	// same for callers that run actions by name.
	_, err := s.domain.Run(ctx, s.ref, s.cfg.Actions.GetToken, resource.Input{"jti": jti, "purpose": PurposeRevocation})
	s.metrics.lookup(opIsRevoked, err)
	switch {
	case err == nil:
		return true, nil
	case isNotFound(err):
		return false, nil
	}
	return true, err
}

// ExpungeExpired removes every expired row in one statement and returns
// how many; each sends a notification with ReasonExpired.
func (s *Store) ExpungeExpired(ctx context.Context) (int, error) {
	res, err := s.domain.Run(ctx, s.ref, s.cfg.Actions.ExpungeExpired, nil,
		resource.Where(resource.Le("expires_at", time.Now().UTC())))
	s.metrics.expungeRuns.Inc()
	s.metrics.failed(opExpunge, err)
	if err != nil {
		return 0, err
	}
	s.metrics.lastExpunge.SetToCurrentTime()
	return reflect.ValueOf(res.Records).Len(), nil
}

// Start runs the expunger: ExpungeExpired once now, then every
// ExpungeInterval, until ctx is done. Failures are logged with logger
// (slog.Default() when nil) and retried at the next tick. Start returns
// at once; done is closed when the expunger has stopped.
func (s *Store) Start(ctx context.Context, logger *slog.Logger) (done <-chan struct{}) {
	if logger == nil {
		logger = slog.Default()
	}
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		ticker := time.NewTicker(s.cfg.ExpungeInterval)
		defer ticker.Stop()
		for {
			n, err := s.ExpungeExpired(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				logger.ErrorContext(ctx, "kiln: expunging expired tokens failed", "resource", s.ref.Name(), "err", err)
			case n > 0:
				logger.InfoContext(ctx, "kiln: expunged expired tokens", "resource", s.ref.Name(), "count", n)
			}
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
	return ch
}

// revoke marks jti revoked: the stored row in one conditional UPDATE, or a
// new revocation row. Both are race-safe: of two concurrent revokes of one
// token, one succeeds and the other gets ErrAlreadyRevoked.
func revoke(ctx context.Context, cs *resource.AnyChangeset, n ActionNames, jti, subject string, expiresAt time.Time, reason Reason) error {
	if jti == "" {
		return cs.Invalid("jti", "is required")
	}
	d, ref := cs.Domain(), cs.ResourceRef()
	res, err := d.Run(ctx, ref, n.RevokeStored, resource.Input{"reason": string(reason)},
		resource.Where(resource.And{resource.Eq("jti", jti), resource.Ne("purpose", PurposeRevocation)}))
	if err != nil {
		return err
	}
	if reflect.ValueOf(res.Records).Len() > 0 {
		return nil
	}
	_, err = d.Run(ctx, ref, n.StoreRevocation, resource.Input{"jti": jti, "subject": subject, "expires_at": expiresAt, "reason": string(reason)})
	if errors.Is(err, resource.ErrConflict) {
		return ErrAlreadyRevoked
	}
	return err
}

func isNotFound(err error) bool { return errors.Is(err, resource.ErrNotFound) }
