package resource

import "context"

// Extension is a section that compiles into more of the declaration, as
// authentication adds actions to a user resource. Domain.Build calls every
// extension's Transform (in resource order, then declaration order), then
// every Verify. Transform may add attributes' metadata, actions, arguments,
// changes and identities, but only where the user declared none (use the
// Add… methods, which keep the user's). Verify reads and reports problems;
// it must not change anything.
type Extension interface {
	Section
	// ExtensionName is the section's name in build-error paths,
	// "authentication".
	ExtensionName() string
	Transform(b *BuildContext, d *Declaration)
	Verify(b *BuildContext, d *Declaration)
}

// AddExtension records e on d; an extension's Declare calls it. Declaring
// the same extension twice is a build error.
func (d *Declaration) AddExtension(e Extension) {
	if d.HasExtension(e.ExtensionName()) {
		d.Problem(d.Location, []string{e.ExtensionName()}, "declared twice", "declare each extension once per resource")
		return
	}
	d.Extensions = append(d.Extensions, e)
}

// Extension returns the declared extension of that name, or nil.
func (d *Declaration) Extension(name string) Extension {
	for _, e := range d.Extensions {
		if e.ExtensionName() == name {
			return e
		}
	}
	return nil
}

// BuildContext is what Transform and Verify see of the domain being built.
type BuildContext struct {
	ctx       context.Context
	name      string
	resources []*Declaration
	parts     []any
}

// Parts are the runtime parts given to Build with With: an extension's
// Verify checks that one it needs is there.
func (b *BuildContext) Parts() []any { return b.parts }

// Context is Build's context.
func (b *BuildContext) Context() context.Context { return b.ctx }

// DomainName is the name of the domain being built.
func (b *BuildContext) DomainName() string { return b.name }

// Resource returns the domain's (transformed) declaration of r, or nil when
// r is not part of the domain.
func (b *BuildContext) Resource(r Ref) *Declaration {
	if r == nil {
		return nil
	}
	for _, d := range b.resources {
		if d.Name == r.Name() {
			return d
		}
	}
	return nil
}

// Resources returns every declaration of the domain.
func (b *BuildContext) Resources() []*Declaration { return b.resources }
