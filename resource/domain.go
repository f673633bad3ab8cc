package resource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/go-playground/validator/v10"

	"github.com/kiln-go/kiln/dsl"
)

// DomainSpec is a domain being declared: a name and its resources. Build it
// with Build.
type DomainSpec struct {
	name      string
	resources []Ref
	location  Location
}

// NewDomain declares a domain of resources. It is only a declaration; Build
// makes it runnable.
func NewDomain(name string, resources ...Ref) *DomainSpec {
	return &DomainSpec{name: name, resources: resources, location: Caller(1)}
}

// Option configures a built Domain.
type Option func(*Domain)

// WithLogger sets the logger for notifier failures and other events.
// Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(d *Domain) { d.logger = l } }

// OnNotifyError is called, after logging, for every notifier failure.
func OnNotifyError(fn func(ctx context.Context, err *NotifyError)) Option {
	return func(d *Domain) { d.onNotifyError = fn }
}

// Domain is a built domain: immutable but for its attached runtime parts
// (Attach), safe for concurrent use. Run actions
// with Run or the typed methods of Resource.
type Domain struct {
	name          string
	layer         DataLayer
	resources     map[string]*builtResource
	order         []*builtResource
	logger        *slog.Logger
	onNotifyError func(ctx context.Context, err *NotifyError)
	validate      *validator.Validate
	config        *dsl.File
	// parts are the runtime parts given to Build (With).
	parts []any
	// attached is what Attach resolved, or nil before it.
	attached atomic.Pointer[attachment]
}

type builtResource struct {
	decl      *Declaration
	schema    *Schema
	actions   map[string]*builtAction
	validPath map[string]string // attribute name -> validator namespace
}

type builtAction struct {
	*ActionDecl
	accept  map[string]*Attribute
	args    map[string]Argument // with Type set; GetBy attributes included
	changes []Change
	filter  Filter // Filter and-ed with the GetBy comparisons
}

// Build runs every extension's transform, then every verifier, and returns
// the runnable Domain. When anything is wrong it returns all the problems
// at once, joined; each is a *BuildError naming the resource, the path, the
// fix and the file:line of the declaration.
func (s *DomainSpec) Build(ctx context.Context, layer DataLayer, opts ...Option) (*Domain, error) {
	d := &Domain{
		name:      s.name,
		layer:     layer,
		resources: map[string]*builtResource{},
		logger:    slog.Default(),
		validate:  validator.New(validator.WithRequiredStructEnabled()),
	}
	for _, o := range opts {
		o(d)
	}
	var problems []*BuildError
	if lv := reflect.ValueOf(layer); layer == nil || lv.Kind() == reflect.Pointer && lv.IsNil() {
		problems = append(problems, &BuildError{Message: fmt.Sprintf("domain %q has no data layer", s.name), Fix: "pass one to Build, bunlayer.New(db)", Location: s.location})
	}
	b := &BuildContext{ctx: ctx, name: s.name, parts: d.parts}
	seen := map[string]Ref{}
	for _, r := range s.resources {
		if r == nil {
			problems = append(problems, &BuildError{Message: fmt.Sprintf("domain %q: a nil resource", s.name), Location: s.location})
			continue
		}
		if r.Declaration() == nil {
			problems = append(problems, &BuildError{Resource: r.Name(), Message: fmt.Sprintf("domain %q lists a name, not a resource", s.name),
				Fix: "list the resource itself: resource.Named only points at one from a relationship", Location: s.location})
			continue
		}
		if prev := seen[r.Name()]; prev != nil {
			fix := "give each resource its own name"
			if prev == r {
				fix = "list it once"
			}
			problems = append(problems, &BuildError{Resource: r.Name(), Message: fmt.Sprintf("appears twice in domain %q", s.name), Fix: fix, Location: r.Declaration().Location})
			continue
		}
		seen[r.Name()] = r
		b.resources = append(b.resources, r.Declaration().clone())
	}
	problems = append(problems, d.applyConfig(b, s.resources)...)
	for _, decl := range b.resources {
		for _, e := range decl.Extensions {
			e.Transform(b, decl)
		}
	}
	for _, decl := range b.resources {
		for _, a := range decl.Actions {
			applyInput(decl, a)
		}
	}
	for _, decl := range b.resources {
		linkRelationships(b, decl)
	}
	for _, decl := range b.resources {
		verifyDeclaration(d.validate, decl)
		for _, e := range decl.Extensions {
			e.Verify(b, decl)
		}
		problems = append(problems, decl.problems...)
	}
	if len(problems) == 0 {
		for _, decl := range b.resources {
			br := compile(decl)
			d.resources[decl.Name] = br
			d.order = append(d.order, br)
		}
		d.linkSchemas()
		for _, br := range d.order {
			if err := layer.Register(br.schema); err != nil {
				problems = append(problems, &BuildError{Resource: br.decl.Name, Path: []string{"data_layer"}, Message: err.Error(), Location: br.decl.Location})
			}
		}
	}
	if len(problems) > 0 {
		errs := make([]error, len(problems))
		for i, p := range problems {
			errs[i] = p
		}
		return nil, errors.Join(errs...)
	}
	return d, nil
}

