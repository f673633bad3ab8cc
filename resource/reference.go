package resource

import (
	"context"
	"errors"
	"fmt"
)

// checkReferences checks, in the action's transaction, that every key a
// create sets, or an update changes, to a belongs-to relationship's
// attribute refers to a record: one count per key. A key that refers to
// none is a *ValidationError on its attribute, before the write, rather
// than the database's foreign key error after it.
func (d *Domain) checkReferences(ctx context.Context, st *txState, cs *AnyChangeset) error {
	var errs []error
	for _, r := range cs.resource.schema.Relationships {
		if r.Kind != BelongsToRelationship || cs.action.Type != CreateAction && !cs.Changing(r.Attribute.Name) {
			continue
		}
		key, ok := keyOf(cs.record, r.Attribute)
		if !ok {
			continue
		}
		n, err := st.tx.Count(ctx, r.Destination, Eq(r.DestinationAttribute.Name, key))
		if err != nil {
			return fmt.Errorf("kiln/resource: %s.%s: check %s: %w", cs.resource.decl.Name, cs.action.Name, r.Name, err)
		}
		if n == 0 {
			errs = append(errs, cs.Invalid(r.Attribute.Name, "does not exist"))
		}
	}
	return errors.Join(errs...)
}

// referenceError is what a foreign key's refusal of a write reports: for a
// create or an update, a *ValidationError on the key that refers to no
// record; for a destroy, a *ReferenceError naming, when the data layer
// does not, the only relationship that could have refused it.
func (d *Domain) referenceError(cs *AnyChangeset, re *ReferenceError) error {
	name := cs.resource.decl.Name
	if cs.action.Type != DestroyAction {
		attr := re.Attribute
		if attr == "" {
			var changed []string
			for _, r := range cs.resource.schema.Relationships {
				if r.Kind == BelongsToRelationship && (cs.action.Type == CreateAction || cs.Changing(r.Attribute.Name)) {
					changed = append(changed, r.Attribute.Name)
				}
			}
			if len(changed) == 1 {
				attr = changed[0]
			}
		}
		if attr == "" {
			return cs.Invalid("", "refers to a record that does not exist")
		}
		return cs.Invalid(attr, "does not exist")
	}
	out := &ReferenceError{Resource: name, Action: cs.action.Name, From: re.From, Relationship: re.Relationship, Err: re.Err}
	if out.From == "" {
		var from, through []string
		for _, br := range d.order {
			for _, r := range br.schema.Relationships {
				if r.Kind == BelongsToRelationship && r.OnDelete == Restrict && r.Destination == cs.resource.schema {
					from, through = append(from, br.decl.Name), append(through, r.Name)
				}
			}
		}
		if len(from) == 1 {
			out.From, out.Relationship = from[0], through[0]
		}
	}
	return out
}
