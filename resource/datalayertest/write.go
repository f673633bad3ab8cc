package datalayertest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kiln-go/kiln/resource"
)

func testInsert(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	t.Run("ReturnsDefaults", func(t *testing.T) {
		e := newEnv(t, open)
		lo := now()
		it := e.create(t, "create", resource.Input{"code": "x", "name": "x", "due_at": t0})
		hi := time.Now().UTC()
		if it.ID == uuid.Nil {
			t.Error("id = the nil UUID, want the kiln default (a new UUID)")
		}
		between(t, "created_at", it.CreatedAt, lo, hi)
		between(t, "updated_at", it.UpdatedAt, lo, hi)
		if it.Status != "new" {
			t.Errorf("status = %q, want the database default %q, returned by the insert", it.Status, "new")
		}
		if it.Note != nil || it.DoneAt != nil || it.Rank != 0 || it.Active {
			t.Errorf("note, done_at, rank, active = %s, %s, %d, %v; want nil, nil, 0, false",
				fmtPtr(it.Note), fmtPtr(it.DoneAt), it.Rank, it.Active)
		}
		got, err := e.items.Get(e.ctx, e.d, "by_id", resource.Input{"id": it.ID})
		if err != nil {
			t.Fatal(err)
		}
		if d := diffItem(got, it); d != "" {
			t.Errorf("read back differs from what the insert returned: %s", d)
		}
	})
	t.Run("WritesEveryField", func(t *testing.T) {
		e := newEnv(t, open)
		id := uuid.New()
		done := t0.Add(-time.Hour)
		in := resource.Input{"id": id, "code": "full", "name": "full", "note": "a note", "rank": -7,
			"active": true, "status": "custom", "due_at": t0, "done_at": done}
		it := e.create(t, "create", in)
		want := &item{ID: id, Code: "full", Name: "full", Note: ptr("a note"), Rank: -7, Active: true,
			Status: "custom", DueAt: t0, DoneAt: &done, CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt}
		if d := diffItem(it, want); d != "" {
			t.Errorf("insert returned: %s", d)
		}
		got, err := e.items.Get(e.ctx, e.d, "by_id", resource.Input{"id": id})
		if err != nil {
			t.Fatal(err)
		}
		if d := diffItem(got, want); d != "" {
			t.Errorf("read back: %s", d)
		}
	})
	t.Run("QuotesAndUnicode", func(t *testing.T) {
		e := newEnv(t, open)
		name := `O'Brien \ "quoted" ; -- ü 🔥 ?`
		it := e.create(t, "create", resource.Input{"code": "q'1", "name": name, "due_at": t0})
		if it.Name != name {
			t.Errorf("insert returned name %q, want %q", it.Name, name)
		}
		got := e.list(t, resource.Where(resource.Eq("name", name)))
		if len(got) != 1 || got[0].Name != name || got[0].Code != "q'1" {
			t.Errorf("Eq(name, %q) read %q, want the one item", name, codes(got))
		}
	})
	t.Run("StringPrimaryKey", func(t *testing.T) {
		e := newEnv(t, open)
		tg, err := e.tags.Create(e.ctx, e.d, "create", resource.Input{"key": "k-1", "scope": "s", "label": "l"})
		if err != nil {
			t.Fatal(err)
		}
		if *tg != (tag{Key: "k-1", Scope: "s", Label: "l"}) {
			t.Errorf("insert returned %+v", *tg)
		}
		if keys := e.tagKeys(t); !slices.Equal(keys, []string{"k-1"}) {
			t.Errorf("tags = %q, want [k-1]", keys)
		}
	})
}

