package resource

import "slices"

// Relationship is one of BelongsTo, HasOne, HasMany or ManyToMany, declared
// in the Relationships section.
type Relationship interface {
	relationship() *RelationshipDecl
}

// Relationships is the section that relates a resource to others:
//
//	resource.Relationships{
//		resource.BelongsTo{Name: "author", Destination: Users, OnDelete: resource.Cascade},
//		resource.HasMany{Name: "comments", Destination: Comments},
//	}
//
// A relationship is loaded into the record's field of its name, when the
// record struct has one (Load), and filters and sorts reach the
// destination's attributes through it ("author.email"). A record's field
// for a relationship is named like it (the field Author for "author",
// snake_case as for attributes), is tagged `bun:"-"`, and holds a *D for a
// belongs-to or has-one relationship, a []*D for the others, D being the
// destination's record type.
type Relationships []Relationship

// Declare implements Section.
func (s Relationships) Declare(d *Declaration) {
	for _, r := range s {
		if r == nil {
			continue
		}
		rd := r.relationship()
		rd.location = d.Location
		if rd.Name != "" && d.Relationship(rd.Name) != nil {
			d.Problem(d.Location, []string{"relationships", rd.Name}, "declared twice", "give each relationship its own name")
			continue
		}
		d.Relationships = append(d.Relationships, rd)
	}
}

// RelationshipKind is the kind of a relationship.
type RelationshipKind int

// The relationship kinds.
const (
	BelongsToRelationship RelationshipKind = iota + 1
	HasOneRelationship
	HasManyRelationship
	ManyToManyRelationship
)

func (k RelationshipKind) String() string {
	switch k {
	case BelongsToRelationship:
		return "belongs_to"
	case HasOneRelationship:
		return "has_one"
	case HasManyRelationship:
		return "has_many"
	case ManyToManyRelationship:
		return "many_to_many"
	}
	return "unknown"
}

// ToMany reports whether a record relates to many records of the
// destination: has-many and many-to-many.
func (k RelationshipKind) ToMany() bool {
	return k == HasManyRelationship || k == ManyToManyRelationship
}

// DeleteRule is what destroying a record does to the records that belong to
// it (BelongsTo.OnDelete): the ON DELETE clause of the foreign key.
type DeleteRule int

// The delete rules.
const (
	// Restrict refuses to destroy a record while records belong to it: the
	// destroy fails with a *ReferenceError.
	Restrict DeleteRule = iota
	// Cascade destroys the records that belong to it, in the database.
	Cascade
	// SetNull sets their key to NULL; the key attribute must be nullable.
	SetNull
)

func (r DeleteRule) String() string {
	switch r {
	case Restrict:
		return "restrict"
	case Cascade:
		return "cascade"
	case SetNull:
		return "set_null"
	}
	return "unknown"
}

// BelongsTo relates each record to the one record of Destination whose
// DestinationAttribute equals the record's Attribute: a post belongs to
// its author. The record holds the key, so this is the relationship that
// makes a foreign key: the migration declares that Attribute references
// the destination, with OnDelete, and a create or update that sets
// Attribute to a key no destination record has fails with a
// *ValidationError on it ("does not exist"). A record whose Attribute is
// NULL belongs to none.
type BelongsTo struct {
	// Name names the relationship in Load, in paths ("author.email") and
	// in errors.
	Name string
	// Destination is the resource related to: a *Resource[T], or
	// Named("user") for a resource that refers back to this one.
	Destination Ref
	// Attribute is the attribute of this resource that holds the
	// destination's key. Zero value: Name + "_id".
	Attribute string
	// DestinationAttribute is the destination's attribute that Attribute
	// refers to: its primary key, or the only key of an identity. Its type
	// must be Attribute's (a pointer to it, for a nullable Attribute).
	// Zero value: the destination's primary key.
	DestinationAttribute string
	// OnDelete is what destroying the destination record does to the
	// records that belong to it. Zero value: Restrict.
	OnDelete DeleteRule
	// Description documents the relationship.
	Description string
}

// HasOne relates each record to the record of Destination whose
// DestinationAttribute equals the record's Attribute: a user has one
// profile. The destination holds the key (declare the BelongsTo there for
// its foreign key). When several records match, the one with the least
// primary key is the one.
type HasOne struct {
	// Name names the relationship in Load, in paths and in errors.
	Name string
	// Destination is the resource related to: a *Resource[T], or Named.
	Destination Ref
	// DestinationAttribute is the destination's attribute that holds this
	// record's key. Zero value: this resource's name + "_id".
	DestinationAttribute string
	// Attribute is this resource's attribute that DestinationAttribute
	// refers to. Zero value: the primary key.
	Attribute string
	// Description documents the relationship.
	Description string
}

