package live

import "github.com/kiln-go/kiln/revocation"

// Close codes the endpoint uses.
const (
	// CloseSignedOut is terminal: the client must not reconnect; the close
	// reason says why ("signed out", "password changed", …).
	CloseSignedOut = 4001
	// CloseGoingAway is sent on graceful shutdown; the client reconnects.
	CloseGoingAway = 1001
	// CloseTooManySockets closes, right after the upgrade, a socket over
	// its session's or its user's limit on this node (live settings
	// max_sockets_per_session and max_sockets_per_subject); the reason is
	// ReasonTooManyForSession or ReasonTooManyForUser. It is not a
	// sign-out: client.js retries after a long delay (a slot frees when
	// another socket, a tab, closes).
	CloseTooManySockets = 4029
)

// reasonShuttingDown is the close reason of CloseGoingAway.
const reasonShuttingDown = "server shutting down"

// ReasonText is the short close reason sent to the client for a
// revocation reason.
func ReasonText(r revocation.Reason) string {
	switch r {
	case revocation.SignedOut:
		return "signed out"
	case revocation.LogOutEverywhere:
		return "signed out everywhere"
	case revocation.PasswordChanged:
		return "password changed"
	case revocation.Expired:
		return "expired"
	}
	return "revoked"
}
