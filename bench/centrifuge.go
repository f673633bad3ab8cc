package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/centrifugal/centrifuge"
	"github.com/gorilla/websocket"

	"github.com/kiln-go/kiln/internal/sessionbench"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/revocation"
)

// centrifugeImpl is centrifuge's WebSocket transport with its defaults.
// A socket's request is authenticated by kiln's web glue, as kiln's are,
// and its credentials name the session's socket id as centrifuge's user
// id: centrifuge keeps an index of a user's connections, and disconnects
// a socket id's sockets through it (Node.Disconnect). The close frame
// carries kiln's code and reason, 4001 "revoked".
var centrifugeImpl = sessionbench.Impl{Name: implCentrifuge, New: func(e sessionbench.Env) (sessionbench.Parts, error) {
	if e.PubSub != nil {
		return sessionbench.Parts{}, fmt.Errorf("%s runs on one node here", implCentrifuge)
	}
	node, err := centrifuge.New(centrifuge.Config{LogLevel: centrifuge.LogLevelNone})
	if err != nil {
		return sessionbench.Parts{}, err
	}
	node.OnConnect(func(*centrifuge.Client) {})
	if err := node.Run(); err != nil {
		return sessionbench.Parts{}, err
	}
	ws := centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := e.Web.Authenticate(r)
		if err != nil {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		ctx := centrifuge.SetCredentials(r.Context(), &centrifuge.Credentials{UserID: p.SocketID})
		ws.ServeHTTP(w, r.WithContext(ctx))
	})
	return sessionbench.Parts{Endpoint: centrifugeEndpoint{node}, Handler: handler, Stop: func() {
		_ = node.Shutdown(context.Background())
	}}, nil
}}

// centrifugeEndpoint disconnects a socket id's sockets: its user's.
type centrifugeEndpoint struct{ node *centrifuge.Node }

func (c centrifugeEndpoint) Disconnect(_ context.Context, socketID string, reason revocation.Reason) error {
	return c.node.Disconnect(socketID, centrifuge.WithCustomDisconnect(centrifuge.Disconnect{
		Code: live.CloseSignedOut, Reason: live.ReasonText(reason)}))
}

// centrifugeProtocol speaks centrifuge's JSON protocol: a connect command
// whose reply makes the socket ready (the hello frame's counterpart), and
// a pong ({}) for each of the server's pings ({}).
var centrifugeProtocol = sessionbench.Protocol{
	Handshake: func(conn *websocket.Conn) error {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"connect":{}}`)); err != nil {
			return err
		}
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return fmt.Errorf("no connect reply: %w", err)
		}
		if !strings.Contains(string(msg), `"connect"`) || strings.Contains(string(msg), `"error"`) {
			return fmt.Errorf("connect reply: %s", msg)
		}
		return nil
	},
	Reply: func(msg []byte) []byte {
		if strings.TrimSpace(string(msg)) == "{}" {
			return []byte("{}")
		}
		return nil
	},
}
