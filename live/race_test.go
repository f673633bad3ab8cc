package live_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/revocation"
)

// A revocation racing a socket's registration never leaves a revoked
// socket open: once both are done, either the upgrade was refused with 401
// or the socket gets the 4001 close (possibly before its hello).
func TestRevocationRacingRegistration(t *testing.T) {
	const iterations = 200
	for _, db := range []string{"sqlite-file", "postgres"} {
		t.Run(db, func(t *testing.T) {
			h := livetest.New(t, db, livetest.Options{})
			ctx := testCtx(t, 2*time.Minute)
			ada := h.Register(t, "ada@example.com")
			var refused, closedEarly, closedOpen atomic.Int64
			var wg sync.WaitGroup
			sem := make(chan struct{}, 4) // a few races at a time
			for i := range iterations {
				token, _, err := h.Auth.Issue(ctx, ada.Record, authentication.IssueOptions{})
				if err != nil {
					t.Fatal(err)
				}
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					start := make(chan struct{})
					var dialed *livetest.Client
					var status int
					var dialErr, revokeErr error
					var both sync.WaitGroup
					both.Go(func() {
						<-start
						dialed, status, dialErr = h.Dial(ctx, livetest.Bearer(token))
					})
					both.Go(func() {
						<-start
						revokeErr = h.Auth.Tokens().Revoke(ctx, token, revocation.Revoked)
					})
					close(start)
					both.Wait()
					if revokeErr != nil {
						t.Errorf("iteration %d: revoke: %v", i, revokeErr)
						return
					}
					if dialErr != nil {
						var ce *websocket.CloseError
						switch {
						case status == http.StatusUnauthorized:
							refused.Add(1)
						case errors.As(dialErr, &ce) && ce.Code == live.CloseSignedOut:
							closedEarly.Add(1)
						default:
							t.Errorf("iteration %d: dial failed with %d: %v", i, status, dialErr)
						}
						return
					}
					defer dialed.Conn.Close()
					// The close is due at once; ten seconds is only a bound.
					wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					defer cancel()
					code, reason, err := dialed.WaitClose(wctx)
					if err != nil || code != live.CloseSignedOut || reason != "revoked" {
						t.Errorf("iteration %d: a revoked socket %s: %d %q %v, want the 4001 close", i, dialed.SocketID, code, reason, err)
						return
					}
					closedOpen.Add(1)
				})
			}
			wg.Wait()
			t.Logf("%d iterations: %d refused with 401, %d closed before their hello, %d closed after it",
				iterations, refused.Load(), closedEarly.Load(), closedOpen.Load())
			if n := h.Endpoint.Len(); n != 0 {
				t.Fatalf("%d sockets still registered", n)
			}
		})
	}
}
