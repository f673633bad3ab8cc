package resource_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"slices"

	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// Task is the record of the examples: a bun model with validator rules.
type Task struct {
	ID    int64  `bun:",pk,autoincrement"`
	Title string `bun:",notnull" validate:"required,max=80"`
	Owner string `bun:",notnull" validate:"required,email"`
	Done  bool   `bun:",notnull"`
}

// openTasks builds a domain of tasks on a fresh in-memory SQLite database
// and creates its table.
func openTasks(ctx context.Context, tasks *resource.Resource[Task]) (*resource.Domain, func()) {
	layer, err := bunlayer.Open(ctx, "sqlite::memory:")
	if err != nil {
		log.Fatal(err)
	}
	d, err := resource.NewDomain("todo", tasks).Build(ctx, layer)
	if err != nil {
		log.Fatal(err)
	}
	if err := layer.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	return d, func() { layer.Close() }
}

func ExampleNew() {
	tasks := resource.New[Task]("task",
		resource.Actions{
			resource.Create{Name: "add", Accept: []string{"title", "owner"}},
			resource.Read{Name: "of_owner",
				Arguments: []resource.Argument{{Name: "owner", Validate: "required,email"}},
				Filter:    resource.Eq("owner", resource.FromArg("owner")),
				Sort:      []resource.Sort{resource.Asc("title")}},
		},
	)

	ctx := context.Background()
	layer, err := bunlayer.Open(ctx, "sqlite::memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer layer.Close()
	todo, err := resource.NewDomain("todo", tasks).Build(ctx, layer)
	if err != nil {
		log.Fatal(err)
	}
	if err := layer.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	for _, title := range []string{"write docs", "buy milk"} {
		if _, err := tasks.Create(ctx, todo, "add", resource.Input{"title": title, "owner": "ada@example.com"}); err != nil {
			log.Fatal(err)
		}
	}
	_, err = tasks.Create(ctx, todo, "add", resource.Input{"title": "", "owner": "bob"})
	fmt.Println(errors.Is(err, resource.ErrInvalid))
	fmt.Println(err)

	list, err := tasks.Read(ctx, todo, "of_owner", resource.Input{"owner": "ada@example.com"})
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range list {
		fmt.Println(t.ID, t.Title)
	}
	// Output:
	// true
	// kiln/resource: task.add: title: is required
	// kiln/resource: task.add: owner: must be a valid email address
	// 2 buy milk
	// 1 write docs
}

func ExampleResource_BulkUpdate() {
	var notified []string
	tasks := resource.New[Task]("task",
		resource.Actions{
			resource.Create{Name: "add", Accept: []string{"title", "owner"}},
			resource.Update{Name: "complete", Changes: []resource.Change{{
				Name:   "done",
				Before: func(_ context.Context, cs *resource.AnyChangeset) error { return cs.Set("done", true) },
			}}},
		},
		resource.Notifiers(resource.NotifierFunc(func(_ context.Context, n resource.Notification) error {
			if t, ok := resource.RecordAs[Task](n); ok && n.Action == "complete" {
				notified = append(notified, fmt.Sprintf("%s %q done=%v", n.Action, t.Title, t.Done))
			}
			return nil
		})),
	)
	ctx := context.Background()
	todo, closeDB := openTasks(ctx, tasks)
	defer closeDB()
	for _, in := range []resource.Input{
		{"title": "write docs", "owner": "ada@example.com"},
		{"title": "buy milk", "owner": "ada@example.com"},
		{"title": "fix bike", "owner": "bob@example.com"},
	} {
		if _, err := tasks.Create(ctx, todo, "add", in); err != nil {
			log.Fatal(err)
		}
	}

	// One UPDATE … RETURNING statement; one notification per record.
	done, err := tasks.BulkUpdate(ctx, todo, "complete", resource.Eq("owner", "ada@example.com"), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("completed:", len(done))
	slices.Sort(notified) // a database returns the rows in no set order
	for _, n := range notified {
		fmt.Println(n)
	}
	// Output:
	// completed: 2
	// complete "buy milk" done=true
	// complete "write docs" done=true
}

func ExampleNotifierFunc() {
	printer := resource.NotifierFunc(func(_ context.Context, n resource.Notification) error {
		t, _ := resource.RecordAs[Task](n)
		fmt.Printf("%s %s.%s %q changed %v\n", n.ActionType, n.Resource, n.Action, t.Title, n.Changed)
		return nil
	})
	tasks := resource.New[Task]("task",
		resource.Actions{
			resource.Create{Name: "add", Accept: []string{"title", "owner"}},
			resource.Update{Name: "rename", Accept: []string{"title"}},
			resource.Destroy{Name: "drop"},
		},
		resource.Notifiers(printer),
	)
	ctx := context.Background()
	todo, closeDB := openTasks(ctx, tasks)
	defer closeDB()

	t, err := tasks.Create(ctx, todo, "add", resource.Input{"title": "write docs", "owner": "ada@example.com"})
	if err != nil {
		log.Fatal(err)
	}
	if t, err = tasks.Update(ctx, todo, "rename", t, resource.Input{"title": "write the guide"}); err != nil {
		log.Fatal(err)
	}
	// A failed action notifies nobody.
	if _, err := tasks.Update(ctx, todo, "rename", t, resource.Input{"title": ""}); err != nil {
		fmt.Println(err)
	}
	if err := tasks.Destroy(ctx, todo, "drop", t, nil); err != nil {
		log.Fatal(err)
	}
	// Output:
	// create task.add "write docs" changed [owner title]
	// update task.rename "write the guide" changed [title]
	// kiln/resource: task.rename: title: is required
	// destroy task.drop "write the guide" changed []
}

func ExampleDomain_InTransaction() {
	tasks := resource.New[Task]("task",
		resource.Actions{
			resource.Create{Name: "add", Accept: []string{"title", "owner"}},
			resource.Read{Name: "all"},
		},
		resource.Notifiers(resource.NotifierFunc(func(_ context.Context, n resource.Notification) error {
			t, _ := resource.RecordAs[Task](n)
			fmt.Printf("notified: %s %q\n", n.Action, t.Title)
			return nil
		})),
	)
	ctx := context.Background()
	todo, closeDB := openTasks(ctx, tasks)
	defer closeDB()

	add := func(ctx context.Context, titles ...string) error {
		for _, title := range titles {
			if _, err := tasks.Create(ctx, todo, "add", resource.Input{"title": title, "owner": "ada@example.com"}); err != nil {
				return err
			}
		}
		return nil
	}
	// Both tasks or neither; the notifications wait for the commit.
	err := todo.InTransaction(ctx, func(ctx context.Context) error {
		if err := add(ctx, "write docs", "buy milk"); err != nil {
			return err
		}
		fmt.Println("committing")
		return nil
	})
	fmt.Println("first:", err)

	// The second task is invalid: the first is rolled back with it, and
	// nobody is notified.
	err = todo.InTransaction(ctx, func(ctx context.Context) error {
		return add(ctx, "fix bike", "")
	})
	fmt.Println("second:", err)

	all, err := tasks.Read(ctx, todo, "all", nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("tasks:", len(all))
	// Output:
	// committing
	// notified: add "write docs"
	// notified: add "buy milk"
	// first: <nil>
	// second: kiln/resource: task.add: title: is required
	// tasks: 2
}
