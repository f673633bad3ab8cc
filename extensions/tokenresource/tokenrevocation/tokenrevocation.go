// Package tokenrevocation closes the live sessions of revoked tokens.
// Declare its Notifier on the token resource, and attach the live
// endpoint to the built domain:
//
//	var Tokens = resource.New[Token]("token",
//		tokenresource.Token{LiveSocketIDTemplate: …},
//		resource.Notifiers(tokenrevocation.Notifier{}),
//	)
//	…
//	domain, err := resource.NewDomain("app", Users, Tokens).Build(ctx, layer)
//	endpoint, err := live.New(live.WithAuthenticator(glue.LiveAuthenticator()), …)
//	err = domain.Attach(endpoint)
//
// Domain.Attach resolves the endpoints once: every attached part that is a
// revocation.Endpoint. From then on the notifier reacts only to
// revocations and expiries (notifications that carry a revocation.Reason),
// one per revoked token — bulk revocations included — builds the socket
// id with the token section's template from tokenresource.SocketIDOf(row),
// the same typed value the sign-in side uses, and calls DisconnectMany
// (or Disconnect) on each endpoint with the token's jti and expiry. Before
// Attach, and when no endpoint is attached, it closes nothing.
//
// Attach also makes the token store's knowledge follow the attached parts
// that are a revocation.Feed, the live endpoint among them: with a prompt
// transport, a node then checks session tokens from memory, and hears of
// every revocation at once (see tokenresource.Store.Follow).
package tokenrevocation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
)

// Notifier is the token revocation notifier, declared on the token
// resource. The zero value is ready; Domain.Attach gives it its endpoints.
type Notifier struct{}

var (
	_ resource.Notifier          = Notifier{}
	_ resource.NotifierAttacher  = Notifier{}
	_ resource.BatchNotifier     = (*attached)(nil)
	_ resource.PrecommitNotifier = (*attached)(nil)
)

// Notify implements resource.Notifier: before Attach there is no endpoint
// to close sockets on, so it only checks that the notification is of a
// token record, and warns once, on the first revocation, that its sockets
// stay open: the domain was never attached.
func (Notifier) Notify(ctx context.Context, n resource.Notification) error {
	_, row, err := revocationOf(n)
	if err == nil && row != nil {
		unattached.Do(func() {
			slog.Default().WarnContext(ctx, "kiln: a token was revoked but no live endpoint is attached, so its sockets stay open until the safety net's sweep; call Domain.Attach(endpoint) once the endpoint is made",
				"resource", n.Resource)
		})
	}
	return err
}

// unattached warns once per process of revocations before Attach.
var unattached sync.Once

// Attach implements resource.NotifierAttacher: the endpoints are the parts
// that implement revocation.Endpoint. Endpoints on a resource without a
// token section, or whose section has no LiveSocketIDTemplate, are an
// error. The token store's knowledge follows every part that is a
// revocation.Feed (tokenresource.Store.Follow): the live endpoint tells it
// of every revocation, this node's and the others'.
func (Notifier) Attach(d *resource.Domain, r resource.Ref, parts []any) (resource.Notifier, error) {
	var endpoints []revocation.Endpoint
	var feeds []revocation.Feed
	for _, p := range parts {
		if ep, ok := p.(revocation.Endpoint); ok {
			endpoints = append(endpoints, ep)
		}
		if f, ok := p.(revocation.Feed); ok {
			feeds = append(feeds, f)
		}
	}
	section, ok := d.Declaration(r).Extension("token").(tokenresource.Token)
	if !ok {
		return nil, fmt.Errorf("kiln/tokenrevocation: %s has no token section; declare the notifier on the token resource", r.Name())
	}
	if len(endpoints) > 0 && section.LiveSocketIDTemplate == nil {
		return nil, fmt.Errorf("kiln/tokenrevocation: %s has live endpoints attached but no LiveSocketIDTemplate; set it in the token section, the same template the sign-in side uses", r.Name())
	}
	if len(feeds) > 0 {
		store, err := tokenresource.For(d, r)
		if err != nil {
			return nil, fmt.Errorf("kiln/tokenrevocation: %w", err)
		}
		for _, f := range feeds {
			store.Follow(f)
		}
	}
	return &attached{endpoints: endpoints, template: section.LiveSocketIDTemplate, strict: !section.Knowledge.Disabled, logger: d.Logger()}, nil
}

