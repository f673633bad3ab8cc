package tokenresource

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"time"

	"github.com/kiln-go/kiln/resource"
)

// ErrEpochChanged is returned by Store.LockEpoch when the subject's tokens
// were all revoked since the epoch was read: a credential checked before
// that revocation must not be turned into a token.
var ErrEpochChanged = errors.New("kiln/tokenresource: every token of the subject was revoked since the credential was checked")

// epochKey is the extra_data key of an epoch row's value.
const epochKey = "epoch"

// epochJTI is the primary key of subject's epoch row. No token's jti has a
// colon, so it never names a token.
func epochJTI(subject string) string { return "epoch:" + subject }

// Epoch reads subject's revocation epoch: a value that changes every time
// all the subject's tokens are revoked (RevokeAllForSubject: sign out
// everywhere, a password change, an admin's revoke). "" when they never
// were. Read it before checking a credential, then issue the token in a
// transaction that calls LockEpoch with it.
func (s *Store) Epoch(ctx context.Context, subject string) (string, error) {
	rows, err := s.views.readTokens.Read(ctx, s.domain, resource.NoInput{},
		resource.Where(resource.And{resource.Eq("jti", epochJTI(subject)), resource.Eq("purpose", PurposeEpoch)}))
	if err != nil {
		return "", err
	}
	if len(rows) == 0 {
		return "", nil
	}
	return epochOf(rows[0].TokenFields()), nil
}

// LockEpoch, in ctx's transaction, locks subject's epoch row (creating it)
// until the transaction ends, and fails with ErrEpochChanged when a
// revoke-all of the subject happened since the credential check began:
// the epoch is no longer want (what Epoch read before the check), or it
// was set at or after began (the check's start, which may precede the
// Epoch read). A revoke-all takes the same lock before it revokes, so a
// token stored after LockEpoch in the same transaction is either seen and
// revoked by a later revoke-all, or never issued because of an earlier
// one.
func (s *Store) LockEpoch(ctx context.Context, subject, want string, began time.Time) error {
	rec, err := s.views.lockEpoch.Create(ctx, s.domain, lockEpochInput{
		JTI: epochJTI(subject), Subject: subject, ExpiresAt: farFuture, Purpose: PurposeEpoch})
	if err != nil {
		return err
	}
	f := rec.TokenFields()
	got := epochOf(f)
	if got != want || got != "" && !f.UpdatedAt.Before(began) {
		return ErrEpochChanged
	}
	return nil
}

// bumpEpochOf gives subject a new epoch, locking its row.
func (v *views) bumpEpochOf(ctx context.Context, d *resource.Domain, subject string) error {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	_, err := v.bumpEpoch.Create(ctx, d, bumpEpochInput{
		JTI: epochJTI(subject), Subject: subject, ExpiresAt: farFuture, Purpose: PurposeEpoch,
		ExtraData: map[string]any{epochKey: base64.RawURLEncoding.EncodeToString(b)}})
	return err
}

func epochOf(f *Fields) string {
	v, _ := f.ExtraData[epochKey].(string)
	return v
}
