// Command quickstart declares a resource, builds it on embedded SQLite, runs
// a few actions and prints what happened, notifications included.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// Note is the record: a bun model with kiln metadata.
type Note struct {
	ID        uuid.UUID `bun:",pk,type:uuid" kiln:"default:uuid"`
	Owner     string    `bun:",notnull" validate:"required,email"`
	Title     string    `bun:",notnull" validate:"required,max=80"`
	Archived  bool      `bun:",notnull"`
	CreatedAt time.Time `bun:",notnull" kiln:"readonly,default:now"`
}

// printer is a notifier: it prints every committed write.
var printer = resource.NotifierFunc(func(_ context.Context, n resource.Notification) error {
	note, _ := resource.RecordAs[Note](n)
	fmt.Printf("  notified: %s.%s %q\n", n.Resource, n.Action, note.Title)
	return nil
})

// NewNote is the input of Create, Owned the input of ByOwner (its Owner is
// an argument of the read).
type (
	NewNote struct{ Owner, Title string }
	Owned   struct {
		Owner string `validate:"required"`
	}
)

// The actions, each declared with its input type and run through its
// handle.
var (
	Create  = resource.DefineCreate[Note, NewNote](resource.Create{Name: "create", Accept: []string{"owner", "title"}})
	ByOwner = resource.DefineRead[Note, Owned](resource.Read{Name: "by_owner",
		Filter: resource.Eq("owner", resource.FromArg("owner")),
		Sort:   []resource.Sort{resource.Asc("title")}})
	Archive = resource.DefineUpdate[Note, resource.NoInput](resource.Update{Name: "archive", Changes: []resource.Change{
		resource.Before(func(_ context.Context, cs *resource.Changeset[Note]) error {
			cs.Record().Archived = true
			return nil
		}).Named("set_archived"),
	}})
)

var Notes = resource.New[Note]("note",
	resource.Table("notes"),
	resource.Actions{Create, ByOwner, Archive},
	resource.Notifiers(printer),
)

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	url := os.Getenv("KILN_DATABASE_URL") // PostgreSQL when set
	if url == "" {
		url = "sqlite::memory:"
	}
	layer, err := bunlayer.Open(ctx, url)
	if err != nil {
		return err
	}
	defer layer.Close()
	notes, err := resource.NewDomain("notes", Notes).Build(ctx, layer)
	if err != nil {
		return err
	}
	if err := layer.Migrate(ctx); err != nil {
		return err
	}

	fmt.Println("create three notes:")
	for _, title := range []string{"buy milk", "call mum", "write docs"} {
		if _, err := Create.Run(ctx, notes, NewNote{Owner: "ada@example.com", Title: title}); err != nil {
			return err
		}
	}

	fmt.Println("bad input is refused, nothing written:")
	_, err = Create.Run(ctx, notes, NewNote{Owner: "not-an-email"})
	fmt.Println(" ", errors.Is(err, resource.ErrInvalid))
	fmt.Fprintln(os.Stdout, " ", err)

	fmt.Println("archive every note of ada in one statement (one notification per note):")
	archived, err := Archive.RunAll(ctx, notes, resource.Eq("owner", "ada@example.com"), resource.NoInput{})
	if err != nil {
		return err
	}
	fmt.Println("  archived:", len(archived))

	list, err := ByOwner.Run(ctx, notes, Owned{Owner: "ada@example.com"})
	if err != nil {
		return err
	}
	fmt.Println("read back:")
	for _, n := range list {
		fmt.Printf("  %s archived=%v\n", n.Title, n.Archived)
	}
	return nil
}