// Name is the domain's name.
func (d *Domain) Name() string { return d.name }

// Logger is the domain's logger (WithLogger; slog.Default() when not set),
// for extensions that log events of their actions.
func (d *Domain) Logger() *slog.Logger { return d.logger }

// DataLayer is the domain's data layer.
func (d *Domain) DataLayer() DataLayer { return d.layer }

// Declaration returns the built (transformed) declaration of r, or nil when
// r is not part of the domain. Do not modify it.
func (d *Domain) Declaration(r Ref) *Declaration {
	br := d.resources[r.Name()]
	if br == nil {
		return nil
	}
	return br.decl
}

// Schemas returns the schema of every resource, in declaration order.
func (d *Domain) Schemas() []*Schema {
	out := make([]*Schema, len(d.order))
	for i, br := range d.order {
		out[i] = br.schema
	}
	return out
}

// Describe prints the built domain: resources, attributes, identities and
// actions, one per line. Two domains that print the same are built alike.
func (d *Domain) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "domain %s\n", d.name)
	for _, br := range d.order {
		decl := br.decl
		fmt.Fprintf(&b, "resource %s table=%s\n", decl.Name, decl.Table)
		for _, a := range decl.Attributes {
			var flags []string
			for _, f := range []struct {
				on   bool
				name string
			}{{a.PrimaryKey, "pk"}, {a.Sensitive, "sensitive"}, {a.ReadOnly, "readonly"}, {a.Required, "required"}, {a.Default != nil, "default"}, {a.UpdateDefault != nil, "update_default"}} {
				if f.on {
					flags = append(flags, f.name)
				}
			}
			fmt.Fprintf(&b, "  attribute %s %s %s\n", a.Name, a.Type, strings.Join(flags, ","))
		}
		for _, id := range decl.Identities {
			fmt.Fprintf(&b, "  identity %s (%s)\n", id.Name, strings.Join(id.Keys, ", "))
		}
		for _, ix := range decl.Indexes {
			fmt.Fprintf(&b, "  index (%s)\n", strings.Join(ix.Keys, ", "))
		}
		for _, a := range decl.Actions {
			var args []string
			for _, arg := range a.Arguments {
				args = append(args, arg.Name)
			}
			var changes []string
			for _, c := range d.resources[decl.Name].actions[a.Name].changes {
				changes = append(changes, c.Name)
			}
			fmt.Fprintf(&b, "  action %s %s accept=[%s] args=[%s] changes=[%s]", a.Type, a.Name,
				strings.Join(a.Accept, ","), strings.Join(args, ","), strings.Join(changes, ","))
			if a.Filter != nil {
				fmt.Fprintf(&b, " filter=%s", FilterString(a.Filter))
			}
			b.WriteString("\n")
		}
		for _, r := range decl.Relationships {
			b.WriteString("  " + describeRelationship(decl, r) + "\n")
		}
		for _, line := range describeExtensions(decl) {
			b.WriteString(line + "\n")
		}
		fmt.Fprintf(&b, "  notifiers %d\n", len(decl.Notifiers))
	}
	return b.String()
}

// Redact returns a record's attributes as a map with sensitive ones
// replaced by "**redacted**", for logs and debugging output.
func (d *Domain) Redact(r Ref, record any) map[string]any {
	br := d.resources[r.Name()]
	rv := reflect.ValueOf(record)
	if br == nil || rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Type() != br.decl.Type {
		return nil
	}
	out := make(map[string]any, len(br.decl.Attributes))
	for _, a := range br.decl.Attributes {
		if a.Sensitive {
			out[a.Name] = "**redacted**"
			continue
		}
		out[a.Name] = rv.Elem().FieldByIndex(a.Index).Interface()
	}
	return out
}

