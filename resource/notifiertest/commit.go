package notifiertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/kiln-go/kiln/resource"
)

// errFn is what the suite's InTransaction funcs return to roll back.
var errFn = errors.New("notifiertest: the transaction's func failed on purpose")

func testAfterCommit(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	t.Run("NotifierSeesCommittedRecord", func(t *testing.T) {
		var mu sync.Mutex
		var seen, problems []string
		e := newEnv(t, open, func(e *env) []resource.Notifier {
			return []resource.Notifier{resource.NotifierFunc(func(_ context.Context, n resource.Notification) error {
				th, _ := resource.RecordAs[thing](n)
				// A fresh context: not the action's, not its transaction.
				ctx, cancel := context.WithTimeout(context.Background(), freshTimeout)
				defer cancel()
				got, err := e.things.Get(ctx, e.d, "by_id", resource.Input{"id": th.ID})
				var problem string
				switch {
				case n.ActionType == resource.DestroyAction && !errors.Is(err, resource.ErrNotFound):
					problem = fmt.Sprintf("%s: a fresh read still finds the thing (err %v): notified before commit", event(n), err)
				case n.ActionType != resource.DestroyAction && err != nil:
					problem = fmt.Sprintf("%s: a fresh read fails: %v: notified before commit", event(n), err)
				case n.ActionType != resource.DestroyAction && got.Name != th.Name:
					problem = fmt.Sprintf("%s: a fresh read finds name %q: notified before commit", event(n), got.Name)
				}
				mu.Lock()
				defer mu.Unlock()
				seen = append(seen, event(n))
				if problem != "" {
					problems = append(problems, problem)
				}
				return nil
			})}
		})
		x := e.create(t, "x", 1)
		x2, err := e.things.Update(e.ctx, e.d, "update", x, resource.Input{"name": "x2"})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.things.Destroy(e.ctx, e.d, "destroy", x2, nil); err != nil {
			t.Fatal(err)
		}
		err = e.d.InTransaction(e.ctx, func(ctx context.Context) error {
			for _, name := range []string{"y", "z"} {
				if _, err := e.things.Create(ctx, e.d, "create", resource.Input{"name": name}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if want := []string{"create x", "update x2", "destroy x2", "create y", "create z"}; !slices.Equal(seen, want) {
			t.Errorf("the reading notifier saw %q, want %q", seen, want)
		}
		for _, p := range problems {
			t.Error(p)
		}
	})
	t.Run("NothingWhileTransactionOpen", func(t *testing.T) {
		e := newEnv(t, open, nil)
		var inside []int
		count := func() { inside = append(inside, e.res.Len()+e.act.Len()) }
		err := e.d.InTransaction(e.ctx, func(ctx context.Context) error {
			a, err := e.things.Create(ctx, e.d, "create", resource.Input{"name": "a"})
			if err != nil {
				return err
			}
			count()
			if _, err := e.things.Create(ctx, e.d, "create", resource.Input{"name": "b"}); err != nil {
				return err
			}
			count()
			if _, err := e.things.Update(ctx, e.d, "update", a, resource.Input{"name": "a2"}); err != nil {
				return err
			}
			count()
			if _, err := e.things.BulkUpdate(ctx, e.d, "update", resource.Eq("name", "b"), resource.Input{"rank": 9}); err != nil {
				return err
			}
			count()
			if _, err := e.things.BulkDestroy(ctx, e.d, "destroy", resource.Eq("name", "a2"), nil); err != nil {
				return err
			}
			count()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(inside, []int{0, 0, 0, 0, 0}) {
			t.Errorf("notifications received inside the open transaction, after each action: %v, want none", inside)
		}
		want := []string{"create a", "create b", "update a2", "update b", "destroy a2"}
		e.res.want(t, "resource-level", want...)
		e.act.want(t, "action-level", want...)
	})
	t.Run("NotifierCanRunActions", func(t *testing.T) {
		e := newEnv(t, open, func(e *env) []resource.Notifier {
			return []resource.Notifier{resource.NotifierFunc(func(ctx context.Context, n resource.Notification) error {
				th, _ := resource.RecordAs[thing](n)
				// Bounded, in case the action's transaction were still
				// open on a database of one connection.
				ctx, cancel := context.WithTimeout(ctx, freshTimeout)
				defer cancel()
				_, err := e.audits.Create(ctx, e.d, "create", resource.Input{"thing": th.ID, "action": n.Action})
				return err
			})}
		})
		x := e.create(t, "x", 1)
		res, err := e.d.Run(e.ctx, e.things, "update", resource.Input{"name": "x2"}, resource.OnRecord(x))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.NotifyErrors) != 0 {
			t.Errorf("a notifier running an action with its ctx failed: %v", res.NotifyErrors)
		}
		if err := e.d.InTransaction(e.ctx, func(ctx context.Context) error {
			_, err := e.things.Create(ctx, e.d, "create", resource.Input{"name": "y"})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for _, f := range e.failures.all() {
			t.Errorf("a notifier running an action with its ctx failed: %v", f)
		}
		got, err := e.audits.Read(fresh(t), e.d, "list", nil)
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, a := range got {
			if a.Thing == x.ID {
				actions = append(actions, a.Action)
			}
		}
		slices.Sort(actions)
		if len(got) != 3 || !slices.Equal(actions, []string{"create", "update"}) {
			t.Errorf("%d audits committed by the notifier (%q for x), want 3 (create and update for x)", len(got), actions)
		}
	})
}

func testRollback(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	t.Run("AfterChangeFails", func(t *testing.T) {
		e := newEnv(t, open, nil)
		_, err := e.things.Create(e.ctx, e.d, "create_fail_after", resource.Input{"name": "x"})
		if !errors.Is(err, errAfterFailed) {
			t.Fatalf("err = %v, want the After change's error", err)
		}
		e.res.want(t, "resource-level")
		e.act.want(t, "action-level")
		if names := e.names(t); len(names) != 0 {
			t.Errorf("things = %q, want none", names)
		}
	})
	t.Run("InTransactionFails", func(t *testing.T) {
		e := newEnv(t, open, nil)
		x := e.create(t, "x", 1)
		e.forget()
		err := e.d.InTransaction(e.ctx, func(ctx context.Context) error {
			if _, err := e.things.Create(ctx, e.d, "create", resource.Input{"name": "a", "rank": 2}); err != nil {
				return err
			}
			b, err := e.things.Create(ctx, e.d, "create", resource.Input{"name": "b", "rank": 3})
			if err != nil {
				return err
			}
			if _, err := e.things.Update(ctx, e.d, "update", x, resource.Input{"name": "x2"}); err != nil {
				return err
			}
			if err := e.things.Destroy(ctx, e.d, "destroy", b, nil); err != nil {
				return err
			}
			if _, err := e.things.BulkUpdate(ctx, e.d, "update", resource.Ge("rank", 0), resource.Input{"rank": 5}); err != nil {
				return err
			}
			return errFn
		})
		if !errors.Is(err, errFn) {
			t.Fatalf("InTransaction = %v, want the func's error", err)
		}
		e.res.want(t, "resource-level")
		e.act.want(t, "action-level")
		if names := e.names(t); !slices.Equal(names, []string{"x"}) {
			t.Errorf("things = %q, want [x]", names)
		}
	})
	t.Run("ActionFailsInTransaction", func(t *testing.T) {
		e := newEnv(t, open, nil)
		err := e.d.InTransaction(e.ctx, func(ctx context.Context) error {
			if _, err := e.things.Create(ctx, e.d, "create", resource.Input{"name": "a"}); err != nil {
				return err
			}
			_, err := e.things.Create(ctx, e.d, "create_fail_after", resource.Input{"name": "b"})
			return err
		})
		if !errors.Is(err, errAfterFailed) {
			t.Fatalf("InTransaction = %v, want the After change's error", err)
		}
		e.res.want(t, "resource-level")
		e.act.want(t, "action-level")
		if names := e.names(t); len(names) != 0 {
			t.Errorf("things = %q, want none", names)
		}
	})
	t.Run("InvalidInput", func(t *testing.T) {
		e := newEnv(t, open, nil)
		_, err := e.things.Create(e.ctx, e.d, "create", resource.Input{"rank": 1})
		if !errors.Is(err, resource.ErrInvalid) {
			t.Fatalf("err = %v, want ErrInvalid (name is required)", err)
		}
		e.res.want(t, "resource-level")
		e.act.want(t, "action-level")
	})
	t.Run("Conflict", func(t *testing.T) {
		e := newEnv(t, open, nil)
		e.create(t, "x", 1)
		_, err := e.things.Create(e.ctx, e.d, "create", resource.Input{"name": "x", "rank": 2})
		if !errors.Is(err, resource.ErrConflict) {
			t.Fatalf("err = %v, want ErrConflict", err)
		}
		e.res.want(t, "resource-level", "create x")
		e.act.want(t, "action-level", "create x")
	})
}
