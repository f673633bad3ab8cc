package datalayertest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/kiln-go/kiln/resource"
)

// errFn is what the suite's InTransaction funcs return to roll back.
var errFn = errors.New("datalayertest: the transaction's func failed on purpose")

func testRollback(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	t.Run("AfterChangeFails", func(t *testing.T) {
		e := newEnv(t, open)
		_, err := e.items.Create(e.ctx, e.d, "create_fail_after", resource.Input{"code": "x", "name": "x", "due_at": t0})
		if !errors.Is(err, errAfterFailed) {
			t.Fatalf("err = %v, want the After change's error", err)
		}
		_, err = e.items.Get(e.ctx, e.d, "by_code", resource.Input{"code": "x"})
		wantNotFound(t, err, "dlt_item", "by_code")
		if n := len(e.list(t)); n != 0 {
			t.Errorf("%d items after a rolled back create, want 0", n)
		}
	})
	t.Run("PanicInChange", func(t *testing.T) {
		e := newEnv(t, open)
		recovered := func() (v any) {
			defer func() { v = recover() }()
			_, _ = e.items.Create(e.ctx, e.d, "create_panic_after", resource.Input{"code": "x", "name": "panicked", "due_at": t0})
			return nil
		}()
		if recovered != errPanicked {
			t.Fatalf("recovered %v, want the change's panic to reach the caller", recovered)
		}
		// If the panicked action's transaction were still open, this would
		// wait for it: for its connection, its lock or its unique key.
		ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
		defer cancel()
		if _, err := e.items.Create(ctx, e.d, "create", resource.Input{"code": "x", "name": "after", "due_at": t0}); err != nil {
			t.Fatalf("create after the panic: %v; the panicked transaction was not rolled back", err)
		}
		got, err := e.items.Read(ctx, e.d, "list", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Name != "after" {
			t.Errorf("items = %q, want only the one created after the panic", codes(got))
		}
	})
	t.Run("ConflictLeavesTransactionUsable", func(t *testing.T) {
		e := newEnv(t, open)
		e.create(t, "create", resource.Input{"code": "x", "name": "x", "due_at": t0})
		_, err := e.items.Create(e.ctx, e.d, "create", resource.Input{"code": "x", "name": "y", "due_at": t0})
		wantConflict(t, err, "dlt_item", "unique_code", "code")
		// The failed action's transaction is over: the next ones work.
		e.create(t, "create", resource.Input{"code": "y", "name": "y", "due_at": t0})
		if c := sortedCodes(e.list(t)); !slices.Equal(c, []string{"x", "y"}) {
			t.Errorf("items = %q, want [x y]", c)
		}
	})
}

func testTransaction(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	t.Run("NestedActionSharesTransaction", func(t *testing.T) {
		e := newEnv(t, open)
		// create_with_tag's After change creates a tag with the action's
		// ctx and reads both records back before anything is committed.
		it, err := e.items.Create(e.ctx, e.d, "create_with_tag", resource.Input{"code": "x", "name": "x", "due_at": t0})
		if err != nil {
			t.Fatal(err)
		}
		if c := codes(e.list(t)); !slices.Equal(c, []string{it.Code}) {
			t.Errorf("items = %q, want [x]", c)
		}
		if keys := e.tagKeys(t); !slices.Equal(keys, []string{"x"}) {
			t.Errorf("tags = %q, want the nested create's [x]", keys)
		}
	})
	t.Run("NestedActionRollsBackWithOuter", func(t *testing.T) {
		e := newEnv(t, open)
		_, err := e.items.Create(e.ctx, e.d, "create_with_tag", resource.Input{"code": "x", "name": "x", "due_at": t0, "fail": true})
		if !errors.Is(err, errAfterFailed) {
			t.Fatalf("err = %v, want the After change's error", err)
		}
		if n := len(e.list(t)); n != 0 {
			t.Errorf("%d items after the rollback, want 0", n)
		}
		if keys := e.tagKeys(t); len(keys) != 0 {
			t.Errorf("tags = %q after the rollback, want none: the nested create ran in another transaction", keys)
		}
	})
	t.Run("InTransactionCommits", func(t *testing.T) {
		e := newEnv(t, open)
		err := e.d.InTransaction(e.ctx, func(ctx context.Context) error {
			a, err := e.items.Create(ctx, e.d, "create", resource.Input{"code": "a", "name": "a", "due_at": t0})
			if err != nil {
				return err
			}
			if _, err := e.items.Create(ctx, e.d, "create", resource.Input{"code": "b", "name": "b", "due_at": t0}); err != nil {
				return err
			}
			if _, err := e.items.Update(ctx, e.d, "update", a, resource.Input{"name": "a2"}); err != nil {
				return err
			}
			if _, err := e.tags.Create(ctx, e.d, "create", resource.Input{"key": "t", "scope": "s", "label": "l"}); err != nil {
				return err
			}
			got, err := e.items.Read(ctx, e.d, "list", nil, resource.SortBy(resource.Asc("code")))
			if err != nil {
				return err
			}
			if c := codes(got); !slices.Equal(c, []string{"a", "b"}) || got[0].Name != "a2" {
				t.Errorf("inside the transaction, items = %q, want [a b] with a renamed a2", c)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		db := e.byCode(t)
		if len(db) != 2 || db["a"] == nil || db["a"].Name != "a2" || db["b"] == nil {
			t.Errorf("after commit, items = %q, want a (named a2) and b", sortedCodes(e.list(t)))
		}
		if keys := e.tagKeys(t); !slices.Equal(keys, []string{"t"}) {
			t.Errorf("after commit, tags = %q, want [t]", keys)
		}
	})
	t.Run("InTransactionRollsBack", func(t *testing.T) {
		e := newEnv(t, open)
		keep := e.create(t, "create", resource.Input{"code": "keep", "name": "keep", "due_at": t0})
		err := e.d.InTransaction(e.ctx, func(ctx context.Context) error {
			if _, err := e.items.Create(ctx, e.d, "create", resource.Input{"code": "a", "name": "a", "due_at": t0}); err != nil {
				return err
			}
			if _, err := e.items.Update(ctx, e.d, "update", keep, resource.Input{"name": "changed"}); err != nil {
				return err
			}
			if _, err := e.tags.Create(ctx, e.d, "create", resource.Input{"key": "t", "scope": "s", "label": "l"}); err != nil {
				return err
			}
			if _, err := e.items.BulkDestroy(ctx, e.d, "destroy", resource.Eq("code", "keep"), nil); err != nil {
				return err
			}
			return errFn
		})
		if !errors.Is(err, errFn) {
			t.Fatalf("InTransaction = %v, want the func's error", err)
		}
		got := e.list(t)
		if len(got) != 1 || got[0].Code != "keep" || got[0].Name != "keep" {
			t.Errorf("after rollback, items = %q, want only keep, unchanged", codes(got))
		}
		if keys := e.tagKeys(t); len(keys) != 0 {
			t.Errorf("after rollback, tags = %q, want none", keys)
		}
	})
	t.Run("NestedInTransactionJoins", func(t *testing.T) {
		e := newEnv(t, open)
		err := e.d.InTransaction(e.ctx, func(ctx context.Context) error {
			err := e.d.InTransaction(ctx, func(ctx context.Context) error {
				_, err := e.items.Create(ctx, e.d, "create", resource.Input{"code": "inner", "name": "inner", "due_at": t0})
				return err
			})
			if err != nil {
				return err
			}
			return errFn
		})
		if !errors.Is(err, errFn) {
			t.Fatalf("InTransaction = %v, want the func's error", err)
		}
		if n := len(e.list(t)); n != 0 {
			t.Errorf("%d items: the inner InTransaction committed on its own, want it to join the outer one", n)
		}
	})
	t.Run("LockedRead", func(t *testing.T) {
		e := newEnv(t, open)
		e.create(t, "create", resource.Input{"code": "x", "name": "x", "due_at": t0})
		err := e.d.InTransaction(e.ctx, func(ctx context.Context) error {
			got, err := e.items.Read(ctx, e.d, "list_locked", nil, resource.Where(resource.Eq("code", "x")))
			if err != nil {
				return err
			}
			if len(got) != 1 {
				t.Errorf("locked read found %d items, want 1", len(got))
				return nil
			}
			_, err = e.items.Update(ctx, e.d, "update", got[0], resource.Input{"name": "locked"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if db := e.byCode(t); db["x"].Name != "locked" {
			t.Errorf("name = %q, want locked", db["x"].Name)
		}
	})
}

func testTime(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	t.Run("RoundTripsInUTC", func(t *testing.T) {
		e := newEnv(t, open)
		due := time.Date(2031, 7, 14, 23, 59, 58, 123456000, india)
		done := time.Date(1999, 12, 31, 23, 0, 0, 1000, time.FixedZone("UTC-08", -8*3600))
		it := e.create(t, "create", resource.Input{"code": "x", "name": "x", "due_at": due, "done_at": done})
		got, err := e.items.Get(e.ctx, e.d, "by_id", resource.Input{"id": it.ID})
		if err != nil {
			t.Fatal(err)
		}
		if it.DoneAt == nil || got.DoneAt == nil {
			t.Fatalf("done_at = %s (insert), %s (read back); want %v", fmtPtr(it.DoneAt), fmtPtr(got.DoneAt), done)
		}
		for _, c := range []struct {
			what      string
			got, want time.Time
		}{
			{"due_at returned by the insert", it.DueAt, due},
			{"done_at returned by the insert", *it.DoneAt, done},
			{"due_at read back", got.DueAt, due},
			{"done_at read back", *got.DoneAt, done},
			{"created_at read back", got.CreatedAt, it.CreatedAt},
		} {
			if !c.got.Equal(c.want) {
				t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
			}
			if c.got.Location() != time.UTC {
				t.Errorf("%s is in %v, want UTC", c.what, c.got.Location())
			}
		}
	})
	t.Run("MicrosecondPrecision", func(t *testing.T) {
		e := newEnv(t, open)
		due := time.Date(2031, 7, 14, 1, 2, 3, 123456789, time.UTC)
		it := e.create(t, "create", resource.Input{"code": "x", "name": "x", "due_at": due})
		got, err := e.items.Get(e.ctx, e.d, "by_id", resource.Input{"id": it.ID})
		if err != nil {
			t.Fatal(err)
		}
		for what, v := range map[string]time.Time{"returned by the insert": it.DueAt, "read back": got.DueAt} {
			if d := v.Sub(due).Abs(); d >= time.Microsecond {
				t.Errorf("due_at %s = %v, want %v to the microsecond", what, v, due)
			}
		}
		if !it.DueAt.Equal(got.DueAt) {
			t.Errorf("the insert returned due_at %v but the database holds %v: return what is stored", it.DueAt, got.DueAt)
		}
	})
	t.Run("FilterOnInstant", func(t *testing.T) {
		e := newEnv(t, open)
		at := time.Date(2031, 7, 14, 1, 2, 3, 4000, time.UTC)
		e.create(t, "create", resource.Input{"code": "x", "name": "x", "due_at": at})
		e.create(t, "create", resource.Input{"code": "y", "name": "y", "due_at": at.Add(time.Microsecond)})
		if c := codes(e.list(t, resource.Where(resource.Eq("due_at", at.In(india))))); !slices.Equal(c, []string{"x"}) {
			t.Errorf("Eq(due_at, %v) = %q, want [x]", at.In(india), c)
		}
		if c := codes(e.list(t, resource.Where(resource.Gt("due_at", at)))); !slices.Equal(c, []string{"y"}) {
			t.Errorf("Gt(due_at, %v) = %q, want [y]: one microsecond later must compare later", at, c)
		}
	})
}