func compile(decl *Declaration) *builtResource {
	br := &builtResource{
		decl:      decl,
		actions:   map[string]*builtAction{},
		validPath: map[string]string{},
		schema: &Schema{
			Resource:   decl.Name,
			Table:      decl.Table,
			Type:       decl.Type,
			Attributes: decl.Attributes,
			PrimaryKey: decl.PrimaryKey(),
			Identities: decl.Identities,
			Indexes:    decl.Indexes,
		},
	}
	for _, a := range decl.Attributes {
		br.validPath[a.Name] = fieldPath(decl.Type, a.Index)
	}
	for _, a := range decl.Actions {
		ba := &builtAction{ActionDecl: a, accept: map[string]*Attribute{}, args: map[string]Argument{}, filter: a.Filter}
		for _, arg := range a.Arguments {
			if arg.Type == nil {
				arg.Type = reflect.TypeFor[string]()
			}
			ba.args[arg.Name] = arg
		}
		for _, g := range a.GetBy {
			attr := decl.Attribute(g)
			if _, declared := ba.args[g]; !declared {
				ba.args[g] = Argument{Name: g, Type: attr.Type, Validate: "required", Sensitive: attr.Sensitive}
			}
			if ba.filter == nil {
				ba.filter = Eq(g, FromArg(g))
			} else {
				ba.filter = And{ba.filter, Eq(g, FromArg(g))}
			}
		}
		for _, name := range a.Accept {
			if name == AcceptAll {
				for _, attr := range decl.Attributes {
					if attr.Writable() {
						ba.accept[attr.Name] = attr
					}
				}
				continue
			}
			ba.accept[name] = decl.Attribute(name)
		}
		ba.changes = slices.Clone(a.Changes)
		for _, c := range decl.Changes {
			if c.appliesTo(a.Type) {
				ba.changes = append(ba.changes, c)
			}
		}
		br.actions[a.Name] = ba
	}
	return br
}

// linkSchemas gives each schema its relationships, once every resource is
// compiled, so that they point at the schemas of their destinations.
func (d *Domain) linkSchemas() {
	for _, br := range d.order {
		for _, r := range br.decl.Relationships {
			dest := d.resources[r.destination.Name]
			rs := &RelationshipSchema{
				Name:                 r.Name,
				Kind:                 r.Kind,
				Destination:          dest.schema,
				Attribute:            br.decl.Attribute(r.Attribute),
				DestinationAttribute: dest.decl.Attribute(r.DestinationAttribute),
				OnDelete:             r.OnDelete,
				Sort:                 r.Sort,
			}
			if r.Kind == ManyToManyRelationship {
				through := d.resources[r.through.Name]
				rs.Through = through.schema
				rs.SourceAttributeOnJoin = through.decl.Attribute(r.SourceAttributeOnJoin)
				rs.DestinationAttributeOnJoin = through.decl.Attribute(r.DestinationAttributeOnJoin)
			}
			if f, ok := relationshipField(br.decl.Type, r.Name); ok {
				rs.Field = f.Index
			}
			br.schema.Relationships = append(br.schema.Relationships, rs)
		}
	}
}

// describeRelationship is the line Describe prints for r.
func describeRelationship(d *Declaration, r *RelationshipDecl) string {
	dest := r.destination.Name
	switch r.Kind {
	case BelongsToRelationship:
		return fmt.Sprintf("relationship %s belongs_to %s (%s = %s.%s) on_delete=%s", r.Name, dest, r.Attribute, dest, r.DestinationAttribute, r.OnDelete)
	case ManyToManyRelationship:
		join := r.through.Name
		return fmt.Sprintf("relationship %s many_to_many %s through %s (%s = %s.%s, %s.%s = %s.%s)", r.Name, dest, join,
			r.Attribute, join, r.SourceAttributeOnJoin, join, r.DestinationAttributeOnJoin, dest, r.DestinationAttribute)
	}
	return fmt.Sprintf("relationship %s %s %s (%s = %s.%s)", r.Name, r.Kind, dest, r.Attribute, dest, r.DestinationAttribute)
}

// fieldPath is the validator namespace of the field at index, relative to
// the top struct ("Fields.Subject" for an embedded Fields).
func fieldPath(t reflect.Type, index []int) string {
	var parts []string
	for _, i := range index {
		f := t.Field(i)
		parts = append(parts, f.Name)
		t = f.Type
	}
	return strings.Join(parts, ".")
}

// Name implements Ref.
func (br *builtResource) Name() string { return br.decl.Name }

// Declaration implements Ref: the built declaration.
func (br *builtResource) Declaration() *Declaration { return br.decl }

// Resource returns the resource of that name as a Ref, or nil.
func (d *Domain) Resource(name string) Ref {
	if br := d.resources[name]; br != nil {
		return br
	}
	return nil
}
