package resource_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"slices"
	"strings"

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

// The inputs of the examples' actions: NewTask of a create, Retitle of an
// update, OfOwner of a read (whose Owner is an argument).
type (
	NewTask struct{ Title, Owner string }
	Retitle struct{ Title string }
	OfOwner struct {
		Owner string `validate:"required,email"`
	}
)

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
	// Each action is declared with its input type and is the typed way to
	// run it.
	add := resource.DefineCreate[Task, NewTask](resource.Create{Name: "add", Accept: []string{"title", "owner"}})
	ofOwner := resource.DefineRead[Task, OfOwner](resource.Read{Name: "of_owner",
		Filter: resource.Eq("owner", resource.FromArg("owner")),
		Sort:   []resource.Sort{resource.Asc("title")}})
	tasks := resource.New[Task]("task", resource.Actions{add, ofOwner})

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
		if _, err := add.Run(ctx, todo, NewTask{Title: title, Owner: "ada@example.com"}); err != nil {
			log.Fatal(err)
		}
	}
	_, err = add.Run(ctx, todo, NewTask{Owner: "bob"})
	fmt.Println(errors.Is(err, resource.ErrInvalid))
	fmt.Println(err)

	list, err := ofOwner.Run(ctx, todo, OfOwner{Owner: "ada@example.com"})
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

