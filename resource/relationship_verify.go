package resource

import (
	"fmt"
	"reflect"
	"strings"
)

// linkRelationships resolves the destinations of d's relationships in the
// domain being built, fills the attributes left zero with their defaults,
// and records a problem for each relationship that cannot work: a
// destination outside the domain, a key attribute that is missing or of
// another type than the key it refers to, a record field of the wrong type.
func linkRelationships(b *BuildContext, d *Declaration) {
	for _, r := range d.Relationships {
		linkRelationship(b, d, r)
	}
}

func linkRelationship(b *BuildContext, d *Declaration, r *RelationshipDecl) {
	loc := r.location
	name := r.Name
	if name == "" {
		name = "(unnamed " + r.Kind.String() + ")"
		d.Problem(loc, []string{"relationships", name}, "the relationship has no name", "give it a Name")
	}
	path := func(p ...string) []string { return append([]string{"relationships", name}, p...) }
	if strings.Contains(r.Name, ".") {
		d.Problem(loc, path(), "the name holds a dot, which paths put between names (author.email)", "name it without a dot")
	}
	r.destination = resolveRef(b, d, loc, path("destination"), r.Destination)
	switch r.Kind {
	case BelongsToRelationship:
		linkBelongsTo(d, r, path)
	case HasOneRelationship, HasManyRelationship:
		linkHas(d, r, path)
	case ManyToManyRelationship:
		r.through = resolveRef(b, d, loc, path("through"), r.Through)
		linkManyToMany(d, r, path)
	}
	if r.destination != nil && r.Kind.ToMany() {
		for _, s := range r.Sort {
			if r.destination.Attribute(s.Attr) == nil {
				d.Problem(loc, path("sort"), fmt.Sprintf("unknown attribute %q of %s", s.Attr, r.destination.Name), didYouMean(s.Attr, r.destination.attributeNames()))
			}
		}
	}
	if r.Name != "" && r.destination != nil {
		checkRelationshipField(d, r, path)
	}
}

// resolveRef finds ref in the domain being built, or records why not.
func resolveRef(b *BuildContext, d *Declaration, loc Location, path []string, ref Ref) *Declaration {
	if ref == nil || reflect.ValueOf(ref).Kind() == reflect.Pointer && reflect.ValueOf(ref).IsNil() {
		d.Problem(loc, path, "is nil", `name the resource: a *resource.Resource[T], or resource.Named("user")`)
		return nil
	}
	got := b.Resource(ref)
	if got == nil {
		fix := didYouMean(ref.Name(), b.resourceNames())
		if ref.Declaration() != nil {
			fix = fmt.Sprintf("list it in resource.NewDomain(%q, …)", b.name)
		}
		d.Problem(loc, path, fmt.Sprintf("unknown resource %q: it is not in domain %q", ref.Name(), b.name), fix)
		return nil
	}
	if decl := ref.Declaration(); decl != nil && decl.Type != got.Type {
		d.Problem(loc, path, fmt.Sprintf("resource %q of the domain holds %s records, not %s", ref.Name(), got.Type, decl.Type), "name the resource of the domain")
		return nil
	}
	return got
}

func linkBelongsTo(d *Declaration, r *RelationshipDecl, path func(...string) []string) {
	if r.Attribute == "" && r.Name != "" {
		r.Attribute = r.Name + "_id"
	}
	src := sourceAttribute(d, r, path("attribute"))
	if r.destination == nil {
		return
	}
	dst := destinationKey(d, r, path("destination_attribute"))
	if src == nil || dst == nil {
		return
	}
	checkKeyTypes(d, r.location, path("attribute"), src, r.destination, dst)
	if r.OnDelete == SetNull && !src.Nullable {
		d.Problem(r.location, path("on_delete"), fmt.Sprintf("SetNull sets %q to NULL, and it is not nullable", src.Name),
			"make its field a pointer, or use Cascade or Restrict")
	}
}

func linkHas(d *Declaration, r *RelationshipDecl, path func(...string) []string) {
	r.Attribute = orPrimaryKey(d, d, r.Attribute, r, path("attribute"), "Attribute")
	src := sourceAttribute(d, r, path("attribute"))
	if r.destination == nil {
		return
	}
	if r.DestinationAttribute == "" {
		r.DestinationAttribute = d.Name + "_id"
	}
	dst := inverseAttribute(d, r, r.destination, r.DestinationAttribute, path("destination_attribute"))
	if src != nil && dst != nil {
		checkKeyTypes(d, r.location, path("destination_attribute"), dst, d, src)
	}
}

