package live

import (
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The close reasons of CloseTooManySockets.
const (
	ReasonTooManyForSession = "too many sockets for this session"
	ReasonTooManyForUser    = "too many sockets for this user"
)

// limits counts this node's sockets per session and per subject. A slot is
// taken before the upgrade and given back when the socket has ended, so
// that concurrent upgrades cannot overshoot. Its maps hold only keys with
// open sockets.
type limits struct {
	perSession, perSubject int

	mu       sync.Mutex
	sessions map[string]int
	subjects map[string]int
}

func newLimits() *limits {
	return &limits{sessions: map[string]int{}, subjects: map[string]int{}}
}

// sessionKey identifies a socket's session: its token's jti, or its socket
// id when the authenticator gives no jti.
func sessionKey(id *Identity) string {
	if id.JTI != "" {
		return id.JTI
	}
	return id.SocketID
}

// acquire takes a slot for a socket of id; when a limit is reached it
// takes none and returns the close reason.
func (l *limits) acquire(id *Identity) (refused string) {
	session := sessionKey(id)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sessions[session] >= l.perSession {
		return ReasonTooManyForSession
	}
	if id.Subject != "" && l.subjects[id.Subject] >= l.perSubject {
		return ReasonTooManyForUser
	}
	l.sessions[session]++
	if id.Subject != "" {
		l.subjects[id.Subject]++
	}
	return ""
}

// release gives back a slot that acquire took.
func (l *limits) release(id *Identity) {
	session := sessionKey(id)
	l.mu.Lock()
	defer l.mu.Unlock()
	decrement(l.sessions, session)
	if id.Subject != "" {
		decrement(l.subjects, id.Subject)
	}
}

func decrement(m map[string]int, key string) {
	if m[key] <= 1 {
		delete(m, key)
		return
	}
	m[key]--
}

// refuseWithClose upgrades the request only to close the socket at once
// with code and reason: a browser cannot read the status of a refused
// upgrade, but it reads a close code. A request that is not an upgrade
// gets the upgrader's 400, as on an accepted one.
func (e *Endpoint) refuseWithClose(w http.ResponseWriter, r *http.Request, code int, reason string) {
	ws, err := e.m.Upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	defer ws.Close()
	e.metrics.opened.Inc()
	e.metrics.countClosed(code, reason)
	msg := websocket.FormatCloseMessage(code, reason)
	if err := ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(e.writeWait)); err != nil {
		return
	}
	// Wait for the client's reply, but not for long.
	ws.SetReadLimit(e.m.Config.MaxMessageSize)
	_ = ws.SetReadDeadline(time.Now().Add(e.closeGrace))
	for {
		if _, _, err := ws.NextReader(); err != nil {
			return
		}
	}
}
