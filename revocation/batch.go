package revocation

import (
	"context"
	"errors"
	"time"
)

// Disconnect is one revoked token's live sessions to close: its socket id
// and why, with the token's jti and expiry, which tell the token store of
// every node that hears of it that the token is revoked (see Feed). One
// without a JTI is the revocation of a token no node can name: every node
// then stops trusting what it knows of tokens being good.
type Disconnect struct {
	SocketID string
	Reason   Reason
	// JTI is the revoked token's jti.
	JTI string
	// ExpiresAt is when the revoked token expires: until then, a node
	// that heard of the revocation remembers it. Zero when unknown.
	ExpiresAt time.Time
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

// Feed is an endpoint that hears of revocations, this node's and every
// other node's, and tells the Watchers that follow it. The live package's
// Endpoint is one: it hears of this node's revocations when it sends them
// (DisconnectMany) and of the others' through its pub/sub. The token
// store's knowledge follows the feeds attached to the domain
// (tokenresource.Store.Follow, called by the token revocation notifier's
// Attach).
type Feed interface {
	// Follow makes w hear, from now on, of every revocation the feed
	// hears of and of every change of its state; it calls w.State with
	// the state now before it returns. It reports whether the feed is
	// prompt: whether, while it is up, it hears of every revocation of
	// every node as soon as it is published, and says so (State(false))
	// as soon as it may have missed one. Only a prompt feed lets the
	// token store trust what it read of a token being good.
	Follow(w Watcher) (prompt bool)
	// Fence returns once the feed has told its watchers of every
	// revocation announced (Announcer) or published, by any node,
	// before Fence was called; or an error when it cannot tell (its
	// subscription is down, or ctx ends first). A prompt feed's watchers
	// know, once it returns nil, every revocation committed before the
	// call: the token store fences before it answers from memory that a
	// token is good. The live endpoint returns at once while its node
	// holds a lease: every announcement waits for its acknowledgement.
	Fence(ctx context.Context) error
}

// ErrNotAnnounced is the error of a revocation that could not be
// announced (Announcer) while other nodes answer from memory: the token
// revocation notifier fails the revoking transaction with it, which is
// rolled back, so that no node goes on trusting a token revoked behind
// its back. Nothing was revoked; trying again may succeed.
var ErrNotAnnounced = errors.New("kiln/revocation: the revocation could not be announced to the other nodes; nothing was revoked")

// Announcer is an endpoint that tells every node of revocations before
// the transaction that makes them commits: the token revocation notifier
// calls Announce with the tokens a transaction revokes just before it
// commits, and DisconnectMany after. Every node that follows the
// announcing feed hears of the announced tokens (Watcher.Revoking) before
// any Fence that began after Announce returned nil does return, so that
// no node answers from memory that such a token is good once it is
// revoked. The live package's Endpoint implements it.
type Announcer interface {
	Announce(ctx context.Context, ds []Disconnect) error
}

// Watcher is told what a Feed hears. The feed calls its methods one at a
// time, from its own goroutines; they must return quickly and must not
// call the feed.
type Watcher interface {
	// Revoking is called with the tokens (ds's JTIs) of an announced
	// revocation (Announcer): their transaction is about to commit, or
	// to fail. Until the revocation itself is heard (Revoked), or long
	// enough for the transaction to have ended, a token so announced
	// must be checked in the database.
	Revoking(ds []Disconnect)
	// Revoked is called with the revocations the feed heard of, before
	// their sessions close.
	Revoked(ds []Disconnect)
	// State is called with up true each time the feed's subscription is
	// made or made again — from then on it hears of every revocation
	// published — and with up false each time it is lost: until the next
	// State(true), revocations may be missed.
	State(up bool)
}
