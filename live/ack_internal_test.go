package live

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// recording is a prompt InProcess that hands each ack published on a
// channel.
type recording struct {
	InProcess
	acks chan Message
}

func (p *recording) Prompt() bool { return true }

func (p *recording) Publish(ctx context.Context, msg Message) error {
	if msg.Kind == KindAck {
		p.acks <- msg
	}
	return p.InProcess.Publish(ctx, msg)
}

// TestAcknowledgeWakesForNothing: acknowledge woken with no id waiting
// (an earlier pass took it) publishes nothing: an ack without ids is a
// bad message to every node.
func TestAcknowledgeWakesForNothing(t *testing.T) {
	p := &recording{acks: make(chan Message, 16)}
	e, err := New(WithPubSub(p))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	e.member()
	next := func() Message {
		t.Helper()
		select {
		case m := <-p.acks:
			return m
		case <-time.After(10 * time.Second):
			t.Fatal("no ack published")
			return Message{}
		}
	}
	// The goroutine wakes for other.1 and waits for the lock while
	// another wake is signalled for the same id: it takes other.1, and
	// then wakes with nothing waiting.
	e.ackMu.Lock()
	e.pendingAcks["other.1"] = true
	signal(e.ackNow)
	tookWake(t, e)
	signal(e.ackNow)
	e.ackMu.Unlock()
	if m := next(); len(m.Acks) != 1 || m.Acks[0] != "other.1" {
		t.Fatalf("ack %+v; want one of other.1", m)
	}
	tookWake(t, e)
	e.heardRevoking(Message{Kind: KindRevoking, Fence: "other.2"})
	if m := next(); len(m.Acks) != 1 || m.Acks[0] != "other.2" {
		t.Fatalf("ack %+v; want one of other.2, and none without ids before", m)
	}
}

// tookWake waits until acknowledge has taken the wake signalled.
func tookWake(t *testing.T, e *Endpoint) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(e.ackNow) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("acknowledge never woke")
		}
		runtime.Gosched()
	}
}
