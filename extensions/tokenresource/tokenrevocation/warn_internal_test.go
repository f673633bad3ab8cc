package tokenrevocation

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
)

type row struct{ tokenresource.Fields }

// TestUnattachedRevocationWarnsOnce: a revocation before Domain.Attach
// logs, once, that the sockets stay open and how to attach.
func TestUnattachedRevocationWarnsOnce(t *testing.T) {
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(prev); unattached = sync.Once{} })
	unattached = sync.Once{}

	n := resource.Notification{Resource: "token", Record: &row{},
		Metadata: map[string]any{tokenresource.ReasonKey: revocation.SignedOut}}
	for range 3 {
		if err := (Notifier{}).Notify(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Count(buf.String(), "call Domain.Attach(endpoint)"); got != 1 {
		t.Fatalf("warned %d times, want once:\n%s", got, buf.String())
	}
	// A write that revokes nothing says nothing.
	buf.Reset()
	unattached = sync.Once{}
	if err := (Notifier{}).Notify(context.Background(), resource.Notification{Resource: "token", Record: &row{}}); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Fatalf("a notification of no revocation logged %q", buf.String())
	}
}
