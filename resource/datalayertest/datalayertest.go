// Package datalayertest checks that a resource.DataLayer does what kiln
// needs of it, as testing/slogtest checks a slog.Handler. A data layer's
// tests call Run with a function that opens a fresh layer:
//
//	func TestConformance(t *testing.T) {
//		datalayertest.Run(t, func(t *testing.T) resource.DataLayer {
//			return openEmptyDatabase(t)
//		})
//	}
//
// Run declares its own resources (tables dlt_items and dlt_tags, and for
// relationships dlt_authors, dlt_profiles, dlt_posts, dlt_comments,
// dlt_labels and dlt_post_labels), builds a domain on each layer open
// returns, migrates it when the layer is a Migrator, and runs every check
// through the public API of package resource (Domain.Run,
// Domain.InTransaction and the typed Resource methods): inserts and the
// values they return, every filter operator, sorting (NULL after every
// value), limits and offsets, pages (by cursor in mixed directions and
// over NULLs, stable while records are written; by offset; with a total
// count), gets by primary key and identity, updates of one record and in
// bulk, destroys, unique violations, upserts, rollbacks, transactions
// shared by nested actions, and time values. For relationships: loading
// each kind, nested, in a constant number of queries whatever the number
// of records; filters and sorts through them, in reads, counts and bulk
// writes; a key that refers to no record refused; foreign keys' ON
// DELETE (restrict, cascade, set null); and the layer's own report of a
// foreign key violation (resource.ReferenceError).
package datalayertest

import (
	"context"
	"testing"
	"time"

	"github.com/kiln-go/kiln/resource"
)

// Migrator is a data layer that creates the tables of the resources
// registered with it. Run calls Migrate after building its domain on a
// layer that implements it; a layer that does not must give Run databases
// where the tables already exist.
type Migrator interface {
	Migrate(ctx context.Context) error
}

// Run checks the data layers open returns. It calls open once per check
// that writes, with the subtest's t (the read-only checks of Select and Get
// share one layer per group); each call must return a layer on a database
// of its own, and may register cleanups on t to close it. Run empties its
// tables after opening, so a database reused across calls also works, but
// checks must not run concurrently on one database. Each check is bounded
// by 30 seconds, so a layer that deadlocks fails rather than hangs.
func Run(t *testing.T, open func(t *testing.T) resource.DataLayer) {
	t.Helper()
	t.Run("Insert", func(t *testing.T) { testInsert(t, open) })
	t.Run("Select", func(t *testing.T) { testSelect(t, open) })
	t.Run("Get", func(t *testing.T) { testGet(t, open) })
	t.Run("Page", func(t *testing.T) { testPage(t, open) })
	t.Run("Update", func(t *testing.T) { testUpdate(t, open) })
	t.Run("BulkUpdate", func(t *testing.T) { testBulkUpdate(t, open) })
	t.Run("Destroy", func(t *testing.T) { testDestroy(t, open) })
	t.Run("BulkDestroy", func(t *testing.T) { testBulkDestroy(t, open) })
	t.Run("Conflict", func(t *testing.T) { testConflict(t, open) })
	t.Run("Upsert", func(t *testing.T) { testUpsert(t, open) })
	t.Run("Rollback", func(t *testing.T) { testRollback(t, open) })
	t.Run("Transaction", func(t *testing.T) { testTransaction(t, open) })
	t.Run("Time", func(t *testing.T) { testTime(t, open) })
	t.Run("Relationships", func(t *testing.T) { testRelationships(t, open) })
}

// checkTimeout bounds each check, so that a layer that deadlocks (a nested
// action that does not share the transaction, on a database of one
// connection) fails the check instead of hanging the test binary.
const checkTimeout = 30 * time.Second

// env is one domain built on one freshly opened layer.
type env struct {
	ctx   context.Context
	d     *resource.Domain
	items *resource.Resource[item]
	tags  *resource.Resource[tag]
}

// newEnv opens a layer, builds the suite's domain on it, migrates it and
// empties its tables.
func newEnv(t *testing.T, open func(t *testing.T) resource.DataLayer) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), checkTimeout)
	t.Cleanup(cancel)
	layer := open(t)
	if layer == nil {
		t.Fatal("open returned a nil DataLayer")
	}
	items, tags := declare()
	d, err := resource.NewDomain("datalayertest", items, tags).Build(ctx, layer)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if m, ok := layer.(Migrator); ok {
		if err := m.Migrate(ctx); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	e := &env{ctx: ctx, d: d, items: items, tags: tags}
	if _, err := items.BulkDestroy(ctx, d, "destroy", resource.And{}, nil); err != nil {
		t.Fatalf("emptying dlt_items: %v", err)
	}
	if _, err := tags.BulkDestroy(ctx, d, "destroy", resource.And{}, nil); err != nil {
		t.Fatalf("emptying dlt_tags: %v", err)
	}
	return e
}
