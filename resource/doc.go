// Package resource is the core of kiln: resources declared as plain Go values,
// built by a Domain into runnable actions, run one transaction per action, with
// notifiers that react after commit.
//
// A resource is a Go struct (a bun model) plus sections that declare its table,
// attribute metadata, identities, actions and notifiers. Each action is
// declared through a handle, with its input struct, and run through it:
//
//	type Register struct{ Email string }
//	type ByEmail struct{ Email string }
//
//	var (
//		SignUp = resource.DefineCreate[User, Register](resource.Create{Name: "register", Accept: []string{"email"}})
//		Find   = resource.DefineGet[User, ByEmail](resource.Read{Name: "by_email", GetBy: []string{"email"}})
//		Users  = resource.New[User]("user", resource.Table("users"), resource.Actions{SignUp, Find})
//	)
//
//	user, err := SignUp.Run(ctx, accounts, Register{Email: "ada@example.com"}) // a *User
//
// Changes and validations are typed too: Before, After, Prepare and Check
// take funcs of a *Changeset[T], whose Record is the *T being written, and
// InputOf reads the action's input struct. Resource[T]'s methods, Domain.Run
// and Call run actions by name with an Input map, for code that learns the
// names at run time; an extension runs the actions it adds through a View.
//
// NewDomain(name, resources...).Build(ctx, layer) runs the extension
// transforms, then every verifier, and returns all problems at once. A built
// Domain is immutable and safe for concurrent use. The package imports no
// database driver: a DataLayer (see resource/bunlayer) does the storage.
package resource