// attached is the notifier once Attach has resolved its endpoints.
type attached struct {
	endpoints []revocation.Endpoint
	template  func(tokenresource.SocketID) string
	// strict fails a revocation that cannot be announced: set unless the
	// token section's knowledge is disabled (on this node, and so, with
	// one configuration, on every node).
	strict bool
	logger *slog.Logger // the domain's
}

// Notify implements resource.Notifier: one notification is a batch of
// one.
func (a *attached) Notify(ctx context.Context, n resource.Notification) error {
	return a.NotifyBatch(ctx, []resource.Notification{n})
}

// NotifyBatch implements resource.BatchNotifier: the revocations of one
// committed transaction, closed with one DisconnectMany on each endpoint
// that has it (revocation.BatchEndpoint), one Disconnect per token on the
// others. Each revocation carries the token's jti and expiry, which every
// node's token store remembers.
func (a *attached) NotifyBatch(ctx context.Context, ns []resource.Notification) error {
	ds, errs := a.disconnects(ns)
	if len(ds) == 0 {
		return errors.Join(errs...)
	}
	for _, ep := range a.endpoints {
		if bep, ok := ep.(revocation.BatchEndpoint); ok {
			if err := bep.DisconnectMany(ctx, ds); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		for _, d := range ds {
			if err := ep.Disconnect(ctx, d.SocketID, d.Reason); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Precommit implements resource.PrecommitNotifier: just before a
// transaction that revokes tokens commits, it announces their jtis on each
// endpoint that is a revocation.Announcer, so that no node goes on
// answering from memory that they are good once the transaction has
// committed (see live.Endpoint.Announce). Expiries are not announced: a
// token's expiry refuses them on every node already.
//
// An announcement that fails — this node's pub/sub link down or stalled
// for longer than live.EchoTimeout — fails the transaction with
// revocation.ErrNotAnnounced, and nothing is revoked: nodes whose link is
// up would otherwise go on trusting these tokens until the revocation
// reached them, for up to the knowledge's max_age. With the token
// section's knowledge disabled, no node answers from memory: the failure
// is logged and the transaction commits.
func (a *attached) Precommit(ctx context.Context, ns []resource.Notification) error {
	all, _ := a.disconnects(ns) // NotifyBatch reports what is not a token's
	var ds []revocation.Disconnect
	for _, d := range all {
		if d.Reason != revocation.Expired {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		return nil
	}
	for _, ep := range a.endpoints {
		an, ok := ep.(revocation.Announcer)
		if !ok {
			continue
		}
		err := an.Announce(ctx, ds)
		switch {
		case err == nil:
		case a.strict:
			return fmt.Errorf("%w: %w", revocation.ErrNotAnnounced, err)
		default:
			a.logger.WarnContext(ctx, "kiln: revocations could not be announced before their commit", "tokens", len(ds), "err", err)
		}
	}
	return nil
}

// disconnects are the revocations and expiries of ns, each with its
// token's socket id, jti and expiry (none without endpoints), and an error
// for each notification of a reason on a record that is not a token's.
func (a *attached) disconnects(ns []resource.Notification) ([]revocation.Disconnect, []error) {
	var ds []revocation.Disconnect
	var errs []error
	for _, n := range ns {
		reason, row, err := revocationOf(n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if row != nil && len(a.endpoints) > 0 {
			ds = append(ds, revocation.Disconnect{SocketID: a.template(tokenresource.SocketIDOf(row)), Reason: reason,
				JTI: row.JTI, ExpiresAt: row.ExpiresAt.UTC()})
		}
	}
	return ds, errs
}

// revocationOf reads a revocation or an expiry; row is nil for a write
// that revokes nothing (store_token, say), and a reason on a record that
// is not a token's is an error.
func revocationOf(n resource.Notification) (revocation.Reason, *tokenresource.Fields, error) {
	reason, row, ok := tokenresource.RevocationOf(n)
	if !ok {
		if _, hasReason := n.Metadata[tokenresource.ReasonKey]; hasReason {
			return "", nil, fmt.Errorf("kiln/tokenrevocation: %s is not a token record (%T)", n.Resource, n.Record)
		}
		return "", nil, nil
	}
	return reason, row, nil
}
