package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/kiln-go/kiln/live"
)

// Encode marshals a message, refusing one over limit bytes (0: no limit).
func Encode(msg live.Message, limit int) ([]byte, error) {
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(b) > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", live.ErrPayloadTooLarge, len(b), limit)
	}
	return b, nil
}

// Decode unmarshals a message, refusing garbage and unknown kinds.
func Decode(b []byte) (live.Message, error) {
	var msg live.Message
	if err := json.Unmarshal(b, &msg); err != nil {
		return msg, fmt.Errorf("kiln/pubsub: bad message: %w", err)
	}
	switch msg.Kind {
	case live.KindDisconnect:
		// One socket id (SocketID), or many (Disconnects): nodes of
		// either version may publish.
		if msg.SocketID == "" && len(msg.Disconnects) == 0 {
			return msg, errors.New("kiln/pubsub: disconnect without a socket id")
		}
		for _, d := range msg.Disconnects {
			if d.SocketID == "" {
				return msg, errors.New("kiln/pubsub: disconnect with an empty socket id")
			}
		}
	case live.KindBroadcast:
		if msg.Topic == "" || msg.Event == "" {
			return msg, errors.New("kiln/pubsub: broadcast without a topic or event")
		}
	case live.KindRevoking:
		if msg.Fence == "" || len(msg.JTIs) == 0 || slices.Contains(msg.JTIs, "") {
			return msg, errors.New("kiln/pubsub: revoking without a fence id or its jtis")
		}
	case live.KindFence:
		if msg.Fence == "" {
			return msg, errors.New("kiln/pubsub: fence without an id")
		}
	case live.KindAlive:
		if msg.Fence == "" || msg.Node == "" {
			return msg, errors.New("kiln/pubsub: alive without a fence id or node")
		}
	case live.KindAck:
		if msg.Node == "" || len(msg.Acks) == 0 || slices.Contains(msg.Acks, "") {
			return msg, errors.New("kiln/pubsub: ack without a node or its fence ids")
		}
	case live.KindLeave:
		if msg.Node == "" {
			return msg, errors.New("kiln/pubsub: leave without a node")
		}
	default:
		return msg, fmt.Errorf("kiln/pubsub: unknown message kind %q", msg.Kind)
	}
	return msg, nil
}
