package live

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/olahol/melody"
)

// Identity is what an Authenticator found about a socket's request.
type Identity struct {
	// SocketID is the live socket id (the session's live_socket_id).
	// Required.
	SocketID string
	// JTI is the token's id, which the safety net checks.
	JTI string
	// Subject is the token's subject.
	Subject string
	// ExpiresAt closes the socket with "expired" when reached; zero for
	// never.
	ExpiresAt time.Time
	// User is the authenticated record, for the app's handlers.
	User any
	// Topics are subscribed at connect.
	Topics []string
}

// Frame is the JSON shape of every frame in both directions.
type Frame struct {
	Event   string          `json:"event"`
	Payload json.RawMessage `json:"payload"`
}

// Conn is one live socket.
type Conn struct {
	ep      *Endpoint
	session *melody.Session
	id      Identity

	mu     sync.Mutex
	topics map[string]bool
	timer  *time.Timer

	closing atomic.Bool
}

// Identity returns what authenticated the socket.
func (c *Conn) Identity() Identity { return c.id }

// Send writes an event to this socket.
func (c *Conn) Send(event string, payload any) error {
	b, err := encodeFrame(event, payload)
	if err != nil {
		return err
	}
	return c.session.Write(b)
}

// Subscribe adds the socket to a topic's broadcasts.
func (c *Conn) Subscribe(topic string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing.Load() || c.topics[topic] {
		return
	}
	c.topics[topic] = true
	c.ep.topics.add(topic, c)
}

// Unsubscribe removes the socket from a topic.
func (c *Conn) Unsubscribe(topic string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.topics[topic] {
		delete(c.topics, topic)
		c.ep.topics.remove(topic, c)
	}
}

// Close closes the socket with a close code and reason, written as a
// control frame ahead of anything queued, so it arrives even when the
// outbound buffer is full. The first Close wins. The socket leaves the
// indexes before Close returns; the close frame is written without making
// the caller wait: a client that does not read would otherwise hold up
// the revocation (and every other socket it closes) for writeWait, and
// lose its close frame.
func (c *Conn) Close(code int, reason string) {
	if c.closing.Swap(true) {
		return
	}
	c.unregister()
	go c.writeClose(code, reason)
}

// writeClose writes the close frame as soon as the connection's writer is
// free (within writeWait), then waits a little for the client's reply.
func (c *Conn) writeClose(code int, reason string) {
	ws := c.session.WebsocketConnection()
	deadline := time.Now().Add(c.ep.writeWait)
	if err := ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), deadline); err != nil {
		ws.Close()
		return
	}
	// Wait for the client's reply, but not for long.
	_ = ws.SetReadDeadline(time.Now().Add(c.ep.closeGrace))
}

// unregister removes the socket from the indexes and stops its timer.
func (c *Conn) unregister() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.ep.sockets.remove(c.id.SocketID, c)
	for t := range c.topics {
		c.ep.topics.remove(t, c)
	}
	c.topics = map[string]bool{}
}

func encodeFrame(event string, payload any) ([]byte, error) {
	p, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	return json.Marshal(Frame{Event: event, Payload: p})
}
