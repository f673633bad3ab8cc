package live

import (
	"errors"
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

// Conn is one live socket.
type Conn struct {
	ep      *Endpoint
	session *melody.Session
	id      Identity

	mu     sync.Mutex
	topics map[string]bool
	timer  *time.Timer

	closing atomic.Bool

	writeMu sync.Mutex   // serialises writes, so that each knows whether it was dropped
	dropped atomic.Int64 // frames dropped on a full outbound queue
}

// ErrFrameDropped is returned by Conn.Send when the socket's outbound queue
// (message_buffer_size frames) is full, as it is for a client that reads
// too slowly: the frame is not sent.
var ErrFrameDropped = errors.New("kiln/live: outbound queue full, frame dropped")

// Identity returns what authenticated the socket.
func (c *Conn) Identity() Identity { return c.id }

// Send queues an event for this socket. It returns ErrFrameDropped when
// the socket's outbound queue is full, and melody.ErrSessionClosed once
// the socket has closed.
func (c *Conn) Send(event string, payload any) error {
	b, err := encodeFrame(event, payload)
	if err != nil {
		return err
	}
	return c.write(b)
}

// write queues a frame. melody reports a full queue to the endpoint's
// error handler, in this goroutine, which counts it in c.dropped; writes
// are serialised so that the count tells this one's fate.
func (c *Conn) write(frame []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	before := c.dropped.Load()
	if err := c.session.Write(frame); err != nil {
		return err
	}
	if c.dropped.Load() != before {
		return ErrFrameDropped
	}
	return nil
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
func (c *Conn) Close(code int, reason string) { c.close(code, reason, time.Time{}) }

// close is Close for a disconnect that reached this node at since (zero
// for a close that is not a disconnect), observed in the disconnect
// histogram once the close frame is written. It reports whether this
// call closed the socket.
func (c *Conn) close(code int, reason string, since time.Time) bool {
	// Under mu, so that a socket ending at the same time is counted once,
	// as closed by the server or by the client.
	c.mu.Lock()
	if c.closing.Swap(true) {
		c.mu.Unlock()
		return false
	}
	c.ep.metrics.countClosed(code, reason)
	c.mu.Unlock()
	c.unregister()
	go c.writeClose(code, reason, since)
	return true
}

// writeClose writes the close frame as soon as the connection's writer is
// free (within writeWait), then waits a little for the client's reply.
func (c *Conn) writeClose(code int, reason string, since time.Time) {
	ws := c.session.WebsocketConnection()
	deadline := time.Now().Add(c.ep.writeWait)
	if err := ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), deadline); err != nil {
		ws.Close()
		return
	}
	if !since.IsZero() {
		c.ep.metrics.observeDisconnect(since)
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
