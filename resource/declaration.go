package resource

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Section is one part of a resource declaration: Table, Attributes,
// Identities, Actions, Notifiers, Changes, Relationships, or an Extension. Declare records the
// section on the declaration; it never fails: problems are recorded with
// d.Problem and reported, all together, by Domain.Build.
type Section interface {
	Declare(d *Declaration)
}

// Ref is any declared resource (every *Resource[T]). Extensions take a Ref to
// point at another resource, such as the token resource.
type Ref interface {
	// Name is the resource's name.
	Name() string
	// Declaration is the resource as declared, before any extension ran. It
	// must not be modified; Build works on a copy.
	Declaration() *Declaration
}

// Resource is a resource over the record type T, a Go struct that bun can map
// (see Attribute for the tags). Create it with New; it is a declaration only,
// and does nothing until a Domain is built from it.
type Resource[T any] struct {
	decl *Declaration
}

// New declares a resource over the struct type T. The name is the resource's
// identity in the domain, in errors and in notifications ("user", "token");
// the table defaults to the name with an "s" appended. Sections are applied in
// order. New never fails: problems surface at Domain.Build.
func New[T any](name string, sections ...Section) *Resource[T] {
	d := &Declaration{
		Name:     name,
		Table:    name + "s",
		Type:     reflect.TypeFor[T](),
		Location: Caller(1),
	}
	if d.Type.Kind() != reflect.Struct {
		d.Problem(d.Location, nil, fmt.Sprintf("record type %s is not a struct", d.Type), "declare the resource over a struct type, resource.New[User]")
	} else {
		var problems []string
		parseAttributes(d.Type, nil, &d.Attributes, &problems)
		for _, p := range problems {
			d.Problem(d.Location, []string{"attributes"}, p, "")
		}
		for _, a := range d.Attributes {
			if !a.Unique || a.PrimaryKey {
				continue
			}
			// `bun:",unique:group"` makes the columns of a group one
			// composite key, as bun's CREATE TABLE does.
			_, opts := parseBunTag(d.Type.FieldByIndex(a.Index).Tag.Get("bun"))
			name := "unique_" + a.Name
			if group := opts["unique"]; group != "" {
				name = "unique_" + group
				if id := d.Identity(name); id != nil {
					id.Keys = append(id.Keys, a.Name)
					continue
				}
			}
			d.Identities = append(d.Identities, Identity{Name: name, Keys: []string{a.Name}, location: d.Location})
		}
	}
	for _, s := range sections {
		if s == nil {
			continue
		}
		s.Declare(d)
	}
	return &Resource[T]{decl: d}
}

// Name returns the resource's name.
func (r *Resource[T]) Name() string { return r.decl.Name }

// Declaration returns the resource as declared. Do not modify it.
func (r *Resource[T]) Declaration() *Declaration { return r.decl }

// Declaration is a resource while it is being declared and built. Sections
// write to it; extension transforms receive a copy of it at Build and may add
// to it; verifiers only read it.
type Declaration struct {
	Name string
	// Table is the table option. The table the resource is stored in, set
	// in Go with resource.Table. Default: the resource's name with an s
	// appended.
	Table      string
	Type       reflect.Type
	Attributes []*Attribute
	Identities []Identity
	// Indexes are the Indexes section's, and those extensions add.
	Indexes    []Index
	Actions    []*ActionDecl
	Changes    []Change
	Notifiers  []Notifier
	Extensions []Extension
	// Relationships relate the resource to others (the Relationships
	// section).
	Relationships []*RelationshipDecl
	// Location is where New was called.
	Location Location

	problems []*BuildError
	// configSources maps a dotted option path to the config file line that
	// set it, so problems with its value point there.
	configSources map[string]string
}

// Problem records a build problem at loc; path is relative to the resource.
func (d *Declaration) Problem(loc Location, path []string, message, fix string) {
	if loc.File == "" {
		loc = d.Location
	}
	if src, ok := d.configSources[strings.Join(path, ".")]; ok {
		loc = sourceLocation(src)
	}
	d.problems = append(d.problems, &BuildError{Resource: d.Name, Path: path, Message: message, Fix: fix, Location: loc})
}

