package resource

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
)

// AnyChangeset is one run of an action as it goes through validation, changes
// and the data layer. Validations and changes receive it: they read the
// input and arguments, and set attributes.
type AnyChangeset struct {
	domain   *Domain
	resource *builtResource
	action   *builtAction
	ctx      context.Context

	record  reflect.Value // *T being written; for a bulk action, holds the values to set
	old     any
	args    map[string]any
	changed []string
	filter  Filter
	bulk    bool
	meta    map[string]any
}

// Domain is the domain running the action; run other actions with it and the
// ctx given to the change to stay in the same transaction.
func (c *AnyChangeset) Domain() *Domain { return c.domain }

// Resource is the resource's name.
func (c *AnyChangeset) Resource() string { return c.resource.decl.Name }

// Action is the action's name.
func (c *AnyChangeset) Action() string { return c.action.Name }

// ActionType is the action's type.
func (c *AnyChangeset) ActionType() ActionType { return c.action.Type }

// Record is the record being written (*T). In a bulk action it holds the
// values that will be set on every matching record; nil in generic actions.
func (c *AnyChangeset) Record() any {
	if !c.record.IsValid() {
		return nil
	}
	return c.record.Interface()
}

// Old is the record as it was before an update (*T), or nil.
func (c *AnyChangeset) Old() any { return c.old }

// Bulk reports whether the action runs on every record Filter matches.
func (c *AnyChangeset) Bulk() bool { return c.bulk }

// Filter is the filter of a bulk action, or nil.
func (c *AnyChangeset) Filter() Filter { return c.filter }

// Actor is the actor the action runs for, or nil.
func (c *AnyChangeset) Actor() any { return ActorFrom(c.ctx) }

// Argument returns an argument's value, or nil when it was not given.
func (c *AnyChangeset) Argument(name string) any { return c.args[name] }

// Arguments returns a copy of every argument given.
func (c *AnyChangeset) Arguments() map[string]any { return maps.Clone(c.args) }

// Get returns an attribute's current value on the record being written.
func (c *AnyChangeset) Get(attr string) any {
	a := c.resource.decl.Attribute(attr)
	if a == nil || !c.record.IsValid() {
		return nil
	}
	return c.record.Elem().FieldByIndex(a.Index).Interface()
}

// Set sets an attribute, converting v to its type, and marks it changed.
func (c *AnyChangeset) Set(attr string, v any) error {
	a := c.resource.decl.Attribute(attr)
	if a == nil {
		return fmt.Errorf("kiln/resource: %s has no attribute %q", c.resource.decl.Name, attr)
	}
	if !c.record.IsValid() {
		return fmt.Errorf("kiln/resource: %s.%s is a generic action and has no record", c.resource.decl.Name, c.action.Name)
	}
	cv, err := convert(v, a.Type)
	if err != nil {
		return c.Invalid(attr, err.Error())
	}
	c.record.Elem().FieldByIndex(a.Index).Set(cv)
	c.markChanged(attr)
	return nil
}

// Changing reports whether the action sets the attribute.
func (c *AnyChangeset) Changing(attr string) bool { return slices.Contains(c.changed, attr) }

// Changed lists the attributes the action sets, in the order they were set.
func (c *AnyChangeset) Changed() []string { return slices.Clone(c.changed) }

// SetMetadata attaches a value to the notifications this action sends.
func (c *AnyChangeset) SetMetadata(key string, v any) {
	if c.meta == nil {
		c.meta = map[string]any{}
	}
	c.meta[key] = v
}

// Metadata returns a value set with SetMetadata.
func (c *AnyChangeset) Metadata(key string) any { return c.meta[key] }

// Invalid returns a *ValidationError on field for this action.
func (c *AnyChangeset) Invalid(field, message string) error {
	return &ValidationError{Resource: c.resource.decl.Name, Action: c.action.Name, Field: field, Message: message}
}

func (c *AnyChangeset) markChanged(attr string) {
	if !slices.Contains(c.changed, attr) {
		c.changed = append(c.changed, attr)
	}
}

// Arg returns the argument name of cs as a T; the zero T when it is missing
// or of another type. InputOf reads every argument at once, as the fields
// of the action's input struct.
func Arg[T any](cs *AnyChangeset, name string) T {
	v, _ := cs.args[name].(T)
	return v
}

// ResourceRef is the resource the action belongs to, to run its other
// actions: cs.Domain().Run(ctx, cs.ResourceRef(), "other", input).
func (c *AnyChangeset) ResourceRef() Ref { return c.resource }
