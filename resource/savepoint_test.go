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
