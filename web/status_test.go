package web_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/kiln-go/kiln/revocation"
	"github.com/kiln-go/kiln/web"
)

// TestStatusOfUnannouncedRevocation: a change that would revoke tokens and
// could not be announced to the other nodes answers 503 with a message
// saying nothing changed; within a sign-out, the sign-out's own message.
func TestStatusOfUnannouncedRevocation(t *testing.T) {
	err := fmt.Errorf("kiln/resource: before commit: %w", revocation.ErrNotAnnounced)
	status, msg := web.StatusOf(err)
	if want := "the change could not be made now (it would sign sessions out, and the other servers could not be told); nothing changed; try again"; status != http.StatusServiceUnavailable || msg != want {
		t.Errorf("StatusOf(%v) = %d %q; want 503 %q", err, status, msg, want)
	}
	status, msg = web.StatusOf(fmt.Errorf("%w: %w", web.ErrRevocationFailed, err))
	if want := "the session could not be signed out and is still signed in; try again"; status != http.StatusServiceUnavailable || msg != want {
		t.Errorf("StatusOf(a sign-out that could not announce) = %d %q; want 503 %q", status, msg, want)
	}
}
