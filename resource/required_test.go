package resource_test

import (
	"context"
	"errors"
	"testing"

	"github.com/kiln-go/kiln/resource"
)

// An update may not empty a required (notnull) attribute, one record or in
// bulk; nothing is written.
func TestUpdateKeepsRequiredAttributes(t *testing.T) {
	rec := &recorder{}
	people := newPeople(rec)
	d := buildDomain(t, "sqlite", people)
	ctx := context.Background()
	p, err := people.Create(ctx, d, "invite", resource.Input{"email": "ada@example.com", "name": "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	rec.Reset()
	_, err = people.Update(ctx, d, "rename", p, resource.Input{"name": ""})
	want := "kiln/resource: person.rename: name: is required"
	if !errors.Is(err, resource.ErrInvalid) || err.Error() != want {
		t.Fatalf("rename to empty: %v, want %q", err, want)
	}
	_, err = people.BulkUpdate(ctx, d, "rename", resource.Eq("email", "ada@example.com"), resource.Input{"name": ""})
	if err == nil || err.Error() != want {
		t.Fatalf("bulk rename to empty: %v, want %q", err, want)
	}
	got, err := people.Get(ctx, d, "by_email", resource.Input{"email": "ada@example.com"})
	if err != nil || got.Name != "Ada" {
		t.Fatalf("after the refused updates: %v, %v; want Ada unchanged", got, err)
	}
	if rec.Len() != 0 {
		t.Fatalf("%d notifications, want none", rec.Len())
	}
}
