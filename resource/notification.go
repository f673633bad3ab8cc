package resource

import (
	"context"
)

// Notification tells what a committed action did to one record. Bulk
// actions send one per affected record.
type Notification struct {
	Resource   string
	Action     string
	ActionType ActionType
	// Record is the record as written (*T); for a destroy, as it was.
	Record any
	// Changed lists the attributes an update or create set.
	Changed []string
	// Actor is the actor the action ran for (see WithActor), or nil.
	Actor any
	// Metadata holds what the action's changes put on the changeset with
	// SetMetadata, such as a revocation reason.
	Metadata map[string]any
	// Domain is the domain the action ran in; notifiers read the
	// resource's declaration through it.
	Domain *Domain
}

// RecordAs returns the notification's record as *T.
func RecordAs[T any](n Notification) (*T, bool) {
	r, ok := n.Record.(*T)
	return r, ok
}

// Notifier reacts to committed actions. Notify runs after the transaction
// commits, on the goroutine that ran the action, once per notification. Its
// error is logged and reported (RunResult.NotifyErrors, Result[T].NotifyErrors, the OnNotifyError
// option); it never fails the committed action. A notifier that is slow
// should hand the work off.
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}

// BatchNotifier is a Notifier that takes the notifications of one
// committed transaction at once: after commit, NotifyBatch is called once
// per transaction with every notification the notifier was to get, in
// the order they were queued, instead of Notify once for each (a log out
// everywhere of 1,000 tokens closes their sockets in one call). Its error
// is reported once, with the batch's first notification.
type BatchNotifier interface {
	Notifier
	NotifyBatch(ctx context.Context, ns []Notification) error
}

// PrecommitNotifier is a Notifier that is also told of a transaction's
// notifications before it commits: Precommit is called once per
// transaction, inside it, just before COMMIT, with every notification the
// notifier is to get after commit, in the order they were queued. Its
// ctx is in the transaction: it may read there, and must not write (a
// write fails the action). An error fails the action: the transaction is
// rolled back and nothing is notified. The token revocation notifier announces revocations there,
// so that no node trusts a token it knows as good once the revocation
// has committed.
type PrecommitNotifier interface {
	Notifier
	Precommit(ctx context.Context, ns []Notification) error
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, n Notification) error

// Notify calls f.
func (f NotifierFunc) Notify(ctx context.Context, n Notification) error { return f(ctx, n) }

var _ Notifier = NotifierFunc(nil)

// NotifyError is a notifier's failure, with the notification it failed on.
type NotifyError struct {
	Notification Notification
	Err          error
}

func (e *NotifyError) Error() string {
	return "kiln/resource: notifier failed on " + e.Notification.Resource + "." + e.Notification.Action + ": " + e.Err.Error()
}

func (e *NotifyError) Unwrap() error { return e.Err }