func linkManyToMany(d *Declaration, r *RelationshipDecl, path func(...string) []string) {
	r.Attribute = orPrimaryKey(d, d, r.Attribute, r, path("attribute"), "Attribute")
	src := sourceAttribute(d, r, path("attribute"))
	var dst *Attribute
	if r.destination != nil {
		r.DestinationAttribute = orPrimaryKey(d, r.destination, r.DestinationAttribute, r, path("destination_attribute"), "DestinationAttribute")
		if dst = r.destination.Attribute(r.DestinationAttribute); dst == nil && r.DestinationAttribute != "" {
			d.Problem(r.location, path("destination_attribute"), fmt.Sprintf("unknown attribute %q of %s", r.DestinationAttribute, r.destination.Name),
				didYouMean(r.DestinationAttribute, r.destination.attributeNames()))
		}
	}
	if r.through == nil {
		return
	}
	if r.SourceAttributeOnJoin == "" {
		r.SourceAttributeOnJoin = d.Name + "_id"
	}
	if onJoin := inverseAttribute(d, r, r.through, r.SourceAttributeOnJoin, path("source_attribute_on_join")); onJoin != nil && src != nil {
		checkKeyTypes(d, r.location, path("source_attribute_on_join"), onJoin, d, src)
	}
	if r.destination == nil {
		return
	}
	if r.DestinationAttributeOnJoin == "" {
		r.DestinationAttributeOnJoin = r.destination.Name + "_id"
	}
	if onJoin := inverseAttribute(d, r, r.through, r.DestinationAttributeOnJoin, path("destination_attribute_on_join")); onJoin != nil && dst != nil {
		checkKeyTypes(d, r.location, path("destination_attribute_on_join"), onJoin, r.destination, dst)
	}
}

// orPrimaryKey is name, or, when name is empty, the name of the primary
// key of in, one side of d's relationship r. A primary key of several
// attributes is a problem then: name the attribute.
func orPrimaryKey(d, in *Declaration, name string, r *RelationshipDecl, path []string, field string) string {
	if name != "" {
		return name
	}
	pk := in.PrimaryKey()
	if len(pk) > 1 {
		d.Problem(r.location, path, fmt.Sprintf("%s has a primary key of %d attributes", in.Name, len(pk)), fmt.Sprintf("name the key the relationship uses: %s: \"…\"", field))
	}
	if len(pk) != 1 {
		return ""
	}
	return pk[0].Name
}

// sourceAttribute is the relationship's attribute on its own resource.
func sourceAttribute(d *Declaration, r *RelationshipDecl, path []string) *Attribute {
	if r.Attribute == "" {
		return nil
	}
	a := d.Attribute(r.Attribute)
	if a == nil {
		d.Problem(r.location, path, fmt.Sprintf("unknown attribute %q", r.Attribute), didYouMean(r.Attribute, d.attributeNames()))
	}
	return a
}

// destinationKey is the key of the destination a belongs-to refers to:
// its primary key, or an attribute that is the only key of an identity.
func destinationKey(d *Declaration, r *RelationshipDecl, path []string) *Attribute {
	dest := r.destination
	if r.DestinationAttribute = orPrimaryKey(d, dest, r.DestinationAttribute, r, path, "DestinationAttribute"); r.DestinationAttribute == "" {
		return nil
	}
	a := dest.Attribute(r.DestinationAttribute)
	if a == nil {
		d.Problem(r.location, path, fmt.Sprintf("unknown attribute %q of %s", r.DestinationAttribute, dest.Name), didYouMean(r.DestinationAttribute, dest.attributeNames()))
		return nil
	}
	if pk := dest.PrimaryKey(); len(pk) == 1 && pk[0] == a {
		return a
	}
	for _, id := range dest.Identities {
		if len(id.Keys) == 1 && id.Keys[0] == a.Name {
			return a
		}
	}
	d.Problem(r.location, path, fmt.Sprintf("attribute %q of %s is not a key: records may share its value", a.Name, dest.Name),
		"refer to the primary key, or to an attribute that is the only key of an identity")
	return nil
}

// inverseAttribute is the attribute of other (the destination, or the join
// resource) that holds d's or the destination's key.
func inverseAttribute(d *Declaration, r *RelationshipDecl, other *Declaration, name string, path []string) *Attribute {
	if name == "" {
		return nil
	}
	a := other.Attribute(name)
	if a == nil {
		d.Problem(r.location, path, fmt.Sprintf("%s has no attribute %q to hold the key", other.Name, name), didYouMean(name, other.attributeNames()))
	}
	return a
}

// checkKeyTypes records a problem unless the attribute a of d, which holds
// keys of the attribute key of to, is of key's type (or a pointer to it).
func checkKeyTypes(d *Declaration, loc Location, path []string, a *Attribute, to *Declaration, key *Attribute) {
	at, kt := baseType(a.Type), baseType(key.Type)
	if at != kt {
		d.Problem(loc, path, fmt.Sprintf("attribute %q is %s, and the key %s.%s it holds is %s", a.Name, a.Type, to.Name, key.Name, key.Type),
			fmt.Sprintf("give both the same type, %s", kt))
		return
	}
	if !kt.Comparable() {
		d.Problem(loc, path, fmt.Sprintf("the key %s.%s is %s, which Go cannot compare", to.Name, key.Name, kt), "relate records by a key of a comparable type")
	}
}

func baseType(t reflect.Type) reflect.Type {
	if t.Kind() == reflect.Pointer {
		return t.Elem()
	}
	return t
}

