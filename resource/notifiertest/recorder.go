package notifiertest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/kiln-go/kiln/resource"
)

// Recorder is a Notifier that keeps what it is sent, for tests: declare it
// on a resource or an action, run actions, and assert on All. It is safe for
// concurrent use; the zero value is ready.
type Recorder struct {
	mu  sync.Mutex
	got []resource.Notification
}

var _ resource.Notifier = (*Recorder)(nil)

// Notify records n.
func (r *Recorder) Notify(_ context.Context, n resource.Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, n)
	return nil
}

// All returns what was received, in order.
func (r *Recorder) All() []resource.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// Len is how many notifications were received.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// Reset forgets what was received.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = nil
}

// recorder is the suite's Recorder, with its assertions.
type recorder struct{ Recorder }

// events describes what was received, one "action name" per notification.
func (r *recorder) events() []string {
	var out []string
	for _, n := range r.All() {
		out = append(out, event(n))
	}
	return out
}

// event describes a notification of a thing as "action name".
func event(n resource.Notification) string {
	th, ok := resource.RecordAs[thing](n)
	if !ok {
		return fmt.Sprintf("%s %T", n.Action, n.Record)
	}
	return n.Action + " " + th.Name
}

// want fails t unless r received exactly the events want, in order.
func (r *recorder) want(t *testing.T, who string, want ...string) {
	t.Helper()
	if got := r.events(); !slices.Equal(got, want) {
		t.Errorf("%s notifier received %q, want %q", who, got, want)
	}
}

// failureRecorder keeps what the OnNotifyError option receives.
type failureRecorder struct {
	mu  sync.Mutex
	got []*resource.NotifyError
}

func (f *failureRecorder) add(_ context.Context, err *resource.NotifyError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, err)
}

func (f *failureRecorder) all() []*resource.NotifyError {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

func (f *failureRecorder) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = nil
}
