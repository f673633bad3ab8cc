// Package revocation is what the token store and the live endpoint share:
// why a token was revoked (Reason), what closes the live sessions of a
// revoked token (Endpoint), and what tells the token store of the
// revocations a node hears of (Feed, Watcher). It imports nothing of
// kiln's, so that the live endpoint (package live) implements Endpoint and
// Feed without importing the resource layer, and the token resource
// (extensions/tokenresource) writes reasons and follows feeds without
// importing live.
package revocation

import "context"

// Reason says why a token was revoked. Notifications of the token store
// carry it in their Metadata (tokenresource.ReasonKey); the live endpoint
// closes a revoked token's sockets with its text (live.ReasonText).
type Reason string

// The reasons kiln revokes tokens for.
const (
	SignedOut        Reason = "signed_out"
	LogOutEverywhere Reason = "log_out_everywhere"
	PasswordChanged  Reason = "password_changed"
	Revoked          Reason = "revoked"
	Expired          Reason = "expired"
)

// Endpoint is where live sessions are closed: the live package's Endpoint
// implements it. The token revocation notifier (extensions/tokenresource/tokenrevocation)
// calls Disconnect on each endpoint attached to the domain with the socket
// id of every revoked token.
type Endpoint interface {
	Disconnect(ctx context.Context, socketID string, reason Reason) error
}
