package notifiertest

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/kiln-go/kiln/resource"
)

// wantNotification fails t unless n is a notification of a thing by the
// action of that type, for the record with that id.
func wantNotification(t *testing.T, e *env, n resource.Notification, action string, typ resource.ActionType, id uuid.UUID) *thing {
	t.Helper()
	if n.Resource != "nt_thing" || n.Action != action || n.ActionType != typ {
		t.Errorf("notification is %s.%s (%s), want nt_thing.%s (%s)", n.Resource, n.Action, n.ActionType, action, typ)
	}
	if n.Domain != e.d {
		t.Errorf("notification's Domain = %p, want the domain that ran the action, %p", n.Domain, e.d)
	}
	th, ok := resource.RecordAs[thing](n)
	if !ok || th == nil {
		t.Fatalf("notification's Record = %T, want *thing", n.Record)
	}
	if th.ID != id {
		t.Errorf("notification's record is %s, want %s", th.ID, id)
	}
	return th
}

func testExactlyOnce(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	t.Run("Create", func(t *testing.T) {
		e := newEnv(t, open, nil)
		x := e.create(t, "x", 1)
		for _, r := range e.notifiers() {
			got := r.rec.All()
			if len(got) != 1 {
				t.Fatalf("%s notifier received %d notifications, want 1", r.who, len(got))
			}
			th := wantNotification(t, e, got[0], "create", resource.CreateAction, x.ID)
			if th.Name != "x" || th.Rank != 1 {
				t.Errorf("%s: notified record has name, rank = %q, %d; want x, 1", r.who, th.Name, th.Rank)
			}
			if !slices.Contains(got[0].Changed, "name") || !slices.Contains(got[0].Changed, "rank") {
				t.Errorf("%s: Changed = %q, want name and rank in it", r.who, got[0].Changed)
			}
		}
	})
	t.Run("Update", func(t *testing.T) {
		e := newEnv(t, open, nil)
		x := e.create(t, "x", 1)
		e.forget()
		if _, err := e.things.Update(e.ctx, e.d, "update", x, resource.Input{"rank": 2}); err != nil {
			t.Fatal(err)
		}
		for _, r := range e.notifiers() {
			got := r.rec.All()
			if len(got) != 1 {
				t.Fatalf("%s notifier received %d notifications, want 1", r.who, len(got))
			}
			th := wantNotification(t, e, got[0], "update", resource.UpdateAction, x.ID)
			if th.Name != "x" || th.Rank != 2 {
				t.Errorf("%s: notified record has name, rank = %q, %d; want x, 2", r.who, th.Name, th.Rank)
			}
			if !slices.Contains(got[0].Changed, "rank") || slices.Contains(got[0].Changed, "name") {
				t.Errorf("%s: Changed = %q, want rank and not name", r.who, got[0].Changed)
			}
		}
	})
	t.Run("Destroy", func(t *testing.T) {
		e := newEnv(t, open, nil)
		x := e.create(t, "x", 1)
		e.forget()
		if err := e.things.Destroy(e.ctx, e.d, "destroy", &thing{ID: x.ID}, nil); err != nil {
			t.Fatal(err)
		}
		for _, r := range e.notifiers() {
			got := r.rec.All()
			if len(got) != 1 {
				t.Fatalf("%s notifier received %d notifications, want 1", r.who, len(got))
			}
			th := wantNotification(t, e, got[0], "destroy", resource.DestroyAction, x.ID)
			if th.Name != "x" || th.Rank != 1 {
				t.Errorf("%s: notified record has name, rank = %q, %d; want the record as it was: x, 1", r.who, th.Name, th.Rank)
			}
		}
	})
	t.Run("ReadsNotifyNothing", func(t *testing.T) {
		e := newEnv(t, open, nil)
		x := e.create(t, "x", 1)
		e.forget()
		if _, err := e.things.Read(e.ctx, e.d, "list", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := e.things.Get(e.ctx, e.d, "by_id", resource.Input{"id": x.ID}); err != nil {
			t.Fatal(err)
		}
		e.res.want(t, "resource-level")
	})
}

func testBulk(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	// seed creates things a to e with ranks 1 to 5, and forgets their
	// notifications.
	seed := func(t *testing.T, e *env) map[string]*thing {
		t.Helper()
		out := map[string]*thing{}
		for i, name := range []string{"a", "b", "c", "d", "e"} {
			out[name] = e.create(t, name, i+1)
		}
		e.forget()
		return out
	}
	// byName maps what r received by record name, failing t on a record
	// notified twice.
	byName := func(t *testing.T, r *recorder) map[string]resource.Notification {
		t.Helper()
		out := map[string]resource.Notification{}
		for _, n := range r.All() {
			th, _ := resource.RecordAs[thing](n)
			if th == nil {
				t.Fatalf("notification of a %T", n.Record)
			}
			if _, dup := out[th.Name]; dup {
				t.Errorf("%s notified twice", th.Name)
			}
			out[th.Name] = n
		}
		return out
	}
	t.Run("UpdateOnePerRecord", func(t *testing.T) {
		e := newEnv(t, open, nil)
		seeded := seed(t, e)
		got, err := e.things.BulkUpdate(e.ctx, e.d, "update", resource.Ge("rank", 3), resource.Input{"rank": 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Fatalf("bulk update returned %d records, want 3", len(got))
		}
		for _, r := range e.notifiers() {
			ns := byName(t, r.rec)
			if names := slices.Sorted(maps.Keys(ns)); !slices.Equal(names, []string{"c", "d", "e"}) {
				t.Errorf("%s notifier received updates of %q, want [c d e], once each", r.who, names)
			}
			if len(r.rec.All()) != 3 {
				t.Errorf("%s notifier received %d notifications, want 3", r.who, len(r.rec.All()))
			}
			for name, n := range ns {
				th := wantNotification(t, e, n, "update", resource.UpdateAction, seeded[name].ID)
				if th.Rank != 10 {
					t.Errorf("%s: notified %s has rank %d, want the updated 10", r.who, name, th.Rank)
				}
			}
		}
	})
	t.Run("DestroyOnePerRecord", func(t *testing.T) {
		e := newEnv(t, open, nil)
		seeded := seed(t, e)
		if _, err := e.things.BulkDestroy(e.ctx, e.d, "destroy", resource.Or{resource.Le("rank", 2), resource.Eq("name", "e")}, nil); err != nil {
			t.Fatal(err)
		}
		for _, r := range e.notifiers() {
			ns := byName(t, r.rec)
			if names := slices.Sorted(maps.Keys(ns)); !slices.Equal(names, []string{"a", "b", "e"}) {
				t.Errorf("%s notifier received destroys of %q, want [a b e], once each", r.who, names)
			}
			if len(r.rec.All()) != 3 {
				t.Errorf("%s notifier received %d notifications, want 3", r.who, len(r.rec.All()))
			}
			for name, n := range ns {
				th := wantNotification(t, e, n, "destroy", resource.DestroyAction, seeded[name].ID)
				if th.Rank != seeded[name].Rank {
					t.Errorf("%s: notified %s has rank %d, want the stored %d", r.who, name, th.Rank, seeded[name].Rank)
				}
			}
		}
		if names := e.names(t); !slices.Equal(names, []string{"c", "d"}) {
			t.Errorf("things left: %q, want [c d]", names)
		}
	})
	t.Run("NoMatchNoNotification", func(t *testing.T) {
		e := newEnv(t, open, nil)
		seed(t, e)
		if _, err := e.things.BulkUpdate(e.ctx, e.d, "update", resource.Gt("rank", 100), resource.Input{"rank": 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.things.BulkDestroy(e.ctx, e.d, "destroy", resource.In("name", []string{}), nil); err != nil {
			t.Fatal(err)
		}
		e.res.want(t, "resource-level")
		e.act.want(t, "action-level")
	})
}

func testOrder(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	t.Run("InTransaction", func(t *testing.T) {
		e := newEnv(t, open, nil)
		err := e.d.InTransaction(e.ctx, func(ctx context.Context) error {
			a, err := e.things.Create(ctx, e.d, "create", resource.Input{"name": "a"})
			if err != nil {
				return err
			}
			b, err := e.things.Create(ctx, e.d, "create", resource.Input{"name": "b"})
			if err != nil {
				return err
			}
			if _, err := e.things.Update(ctx, e.d, "update", a, resource.Input{"name": "a2"}); err != nil {
				return err
			}
			if err := e.things.Destroy(ctx, e.d, "destroy", b, nil); err != nil {
				return err
			}
			_, err = e.things.Create(ctx, e.d, "create", resource.Input{"name": "c"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"create a", "create b", "update a2", "destroy b", "create c"}
		e.res.want(t, "resource-level", want...)
		e.act.want(t, "action-level", want...)
	})
	t.Run("Sequential", func(t *testing.T) {
		e := newEnv(t, open, nil)
		x := e.create(t, "x", 1)
		y := e.create(t, "y", 2)
		if _, err := e.things.Update(e.ctx, e.d, "update", x, resource.Input{"name": "x2"}); err != nil {
			t.Fatal(err)
		}
		if err := e.things.Destroy(e.ctx, e.d, "destroy", y, nil); err != nil {
			t.Fatal(err)
		}
		e.create(t, "z", 3)
		want := []string{"create x", "create y", "update x2", "destroy y", "create z"}
		e.res.want(t, "resource-level", want...)
		e.act.want(t, "action-level", want...)
	})
}

func testMetadata(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	t.Run("FromChanges", func(t *testing.T) {
		e := newEnv(t, open, nil)
		res, err := e.d.Run(e.ctx, e.things, "create_meta", resource.Input{"name": "x"})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"before": "set in Before", "after": "x"}
		for _, r := range e.notifiers() {
			got := r.rec.All()
			if len(got) != 1 {
				t.Fatalf("%s notifier received %d notifications, want 1", r.who, len(got))
			}
			if !maps.Equal(got[0].Metadata, want) {
				t.Errorf("%s: Metadata = %v, want %v", r.who, got[0].Metadata, want)
			}
		}
		if !maps.Equal(res.Metadata, want) {
			t.Errorf("RunResult.Metadata = %v, want %v", res.Metadata, want)
		}
	})
	t.Run("NotCarriedToOtherActions", func(t *testing.T) {
		e := newEnv(t, open, nil)
		if _, err := e.things.Create(e.ctx, e.d, "create_meta", resource.Input{"name": "x"}); err != nil {
			t.Fatal(err)
		}
		e.create(t, "y", 1)
		got := e.res.All()
		if len(got) != 2 {
			t.Fatalf("received %d notifications, want 2", len(got))
		}
		if len(got[1].Metadata) != 0 {
			t.Errorf("a plain create's Metadata = %v, want none", got[1].Metadata)
		}
	})
	t.Run("Bulk", func(t *testing.T) {
		e := newEnv(t, open, nil)
		e.create(t, "a", 1)
		e.create(t, "b", 2)
		e.res.Reset()
		if _, err := e.things.BulkUpdate(e.ctx, e.d, "update_meta", resource.And{}, resource.Input{"rank": 3}); err != nil {
			t.Fatal(err)
		}
		got := e.res.All()
		if len(got) != 2 {
			t.Fatalf("received %d notifications, want 2", len(got))
		}
		for _, n := range got {
			if n.Metadata["reason"] != "bulk" {
				t.Errorf("%s: Metadata = %v, want reason bulk", event(n), n.Metadata)
			}
		}
	})
}

// actor is who the suite's actions run for.
type actor struct{ Name string }

func testActor(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	t.Run("WithActor", func(t *testing.T) {
		e := newEnv(t, open, nil)
		ctx := resource.WithActor(e.ctx, actor{Name: "ada"})
		x, err := e.things.Create(ctx, e.d, "create", resource.Input{"name": "x"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.things.BulkUpdate(ctx, e.d, "update", resource.Eq("id", x.ID), resource.Input{"rank": 2}); err != nil {
			t.Fatal(err)
		}
		e.create(t, "nobody", 1) // no actor
		got := e.res.All()
		if len(got) != 3 {
			t.Fatalf("received %d notifications, want 3", len(got))
		}
		for _, n := range got[:2] {
			if n.Actor != (actor{Name: "ada"}) {
				t.Errorf("%s: Actor = %#v, want actor{Name: ada}", event(n), n.Actor)
			}
		}
		if got[2].Actor != nil {
			t.Errorf("%s: Actor = %#v, want nil", event(got[2]), got[2].Actor)
		}
	})
	t.Run("InTransaction", func(t *testing.T) {
		e := newEnv(t, open, nil)
		err := e.d.InTransaction(resource.WithActor(e.ctx, actor{Name: "bob"}), func(ctx context.Context) error {
			if _, err := e.things.Create(ctx, e.d, "create", resource.Input{"name": "x"}); err != nil {
				return err
			}
			_, err := e.things.Create(resource.WithActor(ctx, actor{Name: "eve"}), e.d, "create", resource.Input{"name": "y"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		got := e.res.All()
		if len(got) != 2 {
			t.Fatalf("received %d notifications, want 2", len(got))
		}
		if got[0].Actor != (actor{Name: "bob"}) || got[1].Actor != (actor{Name: "eve"}) {
			t.Errorf("Actors = %#v, %#v; want bob (the transaction's) and eve (the action's)", got[0].Actor, got[1].Actor)
		}
	})
}

// errNotifier is what the failing notifier returns.
var errNotifier = errors.New("notifiertest: the notifier failed on purpose")

func testNotifierFailure(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	// failing returns a failing and a panicking notifier, which run before
	// the recorders.
	failing := func(*env) []resource.Notifier {
		return []resource.Notifier{
			resource.NotifierFunc(func(context.Context, resource.Notification) error { return errNotifier }),
			resource.NotifierFunc(func(context.Context, resource.Notification) error { panic("notifiertest: panicking on purpose") }),
		}
	}
	// wantFailures fails t unless errs are, per notification of the
	// things named, the failing then the panicking notifier's errors.
	wantFailures := func(t *testing.T, what string, errs []error, names ...string) {
		t.Helper()
		if len(errs) != 2*len(names) {
			t.Fatalf("%s: %d notifier errors, want %d: %v", what, len(errs), 2*len(names), errs)
		}
		for i, err := range errs {
			var ne *resource.NotifyError
			if !errors.As(err, &ne) {
				t.Fatalf("%s: error %d is %T %v, want a *resource.NotifyError", what, i, err, err)
			}
			if got := event(ne.Notification); !strings.HasSuffix(got, " "+names[i/2]) {
				t.Errorf("%s: error %d is about %q, want %s", what, i, got, names[i/2])
			}
			if i%2 == 0 && !errors.Is(err, errNotifier) {
				t.Errorf("%s: error %d = %v, want the failing notifier's error", what, i, err)
			}
			if i%2 == 1 && !strings.Contains(err.Error(), "panicking on purpose") {
				t.Errorf("%s: error %d = %v, want the panic's value in it", what, i, err)
			}
		}
	}
	failures := func(e *env) []error {
		var out []error
		for _, f := range e.failures.all() {
			out = append(out, f)
		}
		return out
	}
	t.Run("ActionSucceeds", func(t *testing.T) {
		e := newEnv(t, open, failing)
		res, err := e.d.Run(e.ctx, e.things, "create", resource.Input{"name": "x"})
		if err != nil {
			t.Fatalf("a failing notifier failed the committed action: %v", err)
		}
		x, ok := res.Record.(*thing)
		if !ok || x.Name != "x" {
			t.Fatalf("RunResult.Record = %#v, want the created thing", res.Record)
		}
		wantFailures(t, "RunResult.NotifyErrors", res.NotifyErrors, "x")
		wantFailures(t, "OnNotifyError", failures(e), "x")
		e.res.want(t, "resource-level, after the failing ones,", "create x")
		e.act.want(t, "action-level", "create x")
		if names := e.names(t); !slices.Equal(names, []string{"x"}) {
			t.Errorf("things = %q, want the committed [x]", names)
		}
	})
	t.Run("Bulk", func(t *testing.T) {
		e := newEnv(t, open, failing)
		if err := e.d.InTransaction(e.ctx, func(ctx context.Context) error {
			for _, name := range []string{"a", "b"} {
				if _, err := e.things.Create(ctx, e.d, "create", resource.Input{"name": name}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatalf("a failing notifier failed the committed transaction: %v", err)
		}
		wantFailures(t, "OnNotifyError after InTransaction", failures(e), "a", "b")
		e.failures.reset()
		e.res.Reset()
		res, err := e.d.Run(e.ctx, e.things, "update", resource.Input{"rank": 7}, resource.Where(resource.And{}))
		if err != nil {
			t.Fatalf("a failing notifier failed the committed bulk update: %v", err)
		}
		var names []string
		for _, n := range e.res.All() {
			th, _ := resource.RecordAs[thing](n)
			names = append(names, th.Name)
		}
		if len(names) != 2 {
			t.Fatalf("recorder received %d notifications, want 2", len(names))
		}
		wantFailures(t, "RunResult.NotifyErrors", res.NotifyErrors, names...)
		wantFailures(t, "OnNotifyError", failures(e), names...)
		got, err := e.things.Read(fresh(t), e.d, "list", nil, resource.Where(resource.Eq("rank", 7)))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Errorf("%d things have the committed rank 7, want 2", len(got))
		}
	})
}
