package resource_test

import (
	"context"
	"errors"
	"testing"

	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
)

// A nested action that fails after writing leaves nothing behind when its
// caller handles the error: it runs in a savepoint. On PostgreSQL the
// transaction also stays usable after the failed statement.
func TestFailedNestedWriteIsUndone(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			rec := &recorder{}
			people := newPeople(rec)
			d := buildDomain(t, db, people)
			ctx := context.Background()
			if _, err := people.Create(ctx, d, "invite", resource.Input{"email": "taken@example.com", "name": "First"}); err != nil {
				t.Fatal(err)
			}
			rec.Reset()
			err := d.InTransaction(ctx, func(ctx context.Context) error {
				// Fails on the unique email: a failed statement.
				_, err := people.Create(ctx, d, "invite", resource.Input{"email": "taken@example.com", "name": "Second"})
				if !errors.Is(err, resource.ErrConflict) {
					t.Errorf("duplicate invite: %v, want ErrConflict", err)
				}
				// The caller goes on: the transaction must still work.
				_, err = people.Create(ctx, d, "invite", resource.Input{"email": "new@example.com", "name": "Third"})
				return err
			})
			if err != nil {
				t.Fatalf("the transaction after a handled failure: %v", err)
			}
			list, err := people.Read(ctx, d, "list", nil)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range list {
				names = append(names, p.Name)
			}
			if len(names) != 2 || names[0] != "Third" || names[1] != "First" {
				t.Fatalf("people %v, want [Third First] (new@ sorts before taken@)", names)
			}
			if got := rec.actions(); len(got) != 1 || got[0] != "person.invite" {
				t.Fatalf("notifications %v, want one invite", got)
			}
		})
	}
}

// A failed nested write's notifications are dropped with it, while the
// outer transaction's are delivered.
func TestFailedNestedWriteSendsNothing(t *testing.T) {
	rec := &recorder{}
	people := newPeople(rec)
	d := buildDomain(t, "sqlite", people)
	ctx := context.Background()
	err := d.InTransaction(ctx, func(ctx context.Context) error {
		if _, err := people.Create(ctx, d, "invite", resource.Input{"email": "a@example.com", "name": "A"}); err != nil {
			return err
		}
		inner := d.InTransaction(ctx, func(ctx context.Context) error {
			if _, err := people.Create(ctx, d, "invite", resource.Input{"email": "b@example.com", "name": "B"}); err != nil {
				return err
			}
			return errors.New("changed my mind")
		})
		if inner == nil {
			t.Error("the inner group succeeded; want its error")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.Len(); got != 1 {
		t.Fatalf("%d notifications, want 1 (the outer invite only)", got)
	}
	list, err := people.Read(ctx, d, "list", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Email != "a@example.com" {
		t.Fatalf("people %v, want only a@example.com", list)
	}
}

// invitee's generic actions invite two of one email, the second
// conflicting, and go on: "tolerate" without a savepoint, "guarded" with
// the second invite in InTransaction.
type invitee struct {
	ID    int64  `bun:",pk,autoincrement"`
	Email string `bun:",unique,notnull"`
}

func newInvitees(rec *recorder) *resource.Resource[invitee] {
	var members *resource.Resource[invitee]
	twice := func(guard bool) func(ctx context.Context, cs *resource.AnyChangeset) (any, error) {
		return func(ctx context.Context, cs *resource.AnyChangeset) (any, error) {
			d := cs.Domain()
			if _, err := members.Create(ctx, d, "invite", resource.Input{"email": "a@example.com"}); err != nil {
				return nil, err
			}
			second := func(ctx context.Context) error {
				_, err := members.Create(ctx, d, "invite", resource.Input{"email": "a@example.com"})
				return err
			}
			var err error
			if guard {
				err = d.InTransaction(ctx, second)
			} else {
				err = second(ctx)
			}
			if !errors.Is(err, resource.ErrConflict) {
				return nil, errors.Join(errors.New("want a conflict"), err)
			}
			return nil, nil // handled: go on
		}
	}
	members = resource.New[invitee]("invitee",
		resource.Table("invitees"),
		resource.Actions{
			resource.Create{Name: "invite", Accept: []string{"email"}},
			resource.Read{Name: "list"},
			resource.Generic{Name: "tolerate", Run: twice(false)},
			resource.Generic{Name: "guarded", Run: twice(true)},
		},
		resource.Notifiers(rec),
	)
	return members
}

// A write nested in a transaction its generic action began runs without a
// savepoint. A generic action that goes on after such a write failed
// commits nothing and fails with ErrUnprotectedFailure; with the write in
// InTransaction, it takes a savepoint and the rest commits.
func TestGenericActionGoingOnAfterAnUnprotectedFailure(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			rec := &recorder{}
			members := newInvitees(rec)
			d := buildDomain(t, db, members)
			ctx := context.Background()
			_, err := d.Run(ctx, members, "tolerate", nil)
			if !errors.Is(err, resource.ErrUnprotectedFailure) || !errors.Is(err, resource.ErrConflict) {
				t.Fatalf("tolerate: %v, want ErrUnprotectedFailure wrapping the conflict", err)
			}
			if list, err := members.Read(ctx, d, "list", nil); err != nil || len(list) != 0 {
				t.Fatalf("members after tolerate: %v, %v; want none", list, err)
			}
			if rec.Len() != 0 {
				t.Fatalf("%d notifications after tolerate, want 0", rec.Len())
			}
			if _, err := d.Run(ctx, members, "guarded", nil); err != nil {
				t.Fatalf("guarded: %v", err)
			}
			if list, err := members.Read(ctx, d, "list", nil); err != nil || len(list) != 1 {
				t.Fatalf("members after guarded: %v, %v; want one", list, err)
			}
			if rec.Len() != 1 {
				t.Fatalf("%d notifications after guarded, want 1", rec.Len())
			}
		})
	}
}
