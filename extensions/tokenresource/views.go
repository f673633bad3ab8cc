package tokenresource

import (
	"time"

	"github.com/kiln-go/kiln/resource"
)

// views are the section's handles on the actions it adds, made by
// Transform under their configured names. The Store's methods and the
// section's own actions (a revocation runs revoke_stored, a revoke-all
// bump_epoch) run the actions through them, never by name. A view whose
// action the resource declares itself runs that action.
type views struct {
	storeToken      *resource.View[Record, storeTokenInput]
	getToken        *resource.View[Record, getTokenInput]
	revokeToken     *resource.View[Record, revokeTokenInput]
	revokeJTI       *resource.View[Record, revokeJTIInput]
	revokeAll       *resource.View[Record, revokeAllInput]
	readExpired     *resource.View[Record, resource.NoInput]
	expungeExpired  *resource.View[Record, resource.NoInput]
	revokeStored    *resource.View[Record, reasonInput]
	storeRevocation *resource.View[Record, storeRevocationInput]
	readTokens      *resource.View[Record, resource.NoInput]
	lockEpoch       *resource.View[Record, lockEpochInput]
	bumpEpoch       *resource.View[Record, bumpEpochInput]
}

// storeTokenInput is store_token's: the columns of an issued token.
type storeTokenInput struct {
	JTI       string         `kiln:"jti"`
	Subject   string         `kiln:"subject"`
	ExpiresAt time.Time      `kiln:"expires_at"`
	Purpose   string         `kiln:"purpose"`
	ExtraData map[string]any `kiln:"extra_data"`
}

// getTokenInput is get_token's; an empty Purpose matches any.
type getTokenInput struct {
	JTI     string `kiln:"jti"`
	Purpose string `kiln:"purpose"`
}

// revokeTokenInput is revoke_token's: the JWT and why it is revoked. An
// empty reason is revocation.Revoked, as in every input below.
type revokeTokenInput struct {
	Token  string `kiln:"token,sensitive"`
	Reason string `kiln:"reason"`
}

// revokeJTIInput is revoke_jti's.
type revokeJTIInput struct {
	JTI     string `kiln:"jti"`
	Subject string `kiln:"subject"`
	Reason  string `kiln:"reason"`
}

// revokeAllInput is revoke_all_stored_for_subject's (see RevokeAllOptions
// for the purposes).
type revokeAllInput struct {
	Subject         string   `kiln:"subject"`
	Reason          string   `kiln:"reason"`
	IncludePurposes []string `kiln:"include_purposes"`
	ExcludePurposes []string `kiln:"exclude_purposes"`
}

// reasonInput is revoke_stored's: the rows are the filter's.
type reasonInput struct {
	Reason string `kiln:"reason"`
}

// storeRevocationInput is store_revocation's: the revoked token's jti,
// subject and expiry.
type storeRevocationInput struct {
	JTI       string    `kiln:"jti"`
	Subject   string    `kiln:"subject"`
	ExpiresAt time.Time `kiln:"expires_at"`
	Reason    string    `kiln:"reason"`
}

// lockEpochInput is lock_epoch's: a subject's epoch row.
type lockEpochInput struct {
	JTI       string    `kiln:"jti"`
	Subject   string    `kiln:"subject"`
	ExpiresAt time.Time `kiln:"expires_at"`
	Purpose   string    `kiln:"purpose"`
}

// bumpEpochInput is bump_epoch's: a subject's epoch row with its new
// value.
type bumpEpochInput struct {
	JTI       string         `kiln:"jti"`
	Subject   string         `kiln:"subject"`
	ExpiresAt time.Time      `kiln:"expires_at"`
	Purpose   string         `kiln:"purpose"`
	ExtraData map[string]any `kiln:"extra_data"`
}
