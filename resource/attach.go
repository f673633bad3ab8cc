package resource

import (
	"errors"
	"fmt"
)

// NotifierAttacher is a notifier that uses runtime parts made after the
// domain is built, because they need it: a live endpoint, whose
// authenticator reads the domain's tokens. Domain.Attach calls Attach once
// for each place the notifier is declared (a resource's Notifiers, an
// action's), with the resource and every attached part; the notifier it
// returns runs in its place from then on. Until then, the declared
// notifier runs as it is.
type NotifierAttacher interface {
	Notifier
	Attach(d *Domain, r Ref, parts []any) (Notifier, error)
}

// attachment is what Domain.Attach resolved: the notifiers to run, by
// resource name and by resource and action name ("token.revoke_jti").
type attachment struct {
	notifiers map[string][]Notifier
	parts     []any
}

// Attach hands the built domain the runtime parts its notifiers use, such
// as the live endpoint (package live) the token revocation notifier closes
// sockets on. Those parts are made after Build because they need the
// domain; attach them once, before the domain serves. Each
// NotifierAttacher resolves what it needs from parts here, once; an error
// names the resource and is joined with the others, and then nothing is
// attached. A second call is an error.
func (d *Domain) Attach(parts ...any) error {
	a := &attachment{notifiers: map[string][]Notifier{}, parts: parts}
	var errs []error
	attach := func(br *builtResource, key string, declared []Notifier) {
		out := make([]Notifier, len(declared))
		for i, n := range declared {
			out[i] = n
			na, ok := n.(NotifierAttacher)
			if !ok {
				continue
			}
			attached, err := na.Attach(d, br, parts)
			if err != nil {
				errs = append(errs, fmt.Errorf("kiln/resource: attach %s: %w", key, err))
				continue
			}
			out[i] = attached
		}
		a.notifiers[key] = out
	}
	for _, br := range d.order {
		attach(br, br.decl.Name, br.decl.Notifiers)
		for name, act := range br.actions {
			attach(br, br.decl.Name+"."+name, act.Notifiers)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if !d.attached.CompareAndSwap(nil, a) {
		return errors.New("kiln/resource: Attach called twice; attach every part in one call")
	}
	return nil
}

// notifiersOf returns the notifiers of an action's notifications: the
// resource's, then the action's, as attached when Attach has run.
func (d *Domain) notifiersOf(br *builtResource, act *builtAction) []Notifier {
	resourceLevel, actionLevel := br.decl.Notifiers, act.Notifiers
	if a := d.attached.Load(); a != nil {
		resourceLevel, actionLevel = a.notifiers[br.decl.Name], a.notifiers[br.decl.Name+"."+act.Name]
	}
	out := make([]Notifier, 0, len(resourceLevel)+len(actionLevel))
	out = append(out, resourceLevel...)
	return append(out, actionLevel...)
}

// With gives Build runtime parts that exist before the domain does, such
// as the password strategy's reset Sender: extensions find them with Part,
// and check at Build that those they need are there. Parts that need the
// built domain (a live endpoint) are given to Attach instead.
func With(parts ...any) Option {
	return func(d *Domain) { d.parts = append(d.parts, parts...) }
}

// Part returns the first part given to Build (With) or to Attach that is a
// T, and whether there is one.
func Part[T any](d *Domain) (T, bool) {
	all := d.parts
	if a := d.attached.Load(); a != nil {
		all = append(all[:len(all):len(all)], a.parts...)
	}
	return PartOf[T](all)
}

// PartOf returns the first of parts that is a T, and whether there is one:
// what an extension's Verify uses on BuildContext.Parts.
func PartOf[T any](parts []any) (T, bool) {
	for _, p := range parts {
		if t, ok := p.(T); ok {
			return t, true
		}
	}
	var zero T
	return zero, false
}