// Attribute returns the attribute with that column name, or nil.
func (d *Declaration) Attribute(name string) *Attribute {
	for _, a := range d.Attributes {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// PrimaryKey returns the primary key attributes.
func (d *Declaration) PrimaryKey() []*Attribute {
	var pk []*Attribute
	for _, a := range d.Attributes {
		if a.PrimaryKey {
			pk = append(pk, a)
		}
	}
	return pk
}

// Action returns the action of that name, or nil.
func (d *Declaration) Action(name string) *ActionDecl {
	for _, a := range d.Actions {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// Identity returns the identity of that name, or nil.
func (d *Declaration) Identity(name string) *Identity {
	for i := range d.Identities {
		if d.Identities[i].Name == name {
			return &d.Identities[i]
		}
	}
	return nil
}

// AddAction adds an action unless one of that name is declared already; it
// reports whether it added. Extensions use it: the user's declaration wins.
func (d *Declaration) AddAction(a Action) bool {
	ad := a.decl()
	checkHandle(d, ad, a)
	if d.Action(ad.Name) != nil {
		return false
	}
	if ad.location.File == "" {
		ad.location = d.Location
	}
	d.Actions = append(d.Actions, ad)
	return true
}

// AddIdentity adds an identity unless one of that name exists.
func (d *Declaration) AddIdentity(id Identity) bool {
	if d.Identity(id.Name) != nil {
		return false
	}
	if id.location.File == "" {
		id.location = d.Location
	}
	d.Identities = append(d.Identities, id)
	return true
}

// AddIndex adds an index unless the primary key, an identity or an index
// begins with its keys, in the same order, already, or its keys begin
// with an index's (the user's narrower index wins); it reports whether it
// added. Extensions use it for the lookups their actions run.
func (d *Declaration) AddIndex(ix Index) bool {
	if d.indexedBy(ix.Keys, d.Indexes) != "" {
		return false
	}
	for _, have := range d.Indexes {
		if len(have.Keys) > 0 && len(have.Keys) <= len(ix.Keys) && slices.Equal(ix.Keys[:len(have.Keys)], have.Keys) {
			return false
		}
	}
	if ix.location.File == "" {
		ix.location = d.Location
	}
	d.Indexes = append(d.Indexes, ix)
	return true
}

// indexedBy names the primary key, identity or one of indexes that begins
// with keys, in order, or returns "" when none does.
func (d *Declaration) indexedBy(keys []string, indexes []Index) string {
	return indexBeginningWith(keys, d.PrimaryKey(), d.Identities, indexes)
}

// indexBeginningWith names the primary key pk, the identity or the index
// whose keys begin with keys, in order, or returns "" when none does.
func indexBeginningWith(keys []string, pk []*Attribute, identities []Identity, indexes []Index) string {
	begins := func(have []string) bool { return len(have) >= len(keys) && slices.Equal(have[:len(keys)], keys) }
	names := make([]string, len(pk))
	for i, a := range pk {
		names[i] = a.Name
	}
	if begins(names) {
		return "the primary key"
	}
	for _, id := range identities {
		if begins(id.Keys) {
			return fmt.Sprintf("identity %q", id.Name)
		}
	}
	for _, ix := range indexes {
		if begins(ix.Keys) {
			return fmt.Sprintf("index (%s)", strings.Join(ix.Keys, ", "))
		}
	}
	return ""
}

// AddChange adds a resource-level change unless one of that name exists.
func (d *Declaration) AddChange(c Change) bool {
	for _, have := range d.Changes {
		if have.Name != "" && have.Name == c.Name {
			return false
		}
	}
	d.Changes = append(d.Changes, c)
	return true
}

// HasExtension reports whether an extension of that name is declared.
func (d *Declaration) HasExtension(name string) bool {
	for _, e := range d.Extensions {
		if e.ExtensionName() == name {
			return true
		}
	}
	return false
}

func (d *Declaration) attributeNames() []string {
	names := make([]string, len(d.Attributes))
	for i, a := range d.Attributes {
		names[i] = a.Name
	}
	return names
}

// clone copies the declaration deeply enough that a build can add to it
// without touching the declared resource.
func (d *Declaration) clone() *Declaration {
	c := *d
	c.Attributes = make([]*Attribute, len(d.Attributes))
	for i, a := range d.Attributes {
		ac := *a
		c.Attributes[i] = &ac
	}
	c.Identities = slices.Clone(d.Identities)
	c.Indexes = slices.Clone(d.Indexes)
	c.Actions = make([]*ActionDecl, len(d.Actions))
	for i, a := range d.Actions {
		c.Actions[i] = a.clone()
	}
	c.Changes = slices.Clone(d.Changes)
	c.Notifiers = slices.Clone(d.Notifiers)
	c.Extensions = slices.Clone(d.Extensions)
	c.Relationships = make([]*RelationshipDecl, len(d.Relationships))
	for i, r := range d.Relationships {
		c.Relationships[i] = r.clone()
	}
	c.problems = slices.Clone(d.problems)
	return &c
}

// Table is the section that names the resource's table.
type Table string

// Declare implements Section.
func (t Table) Declare(d *Declaration) { d.Table = string(t) }

// Identity is a unique key of the resource. One unique index is created
// for it, a write that violates it fails with a *ConflictError, and it can
// be used to get one record (Read.GetBy). A `bun:",unique"` column declares
// the identity "unique_<column>" by itself; the columns tagged
// `bun:",unique:<group>"` declare one identity "unique_<group>" over them
// all. The identity's index is then the only unique constraint on them.
// Two identities over the same keys are a build error.
type Identity struct {
	Name string
	Keys []string

	location Location
}

// Identities is the section that declares identities.
type Identities []Identity

// Declare implements Section.
func (s Identities) Declare(d *Declaration) {
	for _, id := range s {
		id.location = d.Location
		if d.Identity(id.Name) != nil {
			d.Problem(d.Location, []string{"identities", id.Name}, "declared twice", "give each identity its own name")
			continue
		}
		d.Identities = append(d.Identities, id)
	}
}

// Index is an index on some of the resource's attributes, in order, that
// is not a unique key (an identity is): for the filters and sorts its
// actions run often, which would otherwise read the whole table. A data
// layer that creates tables creates it, named Name, or <table>_<keys
// joined by _>_idx. An index whose keys begin another index's, an
// identity's or the primary key's, in the same order, adds nothing and is
// a build error, as is one declared twice or naming a key twice.
type Index struct {
	Keys []string
	// Name is the index's name in the database, for when the one kiln
	// makes up is another index's or too long (bunlayer refuses two
	// names PostgreSQL would take for one: the same first 63 bytes).
	Name string

	location Location
}

// Indexes is the section that declares indexes.
type Indexes []Index

// Declare implements Section.
func (s Indexes) Declare(d *Declaration) {
	for _, ix := range s {
		ix.location = d.Location
		d.Indexes = append(d.Indexes, ix)
	}
}

// Notifiers is the section of resource-level notifiers: each receives every
// notification of every action of the resource, after commit.
func Notifiers(n ...Notifier) Section { return notifiersSection(n) }

type notifiersSection []Notifier

func (s notifiersSection) Declare(d *Declaration) { d.Notifiers = append(d.Notifiers, s...) }

// Changes is the section of resource-level changes: each runs in every
// action whose type is in its On list (every create, update and destroy
// action when On is empty).
type Changes []Change

// Declare implements Section.
func (s Changes) Declare(d *Declaration) { d.Changes = append(d.Changes, s...) }

// Actions is the section that declares actions: Create, Read, Update,
// Destroy and Generic values.
type Actions []Action

// Declare implements Section.
func (s Actions) Declare(d *Declaration) {
	for _, a := range s {
		ad := a.decl()
		if ad.location.File == "" {
			ad.location = d.Location
		}
		if d.Action(ad.Name) != nil {
			d.Problem(d.Location, []string{"actions", ad.Name}, "declared twice", "give each action its own name")
			continue
		}
		checkHandle(d, ad, a)
		d.Actions = append(d.Actions, ad)
	}
}
