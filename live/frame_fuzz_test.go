package live

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzDecodeFrame feeds arbitrary incoming frames to decodeFrame: it never
// panics, a frame it accepts has an event, and the frame survives being
// encoded and decoded again (the payload compacted). The seeds are in
// testdata/fuzz/FuzzDecodeFrame; go test runs only them:
//
//	go test -run '^$' -fuzz FuzzDecodeFrame -fuzztime 1m ./live/
func FuzzDecodeFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := decodeFrame(data)
		if err != nil {
			if err != errFrameShape || fr.Event != "" || fr.Payload != nil {
				t.Fatalf("refused %q with %v and %+v", data, err, fr)
			}
			return
		}
		if fr.Event == "" {
			t.Fatalf("accepted %q without an event", data)
		}
		if fr.Payload != nil && !json.Valid(fr.Payload) {
			t.Fatalf("accepted %q with a payload that is not JSON: %q", data, fr.Payload)
		}
		again, err := json.Marshal(fr)
		if err != nil {
			t.Fatalf("encode %+v: %v", fr, err)
		}
		back, err := decodeFrame(again)
		if err != nil {
			t.Fatalf("%q decoded, but its encoding %q does not: %v", data, again, err)
		}
		if back.Event != fr.Event {
			t.Fatalf("event %q came back as %q", fr.Event, back.Event)
		}
		want := []byte("null")
		if fr.Payload != nil {
			var b bytes.Buffer
			if err := json.Compact(&b, fr.Payload); err != nil {
				t.Fatal(err)
			}
			want = b.Bytes()
		}
		if !bytes.Equal(back.Payload, want) {
			t.Fatalf("payload %q came back as %q", want, back.Payload)
		}
	})
}
