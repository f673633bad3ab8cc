package resource_test

import (
	"context"
	"fmt"
	"log"

	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// Project and Item are the records of the relationship example: a
// project has many items, and each item belongs to a project.
type (
	Project struct {
		ID    int64   `bun:",pk,autoincrement"`
		Name  string  `bun:",notnull"`
		Items []*Item `bun:"-"`
	}
	Item struct {
		ID        int64    `bun:",pk,autoincrement"`
		ProjectID int64    `bun:",notnull"`
		Title     string   `bun:",notnull"`
		Project   *Project `bun:"-"`
	}
)

func ExampleRelationships() {
	projects := resource.New[Project]("project",
		resource.Relationships{resource.HasMany{Name: "items", Destination: resource.Named("item"), Sort: []resource.Sort{resource.Asc("title")}}},
		resource.Actions{
			resource.Create{Name: "create", Accept: []string{"name"}},
			resource.Read{Name: "list", Sort: []resource.Sort{resource.Asc("name")}},
		},
	)
	items := resource.New[Item]("item",
		resource.Relationships{resource.BelongsTo{Name: "project", Destination: projects, OnDelete: resource.Cascade}},
		resource.Actions{
			resource.Create{Name: "create", Accept: []string{"project_id", "title"}},
			resource.Read{Name: "list"},
		},
	)

	ctx := context.Background()
	layer, err := bunlayer.Open(ctx, "sqlite::memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer layer.Close()
	d, err := resource.NewDomain("work", projects, items).Build(ctx, layer)
	if err != nil {
		log.Fatal(err)
	}
	if err := layer.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	for _, project := range []struct {
		name  string
		items []string
	}{{"garden", []string{"plan", "buy", "build"}}, {"house", []string{"plan"}}} {
		p, err := projects.Create(ctx, d, "create", resource.Input{"name": project.name})
		if err != nil {
			log.Fatal(err)
		}
		for _, title := range project.items {
			if _, err := items.Create(ctx, d, "create", resource.Input{"project_id": p.ID, "title": title}); err != nil {
				log.Fatal(err)
			}
		}
	}

	all, err := projects.Read(ctx, d, "list", nil, resource.Load("items"))
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range all {
		fmt.Print(p.Name, ":")
		for _, it := range p.Items {
			fmt.Print(" ", it.Title)
		}
		fmt.Println()
	}
	inGarden, err := items.Read(ctx, d, "list", nil, resource.Where(resource.Eq("project.name", "garden")), resource.Load("project"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(inGarden), "items in", inGarden[0].Project.Name)

	_, err = items.Create(ctx, d, "create", resource.Input{"project_id": 42, "title": "dig"})
	fmt.Println(err)
	// Output:
	// garden: build buy plan
	// house: plan
	// 3 items in garden
	// kiln/resource: item.create: project_id: does not exist
}
