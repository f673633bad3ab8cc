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
