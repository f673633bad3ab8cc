package tokenresource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
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
	views   *views   // the built resource's
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
	return &Store{domain: d, ref: d.Resource(r.Name()), cfg: ext.Config(), metrics: ext.metrics, views: ext.views}, nil
}

// Config is the token section, with defaults applied.
func (s *Store) Config() Token { return s.cfg }

// Domain is the store's domain.
func (s *Store) Domain() *resource.Domain { return s.domain }

// Resource is the token resource.
func (s *Store) Resource() resource.Ref { return s.ref }

// StoreToken stores an issued token.
func (s *Store) StoreToken(ctx context.Context, f Fields) error {
	_, err := s.views.storeToken.Create(ctx, s.domain, storeTokenInput{
		JTI: f.JTI, Subject: f.Subject, ExpiresAt: f.ExpiresAt, Purpose: f.Purpose, ExtraData: f.ExtraData})
	s.metrics.failed(opStore, err)
	return err
}

// Get returns the unexpired row of jti, of the given purpose unless purpose
// is empty; resource.ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, jti, purpose string) (*Fields, error) {
	rec, err := s.views.getToken.Get(ctx, s.domain, getTokenInput{JTI: jti, Purpose: purpose})
	s.metrics.lookup(opGet, err)
	if err != nil {
		return nil, err
	}
	return rec.TokenFields(), nil
}

// Revoke revokes a token (a JWT string) for reason: its stored row, or a
// new revocation row when it was not stored. A second revoke of the same
// token fails with ErrAlreadyRevoked.
func (s *Store) Revoke(ctx context.Context, token string, reason revocation.Reason) error {
	_, err := resource.CallView[any](ctx, s.domain, s.views.revokeToken, revokeTokenInput{Token: token, Reason: string(reason)})
	s.metrics.failed(opRevoke, err)
	return err
}

// RevokeJTI revokes a token by jti and subject.
func (s *Store) RevokeJTI(ctx context.Context, jti, subject string, reason revocation.Reason) error {
	_, err := resource.CallView[any](ctx, s.domain, s.views.revokeJTI, revokeJTIInput{JTI: jti, Subject: subject, Reason: string(reason)})
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
func (s *Store) RevokeAllForSubject(ctx context.Context, subject string, reason revocation.Reason, opts RevokeAllOptions) (int, error) {
	n, err := resource.CallView[int](ctx, s.domain, s.views.revokeAll, revokeAllInput{
		Subject: subject, Reason: string(reason), IncludePurposes: opts.IncludePurposes, ExcludePurposes: opts.ExcludePurposes})
	s.metrics.failed(opRevoke, err)
	return n, err
}

// IsRevoked reports whether jti is revoked. It fails closed: when the
// store cannot answer, the error is returned and revoked is true.
func (s *Store) IsRevoked(ctx context.Context, jti string) (bool, error) {
	// One read, outside any transaction: the revoked? action answers the
	// same for callers that run actions by name.
	revoked, err := s.views.isRevoked(ctx, s.domain, jti)
	s.metrics.lookup(opIsRevoked, err)
	return revoked, err
}

// ExpungeExpired removes every expired row in one statement and returns
// how many; each sends a notification with revocation.Expired.
func (s *Store) ExpungeExpired(ctx context.Context) (int, error) {
	rows, err := s.views.expungeExpired.DestroyAll(ctx, s.domain, resource.Le("expires_at", time.Now().UTC()), resource.NoInput{})
	s.metrics.expungeRuns.Inc()
	s.metrics.failed(opExpunge, err)
	if err != nil {
		return 0, err
	}
	s.metrics.lastExpunge.SetToCurrentTime()
	return len(rows), nil
}

// ExpiredJTIs returns the jtis of the rows that expired at or before now,
// revocations included: what ExpungeJTIs removes, for a caller that
// removes many rows in batches (the command line's tokens expunge).
func (s *Store) ExpiredJTIs(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := s.views.readExpired.Read(ctx, s.domain, resource.NoInput{}, resource.Where(resource.Le("expires_at", now)))
	if err != nil {
		return nil, err
	}
	jtis := make([]string, len(rows))
	for i, r := range rows {
		jtis[i] = r.TokenFields().JTI
	}
	return jtis, nil
}

// ExpungeJTIs removes the rows of jtis that expired at or before now, in
// one statement, and returns how many it removed; each sends a
// notification with revocation.Expired. Unlike ExpungeExpired it is not
// counted in kiln_tokens_expunge_runs_total.
func (s *Store) ExpungeJTIs(ctx context.Context, jtis []string, now time.Time) (int, error) {
	rows, err := s.views.expungeExpired.DestroyAll(ctx, s.domain, resource.And{resource.In("jti", jtis), resource.Le("expires_at", now)}, resource.NoInput{})
	return len(rows), err
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
func (v *views) revoke(ctx context.Context, cs *resource.AnyChangeset, jti, subject string, expiresAt time.Time, reason string) error {
	if jti == "" {
		return cs.Invalid("jti", "is required")
	}
	d := cs.Domain()
	rows, err := v.revokeStored.UpdateAll(ctx, d, resource.And{resource.Eq("jti", jti), resource.Ne("purpose", PurposeRevocation)}, reasonInput{Reason: reason})
	if err != nil {
		return err
	}
	if len(rows) > 0 {
		return nil
	}
	_, err = v.storeRevocation.Create(ctx, d, storeRevocationInput{JTI: jti, Subject: subject, ExpiresAt: expiresAt, Reason: reason})
	if errors.Is(err, resource.ErrConflict) {
		return ErrAlreadyRevoked
	}
	return err
}

// isRevoked reports whether jti has an unexpired revocation row; it fails
// closed, true with the error, when the store cannot answer.
func (v *views) isRevoked(ctx context.Context, d *resource.Domain, jti string) (bool, error) {
	_, err := v.getToken.Get(ctx, d, getTokenInput{JTI: jti, Purpose: PurposeRevocation})
	switch {
	case err == nil:
		return true, nil
	case isNotFound(err):
		return false, nil
	}
	return true, err
}

func isNotFound(err error) bool { return errors.Is(err, resource.ErrNotFound) }
