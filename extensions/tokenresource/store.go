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
	domain    *resource.Domain
	ref       resource.Ref
	cfg       Token
	metrics   *metrics   // the built resource's, shared by its Stores
	views     *views     // the built resource's
	knowledge *knowledge // the built resource's
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
	return &Store{domain: d, ref: d.Resource(r.Name()), cfg: ext.Config(), metrics: ext.metrics, views: ext.views, knowledge: ext.knowledge}, nil
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

// IsRevoked reports whether jti is revoked: from this node's knowledge
// when it knows (see Follow), else with one read of the database, outside
// any transaction. It fails closed: when the store cannot answer, the
// error is returned and revoked is true.
func (s *Store) IsRevoked(ctx context.Context, jti string) (bool, error) {
	k := s.knowledge
	if !s.knows() {
		revoked, err := s.views.isRevoked(ctx, s.domain, jti)
		s.metrics.lookup(opIsRevoked, err)
		return revoked, err
	}
	now := time.Now()
	if a, _ := s.known(ctx, jti, now, false); a != unknown {
		s.metrics.hit(a)
		return a == knownRevoked, nil
	}
	s.metrics.knowledgeMisses.Inc()
	state := k.begin() // before the read: see knowledge
	rec, err := s.views.getToken.Get(ctx, s.domain, getTokenInput{JTI: jti, Purpose: PurposeRevocation})
	switch {
	case err == nil:
		s.metrics.lookup(opIsRevoked, nil)
		k.learnRevoked(jti, rec.TokenFields().ExpiresAt, now)
		return true, nil
	case isNotFound(err):
		s.metrics.lookup(opIsRevoked, nil)
		k.learnGood(jti, state, now, nil)
		return false, nil
	}
	s.metrics.lookup(opIsRevoked, err)
	return true, err
}

// Session returns the session row of jti: stored, unexpired, of purpose
// user; resource.ErrNotFound when there is none. It is the presence check
// of a session token (RequireTokenPresenceForAuthentication) and of a web
// session that keeps a jti. From this node's knowledge when it knows (see
// Follow), else with one read of the database, outside any transaction.
// The row is the caller's own copy.
func (s *Store) Session(ctx context.Context, jti string) (*Fields, error) {
	k := s.knowledge
	if !s.knows() {
		return s.Get(ctx, jti, PurposeUser)
	}
	now := time.Now()
	switch a, row := s.known(ctx, jti, now, true); a {
	case knownRevoked:
		s.metrics.hit(a)
		return nil, fmt.Errorf("%w: token %s is revoked", resource.ErrNotFound, jti)
	case knownGood:
		s.metrics.hit(a)
		return row.copy(), nil
	}
	s.metrics.knowledgeMisses.Inc()
	state := k.begin() // before the read: see knowledge
	// Any purpose: a revocation row is worth remembering too.
	rec, err := s.views.getToken.Get(ctx, s.domain, getTokenInput{JTI: jti})
	s.metrics.lookup(opGet, err)
	if err != nil {
		return nil, err
	}
	row := rec.TokenFields()
	switch row.Purpose {
	case PurposeUser:
		k.learnGood(jti, state, now, row.copy())
		return row, nil
	case PurposeRevocation:
		k.learnRevoked(jti, row.ExpiresAt, now)
	}
	return nil, fmt.Errorf("%w: token %s is not a session (purpose %q)", resource.ErrNotFound, jti, row.Purpose)
}

// Follow makes this node's knowledge of tokens follow feed: the token
// revocation notifier's Attach (extensions/tokenresource/tokenrevocation)
// calls it for every part given to Domain.Attach that is a
// revocation.Feed, such as the live endpoint. Unless the token section's
// knowledge is disabled, IsRevoked and Session then answer from memory
// what this node knows, and read the database only for the rest:
//
//   - A token revoked is known from the revocations the feeds hear of —
//     this node's own before the revoking action returns, the other
//     nodes' when their message arrives — and from reads that found it
//     revoked, and is known until it expires. Every check of it is
//     refused from then on.
//   - A token read as good (not revoked; for Session, its row present) is
//     trusted only while the feeds have stayed up since before the read
//     began, for at most the section's knowledge max_age after it (1
//     minute by default), and never past its row's expiry. A feed that
//     goes down or up, a revocation heard that names no token, and
//     remembered revocations evicted for room all end that trust for
//     every token read before.
//
// This holds only while every process that revokes tokens publishes its
// revocations where the feeds hear them: the nodes and their command lines
// on one prompt transport. A revocation that never reaches a node (written
// to the database by hand, published on another transport, or lost because
// the publishing node's transport was down) is seen by it at the latest
// max_age after it last read the token.
//
// The knowledge is in use only while every feed it follows is prompt
// (revocation.Feed); a feed that is not — the live endpoint on the sqlite
// transport, which polls, or on live.InProcess — turns it off for good,
// and every check reads the database, as with no feed at all. Tokens of
// other purposes than user (sign-in, password reset) are always read from
// the database.
//
// The knowledge is used only once Domain.Attach has succeeded: when it
// fails, the token revocation notifier is not attached, and this node's
// revocations would reach no feed.
func (s *Store) Follow(feed revocation.Feed) { s.knowledge.follow(feed) }

// known is what the knowledge knows of jti, as of a check that began at
// now: a good answer only once a fence has shown that no revocation
// announced before the check is unheard of (at once while the node holds
// a lease, see live.LeaseTerm); unknown when the fence fails.
func (s *Store) known(ctx context.Context, jti string, now time.Time, needRow bool) (answer, *Fields) {
	k := s.knowledge
	a, row := k.known(jti, now, needRow)
	if a != knownGood {
		return a, row
	}
	if err := k.fence(ctx); err != nil {
		s.metrics.knowledgeFenceFailures.Inc()
		return unknown, nil
	}
	return k.known(jti, time.Now(), needRow)
}

// knows reports whether the knowledge is in use: it follows prompt feeds
// only, and the domain's Attach, which made it follow them, succeeded.
func (s *Store) knows() bool {
	k := s.knowledge
	if !k.inUse.Load() {
		return false
	}
	if k.attached.Load() {
		return true
	}
	if _, ok := resource.Part[revocation.Feed](s.domain); !ok {
		return false
	}
	k.attached.Store(true)
	return true
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
