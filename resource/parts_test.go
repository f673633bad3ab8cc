package resource_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// greeter and clock are runtime parts of TestParts.
type greeter interface{ Greet() string }

type english struct{}

func (english) Greet() string { return "hello" }

type clock struct{ fmt.Stringer }

// TestParts: parts given to Build (With) and to Attach are found by their
// type, Build's first.
func TestParts(t *testing.T) {
	ctx := context.Background()
	layer, err := bunlayer.Open(ctx, "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer layer.Close()
	d, err := resource.NewDomain("parts", resource.New[comment]("comment")).Build(ctx, layer, resource.With(english{}))
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := resource.Part[greeter](d); !ok || g.Greet() != "hello" {
		t.Fatalf("Part[greeter] = %v, %v; want the part given to Build", g, ok)
	}
	if _, ok := resource.Part[*clock](d); ok {
		t.Fatal("Part[*clock] found a part before any was attached")
	}
	c := &clock{}
	if err := d.Attach(c); err != nil {
		t.Fatal(err)
	}
	if got, ok := resource.Part[*clock](d); !ok || got != c {
		t.Fatalf("Part[*clock] = %v, %v; want the attached part", got, ok)
	}
	if _, ok := resource.PartOf[greeter]([]any{c, 3}); ok {
		t.Fatal("PartOf found a greeter among parts that are none")
	}
}

// speaker is a notifier that needs a greeter attached: it says the
// greeting and the action of every notification into said.
type speaker struct {
	said  *[]string
	greet greeter
}

func (s speaker) Notify(_ context.Context, n resource.Notification) error {
	if s.greet == nil {
		*s.said = append(*s.said, "unattached "+n.Action)
		return nil
	}
	*s.said = append(*s.said, s.greet.Greet()+" "+n.Action)
	return nil
}

func (s speaker) Attach(_ *resource.Domain, r resource.Ref, parts []any) (resource.Notifier, error) {
	g, ok := resource.PartOf[greeter](parts)
	if !ok {
		return nil, fmt.Errorf("%s needs a greeter", r.Name())
	}
	s.greet = g
	return s, nil
}

type noteInput struct{ Text string }

type note struct {
	ID   int64 `bun:",pk,autoincrement"`
	Text string
}

// TestAttachActionNotifiers: Attach resolves the notifiers of resources
// and of actions, once; errors of several come back joined, and then
// nothing is attached.
func TestAttachActionNotifiers(t *testing.T) {
	ctx := context.Background()
	var said []string
	add := resource.DefineCreate[note, noteInput](resource.Create{Name: "add", Accept: []string{"text"},
		Notifiers: []resource.Notifier{speaker{said: &said}}})
	notes := resource.New[note]("note", resource.Actions{add}, resource.Notifiers(speaker{said: &said}))
	layer, err := bunlayer.Open(ctx, "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer layer.Close()
	d, err := resource.NewDomain("notes", notes).Build(ctx, layer)
	if err != nil {
		t.Fatal(err)
	}
	if err := layer.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := add.Run(ctx, d, noteInput{Text: "a"}); err != nil {
		t.Fatal(err)
	}
	err = d.Attach(&clock{})
	if err == nil || err.Error() != "kiln/resource: attach note: note needs a greeter\nkiln/resource: attach note.add: note needs a greeter" {
		t.Fatalf("Attach without a greeter: %v; want both places named", err)
	}
	if err := d.Attach(english{}); err != nil {
		t.Fatalf("Attach after a failed one: %v", err)
	}
	if _, err := add.Run(ctx, d, noteInput{Text: "b"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"unattached add", "unattached add", "hello add", "hello add"}
	if fmt.Sprint(said) != fmt.Sprint(want) {
		t.Fatalf("the notifiers said %q, want %q", said, want)
	}
}
