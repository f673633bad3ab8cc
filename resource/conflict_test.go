package resource_test

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// subscription is one email on one mailing list; (list, email) is an
// identity, and so is the optional handle.
type subscription struct {
	ID     uuid.UUID `bun:",pk,type:uuid" kiln:"default:uuid"`
	List   string    `bun:",notnull"`
	Email  string    `bun:",notnull" validate:"required,email"`
	Handle string    `bun:",unique,nullzero"`
	Seq    int64     `bun:",notnull"`
}

func newSubscriptions(rec *recorder) *resource.Resource[subscription] {
	return resource.New[subscription]("subscription",
		resource.Identities{{Name: "membership", Keys: []string{"list", "email"}}},
		resource.Actions{
			resource.Create{Name: "subscribe", Accept: []string{"list", "email", "handle", "seq"}},
			resource.Create{Name: "import", Accept: []string{"id", "list", "email", "seq"}},
			resource.Create{Name: "resubscribe", Accept: []string{"list", "email", "seq"},
				Upsert: true, UpsertIdentity: "membership"},
			resource.Read{Name: "list", Sort: []resource.Sort{resource.Asc("list"), resource.Asc("email")}},
		},
		resource.Notifiers(rec),
	)
}

// concurrentLayers are the databases that take concurrent writers: a
// SQLite file (the in-memory database has a single connection) and
// PostgreSQL.
var concurrentLayers = []struct {
	name string
	open func(testing.TB) *bunlayer.Layer
}{
	{"sqlite-file", testdb.SQLiteFile},
	{"postgres", testdb.Postgres},
}

// runAtOnce runs fn(i) for i in [0, n) on n goroutines released together.
func runAtOnce(n int, fn func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

func TestConcurrentCreatesConflict(t *testing.T) {
	const n = 16
	for _, db := range concurrentLayers {
		t.Run(db.name, func(t *testing.T) {
			rec := &recorder{}
			subs := newSubscriptions(rec)
			layer := db.open(t)
			d, err := resource.NewDomain("test", subs).Build(t.Context(), layer)
			if err != nil {
				t.Fatal(err)
			}
			if err := layer.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			created := make([]*subscription, n)
			errs := make([]error, n)
			runAtOnce(n, func(i int) {
				created[i], errs[i] = subs.Create(t.Context(), d, "subscribe", resource.Input{
					"list": "news", "email": "ada@example.com", "seq": i,
				})
			})
			var winner *subscription
			for i, err := range errs {
				if err == nil {
					if winner != nil {
						t.Errorf("goroutines %d and %d both created the subscription", winner.Seq, i)
					}
					winner = created[i]
					continue
				}
				if !errors.Is(err, resource.ErrConflict) {
					t.Errorf("goroutine %d: %v; want ErrConflict", i, err)
					continue
				}
				var ce *resource.ConflictError
				if !errors.As(err, &ce) || ce.Resource != "subscription" || ce.Identity != "membership" || !slices.Equal(ce.Fields, []string{"list", "email"}) {
					t.Errorf("goroutine %d: %+v; want a *ConflictError on subscription's membership (list, email)", i, ce)
				}
				if want := "kiln/resource: subscription: conflict on identity membership: a record with the same list, email exists"; err.Error() != want {
					t.Errorf("goroutine %d:\n got %s\nwant %s", i, err, want)
				}
			}
			if winner == nil {
				t.Fatal("no goroutine created the subscription")
			}
			all, err := subs.Read(t.Context(), d, "list", nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 1 || all[0].ID != winner.ID || all[0].Seq != winner.Seq {
				t.Errorf("the table holds %+v; want only the winner %+v", all, winner)
			}
			got := rec.All()
			if len(got) != 1 {
				t.Fatalf("%d notifications, want 1: %v", len(got), rec.actions())
			}
			if r, ok := resource.RecordAs[subscription](got[0]); !ok || r.ID != winner.ID {
				t.Errorf("notified of %+v, want the winner %+v", got[0].Record, winner)
			}
		})
	}
}

// TestConcurrentUpserts: upserts on one identity at once all succeed, on
// one row, each notified.
func TestConcurrentUpserts(t *testing.T) {
	const n = 16
	for _, db := range concurrentLayers {
		t.Run(db.name, func(t *testing.T) {
			rec := &recorder{}
			subs := newSubscriptions(rec)
			layer := db.open(t)
			d, err := resource.NewDomain("test", subs).Build(t.Context(), layer)
			if err != nil {
				t.Fatal(err)
			}
			if err := layer.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			errs := make([]error, n)
			ids := make([]uuid.UUID, n)
			runAtOnce(n, func(i int) {
				var s *subscription
				s, errs[i] = subs.Create(t.Context(), d, "resubscribe", resource.Input{"list": "news", "email": "ada@example.com", "seq": i})
				if s != nil {
					ids[i] = s.ID
				}
			})
			for i, err := range errs {
				if err != nil {
					t.Errorf("upsert %d: %v", i, err)
				}
			}
			all, err := subs.Read(t.Context(), d, "list", nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 1 {
				t.Fatalf("the table holds %d rows, want 1", len(all))
			}
			for i, id := range ids {
				if id != all[0].ID {
					t.Errorf("upsert %d returned id %s, want the row's %s", i, id, all[0].ID)
				}
			}
			if got := rec.Len(); got != n {
				t.Errorf("%d notifications, want %d", got, n)
			}
		})
	}
}

func TestConflictNamesTheIdentity(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			rec := &recorder{}
			subs := newSubscriptions(rec)
			d := buildDomain(t, db, subs)
			ctx := t.Context()
			first, err := subs.Create(ctx, d, "subscribe", resource.Input{"list": "news", "email": "ada@example.com", "handle": "ada", "seq": 1})
			if err != nil {
				t.Fatal(err)
			}
			// The same email on another list is no conflict.
			if _, err := subs.Create(ctx, d, "subscribe", resource.Input{"list": "offers", "email": "ada@example.com", "seq": 2}); err != nil {
				t.Fatal(err)
			}
			rec.Reset()
			tests := []struct {
				name, action string
				in           resource.Input
				identity     string
				fields       []string
			}{
				{"primary key", "import", resource.Input{"id": first.ID.String(), "list": "jobs", "email": "bob@example.com", "seq": 3}, "primary_key", []string{"id"}},
				{"unique column", "subscribe", resource.Input{"list": "jobs", "email": "bob@example.com", "handle": "ada", "seq": 3}, "unique_handle", []string{"handle"}},
				{"two columns", "subscribe", resource.Input{"list": "news", "email": "ada@example.com", "seq": 3}, "membership", []string{"list", "email"}},
			}
			for _, tt := range tests {
				_, err := d.Run(ctx, subs, tt.action, tt.in)
				var ce *resource.ConflictError
				if !errors.Is(err, resource.ErrConflict) || !errors.As(err, &ce) {
					t.Errorf("%s: %v; want a *ConflictError", tt.name, err)
					continue
				}
				if ce.Identity != tt.identity || !slices.Equal(ce.Fields, tt.fields) {
					t.Errorf("%s: conflict on %s %v, want %s %v", tt.name, ce.Identity, ce.Fields, tt.identity, tt.fields)
				}
			}
			all, err := subs.Read(ctx, d, "list", nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 2 {
				t.Errorf("the table holds %d rows after the conflicts, want 2", len(all))
			}
			if n := rec.Len(); n != 0 {
				t.Errorf("conflicts sent %d notifications: %v", n, rec.actions())
			}
		})
	}
}
