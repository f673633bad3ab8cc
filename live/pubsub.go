package live

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
)

// ErrPayloadTooLarge is returned by a transport's Publish for a message
// over its size limit (8000 bytes for PostgreSQL NOTIFY).
var ErrPayloadTooLarge = errors.New("kiln/live: message too large for the transport")

// Message is what endpoints tell each other through a PubSub: disconnect
// the sessions of a socket id, or broadcast an event on a topic.
//
// A disconnect is a revocation: it carries the revoked token's jti and
// expiry, which every node's token store remembers (see Endpoint.Follow).
// Nodes of earlier versions sent disconnects without them, and still may
// during an upgrade: a node reads such a disconnect as the revocation of a
// token it cannot name, and stops trusting what it knows of tokens being
// good. The fields below are all optional on the wire but for Kind, so
// that every form stays readable.
type Message struct {
	// Kind is KindDisconnect, KindBroadcast, KindRevoking, KindFence,
	// KindAlive, KindAck or KindLeave on the wire; KindSubscribed and KindLost are handed by a transport
	// to its own subscriber only.
	Kind string `json:"kind"`
	// SocketID and Reason, for a disconnect of one socket id.
	SocketID string `json:"socket_id,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// JTI and ExpiresAt (Unix seconds), for a disconnect of one socket id:
	// the revoked token's jti and expiry.
	JTI       string `json:"jti,omitempty"`
	ExpiresAt int64  `json:"expires_at,omitempty"`
	// Disconnects, for a disconnect of many socket ids at once
	// (Endpoint.DisconnectMany), each with its reason, jti and expiry;
	// SocketID is then empty. Nodes read both forms.
	Disconnects []Disconnected `json:"disconnects,omitempty"`
	// JTIs, for a revoking message: the tokens a transaction is about
	// to revoke (Endpoint.Announce).
	JTIs []string `json:"jtis,omitempty"`
	// Fence, for a revoking, fence or alive message: an id unique to
	// the endpoint that published it, which waits to hear it back.
	Fence string `json:"fence,omitempty"`
	// Acks, for an ack message: the Fence ids of the revoking messages it
	// acknowledges.
	Acks []string `json:"acks,omitempty"`
	// Node, for an alive, ack or leave message: the member's id (see
	// LeaseTerm).
	Node string `json:"node,omitempty"`
	// Topic, Event and Payload, for a broadcast.
	Topic   string          `json:"topic,omitempty"`
	Event   string          `json:"event,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Disconnected is one socket id of a disconnect Message, why, and the
// revoked token's jti and expiry (Unix seconds).
type Disconnected struct {
	SocketID  string `json:"socket_id"`
	Reason    string `json:"reason,omitempty"`
	JTI       string `json:"jti,omitempty"`
	ExpiresAt int64  `json:"expires_at,omitempty"`
}

// PayloadLimiter is a PubSub whose messages have a size limit:
// Endpoint.DisconnectMany splits its socket ids into messages of at most
// PayloadLimit bytes of JSON (0: no limit). A PubSub without it other than
// InProcess is taken to have PostgreSQL's limit, DefaultPayloadLimit.
type PayloadLimiter interface {
	PayloadLimit() int
}

// DefaultPayloadLimit is the size limit DisconnectMany assumes of a PubSub
// that is not a PayloadLimiter: PostgreSQL NOTIFY's.
const DefaultPayloadLimit = 7999

// The kinds of Message.
const (
	KindDisconnect = "disconnect"
	KindBroadcast  = "broadcast"
)

// Prompter is a PubSub that says whether it is prompt. A prompt transport
//
//   - hands each message to the subscribers of every node as soon as it
//     is published: it pushes, it does not poll;
//   - hands its subscriber a KindSubscribed message each time the
//     subscription is made (the first time included) or made again, once
//     it receives every message published from then on;
//   - hands its subscriber a KindLost message each time the subscription
//     is lost, or a message dropped, before it tries to get it back.
//
// While such a subscription is up, the endpoint hears of every revocation
// made by every node that publishes on the transport, at once; the token
// store then trusts what it read of a token being good, until a message
// says otherwise (see Endpoint.Follow). kiln's postgres, redis and nats
// transports are prompt. The sqlite transport, which polls, is not, and
// neither is InProcess: it carries the revocations of this process only,
// while another process on the same database (a command line's tokens
// revoke) may revoke tokens it never hears of. A PubSub that is not a
// Prompter is not prompt.
type Prompter interface {
	PubSub
	Prompt() bool
}

// PubSub carries Messages to every endpoint that subscribed, on every node.
// Delivery is at most once: the endpoint's safety net makes up for a lost
// disconnect.
//
// Close releases the transport's connections once the endpoints are shut
// down; a second Close returns nil.
type PubSub interface {
	io.Closer
	// Publish sends msg to every subscriber, this node's included. It
	// returns once ctx is done at the latest: the endpoint bounds its
	// announcements and fences with EchoTimeout through it.
	Publish(ctx context.Context, msg Message) error
	// Subscribe calls fn for every message until ctx is done. It returns
	// once subscribed.
	Subscribe(ctx context.Context, fn func(Message)) error
}

// InProcess is the PubSub of a single node: Publish calls every subscriber
// before it returns. The zero value is ready to use.
type InProcess struct {
	mu   sync.RWMutex
	subs map[int]func(Message)
	next int
}

var (
	_ PubSub         = (*InProcess)(nil)
	_ PayloadLimiter = (*InProcess)(nil)
)

// PayloadLimit implements PayloadLimiter: messages in process have no
// size limit.
func (p *InProcess) PayloadLimit() int { return 0 }

// Publish implements PubSub.
func (p *InProcess) Publish(_ context.Context, msg Message) error {
	p.mu.RLock()
	fns := make([]func(Message), 0, len(p.subs))
	for _, fn := range p.subs {
		fns = append(fns, fn)
	}
	p.mu.RUnlock()
	for _, fn := range fns {
		fn(msg)
	}
	return nil
}

// Close implements io.Closer. An InProcess holds no connection: Close
// returns nil and changes nothing (subscribers leave with their ctx).
func (p *InProcess) Close() error { return nil }

// Subscribe implements PubSub.
func (p *InProcess) Subscribe(ctx context.Context, fn func(Message)) error {
	p.mu.Lock()
	if p.subs == nil {
		p.subs = map[int]func(Message){}
	}
	id := p.next
	p.next++
	p.subs[id] = fn
	p.mu.Unlock()
	context.AfterFunc(ctx, func() {
		p.mu.Lock()
		delete(p.subs, id)
		p.mu.Unlock()
	})
	return nil
}