// checkRelationshipField checks the record field the relationship loads
// into, when the record struct has one.
func checkRelationshipField(d *Declaration, r *RelationshipDecl, path func(...string) []string) {
	if a := d.Attribute(r.Name); a != nil {
		if f, ok := relationshipField(d.Type, r.Name); ok && f.Name == a.Field && f.Type == relationshipFieldType(r.Kind, r.destination.Type) {
			d.Problem(r.location, path("field"), fmt.Sprintf("field %s is a column: the relationship loads into it, so bun must not map it", f.Name), "tag it `bun:\"-\"`")
			return
		}
		d.Problem(r.location, path(), fmt.Sprintf("has the name of attribute %q", r.Name), "rename the relationship or the attribute")
		return
	}
	f, ok := relationshipField(d.Type, r.Name)
	if !ok {
		return
	}
	want := relationshipFieldType(r.Kind, r.destination.Type)
	if f.Type != want {
		d.Problem(r.location, path("field"), fmt.Sprintf("field %s is %s; the relationship loads %s", f.Name, f.Type, want), fmt.Sprintf("give it the type %s", want))
	}
	if tag := f.Tag.Get("bun"); tag != "-" {
		d.Problem(r.location, path("field"), fmt.Sprintf("field %s is tagged `bun:%q`: kiln loads the relationship, not bun", f.Name, tag), "tag it `bun:\"-\"`")
	}
}

// relationshipFieldType is the type of the record field that a relationship
// of kind to records of type dest loads into: *Dest, or []*Dest.
func relationshipFieldType(kind RelationshipKind, dest reflect.Type) reflect.Type {
	t := reflect.PointerTo(dest)
	if kind.ToMany() {
		return reflect.SliceOf(t)
	}
	return t
}

// relationshipField is the exported field of the struct t named like the
// relationship name (Author for "author").
func relationshipField(t reflect.Type, name string) (reflect.StructField, bool) {
	for _, f := range reflect.VisibleFields(t) {
		if f.IsExported() && !f.Anonymous && underscore(f.Name) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// goFieldName is the Go field name a relationship's field would have:
// "author" is Author, "post_tags" PostTags.
func goFieldName(name string) string {
	var b strings.Builder
	for _, part := range strings.Split(name, "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// resourceNames lists the names of the domain's resources.
func (b *BuildContext) resourceNames() []string {
	names := make([]string, len(b.resources))
	for i, d := range b.resources {
		names[i] = d.Name
	}
	return names
}

// pathTarget is what an attribute path names: the relationships it goes
// through, in order, and the attribute at its end.
type pathTarget struct {
	through []*RelationshipDecl
	attr    *Attribute
}

// resolvePath resolves an attribute path: "email", or "author.email",
// the attribute email of the destination of the relationship author.
// When the path names nothing it returns what is wrong and a fix; both are
// empty when a relationship on the way has a problem of its own (an
// unknown destination), reported by Build.
func (d *Declaration) resolvePath(path string) (target pathTarget, problem, fix string) {
	at := d
	rest := path
	for {
		seg, more, dotted := strings.Cut(rest, ".")
		if !dotted {
			break
		}
		r := at.Relationship(seg)
		if r == nil {
			if at.Attribute(seg) != nil {
				return target, fmt.Sprintf("%q is an attribute of %s, not a relationship, in %q", seg, at.Name, path), "name a relationship before the dot"
			}
			if len(at.Relationships) == 0 {
				return target, fmt.Sprintf("unknown relationship %q in %q: %s has no relationships", seg, path, at.Name), "declare it in resource.Relationships"
			}
			return target, fmt.Sprintf("unknown relationship %q in %q", seg, path), didYouMean(seg, at.relationshipNames())
		}
		if r.destination == nil {
			return target, "", ""
		}
		target.through = append(target.through, r)
		at, rest = r.destination, more
	}
	target.attr = at.Attribute(rest)
	if target.attr != nil {
		return target, "", ""
	}
	if at == d {
		return target, fmt.Sprintf("unknown attribute %q", rest), didYouMean(rest, d.attributeNames())
	}
	return target, fmt.Sprintf("unknown attribute %q of %s in %q", rest, at.Name, path), didYouMean(rest, at.attributeNames())
}

// toMany returns the first relationship of the path that relates a record
// to many, or nil.
func (t pathTarget) toMany() *RelationshipDecl {
	for _, r := range t.through {
		if r.Kind.ToMany() {
			return r
		}
	}
	return nil
}

// checkSortPath returns what is wrong with sorting by path, or "": it must
// name an attribute, through belongs-to and has-one relationships only.
func (d *Declaration) checkSortPath(path string) (problem, fix string) {
	target, problem, fix := d.resolvePath(path)
	if problem != "" {
		return problem, fix
	}
	if r := target.toMany(); r != nil {
		return fmt.Sprintf("cannot sort by %q: %s is a %s relationship, so a record has many values of it", path, r.Name, r.Kind),
			"sort through belongs_to and has_one relationships only"
	}
	return "", ""
}
