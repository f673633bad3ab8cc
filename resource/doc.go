// Package resource is the core of kiln: resources declared as plain Go values,
// built by a Domain into runnable actions, run one transaction per action, with
// notifiers that react after commit.
//
// A resource is a Go struct (a bun model) plus sections that declare its table,
// attribute metadata, identities, actions and notifiers:
//
//	var Users = resource.New[User]("user",
//		resource.Table("users"),
//		resource.Actions{
//			resource.Create{Name: "register", Accept: []string{"email"}},
//			resource.Read{Name: "by_email", GetBy: []string{"email"}},
//		},
//	)
//
// NewDomain(name, resources...).Build(ctx, layer) runs the extension
// transforms, then every verifier, and returns all problems at once. A built
// Domain is immutable and safe for concurrent use. The package imports no
// database driver: a DataLayer (see resource/bunlayer) does the storage.
package resource
