package live

import (
	"encoding/json"
	"errors"
)

// Frame is the JSON shape of every frame in both directions.
type Frame struct {
	Event   string          `json:"event"`
	Payload json.RawMessage `json:"payload"`
}

// errFrameShape is the error frame's message for an incoming frame that is
// not {"event", "payload"} JSON.
var errFrameShape = errors.New(`frames are JSON {"event": …, "payload": …}`)

// decodeFrame decodes an incoming frame: a JSON object whose "event" is a
// non-empty string; its "payload", any JSON value, may be missing.
func decodeFrame(data []byte) (Frame, error) {
	var f Frame
	if err := json.Unmarshal(data, &f); err != nil || f.Event == "" {
		return Frame{}, errFrameShape
	}
	return f, nil
}

func encodeFrame(event string, payload any) ([]byte, error) {
	p, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	return json.Marshal(Frame{Event: event, Payload: p})
}