func testUpdate(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	t.Run("WritesOnlyChangedFields", func(t *testing.T) {
		e := newEnv(t, open)
		it := e.create(t, "create", resource.Input{"code": "x", "name": "before", "rank": 1, "note": "kept", "due_at": t0})
		stale := *it
		// Another write changes rank; the update of name from the stale
		// copy must not put the old rank back.
		if _, err := e.items.Update(e.ctx, e.d, "update", it, resource.Input{"rank": 7}); err != nil {
			t.Fatal(err)
		}
		got, err := e.items.Update(e.ctx, e.d, "update", &stale, resource.Input{"name": "after"})
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "after" || got.Rank != 7 || fmtPtr(got.Note) != "kept" {
			t.Errorf("update returned name, rank, note = %q, %d, %s; want after, 7 (from the database), kept", got.Name, got.Rank, fmtPtr(got.Note))
		}
		if stale.Name != "before" {
			t.Errorf("the record passed to Update was modified: name = %q", stale.Name)
		}
		db := e.byCode(t)["x"]
		if db.Name != "after" || db.Rank != 7 || fmtPtr(db.Note) != "kept" {
			t.Errorf("database has name, rank, note = %q, %d, %s; want after, 7, kept", db.Name, db.Rank, fmtPtr(db.Note))
		}
		if !db.CreatedAt.Equal(it.CreatedAt) {
			t.Errorf("created_at moved from %v to %v", it.CreatedAt, db.CreatedAt)
		}
	})
	t.Run("SetsNull", func(t *testing.T) {
		e := newEnv(t, open)
		done := t0
		it := e.create(t, "create", resource.Input{"code": "x", "name": "x", "note": "n", "done_at": done, "due_at": t0})
		got, err := e.items.Update(e.ctx, e.d, "update", it, resource.Input{"note": nil, "done_at": nil})
		if err != nil {
			t.Fatal(err)
		}
		if got.Note != nil || got.DoneAt != nil {
			t.Errorf("update returned note, done_at = %s, %s; want nil, nil", fmtPtr(got.Note), fmtPtr(got.DoneAt))
		}
		if n := len(e.list(t, resource.Where(resource.And{resource.IsNil("note"), resource.IsNil("done_at")}))); n != 1 {
			t.Errorf("%d items with a NULL note and done_at, want 1", n)
		}
	})
	t.Run("UpdateDefaultMoves", func(t *testing.T) {
		e := newEnv(t, open)
		it := e.create(t, "create_backdated", resource.Input{"code": "x", "name": "x", "due_at": t0})
		if !it.UpdatedAt.Equal(backdated) || !it.CreatedAt.Equal(backdated) {
			t.Fatalf("create_backdated returned created_at, updated_at = %v, %v; want %v", it.CreatedAt, it.UpdatedAt, backdated)
		}
		lo := now()
		got, err := e.items.Update(e.ctx, e.d, "update", it, resource.Input{"name": "y"})
		hi := time.Now().UTC()
		if err != nil {
			t.Fatal(err)
		}
		between(t, "updated_at returned by the update", got.UpdatedAt, lo, hi)
		if !got.CreatedAt.Equal(backdated) {
			t.Errorf("created_at = %v, want it unchanged: %v", got.CreatedAt, backdated)
		}
		db := e.byCode(t)["x"]
		between(t, "updated_at in the database", db.UpdatedAt, lo, hi)
		if !db.CreatedAt.Equal(backdated) {
			t.Errorf("created_at in the database = %v, want %v", db.CreatedAt, backdated)
		}
	})
	t.Run("DeletedMeanwhileIsNotFound", func(t *testing.T) {
		e := newEnv(t, open)
		it := e.create(t, "create", resource.Input{"code": "x", "name": "x", "due_at": t0})
		stale := *it
		if err := e.items.Destroy(e.ctx, e.d, "destroy", it, nil); err != nil {
			t.Fatal(err)
		}
		_, err := e.items.Update(e.ctx, e.d, "update", &stale, resource.Input{"name": "y"})
		wantNotFound(t, err, "dlt_item", "update")
		if n := len(e.list(t)); n != 0 {
			t.Errorf("%d items after updating a deleted one, want 0", n)
		}
	})
	t.Run("NoFieldsReturnsStoredRecord", func(t *testing.T) {
		e := newEnv(t, open)
		tg, err := e.tags.Create(e.ctx, e.d, "create", resource.Input{"key": "k", "scope": "s", "label": "stored"})
		if err != nil {
			t.Fatal(err)
		}
		stale := *tg
		stale.Label = "stale"
		got, err := e.tags.Update(e.ctx, e.d, "touch", &stale, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.Label != "stored" {
			t.Errorf("an update that writes nothing returned label %q, want the stored %q", got.Label, "stored")
		}
	})
	t.Run("NoFieldsDeletedMeanwhileIsNotFound", func(t *testing.T) {
		e := newEnv(t, open)
		tg, err := e.tags.Create(e.ctx, e.d, "create", resource.Input{"key": "k", "scope": "s", "label": "l"})
		if err != nil {
			t.Fatal(err)
		}
		stale := *tg
		if err := e.tags.Destroy(e.ctx, e.d, "destroy", tg, nil); err != nil {
			t.Fatal(err)
		}
		_, err = e.tags.Update(e.ctx, e.d, "touch", &stale, nil)
		wantNotFound(t, err, "dlt_tag", "touch")
	})
}

func testBulkUpdate(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	// seedBackdated creates items a to e with ranks 1 to 5 and updated_at
	// set to backdated.
	seedBackdated := func(t *testing.T, e *env) {
		t.Helper()
		for i, code := range []string{"a", "b", "c", "d", "e"} {
			e.create(t, "create_backdated", resource.Input{"code": code, "name": code, "rank": i + 1, "note": "old", "due_at": t0})
		}
	}
	t.Run("ReturnsAffectedRows", func(t *testing.T) {
		e := newEnv(t, open)
		seedBackdated(t, e)
		lo := now()
		got, err := e.items.BulkUpdate(e.ctx, e.d, "update", resource.Ge("rank", 4), resource.Input{"note": "bulk", "active": true})
		hi := time.Now().UTC()
		if err != nil {
			t.Fatal(err)
		}
		if c := sortedCodes(got); !slices.Equal(c, []string{"d", "e"}) {
			t.Fatalf("bulk update returned %q, want [d e]", c)
		}
		for _, it := range got {
			if fmtPtr(it.Note) != "bulk" || !it.Active {
				t.Errorf("returned %s has note, active = %s, %v; want bulk, true", it.Code, fmtPtr(it.Note), it.Active)
			}
			if it.Name != it.Code || it.ID == uuid.Nil || it.DueAt.IsZero() || !it.CreatedAt.Equal(backdated) {
				t.Errorf("returned %s is not the full row: %+v", it.Code, *it)
			}
			between(t, "updated_at of "+it.Code, it.UpdatedAt, lo, hi)
		}
		db := e.byCode(t)
		for _, code := range []string{"d", "e"} {
			if fmtPtr(db[code].Note) != "bulk" || !db[code].Active {
				t.Errorf("database %s has note, active = %s, %v; want bulk, true", code, fmtPtr(db[code].Note), db[code].Active)
			}
		}
		for _, code := range []string{"a", "b", "c"} {
			it := db[code]
			if fmtPtr(it.Note) != "old" || it.Active || !it.UpdatedAt.Equal(backdated) {
				t.Errorf("unmatched %s was touched: note, active, updated_at = %s, %v, %v", code, fmtPtr(it.Note), it.Active, it.UpdatedAt)
			}
		}
	})
	t.Run("ByPrimaryKeys", func(t *testing.T) {
		e := newEnv(t, open)
		seedBackdated(t, e)
		db := e.byCode(t)
		got, err := e.items.BulkUpdate(e.ctx, e.d, "update", resource.In("id", []uuid.UUID{db["a"].ID, db["c"].ID}), resource.Input{"rank": 0})
		if err != nil {
			t.Fatal(err)
		}
		if c := sortedCodes(got); !slices.Equal(c, []string{"a", "c"}) {
			t.Fatalf("bulk update returned %q, want [a c]", c)
		}
		if c := sortedCodes(e.list(t, resource.Where(resource.Eq("rank", 0)))); !slices.Equal(c, []string{"a", "c"}) {
			t.Errorf("items with rank 0: %q, want [a c]", c)
		}
	})
	t.Run("NoMatch", func(t *testing.T) {
		e := newEnv(t, open)
		seedBackdated(t, e)
		got, err := e.items.BulkUpdate(e.ctx, e.d, "update", resource.Gt("rank", 100), resource.Input{"note": "bulk"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("bulk update matching nothing returned %q", codes(got))
		}
		if n := len(e.list(t, resource.Where(resource.Eq("note", "old")))); n != 5 {
			t.Errorf("%d items still have their note, want 5", n)
		}
	})
}

func testDestroy(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	t.Run("One", func(t *testing.T) {
		e := newEnv(t, open)
		seeded := e.seed(t)
		stale := *seeded["c"]
		if _, err := e.items.Update(e.ctx, e.d, "update", seeded["c"], resource.Input{"name": "renamed"}); err != nil {
			t.Fatal(err)
		}
		res, err := e.d.Run(e.ctx, e.items, "destroy", nil, resource.OnRecord(&stale))
		if err != nil {
			t.Fatal(err)
		}
		gone, ok := res.Record.(*item)
		if !ok || gone.ID != stale.ID || gone.Name != "renamed" {
			t.Errorf("destroy returned %+v, want item c as stored (name renamed)", res.Record)
		}
		_, err = e.items.Get(e.ctx, e.d, "by_id", resource.Input{"id": stale.ID})
		wantNotFound(t, err, "dlt_item", "by_id")
		if c := sortedCodes(e.list(t)); !slices.Equal(c, []string{"a", "b", "d", "e"}) {
			t.Errorf("items left: %q, want [a b d e]", c)
		}
	})
	t.Run("MissingIsNotFound", func(t *testing.T) {
		e := newEnv(t, open)
		it := e.create(t, "create", resource.Input{"code": "x", "name": "x", "due_at": t0})
		if err := e.items.Destroy(e.ctx, e.d, "destroy", it, nil); err != nil {
			t.Fatal(err)
		}
		err := e.items.Destroy(e.ctx, e.d, "destroy", it, nil)
		wantNotFound(t, err, "dlt_item", "destroy")
	})
	t.Run("StringPrimaryKey", func(t *testing.T) {
		e := newEnv(t, open)
		for _, k := range []string{"k1", "k2"} {
			if _, err := e.tags.Create(e.ctx, e.d, "create", resource.Input{"key": k, "scope": "s", "label": k}); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.tags.Destroy(e.ctx, e.d, "destroy", &tag{Key: "k1"}, nil); err != nil {
			t.Fatal(err)
		}
		if keys := e.tagKeys(t); !slices.Equal(keys, []string{"k2"}) {
			t.Errorf("tags left: %q, want [k2]", keys)
		}
	})
}

func testBulkDestroy(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	t.Run("ReturnsAffectedRows", func(t *testing.T) {
		e := newEnv(t, open)
		seeded := e.seed(t)
		got, err := e.items.BulkDestroy(e.ctx, e.d, "destroy", resource.Or{resource.Le("rank", 2), resource.Eq("code", "e")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c := sortedCodes(got); !slices.Equal(c, []string{"a", "b", "e"}) {
			t.Fatalf("bulk destroy returned %q, want [a b e]", c)
		}
		for _, it := range got {
			if d := diffItem(it, seeded[it.Code]); d != "" {
				t.Errorf("bulk destroy returned %s not as stored: %s", it.Code, d)
			}
		}
		if c := sortedCodes(e.list(t)); !slices.Equal(c, []string{"c", "d"}) {
			t.Errorf("items left: %q, want [c d]", c)
		}
	})
	t.Run("NoMatch", func(t *testing.T) {
		e := newEnv(t, open)
		e.seed(t)
		got, err := e.items.BulkDestroy(e.ctx, e.d, "destroy", resource.In("code", []string{}), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("bulk destroy matching nothing returned %q", codes(got))
		}
		if n := len(e.list(t)); n != 5 {
			t.Errorf("%d items left, want 5", n)
		}
	})
}

func testConflict(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	t.Run("Identity", func(t *testing.T) {
		e := newEnv(t, open)
		e.create(t, "create", resource.Input{"code": "x", "name": "first", "due_at": t0})
		_, err := e.items.Create(e.ctx, e.d, "create", resource.Input{"code": "x", "name": "second", "due_at": t0})
		wantConflict(t, err, "dlt_item", "unique_code", "code")
		got := e.list(t)
		if len(got) != 1 || got[0].Name != "first" {
			t.Errorf("items after the conflict: %d, want only the first", len(got))
		}
	})
	t.Run("CompositeIdentity", func(t *testing.T) {
		e := newEnv(t, open)
		if _, err := e.tags.Create(e.ctx, e.d, "create", resource.Input{"key": "k1", "scope": "s", "label": "l"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.tags.Create(e.ctx, e.d, "create", resource.Input{"key": "k2", "scope": "s", "label": "other"}); err != nil {
			t.Fatalf("same scope, other label: %v", err)
		}
		_, err := e.tags.Create(e.ctx, e.d, "create", resource.Input{"key": "k3", "scope": "s", "label": "l"})
		wantConflict(t, err, "dlt_tag", "scope_label", "scope", "label")
		if keys := e.tagKeys(t); !slices.Equal(keys, []string{"k1", "k2"}) {
			t.Errorf("tags = %q, want [k1 k2]", keys)
		}
	})
	t.Run("PrimaryKey", func(t *testing.T) {
		e := newEnv(t, open)
		id := uuid.New()
		e.create(t, "create", resource.Input{"id": id, "code": "x", "name": "x", "due_at": t0})
		_, err := e.items.Create(e.ctx, e.d, "create", resource.Input{"id": id, "code": "y", "name": "y", "due_at": t0})
		wantConflict(t, err, "dlt_item", "primary_key", "id")
	})
	t.Run("StringPrimaryKey", func(t *testing.T) {
		e := newEnv(t, open)
		if _, err := e.tags.Create(e.ctx, e.d, "create", resource.Input{"key": "k", "scope": "s", "label": "1"}); err != nil {
			t.Fatal(err)
		}
		_, err := e.tags.Create(e.ctx, e.d, "create", resource.Input{"key": "k", "scope": "s", "label": "2"})
		wantConflict(t, err, "dlt_tag", "primary_key", "key")
	})
	t.Run("OnUpdate", func(t *testing.T) {
		e := newEnv(t, open)
		e.create(t, "create", resource.Input{"code": "a", "name": "a", "due_at": t0})
		b := e.create(t, "create", resource.Input{"code": "b", "name": "b", "due_at": t0})
		_, err := e.items.Update(e.ctx, e.d, "update", b, resource.Input{"code": "a", "name": "changed"})
		wantConflict(t, err, "dlt_item", "unique_code", "code")
		if db := e.byCode(t); db["b"] == nil || db["b"].Name != "b" {
			t.Errorf("item b after the failed update: %+v, want it unchanged", db["b"])
		}
	})
	t.Run("OnBulkUpdate", func(t *testing.T) {
		e := newEnv(t, open)
		e.seed(t)
		_, err := e.items.BulkUpdate(e.ctx, e.d, "update", resource.Le("rank", 2), resource.Input{"code": "same"})
		wantConflict(t, err, "dlt_item", "unique_code", "code")
		if c := sortedCodes(e.list(t)); !slices.Equal(c, []string{"a", "b", "c", "d", "e"}) {
			t.Errorf("codes after the failed bulk update: %q", c)
		}
	})
	t.Run("SkipOnConflictKeepsTransactionUsable", func(t *testing.T) {
		e := newEnv(t, open)
		id := uuid.New()
		var errCode, errID error
		err := e.d.InTransaction(e.ctx, func(ctx context.Context) error {
			if _, err := e.items.Create(ctx, e.d, "create", resource.Input{"id": id, "code": "x", "name": "first", "due_at": t0}); err != nil {
				return err
			}
			_, errCode = e.items.Create(ctx, e.d, "create_or_skip", resource.Input{"code": "x", "name": "second", "due_at": t0})
			_, errID = e.items.Create(ctx, e.d, "create_or_skip_id", resource.Input{"id": id, "code": "other", "name": "third", "due_at": t0})
			// The conflicts did not abort the transaction.
			_, err := e.items.Create(ctx, e.d, "create_or_skip", resource.Input{"code": "y", "name": "y", "due_at": t0})
			return err
		})
		if err != nil {
			t.Fatalf("InTransaction: %v", err)
		}
		wantConflict(t, errCode, "dlt_item", "unique_code", "code")
		wantConflict(t, errID, "dlt_item", "primary_key", "id")
		db := e.byCode(t)
		if len(db) != 2 || db["x"] == nil || db["x"].Name != "first" || db["y"] == nil {
			t.Errorf("items = %q, want x (named first) and y", sortedCodes(e.list(t)))
		}
	})
}

func testUpsert(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	t.Run("Identity", func(t *testing.T) {
		e := newEnv(t, open)
		first := e.create(t, "upsert_code", resource.Input{"code": "u", "name": "first", "rank": 1, "due_at": t0})
		if first.ID == uuid.Nil || first.Name != "first" {
			t.Fatalf("first upsert returned %+v", *first)
		}
		second := e.create(t, "upsert_code", resource.Input{"code": "u", "name": "second", "rank": 2, "due_at": t0})
		if second.ID != first.ID {
			t.Errorf("second upsert returned id %s, want the stored row's %s", second.ID, first.ID)
		}
		if second.Name != "second" || second.Rank != 2 {
			t.Errorf("second upsert returned name, rank = %q, %d; want second, 2", second.Name, second.Rank)
		}
		if !second.CreatedAt.Equal(first.CreatedAt) {
			t.Errorf("created_at = %v, want the stored row's %v", second.CreatedAt, first.CreatedAt)
		}
		got := e.list(t)
		if len(got) != 1 {
			t.Fatalf("%d items after two upserts of one code, want 1", len(got))
		}
		if d := diffItem(got[0], second); d != "" {
			t.Errorf("stored row differs from the upsert's result: %s", d)
		}
		e.create(t, "upsert_code", resource.Input{"code": "v", "name": "other", "due_at": t0})
		if c := sortedCodes(e.list(t)); !slices.Equal(c, []string{"u", "v"}) {
			t.Errorf("items = %q, want [u v]", c)
		}
	})
	t.Run("PrimaryKey", func(t *testing.T) {
		e := newEnv(t, open)
		id := uuid.New()
		e.create(t, "upsert_id", resource.Input{"id": id, "code": "p", "name": "first", "due_at": t0})
		got := e.create(t, "upsert_id", resource.Input{"id": id, "code": "p2", "name": "second", "due_at": t0})
		if got.ID != id || got.Code != "p2" || got.Name != "second" {
			t.Errorf("second upsert returned id, code, name = %s, %q, %q; want %s, p2, second", got.ID, got.Code, got.Name, id)
		}
		all := e.list(t)
		if len(all) != 1 || all[0].ID != id || all[0].Name != "second" {
			t.Errorf("items after two upserts of one id = %q, want the one updated row", codes(all))
		}
	})
}
