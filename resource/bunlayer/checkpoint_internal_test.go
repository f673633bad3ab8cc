package bunlayer

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestCheckpointFailuresLogged: a failing round is logged, with its file
// and error, when rounds begin failing, not again while they go on
// failing; after a round that succeeds, the next failure is logged again.
func TestCheckpointFailuresLogged(t *testing.T) {
	var out bytes.Buffer
	c := &checkpointer{file: "/data/app.db", logger: slog.New(slog.NewTextHandler(&out, nil))}
	full := errors.New("database or disk is full")
	for _, err := range []error{nil, full, full, full, nil, nil, full, full} {
		c.report(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines logged, want 2 (one each time rounds began failing):\n%s", len(lines), out.String())
	}
	for _, l := range lines {
		if !strings.Contains(l, "file=/data/app.db") || !strings.Contains(l, `err="database or disk is full"`) {
			t.Errorf("the log line does not name the file and the error: %s", l)
		}
	}
}
