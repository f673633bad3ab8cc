package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
)

// TestTransportOutageStillClosesLocalSessions: with the transport down
// and the knowledge disabled (no node answers from memory), a revocation
// cannot be published, yet the node that revokes closes its own sessions
// at once (no safety net is running), and reports the failed publish as a
// notifier error, never failing the committed revocation. With the
// knowledge on, the revocation cannot be announced either, and fails with
// nothing revoked: the socket stays open and the token good.
func TestTransportOutageStillClosesLocalSessions(t *testing.T) {
	for _, disabled := range []bool{true, false} {
		t.Run(fmt.Sprintf("knowledge disabled %v", disabled), func(t *testing.T) {
			ps := openPostgres(t, testdb.UniqueName("kiln_test_"), testdb.UniqueName("kiln_node_"), slog.New(slog.DiscardHandler))
			n := livetest.NewNode(t, livetest.SharedPostgres(t), livetest.NodeOptions{PubSub: ps,
				Knowledge: tokenresource.KnowledgeOptions{Disabled: disabled}})
			ctx, cancel := context.WithTimeout(context.Background(), short)
			defer cancel()
			s := n.Register(t, "outage@example.com")
			c, _, err := n.Dial(ctx, livetest.Bearer(s.Token))
			if err != nil {
				t.Fatal(err)
			}
			if err := ps.Close(); err != nil { // every later Publish fails
				t.Fatal(err)
			}

			res, err := n.Domain.Run(ctx, n.Tokens, "revoke_token", resource.Input{"token": s.Token})
			if !disabled {
				if !errors.Is(err, revocation.ErrNotAnnounced) {
					t.Fatalf("the revocation with the transport down: %v; want ErrNotAnnounced", err)
				}
				if _, err := n.Auth.Verify(ctx, s.Token); err != nil {
					t.Fatalf("the token no longer verifies after a revocation that failed: %v", err)
				}
				if n.Endpoint.Len() != 1 {
					t.Fatalf("%d sockets open after a revocation that failed; want the one", n.Endpoint.Len())
				}
				return
			}
			if err != nil {
				t.Fatalf("the revocation failed with the transport down: %v", err)
			}
			if len(res.NotifyErrors) == 0 {
				t.Error("the failed publish was not reported in Result.NotifyErrors")
			}
			code, reason, err := c.WaitClose(ctx)
			if err != nil || code != live.CloseSignedOut || reason != "revoked" {
				t.Fatalf("socket closed with %d %q (%v), want 4001 revoked", code, reason, err)
			}
		})
	}
}