func ExampleUpdateHandle_RunAll() {
	var notified []string
	add := resource.DefineCreate[Task, NewTask](resource.Create{Name: "add", Accept: []string{"title", "owner"}})
	complete := resource.DefineUpdate[Task, resource.NoInput](resource.Update{Name: "complete", Changes: []resource.Change{
		resource.Before(func(_ context.Context, cs *resource.Changeset[Task]) error {
			cs.Record().Done = true
			return nil
		}),
	}})
	tasks := resource.New[Task]("task",
		resource.Actions{add, complete},
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
	for _, in := range []NewTask{
		{Title: "write docs", Owner: "ada@example.com"},
		{Title: "buy milk", Owner: "ada@example.com"},
		{Title: "fix bike", Owner: "bob@example.com"},
	} {
		if _, err := add.Run(ctx, todo, in); err != nil {
			log.Fatal(err)
		}
	}

	// One UPDATE … RETURNING statement; one notification per record.
	done, err := complete.RunAll(ctx, todo, resource.Eq("owner", "ada@example.com"), resource.NoInput{})
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

// LoudTask is the input of ExampleInputOf's create: Loud is an argument.
type LoudTask struct {
	Title, Owner string
	Loud         bool
}

func ExampleInputOf() {
	add := resource.DefineCreate[Task, LoudTask](resource.Create{Name: "add", Accept: []string{"title", "owner"},
		Changes: []resource.Change{
			resource.Before(func(_ context.Context, cs *resource.Changeset[Task]) error {
				in, err := resource.InputOf[LoudTask](cs)
				if err != nil {
					return err
				}
				if in.Loud {
					cs.Record().Title = strings.ToUpper(in.Title)
				}
				return nil
			}),
		}})
	ctx := context.Background()
	todo, closeDB := openTasks(ctx, resource.New[Task]("task", resource.Actions{add}))
	defer closeDB()
	for _, in := range []LoudTask{{Title: "buy milk", Owner: "ada@example.com"}, {Title: "call mum", Owner: "ada@example.com", Loud: true}} {
		t, err := add.Run(ctx, todo, in)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(t.Title)
	}
	// Output:
	// buy milk
	// CALL MUM
}

func ExampleNotifierFunc() {
	printer := resource.NotifierFunc(func(_ context.Context, n resource.Notification) error {
		t, _ := resource.RecordAs[Task](n)
		fmt.Printf("%s %s.%s %q changed %v\n", n.ActionType, n.Resource, n.Action, t.Title, n.Changed)
		return nil
	})
	add := resource.DefineCreate[Task, NewTask](resource.Create{Name: "add", Accept: []string{"title", "owner"}})
	rename := resource.DefineUpdate[Task, Retitle](resource.Update{Name: "rename", Accept: []string{"title"}})
	drop := resource.DefineDestroy[Task, resource.NoInput](resource.Destroy{Name: "drop"})
	tasks := resource.New[Task]("task",
		resource.Actions{add, rename, drop},
		resource.Notifiers(printer),
	)
	ctx := context.Background()
	todo, closeDB := openTasks(ctx, tasks)
	defer closeDB()

	t, err := add.Run(ctx, todo, NewTask{Title: "write docs", Owner: "ada@example.com"})
	if err != nil {
		log.Fatal(err)
	}
	if t, err = rename.Run(ctx, todo, t, Retitle{Title: "write the guide"}); err != nil {
		log.Fatal(err)
	}
	// A failed action notifies nobody.
	if _, err := rename.Run(ctx, todo, t, Retitle{}); err != nil {
		fmt.Println(err)
	}
	if err := drop.Run(ctx, todo, t, resource.NoInput{}); err != nil {
		log.Fatal(err)
	}
	// Output:
	// create task.add "write docs" changed [owner title]
	// update task.rename "write the guide" changed [title]
	// kiln/resource: task.rename: title: is required
	// destroy task.drop "write the guide" changed []
}

func ExampleDomain_InTransaction() {
	add := resource.DefineCreate[Task, NewTask](resource.Create{Name: "add", Accept: []string{"title", "owner"}})
	all := resource.DefineRead[Task, resource.NoInput](resource.Read{Name: "all"})
	tasks := resource.New[Task]("task",
		resource.Actions{add, all},
		resource.Notifiers(resource.NotifierFunc(func(_ context.Context, n resource.Notification) error {
			t, _ := resource.RecordAs[Task](n)
			fmt.Printf("notified: %s %q\n", n.Action, t.Title)
			return nil
		})),
	)
	ctx := context.Background()
	todo, closeDB := openTasks(ctx, tasks)
	defer closeDB()

	addAll := func(ctx context.Context, titles ...string) error {
		for _, title := range titles {
			if _, err := add.Run(ctx, todo, NewTask{Title: title, Owner: "ada@example.com"}); err != nil {
				return err
			}
		}
		return nil
	}
	// Both tasks or neither; the notifications wait for the commit.
	err := todo.InTransaction(ctx, func(ctx context.Context) error {
		if err := addAll(ctx, "write docs", "buy milk"); err != nil {
			return err
		}
		fmt.Println("committing")
		return nil
	})
	fmt.Println("first:", err)

	// The second task is invalid: the first is rolled back with it, and
	// nobody is notified.
	err = todo.InTransaction(ctx, func(ctx context.Context) error {
		return addAll(ctx, "fix bike", "")
	})
	fmt.Println("second:", err)

	list, err := all.Run(ctx, todo, resource.NoInput{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("tasks:", len(list))
	// Output:
	// committing
	// notified: add "write docs"
	// notified: add "buy milk"
	// first: <nil>
	// second: kiln/resource: task.add: title: is required
	// tasks: 2
}

func ExampleReadHandle_Page() {
	add := resource.DefineCreate[Task, NewTask](resource.Create{Name: "add", Accept: []string{"title", "owner"}})
	list := resource.DefineRead[Task, resource.NoInput](resource.Read{Name: "list", Sort: []resource.Sort{resource.Asc("title")},
		PageSize: resource.PageSize{Default: 2, Max: 10}})
	ctx := context.Background()
	d, closeDB := openTasks(ctx, resource.New[Task]("task", resource.Actions{add, list}))
	defer closeDB()
	for _, title := range []string{"dishes", "taxes", "garden", "novel", "bike"} {
		if _, err := add.Run(ctx, d, NewTask{Title: title, Owner: "ada@example.com"}); err != nil {
			log.Fatal(err)
		}
	}
	// Each page starts after the last record of the one before.
	req := resource.PageRequest{Count: true}
	for {
		page, err := list.Page(ctx, d, resource.NoInput{}, req)
		if err != nil {
			log.Fatal(err)
		}
		for _, t := range page.Records {
			fmt.Print(t.Title, " ")
		}
		fmt.Printf("(of %d)\n", page.Total)
		if !page.More {
			break
		}
		req.After = page.Next
	}
	// Output:
	// bike dishes (of 5)
	// garden novel (of 5)
	// taxes (of 5)
}
