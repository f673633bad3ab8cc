package live_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/revocation"
)

// writtenAtPublish is an in-process PubSub that notes, at each disconnect
// it is given, how many close frames the endpoint had written by then.
type writtenAtPublish struct {
	live.InProcess
	ep *live.Endpoint

	mu      sync.Mutex
	written []uint64
}

func (p *writtenAtPublish) Publish(ctx context.Context, msg live.Message) error {
	if msg.Kind == live.KindDisconnect {
		n := live.ClosesWritten(p.ep)
		p.mu.Lock()
		p.written = append(p.written, n)
		p.mu.Unlock()
	}
	return p.InProcess.Publish(ctx, msg)
}

// TestCloseFramesGoFirst: the close frame of a revoked token's socket is
// written before the revocation is published and the revoking call goes
// on, not when the scheduler next finds a thread for it. On one processor
// the close's goroutine cannot run before the publish unless the revoker
// waits for it: without firstCloses, no close frame is written first.
func TestCloseFramesGoFirst(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ps := &writtenAtPublish{}
	h := livetest.New(t, "sqlite", livetest.Options{PubSub: ps, EndpointOptions: []live.Option{quiet()}})
	ps.ep = h.Endpoint
	ctx := testCtx(t, 60*time.Second)
	const rounds = 20
	for i := range rounds {
		u := h.Register(t, fmt.Sprintf("user%d@example.com", i))
		c := h.MustDial(t, ctx, livetest.Bearer(u.Token))
		if err := h.Auth.Tokens().Revoke(ctx, u.Token, revocation.SignedOut); err != nil {
			t.Fatal(err)
		}
		if code, _, err := c.WaitClose(ctx); err != nil || code != live.CloseSignedOut {
			t.Fatalf("round %d: closed with %d, %v; want %d", i, code, err, live.CloseSignedOut)
		}
		// The close frame's goroutine notes it after the client may have
		// read it: wait for the note before the next round.
		for live.ClosesWritten(h.Endpoint) < uint64(i+1) {
			if ctx.Err() != nil {
				t.Fatalf("round %d: the close frame was never counted", i)
			}
			runtime.Gosched()
		}
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if len(ps.written) != rounds {
		t.Fatalf("%d disconnects published, want %d", len(ps.written), rounds)
	}
	first := 0
	for i, n := range ps.written {
		if n == uint64(i+1) {
			first++
		}
	}
	// A margin for the scheduler: on a loaded machine under -race, 20 of
	// 20 in 30 runs of 30.
	if first < rounds*3/4 {
		t.Fatalf("the close frame was written before the publish in %d of %d revocations (counts %v)", first, rounds, ps.written)
	}
	t.Logf("close frame written first in %d of %d revocations", first, rounds)
}
