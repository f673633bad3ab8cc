// Package tokenrevocation closes the live sessions of revoked tokens.
// Declare its Notifier on the token resource:
//
//	var Tokens = resource.New[Token]("token",
//		tokenresource.Token{Endpoints: …, LiveSocketIDTemplate: …},
//		resource.Notifiers(tokenrevocation.Notifier{}),
//	)
//
// It reacts only to revocations and expiries (notifications that carry a
// revocation.Reason), one per revoked token — bulk revocations
// included — builds the socket id with the token section's template from
// tokenresource.SocketIDOf(row), the same typed value the sign-in side
// uses, and calls Disconnect on each of the section's endpoints.
package tokenrevocation

import (
	"context"
	"errors"
	"fmt"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
)

// Notifier is the token revocation notifier. The zero value uses the token
// section's Endpoints; set Endpoints to send elsewhere.
type Notifier struct {
	// Endpoints replace the token section's endpoints when set.
	Endpoints []revocation.Endpoint
}

var _ resource.Notifier = Notifier{}

// Notify implements resource.Notifier.
func (nf Notifier) Notify(ctx context.Context, n resource.Notification) error {
	reason, row, ok := tokenresource.RevocationOf(n)
	if !ok {
		if _, hasReason := n.Metadata[tokenresource.ReasonKey]; hasReason {
			return fmt.Errorf("kiln/tokenrevocation: %s is not a token record (%T)", n.Resource, n.Record)
		}
		return nil // a write that revokes nothing: store_token, say
	}
	if n.Domain == nil {
		return errors.New("kiln/tokenrevocation: notification without a domain")
	}
	section, ok := n.Domain.Declaration(n.Domain.Resource(n.Resource)).Extension("token").(tokenresource.Token)
	if !ok {
		return fmt.Errorf("kiln/tokenrevocation: %s has no token section", n.Resource)
	}
	endpoints := nf.Endpoints
	if endpoints == nil {
		endpoints = section.Endpoints
	}
	if len(endpoints) == 0 {
		return nil
	}
	if section.LiveSocketIDTemplate == nil {
		return fmt.Errorf("kiln/tokenrevocation: %s has endpoints but no LiveSocketIDTemplate", n.Resource)
	}
	socketID := section.LiveSocketIDTemplate(tokenresource.SocketIDOf(row))
	var errs []error
	for _, ep := range endpoints {
		if err := ep.Disconnect(ctx, socketID, reason); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
