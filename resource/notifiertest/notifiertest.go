// Package notifiertest checks how a Domain delivers notifications over a
// data layer, as testing/slogtest checks a slog.Handler: after commit only,
// none on rollback, exactly once per record, one per record of a bulk
// action, in commit order, with the changes' metadata and the actor, and
// without a failing notifier failing the committed action.
//
//	func TestNotifications(t *testing.T) {
//		notifiertest.Run(t, func(t *testing.T) resource.DataLayer {
//			return openEmptyDatabase(t)
//		})
//	}
//
// Run declares its own resources (tables nt_things and nt_audits) with
// recording notifiers at the resource and at the action level, and checks
// what they receive through the public API of package resource.
package notifiertest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/datalayertest"
)

// Run checks notification delivery over the data layers open returns. It
// calls open once per subtest, with the subtest's t; each call must return
// a layer on a database of its own. A layer that implements
// datalayertest.Migrator is migrated; Run empties its tables before each
// check.
func Run(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	t.Helper()
	t.Run("AfterCommit", func(t *testing.T) { testAfterCommit(t, open) })
	t.Run("Rollback", func(t *testing.T) { testRollback(t, open) })
	t.Run("ExactlyOnce", func(t *testing.T) { testExactlyOnce(t, open) })
	t.Run("Bulk", func(t *testing.T) { testBulk(t, open) })
	t.Run("Order", func(t *testing.T) { testOrder(t, open) })
	t.Run("Metadata", func(t *testing.T) { testMetadata(t, open) })
	t.Run("Actor", func(t *testing.T) { testActor(t, open) })
	t.Run("NotifierFailure", func(t *testing.T) { testNotifierFailure(t, open) })
}

// freshTimeout bounds the reads a notifier makes with a fresh context: if
// the action's transaction were still open, a database with a single
// connection would make them wait for it forever.
const freshTimeout = 5 * time.Second

// checkTimeout bounds each check, so that a layer or a domain that
// deadlocks fails the check instead of hanging the test binary.
const checkTimeout = 30 * time.Second

// env is one domain built on one freshly opened layer, with recorders.
type env struct {
	ctx    context.Context
	d      *resource.Domain
	things *resource.Resource[thing]
	audits *resource.Resource[audit]
	// res records what the resource-level notifiers receive, act what the
	// action-level ones of create, update and destroy receive.
	res, act *recorder
	// failures records what the OnNotifyError option receives.
	failures *failureRecorder
}

// newEnv opens a layer and builds the suite's domain on it. extra returns
// resource-level notifiers that run before the recorder; it may be nil.
func newEnv(t *testing.T, open func(t *testing.T) resource.DataLayer, extra func(e *env) []resource.Notifier) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), checkTimeout)
	t.Cleanup(cancel)
	e := &env{ctx: ctx, res: &recorder{}, act: &recorder{}, failures: &failureRecorder{}}
	var notifiers []resource.Notifier
	if extra != nil {
		notifiers = extra(e)
	}
	notifiers = append(notifiers, e.res)
	e.things, e.audits = declare(notifiers, e.act)
	layer := open(t)
	if layer == nil {
		t.Fatal("open returned a nil DataLayer")
	}
	d, err := resource.NewDomain("notifiertest", e.things, e.audits).Build(e.ctx, layer,
		resource.WithLogger(slog.New(slog.DiscardHandler)),
		resource.OnNotifyError(e.failures.add))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	e.d = d
	if m, ok := layer.(datalayertest.Migrator); ok {
		if err := m.Migrate(e.ctx); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	if _, err := e.things.BulkDestroy(e.ctx, d, "destroy", resource.And{}, nil); err != nil {
		t.Fatalf("emptying nt_things: %v", err)
	}
	if _, err := e.audits.BulkDestroy(e.ctx, d, "destroy", resource.And{}, nil); err != nil {
		t.Fatalf("emptying nt_audits: %v", err)
	}
	e.forget()
	e.failures.reset()
	return e
}

// forget clears both recorders.
func (e *env) forget() {
	e.res.Reset()
	e.act.Reset()
}

// notifier is one of the env's recorders, named for messages.
type notifier struct {
	who string
	rec *recorder
}

// notifiers are the resource-level and the action-level recorders.
func (e *env) notifiers() []notifier {
	return []notifier{{"resource-level", e.res}, {"action-level", e.act}}
}

// create creates a thing and fails t on error.
func (e *env) create(t *testing.T, name string, rank int) *thing {
	t.Helper()
	th, err := e.things.Create(e.ctx, e.d, "create", resource.Input{"name": name, "rank": rank})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return th
}

// fresh returns a context that is not the actions' (so in no transaction),
// bounded by freshTimeout.
func fresh(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), freshTimeout)
	t.Cleanup(cancel)
	return ctx
}

// names lists the names of the things in the database, sorted, read with a
// fresh context.
func (e *env) names(t *testing.T) []string {
	t.Helper()
	got, err := e.things.Read(fresh(t), e.d, "list", nil, resource.SortBy(resource.Asc("name")))
	if err != nil {
		t.Fatalf("read things: %v", err)
	}
	out := make([]string, len(got))
	for i, th := range got {
		out[i] = th.Name
	}
	return out
}
