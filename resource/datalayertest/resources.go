package datalayertest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/google/uuid"

	"github.com/kiln-go/kiln/resource"
)

// item is the suite's main record: a uuid primary key with a kiln default,
// a unique column (the identity unique_code), nullable columns, a column
// with a database default, an int, a bool and times.
type item struct {
	ID        uuid.UUID  `bun:",pk,type:uuid" kiln:"default:uuid"`
	Code      string     `bun:",unique,notnull"`
	Name      string     `bun:",notnull"`
	Note      *string    // nullable
	Rank      int        // zero is a value, not "missing"
	Active    bool       // zero is a value, not "missing"
	Status    string     `bun:",default:'new'"` // the database's default
	DueAt     time.Time  `bun:",notnull"`
	DoneAt    *time.Time // nullable time
	CreatedAt time.Time  `bun:",notnull" kiln:"readonly,default:now"`
	UpdatedAt time.Time  `bun:",notnull" kiln:"readonly,default:now,update_default:now"`
}

// tag has a string primary key and an identity of two columns.
type tag struct {
	Key   string `bun:",pk"`
	Scope string `bun:",notnull"`
	Label string `bun:",notnull"`
}

// errAfterFailed is what the suite's failing After changes return.
var errAfterFailed = errors.New("datalayertest: the After change failed on purpose")

// errPanicked is what the suite's panicking After change panics with.
var errPanicked = errors.New("datalayertest: the After change panicked on purpose")

// backdated is the time create_backdated gives created_at and updated_at,
// so that a check can see them move (or not) without waiting.
var backdated = time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)

var itemAccept = []string{"id", "code", "name", "note", "rank", "active", "status", "due_at", "done_at"}

// declare declares the suite's resources. They are declared per domain
// because a change of the item resource runs actions of both.
func declare() (*resource.Resource[item], *resource.Resource[tag]) {
	tags := resource.New[tag]("dlt_tag",
		resource.Table("dlt_tags"),
		resource.Identities{{Name: "scope_label", Keys: []string{"scope", "label"}}},
		resource.Actions{
			resource.Create{Name: "create", Accept: []string{"key", "scope", "label"}},
			resource.Read{Name: "list"},
			resource.Read{Name: "by_key", GetBy: []string{"key"}},
			// touch writes nothing: the layer is asked to update no field.
			resource.Update{Name: "touch"},
			resource.Destroy{Name: "destroy"},
		},
	)
	var items *resource.Resource[item]
	// nestedTag runs, with the action's ctx, a create of a tag keyed by the
	// item's code, then reads both records back with that ctx: they are not
	// committed yet, so it sees them only when the nested actions share the
	// transaction. With the argument fail it then fails the action.
	nestedTag := func(ctx context.Context, cs *resource.AnyChangeset, rec any) error {
		it := rec.(*item)
		d := cs.Domain()
		if _, err := tags.Create(ctx, d, "create", resource.Input{"key": it.Code, "scope": "nested", "label": it.Code}); err != nil {
			return fmt.Errorf("nested create: %w", err)
		}
		if _, err := tags.Get(ctx, d, "by_key", resource.Input{"key": it.Code}); err != nil {
			return fmt.Errorf("the nested create's tag is not visible in the transaction: %w", err)
		}
		got, err := items.Get(ctx, d, "by_code", resource.Input{"code": it.Code})
		if err != nil {
			return fmt.Errorf("the item being created is not visible to a nested read: %w", err)
		}
		if got.ID != it.ID {
			return fmt.Errorf("a nested read found item %s, want %s", got.ID, it.ID)
		}
		if resource.Arg[bool](cs, "fail") {
			return errAfterFailed
		}
		return nil
	}
	items = resource.New[item]("dlt_item",
		resource.Table("dlt_items"),
		resource.Actions{
			resource.Create{Name: "create", Accept: itemAccept},
			resource.Create{Name: "create_backdated", Accept: itemAccept, Changes: []resource.Change{{
				Name: "backdate",
				Before: func(_ context.Context, cs *resource.AnyChangeset) error {
					if err := cs.Set("created_at", backdated); err != nil {
						return err
					}
					return cs.Set("updated_at", backdated)
				},
			}}},
			resource.Create{Name: "create_fail_after", Accept: itemAccept, Changes: []resource.Change{{
				Name:  "fail",
				After: func(context.Context, *resource.AnyChangeset, any) error { return errAfterFailed },
			}}},
			resource.Create{Name: "create_panic_after", Accept: itemAccept, Changes: []resource.Change{{
				Name:  "panic",
				After: func(context.Context, *resource.AnyChangeset, any) error { panic(errPanicked) },
			}}},
			resource.Create{Name: "create_with_tag", Accept: itemAccept,
				Arguments: []resource.Argument{{Name: "fail", Type: reflect.TypeFor[bool]()}},
				Changes:   []resource.Change{{Name: "nested_tag", After: nestedTag}}},
			resource.Create{Name: "upsert_code", Accept: []string{"code", "name", "rank", "due_at"},
				Upsert: true, UpsertIdentity: "unique_code"},
			resource.Create{Name: "upsert_id", Accept: []string{"id", "code", "name", "due_at"}, Upsert: true},
			resource.Create{Name: "create_or_skip", Accept: itemAccept, SkipOnConflict: true, UpsertIdentity: "unique_code"},
			resource.Create{Name: "create_or_skip_id", Accept: itemAccept, SkipOnConflict: true},
			resource.Read{Name: "list"},
			resource.Read{Name: "list_locked", Lock: true},
			resource.Read{Name: "pages", Sort: []resource.Sort{resource.Asc("rank")},
				PageSize: resource.PageSize{Default: 2, Max: 3}},
			resource.Read{Name: "by_id", GetBy: []string{"id"}},
			resource.Read{Name: "by_code", GetBy: []string{"code"}},
			resource.Update{Name: "update", Accept: []string{"code", "name", "note", "rank", "active", "status", "due_at", "done_at"}},
			resource.Destroy{Name: "destroy"},
		},
	)
	return items, tags
}
