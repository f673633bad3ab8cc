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

var Notes = resource.New[Note]("note",
	resource.Table("notes"),
	resource.Actions{
		resource.Create{Name: "create", Accept: []string{"owner", "title"}},
		resource.Read{Name: "by_owner",
			Arguments: []resource.Argument{{Name: "owner", Validate: "required"}},
			Filter:    resource.Eq("owner", resource.FromArg("owner")),
			Sort:      []resource.Sort{resource.Asc("title")}},
		resource.Update{Name: "archive", Changes: []resource.Change{{
			Name:   "set_archived",
			Before: func(_ context.Context, cs *resource.AnyChangeset) error { return cs.Set("archived", true) },
		}}},
	},
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
		if _, err := Notes.Create(ctx, notes, "create", resource.Input{"owner": "ada@example.com", "title": title}); err != nil {
			return err
		}
	}

	fmt.Println("bad input is refused, nothing written:")
	_, err = Notes.Create(ctx, notes, "create", resource.Input{"owner": "not-an-email", "title": ""})
	fmt.Println(" ", errors.Is(err, resource.ErrInvalid))
	fmt.Fprintln(os.Stdout, " ", err)

	fmt.Println("archive every note of ada in one statement (one notification per note):")
	archived, err := Notes.BulkUpdate(ctx, notes, "archive", resource.Eq("owner", "ada@example.com"), nil)
	if err != nil {
		return err
	}
	fmt.Println("  archived:", len(archived))

	list, err := Notes.Read(ctx, notes, "by_owner", resource.Input{"owner": "ada@example.com"})
	if err != nil {
		return err
	}
	fmt.Println("read back:")
	for _, n := range list {
		fmt.Printf("  %s archived=%v\n", n.Title, n.Archived)
	}
	return nil
}
