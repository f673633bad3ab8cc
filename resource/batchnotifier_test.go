package resource_test

import (
	"context"
	"sync"
	"testing"

	"github.com/kiln-go/kiln/resource"
)

// batchRecorder is a BatchNotifier recording each batch's actions.
type batchRecorder struct {
	mu      sync.Mutex
	batches [][]string
}

func (b *batchRecorder) Notify(context.Context, resource.Notification) error {
	panic("Notify called on a BatchNotifier")
}

func (b *batchRecorder) NotifyBatch(_ context.Context, ns []resource.Notification) error {
	var actions []string
	for _, n := range ns {
		actions = append(actions, n.Resource+"."+n.Action)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches = append(b.batches, actions)
	return nil
}

// A BatchNotifier gets the notifications of one committed transaction in
// one NotifyBatch, in order; a plain notifier of the same resource gets
// them one Notify at a time; a rolled-back transaction sends neither.
func TestBatchNotifierOncePerTransaction(t *testing.T) {
	rec, batches := &recorder{}, &batchRecorder{}
	people := resource.New[person]("person",
		resource.Table("people"),
		resource.Actions{
			resource.Create{Name: "invite", Accept: []string{"email", "name"}},
			resource.Update{Name: "rename", Accept: []string{"name"}},
		},
		resource.Notifiers(rec, batches),
	)
	d := buildDomain(t, "sqlite", people)
	ctx := context.Background()
	err := d.InTransaction(ctx, func(ctx context.Context) error {
		p, err := people.Create(ctx, d, "invite", resource.Input{"email": "a@example.com", "name": "A"})
		if err != nil {
			return err
		}
		if _, err := people.Create(ctx, d, "invite", resource.Input{"email": "b@example.com", "name": "B"}); err != nil {
			return err
		}
		_, err = people.Update(ctx, d, "rename", p, resource.Input{"name": "Ada"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := people.Create(ctx, d, "invite", resource.Input{"email": "c@example.com", "name": "C"}); err != nil {
		t.Fatal(err)
	}
	_ = d.InTransaction(ctx, func(ctx context.Context) error {
		_, err := people.Create(ctx, d, "invite", resource.Input{"email": "a@example.com", "name": "again"})
		return err // a conflict: rolled back
	})
	want := [][]string{{"person.invite", "person.invite", "person.rename"}, {"person.invite"}}
	if len(batches.batches) != len(want) {
		t.Fatalf("batches %v, want %v", batches.batches, want)
	}
	for i := range want {
		if len(batches.batches[i]) != len(want[i]) {
			t.Fatalf("batches %v, want %v", batches.batches, want)
		}
		for j := range want[i] {
			if batches.batches[i][j] != want[i][j] {
				t.Fatalf("batches %v, want %v", batches.batches, want)
			}
		}
	}
	if got := rec.actions(); len(got) != 4 {
		t.Fatalf("plain notifier got %v, want 4 notifications", got)
	}
}
