package notifiertest

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/kiln-go/kiln/resource"
)

// thing is the record whose actions the suite watches.
type thing struct {
	ID        uuid.UUID `bun:",pk,type:uuid" kiln:"default:uuid"`
	Name      string    `bun:",unique,notnull"`
	Rank      int
	UpdatedAt time.Time `bun:",notnull" kiln:"readonly,default:now,update_default:now"`
}

// audit is what a notifier writes, after commit, about a thing.
type audit struct {
	ID     uuid.UUID `bun:",pk,type:uuid" kiln:"default:uuid"`
	Thing  uuid.UUID `bun:",notnull,type:uuid"`
	Action string    `bun:",notnull"`
}

// errAfterFailed is what the failing After change returns.
var errAfterFailed = errors.New("notifiertest: the After change failed on purpose")

// declare declares the suite's resources: resNotifiers are the thing's
// resource-level notifiers, act is the action-level notifier of its create,
// update and destroy actions.
func declare(resNotifiers []resource.Notifier, act resource.Notifier) (*resource.Resource[thing], *resource.Resource[audit]) {
	acts := []resource.Notifier{act}
	things := resource.New[thing]("nt_thing",
		resource.Table("nt_things"),
		resource.Notifiers(resNotifiers...),
		resource.Actions{
			resource.Create{Name: "create", Accept: []string{"name", "rank"}, Notifiers: acts},
			resource.Create{Name: "create_fail_after", Accept: []string{"name", "rank"}, Notifiers: acts,
				Changes: []resource.Change{{
					Name:  "fail",
					After: func(context.Context, *resource.AnyChangeset, any) error { return errAfterFailed },
				}}},
			resource.Create{Name: "create_meta", Accept: []string{"name", "rank"}, Notifiers: acts,
				Changes: []resource.Change{{
					Name: "metadata",
					Before: func(_ context.Context, cs *resource.AnyChangeset) error {
						cs.SetMetadata("before", "set in Before")
						return nil
					},
					After: func(_ context.Context, cs *resource.AnyChangeset, rec any) error {
						cs.SetMetadata("after", rec.(*thing).Name)
						return nil
					},
				}}},
			resource.Read{Name: "list"},
			resource.Read{Name: "by_id", GetBy: []string{"id"}},
			resource.Update{Name: "update", Accept: []string{"name", "rank"}, Notifiers: acts},
			resource.Update{Name: "update_meta", Accept: []string{"rank"}, Notifiers: acts,
				Changes: []resource.Change{{
					Name: "metadata",
					Before: func(_ context.Context, cs *resource.AnyChangeset) error {
						cs.SetMetadata("reason", "bulk")
						return nil
					},
				}}},
			resource.Destroy{Name: "destroy", Notifiers: acts},
		},
	)
	audits := resource.New[audit]("nt_audit",
		resource.Table("nt_audits"),
		resource.Actions{
			resource.Create{Name: "create", Accept: []string{"thing", "action"}},
			resource.Read{Name: "list"},
			resource.Destroy{Name: "destroy"},
		},
	)
	return things, audits
}