// HasMany relates each record to the records of Destination whose
// DestinationAttribute equals the record's Attribute: a post has many
// comments. The destination holds the key (declare the BelongsTo there for
// its foreign key).
type HasMany struct {
	// Name names the relationship in Load, in paths and in errors.
	Name string
	// Destination is the resource related to: a *Resource[T], or Named.
	Destination Ref
	// DestinationAttribute is the destination's attribute that holds this
	// record's key. Zero value: this resource's name + "_id".
	DestinationAttribute string
	// Attribute is this resource's attribute that DestinationAttribute
	// refers to. Zero value: the primary key.
	Attribute string
	// Sort orders the loaded records, by attributes of the destination;
	// the destination's primary key orders those that tie. Zero value: by
	// primary key.
	Sort []Sort
	// Description documents the relationship.
	Description string
}

// ManyToMany relates records to records of Destination through the records
// of a join resource, Through, each of which holds the key of one record
// of each side: posts and tags, through post_tags. Declare a BelongsTo to
// each side on the join resource for its foreign keys (with OnDelete:
// Cascade, so that destroying a post or a tag destroys its links).
type ManyToMany struct {
	// Name names the relationship in Load, in paths and in errors.
	Name string
	// Destination is the resource related to: a *Resource[T], or Named.
	Destination Ref
	// Through is the join resource.
	Through Ref
	// SourceAttributeOnJoin is the join resource's attribute that holds
	// this record's key. Zero value: this resource's name + "_id".
	SourceAttributeOnJoin string
	// DestinationAttributeOnJoin is the join resource's attribute that
	// holds the destination's key. Zero value: the destination's name +
	// "_id".
	DestinationAttributeOnJoin string
	// Attribute is this resource's key that SourceAttributeOnJoin refers
	// to. Zero value: the primary key.
	Attribute string
	// DestinationAttribute is the destination's key that
	// DestinationAttributeOnJoin refers to. Zero value: the primary key.
	DestinationAttribute string
	// Sort orders the loaded records, as HasMany.Sort does.
	Sort []Sort
	// Description documents the relationship.
	Description string
}

// RelationshipDecl is the declaration every relationship compiles to. Build
// fills the attributes left zero with their defaults.
type RelationshipDecl struct {
	Name        string
	Kind        RelationshipKind
	Destination Ref
	// Attribute is this resource's side of the key, DestinationAttribute
	// the destination's.
	Attribute, DestinationAttribute string
	// Through, SourceAttributeOnJoin and DestinationAttributeOnJoin are a
	// many-to-many relationship's join resource and its two keys.
	Through                                           Ref
	SourceAttributeOnJoin, DestinationAttributeOnJoin string
	OnDelete                                          DeleteRule
	Sort                                              []Sort
	Description                                       string

	location Location
	// destination and through are the domain's declarations of
	// Destination and Through, once Build resolved them.
	destination, through *Declaration
}

func (r BelongsTo) relationship() *RelationshipDecl {
	return &RelationshipDecl{Name: r.Name, Kind: BelongsToRelationship, Destination: r.Destination,
		Attribute: r.Attribute, DestinationAttribute: r.DestinationAttribute, OnDelete: r.OnDelete, Description: r.Description}
}

func (r HasOne) relationship() *RelationshipDecl {
	return &RelationshipDecl{Name: r.Name, Kind: HasOneRelationship, Destination: r.Destination,
		Attribute: r.Attribute, DestinationAttribute: r.DestinationAttribute, Description: r.Description}
}

func (r HasMany) relationship() *RelationshipDecl {
	return &RelationshipDecl{Name: r.Name, Kind: HasManyRelationship, Destination: r.Destination,
		Attribute: r.Attribute, DestinationAttribute: r.DestinationAttribute, Sort: slices.Clone(r.Sort), Description: r.Description}
}

func (r ManyToMany) relationship() *RelationshipDecl {
	return &RelationshipDecl{Name: r.Name, Kind: ManyToManyRelationship, Destination: r.Destination, Through: r.Through,
		SourceAttributeOnJoin: r.SourceAttributeOnJoin, DestinationAttributeOnJoin: r.DestinationAttributeOnJoin,
		Attribute: r.Attribute, DestinationAttribute: r.DestinationAttribute, Sort: slices.Clone(r.Sort), Description: r.Description}
}

func (rd *RelationshipDecl) clone() *RelationshipDecl {
	c := *rd
	c.Sort = slices.Clone(rd.Sort)
	c.destination, c.through = nil, nil
	return &c
}

// Relationship returns the relationship of that name, or nil.
func (d *Declaration) Relationship(name string) *RelationshipDecl {
	for _, r := range d.Relationships {
		if r.Name == name {
			return r
		}
	}
	return nil
}

func (d *Declaration) relationshipNames() []string {
	names := make([]string, len(d.Relationships))
	for i, r := range d.Relationships {
		names[i] = r.Name
	}
	return names
}

// Named refers to the resource of that name in the domain being built. A
// relationship's Destination or Through takes it where the resource itself
// cannot be named: Go refuses package-level variables whose declarations
// refer to each other (an initialization cycle), so of a post that belongs
// to a user and a user that has many posts, one names the other with
// Named. Build checks that the domain has the resource. A Named ref is only
// a name: NewDomain and Domain.Run need the resource itself.
func Named(name string) Ref { return namedRef(name) }

type namedRef string

func (n namedRef) Name() string              { return string(n) }
func (n namedRef) Declaration() *Declaration { return nil }
