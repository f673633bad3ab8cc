package notifiertest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/kiln-go/kiln/resource"
)

// recorder is a notifier that keeps what it receives.
type recorder struct {
	mu  sync.Mutex
	got []resource.Notification
}

var _ resource.Notifier = (*recorder)(nil)

// Notify records n.
func (r *recorder) Notify(_ context.Context, n resource.Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, n)
	return nil
}

// all returns what was received, in order.
func (r *recorder) all() []resource.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = nil
}

// events describes what was received, one "action name" per notification.
func (r *recorder) events() []string {
	var out []string
	for _, n := range r.all() {
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
