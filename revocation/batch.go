package revocation

import "context"

// Disconnect is one revoked token's live sessions to close: its socket id
// and why.
type Disconnect struct {
	SocketID string
	Reason   Reason
}

// BatchEndpoint is an Endpoint that closes the sessions of many socket
// ids at once: the token revocation notifier calls DisconnectMany once per
// committed transaction with every token it revoked (a log out everywhere
// of 1,000 tokens is one call), and Disconnect on endpoints without it.
// The live package's Endpoint implements it.
type BatchEndpoint interface {
	Endpoint
	DisconnectMany(ctx context.Context, ds []Disconnect) error
}
