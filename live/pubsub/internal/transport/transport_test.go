package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/live/pubsub/internal/transport"
)

func TestEncodeLimit(t *testing.T) {
	msg := live.Message{Kind: live.KindDisconnect, SocketID: "s"}
	b, err := transport.Encode(msg, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transport.Encode(msg, len(b)); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	_, err = transport.Encode(msg, len(b)-1)
	if !errors.Is(err, live.ErrPayloadTooLarge) {
		t.Fatalf("over the limit: got %v, want ErrPayloadTooLarge", err)
	}
	if want := "limit"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say the limit", err)
	}
}

func TestDecode(t *testing.T) {
	good := []live.Message{
		// The forms of earlier versions, without jtis …
		{Kind: live.KindDisconnect, SocketID: "users_sessions:1", Reason: "signed_out"},
		{Kind: live.KindDisconnect, Disconnects: []live.Disconnected{
			{SocketID: "users_sessions:1", Reason: "log_out_everywhere"}, {SocketID: "users_sessions:2", Reason: "expired"}}},
		// … and with them.
		{Kind: live.KindDisconnect, SocketID: "users_sessions:1", Reason: "signed_out", JTI: "1", ExpiresAt: 2000000000},
		{Kind: live.KindDisconnect, Disconnects: []live.Disconnected{
			{SocketID: "users_sessions:1", Reason: "log_out_everywhere", JTI: "1", ExpiresAt: 2000000000}, {SocketID: "users_sessions:2", JTI: "2"}}},
		{Kind: live.KindBroadcast, Topic: "t", Event: "e", Payload: json.RawMessage(`{"a":[1,2]}`)},
		// A revoking message and a fence, each with its fence id.
		{Kind: live.KindRevoking, JTIs: []string{"1", "2"}, Fence: "0123456789abcdef.1"},
		{Kind: live.KindFence, Fence: "0123456789abcdef.2"},
		// The leases' messages.
		{Kind: live.KindAlive, Fence: "0123456789abcdef.3", Node: "0123456789abcdef."},
		{Kind: live.KindAck, Acks: []string{"fedcba9876543210.1", "fedcba9876543210.2"}, Node: "0123456789abcdef."},
		{Kind: live.KindLeave, Node: "0123456789abcdef."},
	}
	for _, m := range good {
		b, err := transport.Encode(m, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := transport.Decode(b)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Errorf("%s: got %+v, %v", b, got, err)
		}
	}
	bad := map[string]string{
		"":                                       "bad message",
		"garbage":                                "bad message",
		"\x00\xff":                               "bad message",
		`[]`:                                     "bad message",
		`{"kind":"disconnect","socket_id":1}`:    "bad message",
		`{}`:                                     `unknown message kind ""`,
		`{"kind":"subscribed"}`:                  `unknown message kind "subscribed"`,
		`{"kind":"lost"}`:                        `unknown message kind "lost"`,
		`{"kind":"explode","socket_id":"s"}`:     `unknown message kind "explode"`,
		`{"kind":"disconnect"}`:                  "disconnect without a socket id",
		`{"kind":"disconnect","disconnects":[]}`: "disconnect without a socket id",
		`{"kind":"disconnect","disconnects":[{"socket_id":""}]}`: "disconnect with an empty socket id",
		`{"kind":"broadcast","event":"e"}`:                       "broadcast without a topic or event",
		`{"kind":"broadcast","topic":"t"}`:                       "broadcast without a topic or event",
		`{"kind":"disconnect","socket_id":"s"} {}`:               "bad message",
		`{"kind":"revoking","jtis":["1"]}`:                       "revoking without a fence id or its jtis",
		`{"kind":"revoking","jtis":["1"],"fence":""}`:            "revoking without a fence id or its jtis",
		`{"kind":"revoking","fence":"f"}`:                        "revoking without a fence id or its jtis",
		`{"kind":"revoking","fence":"f","jtis":[]}`:              "revoking without a fence id or its jtis",
		`{"kind":"revoking","fence":"f","jtis":null}`:            "revoking without a fence id or its jtis",
		`{"kind":"revoking","fence":"f","jtis":["1",""]}`:        "revoking without a fence id or its jtis",
		`{"kind":"revoking","fence":"f","jtis":"1"}`:             "bad message",
		`{"kind":"fence"}`:                                       "fence without an id",
		`{"kind":"fence","fence":""}`:                            "fence without an id",
		`{"kind":"fence","jtis":["1"]}`:                          "fence without an id",
		`{"kind":"alive","node":"n."}`:                           "alive without a fence id or node",
		`{"kind":"alive","fence":"n.1"}`:                         "alive without a fence id or node",
		`{"kind":"ack","node":"n."}`:                             "ack without a node or its fence ids",
		`{"kind":"ack","acks":["m.1"]}`:                          "ack without a node or its fence ids",
		`{"kind":"ack","node":"n.","acks":["m.1",""]}`:           "ack without a node or its fence ids",
		`{"kind":"leave"}`:                                       "leave without a node",
	}
	for in, want := range bad {
		if _, err := transport.Decode([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error with %q", in, err, want)
		}
	}
}

// FuzzDecode: Decode never panics, and what it accepts survives a round
// trip through Encode.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"kind":"disconnect","socket_id":"s","reason":"revoked"}`))
	f.Add([]byte(`{"kind":"broadcast","topic":"t","event":"e","payload":{"x":1}}`))
	f.Add([]byte(`{"kind":"broadcast","topic":"t","event":"e","payload":null}`))
	f.Add([]byte(`{"kind":"revoking","jtis":["1","2"],"fence":"n.1"}`))
	f.Add([]byte(`{"kind":"fence","fence":"n.2"}`))
	f.Add([]byte("\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := transport.Decode(b)
		if err != nil {
			return
		}
		again, err := transport.Encode(m, 0)
		if err != nil {
			t.Fatalf("accepted %q but cannot encode it: %v", b, err)
		}
		m2, err := transport.Decode(again)
		if err != nil {
			t.Fatalf("accepted %q but not its encoding %q: %v", b, again, err)
		}
		if m.Kind != m2.Kind || m.SocketID != m2.SocketID || m.Topic != m2.Topic || m.Event != m2.Event || m.Reason != m2.Reason ||
			m.JTI != m2.JTI || m.ExpiresAt != m2.ExpiresAt || !slices.Equal(m.JTIs, m2.JTIs) || m.Fence != m2.Fence {
			t.Fatalf("round trip changed %+v into %+v", m, m2)
		}
	})
}

func TestBackoff(t *testing.T) {
	b := transport.Backoff{Min: 2 * time.Millisecond, Max: 8 * time.Millisecond}
	// Each wait is between half the step and the step: 2, 4, 8, 8 ms.
	for _, step := range []time.Duration{2, 4, 8, 8} {
		start := time.Now()
		if !b.Wait(context.Background()) {
			t.Fatal("Wait gave up with a live context")
		}
		if took := time.Since(start); took < step*time.Millisecond/2 {
			t.Errorf("waited %v, want at least %v", took, step*time.Millisecond/2)
		}
	}
	b.Reset()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if b.Wait(ctx) {
		t.Error("Wait went on with a cancelled context")
	}
	long := transport.Backoff{Min: time.Hour, Max: time.Hour}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if long.Wait(ctx) {
		t.Error("Wait outlasted its context")
	}
}
