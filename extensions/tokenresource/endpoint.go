package tokenresource

import "context"

// Endpoint is where live sessions are closed: the live package's Endpoint
// implements it. TokenRevocationNotifier calls Disconnect on each configured
// endpoint with the socket id of every revoked token.
type Endpoint interface {
	Disconnect(ctx context.Context, socketID string, reason Reason) error
}
