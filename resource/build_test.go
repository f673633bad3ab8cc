package resource_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// member is the record of most build tests.
type member struct {
	ID        uuid.UUID `bun:",pk,type:uuid" kiln:"default:uuid"`
	Email     string    `bun:",unique,notnull" validate:"required,email"`
	Name      string
	Password  string    `kiln:"sensitive"`
	CreatedAt time.Time `bun:",notnull" kiln:"readonly,default:now"`
}

type keyless struct {
	Email string
}

type badKilnTag struct {
	ID    int64  `bun:",pk,autoincrement"`
	Email string `kiln:"sensitiv"`
}

type badValidateTag struct {
	ID    int64  `bun:",pk,autoincrement"`
	Email string `validate:"required,emial"`
}

// declared is a domain to build and the line whose file:line its build
// error must name.
type declared struct {
	spec *resource.DomainSpec
	ref  resource.Ref
	line int
}

// declare puts r in a domain of its own. Call it on the line of r's
// resource.New: that is the line the build error must name.
func declare(r resource.Ref) declared {
	_, _, line, _ := runtime.Caller(1)
	return declared{spec: resource.NewDomain("test", r), ref: r, line: line}
}

// declareTwice lists r twice in a domain.
func declareTwice(r resource.Ref) declared {
	_, _, line, _ := runtime.Caller(1)
	return declared{spec: resource.NewDomain("test", r, r), ref: r, line: line}
}

// declareDomain is for a problem of the domain itself: the line is that of
// resource.NewDomain.
func declareDomain(spec *resource.DomainSpec) declared {
	_, _, line, _ := runtime.Caller(1)
	return declared{spec: spec, line: line}
}

var noop = func(context.Context, *resource.AnyChangeset) error { return nil }

func TestBuildErrors(t *testing.T) {
	type Actions = resource.Actions
	tests := []struct {
		name    string
		decl    declared
		noLayer bool
		want    string // the whole error; %d is the declaration's line
	}{
		{
			name: "unknown accepted attribute",
			decl: declare(resource.New[member]("user", Actions{
				resource.Create{Name: "register", Accept: []string{"emial"}},
			})),
			want: `kiln/resource: resource "user": actions -> register -> accept: unknown attribute "emial"; did you mean "email"? (build_test.go:%d)`,
		},
		{
			name: "accepted attribute far from any",
			decl: declare(resource.New[member]("user", Actions{
				resource.Create{Name: "register", Accept: []string{"nickname"}},
			})),
			want: `kiln/resource: resource "user": actions -> register -> accept: unknown attribute "nickname"; use one of: id, email, name, password, created_at (build_test.go:%d)`,
		},
		{
			name: "read-only attribute accepted",
			decl: declare(resource.New[member]("user", Actions{
				resource.Create{Name: "register", Accept: []string{"email", "created_at"}},
			})),
			want: `kiln/resource: resource "user": actions -> register -> accept: attribute "created_at" is read-only; remove it from Accept, or set it in a change (build_test.go:%d)`,
		},
		{
			name: "no primary key",
			decl: declare(resource.New[keyless]("keyless")),
			want: "kiln/resource: resource \"keyless\": attributes: resource_test.keyless has no primary key; tag the key field `bun:\",pk\"` (build_test.go:%d)",
		},
		{
			name: "unknown identity key",
			decl: declare(resource.New[member]("user", resource.Identities{
				{Name: "unique_name", Keys: []string{"nmae"}},
			})),
			want: `kiln/resource: resource "user": identities -> unique_name -> keys: unknown attribute "nmae"; did you mean "name"? (build_test.go:%d)`,
		},
		{
			name: "identity without keys",
			decl: declare(resource.New[member]("user", resource.Identities{
				{Name: "unique_name"},
			})),
			want: `kiln/resource: resource "user": identities -> unique_name: the identity has no keys; list its attributes in Keys (build_test.go:%d)`,
		},
		{
			name: "duplicate action",
			decl: declare(resource.New[member]("user", Actions{
				resource.Create{Name: "register", Accept: []string{"email"}},
				resource.Create{Name: "register", Accept: []string{"name"}},
			})),
			want: `kiln/resource: resource "user": actions -> register: declared twice; give each action its own name (build_test.go:%d)`,
		},
		{
			name: "duplicate identity",
			decl: declare(resource.New[member]("user", resource.Identities{
				{Name: "unique_name", Keys: []string{"name"}},
				{Name: "unique_name", Keys: []string{"name", "email"}},
			})),
			want: `kiln/resource: resource "user": identities -> unique_name: declared twice; give each identity its own name (build_test.go:%d)`,
		},
		{
			name: "two identities over the same keys",
			decl: declare(resource.New[member]("user", resource.Identities{
				{Name: "email_key", Keys: []string{"email"}},
			})),
			want: "kiln/resource: resource \"user\": identities -> email_key: has the keys of identity \"unique_email\" (email); drop one; a `bun:\",unique\"` tag declares the identity unique_<column> already (build_test.go:%d)",
		},
		{
			name: "unknown index key",
			decl: declare(resource.New[member]("user", resource.Indexes{{Keys: []string{"nmae"}}})),
			want: `kiln/resource: resource "user": indexes -> nmae -> keys: unknown attribute "nmae"; did you mean "name"? (build_test.go:%d)`,
		},
		{
			name: "index without keys",
			decl: declare(resource.New[member]("user", resource.Indexes{{}})),
			want: `kiln/resource: resource "user": indexes: an index has no keys; list its attributes in Keys (build_test.go:%d)`,
		},
		{
			name: "index an identity serves",
			decl: declare(resource.New[member]("user", resource.Indexes{{Keys: []string{"email"}}})),
			want: `kiln/resource: resource "user": indexes -> email: identity "unique_email" begins with these keys and serves the same lookups; drop this index (build_test.go:%d)`,
		},
		{
			name: "index the primary key serves",
			decl: declare(resource.New[member]("user", resource.Indexes{{Keys: []string{"id"}}})),
			want: `kiln/resource: resource "user": indexes -> id: the primary key begins with these keys and serves the same lookups; drop this index (build_test.go:%d)`,
		},
		{
			name: "index declared twice",
			decl: declare(resource.New[member]("user", resource.Indexes{{Keys: []string{"name"}}, {Keys: []string{"name"}}})),
			want: `kiln/resource: resource "user": indexes -> name: index (name) begins with these keys and serves the same lookups; drop this index (build_test.go:%d)`,
		},
		{
			name: "index a longer one serves",
			decl: declare(resource.New[member]("user", resource.Indexes{{Keys: []string{"name"}}, {Keys: []string{"name", "created_at"}}})),
			want: `kiln/resource: resource "user": indexes -> name: index (name, created_at) begins with these keys and serves the same lookups; drop this index (build_test.go:%d)`,
		},
		{
			name: "index naming a key twice",
			decl: declare(resource.New[member]("user", resource.Indexes{{Keys: []string{"name", "name"}}})),
			want: `kiln/resource: resource "user": indexes -> name,name: names key "name" twice; name each key once (build_test.go:%d)`,
		},
		{
			name: "identity naming a key twice",
			decl: declare(resource.New[member]("user", resource.Identities{{Name: "unique_name", Keys: []string{"name", "name"}}})),
			want: `kiln/resource: resource "user": identities -> unique_name: names key "name" twice; name each key once (build_test.go:%d)`,
		},
		{
			name: "unknown attribute in Attributes",
			decl: declare(resource.New[member]("user", resource.Attributes{
				{Name: "pasword", Sensitive: true},
			})),
			want: `kiln/resource: resource "user": attributes -> pasword: no such attribute; the record struct resource_test.member has no field for column "pasword"; add one; did you mean "password"? (build_test.go:%d)`,
		},
		{
			name: "bad kiln tag",
			decl: declare(resource.New[badKilnTag]("user")),
			want: `kiln/resource: resource "user": attributes: field Email: unknown kiln tag "sensitiv"; use sensitive, readonly, required, default:now, default:uuid or update_default:now (build_test.go:%d)`,
		},
		{
			name: "bad validate tag",
			decl: declare(resource.New[badValidateTag]("user")),
			want: `kiln/resource: resource "user": attributes: bad validate tag: Undefined validation function 'emial' on field 'Email'; use validator rules go-playground/validator knows (build_test.go:%d)`,
		},
		{
			name: "bad argument rule",
			decl: declare(resource.New[member]("user", Actions{
				resource.Create{Name: "register", Accept: []string{"email"},
					Arguments: []resource.Argument{{Name: "password_confirmation", Validate: "requird"}}},
			})),
			want: `kiln/resource: resource "user": actions -> register -> arguments -> password_confirmation -> validate: bad rule "requird": Undefined validation function 'requird'; use validator rules go-playground/validator knows (build_test.go:%d)`,
		},
		{
			name: "filter on unknown attribute",
			decl: declare(resource.New[member]("user", Actions{
				resource.Read{Name: "named", Filter: resource.Eq("nmae", "ada")},
			})),
			want: `kiln/resource: resource "user": actions -> named -> filter: unknown attribute "nmae"; did you mean "name"? (build_test.go:%d)`,
		},
		{
			name: "filter on an undeclared argument",
			decl: declare(resource.New[member]("user", Actions{
				resource.Read{Name: "by_name", Filter: resource.Eq("name", resource.FromArg("name"))},
			})),
			want: `kiln/resource: resource "user": actions -> by_name -> filter: uses argument "name", which the action does not declare; declare it: Arguments: []resource.Argument{{Name: "name"}} (build_test.go:%d)`,
		},
		{
			name: "sort on unknown attribute",
			decl: declare(resource.New[member]("user", Actions{
				resource.Read{Name: "list", Sort: []resource.Sort{resource.Desc("created_on")}},
			})),
			want: `kiln/resource: resource "user": actions -> list -> sort: unknown attribute "created_on"; did you mean "created_at"? (build_test.go:%d)`,
		},
		{
			name: "GetBy unknown attribute",
			decl: declare(resource.New[member]("user", Actions{
				resource.Read{Name: "by_email", GetBy: []string{"mail"}},
			})),
			want: `kiln/resource: resource "user": actions -> by_email -> get_by: unknown attribute "mail"; did you mean "email"? (build_test.go:%d)`,
		},
		{
			name: "upsert on unknown identity",
			decl: declare(resource.New[member]("user", Actions{
				resource.Create{Name: "upsert", Accept: []string{"email", "name"}, Upsert: true, UpsertIdentity: "unique_emial"},
			})),
			want: `kiln/resource: resource "user": actions -> upsert -> upsert_identity: unknown identity "unique_emial"; did you mean "unique_email"? (build_test.go:%d)`,
		},
		{
			name: "generic action without Run",
			decl: declare(resource.New[member]("user", Actions{
				resource.Generic{Name: "ping"},
			})),
			want: `kiln/resource: resource "user": actions -> ping -> run: the generic action has no Run func; give it one: Run: func(ctx context.Context, cs *resource.AnyChangeset) (any, error) (build_test.go:%d)`,
		},
		{
			name: "resource change with neither Before nor After",
			decl: declare(resource.New[member]("user", resource.Changes{
				{Name: "stamp"},
			})),
			want: `kiln/resource: resource "user": changes -> stamp: the change has no Prepare, Before or After; give it a Prepare, a Before or an After func (build_test.go:%d)`,
		},
		{
			name: "action change with neither Before nor After",
			decl: declare(resource.New[member]("user", Actions{
				resource.Update{Name: "rename", Accept: []string{"name"}, Changes: []resource.Change{{Before: noop}, {}}},
			})),
			want: `kiln/resource: resource "user": actions -> rename -> changes -> #2: the change has no Prepare, Before or After; give it a Prepare, a Before or an After func (build_test.go:%d)`,
		},
		{
			name: "resource twice in a domain",
			decl: declareTwice(resource.New[member]("user")),
			want: `kiln/resource: resource "user": appears twice in domain "test"; list it once (build_test.go:%d)`,
		},
		{
			name:    "nil data layer",
			decl:    declareDomain(resource.NewDomain("test", resource.New[member]("user"))),
			noLayer: true,
			want:    `kiln/resource: domain "test" has no data layer; pass one to Build, bunlayer.New(db) (build_test.go:%d)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var layer resource.DataLayer
			if !tt.noLayer {
				layer = testdb.SQLite(t)
			}
			d, err := tt.decl.spec.Build(t.Context(), layer)
			if err == nil {
				t.Fatalf("Build succeeded; want %q", fmt.Sprintf(tt.want, tt.decl.line))
			}
			if d != nil {
				t.Errorf("Build returned a Domain with its error")
			}
			if got, want := err.Error(), fmt.Sprintf(tt.want, tt.decl.line); got != want {
				t.Errorf("error:\n got %s\nwant %s", got, want)
			}
			if n := len(buildErrors(t, err)); n != 1 {
				t.Errorf("got %d build errors, want 1", n)
			}
		})
	}
}

// TestBuildNilPointerLayer: a nil *bunlayer.Layer (an Open whose error was
// ignored) is reported like a nil DataLayer, not a panic in Register.
func TestBuildNilPointerLayer(t *testing.T) {
	var layer *bunlayer.Layer
	decl := declareDomain(resource.NewDomain("test", resource.New[member]("user")))
	_, err := decl.spec.Build(t.Context(), layer)
	want := fmt.Sprintf(`kiln/resource: domain "test" has no data layer; pass one to Build, bunlayer.New(db) (build_test.go:%d)`, decl.line)
	if err == nil || err.Error() != want {
		t.Fatalf("Build: %v\nwant %s", err, want)
	}
}

// TestBuildTwoResourcesOneName: two resources of one name are refused; the
// error points at the second.
func TestBuildTwoResourcesOneName(t *testing.T) {
	first := resource.New[member]("user")
	second := declare(resource.New[badKilnTag]("user"))
	_, err := resource.NewDomain("test", first, second.ref).Build(t.Context(), testdb.SQLite(t))
	want := fmt.Sprintf(`kiln/resource: resource "user": appears twice in domain "test"; give each resource its own name (build_test.go:%d)`, second.line)
	if err == nil || err.Error() != want {
		t.Fatalf("Build: %v\nwant %s", err, want)
	}
}

// buildErrors returns the *BuildError values of a joined build error, in
// order. errors.As finds only the first; the joined error's Unwrap() []error
// gives every one.
func buildErrors(t *testing.T, err error) []*resource.BuildError {
	t.Helper()
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Build error %T is not a joined error", err)
	}
	var out []*resource.BuildError
	for _, e := range joined.Unwrap() {
		var be *resource.BuildError
		if !errors.As(e, &be) {
			t.Fatalf("build error %T is not a *resource.BuildError: %v", e, e)
		}
		out = append(out, be)
	}
	return out
}

func TestBuildReportsEveryProblem(t *testing.T) {
	decl := declare(resource.New[member]("user", resource.Actions{
		resource.Create{Name: "register", Accept: []string{"emial"}},
		resource.Read{Name: "list", Sort: []resource.Sort{resource.Asc("nmae")}},
		resource.Generic{Name: "ping"},
	}))
	_, err := decl.spec.Build(t.Context(), testdb.SQLite(t))
	if err == nil {
		t.Fatal("Build succeeded; want three problems")
	}
	got := buildErrors(t, err)
	want := []struct {
		path, message, fix string
	}{
		{"actions -> register -> accept", `unknown attribute "emial"`, `did you mean "email"?`},
		{"actions -> list -> sort", `unknown attribute "nmae"`, `did you mean "name"?`},
		{"actions -> ping -> run", "the generic action has no Run func", "give it one: Run: func(ctx context.Context, cs *resource.AnyChangeset) (any, error)"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(got), len(want), err)
	}
	for i, w := range want {
		g := got[i]
		if g.Resource != "user" || strings.Join(g.Path, " -> ") != w.path || g.Message != w.message || g.Fix != w.fix {
			t.Errorf("problem %d = {%q, %q, %q, %q}, want {user, %q, %q, %q}", i, g.Resource, strings.Join(g.Path, " -> "), g.Message, g.Fix, w.path, w.message, w.fix)
		}
		if g.Location.Line != decl.line || !strings.HasSuffix(g.Location.File, "/build_test.go") {
			t.Errorf("problem %d at %s:%d, want build_test.go:%d", i, g.Location.File, g.Location.Line, decl.line)
		}
	}
	// The joined message has one line per problem, in declaration order.
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 || lines[0] != got[0].Error() || lines[2] != got[2].Error() {
		t.Errorf("joined message:\n%s", err)
	}
	var first *resource.BuildError
	if !errors.As(err, &first) || first != got[0] {
		t.Errorf("errors.As found %v, want the first problem", first)
	}
}

// callLog records the calls of the test extension, in order.
type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, s)
}

func (l *callLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// lister is a test extension. Its Transform adds a "list" read action
// where the user declared none, describes the "email" attribute and gives every create action a "source" argument described with the
// domain's name. Its Verify requires an "email" attribute, and checks that
// every resource of the domain was transformed before it runs.
type lister struct{ log *callLog }

var _ resource.Extension = lister{}

func (e lister) Declare(d *resource.Declaration) { d.AddExtension(e) }

func (lister) ExtensionName() string { return "lister" }

func (e lister) Transform(b *resource.BuildContext, d *resource.Declaration) {
	e.log.add("transform " + d.Name)
	d.AddAction(resource.Read{Name: "list", Description: "added by lister", Sort: []resource.Sort{resource.Asc("id")}})
	if a := d.Attribute("email"); a != nil && a.Description == "" {
		a.Description = "checked by lister in " + b.DomainName()
	}
	for _, a := range d.Actions {
		if a.Type == resource.CreateAction {
			a.AddArgument(resource.Argument{Name: "source", Description: "built in " + b.DomainName()})
		}
	}
}

func (e lister) Verify(b *resource.BuildContext, d *resource.Declaration) {
	e.log.add("verify " + d.Name)
	for _, other := range b.Resources() {
		if other.HasExtension("lister") && other.Action("list") == nil {
			d.Problem(resource.Location{}, []string{"lister"}, fmt.Sprintf("verified before %s was transformed", other.Name), "")
		}
	}
	if d.Attribute("email") == nil {
		d.Problem(resource.Location{}, []string{"lister"}, "needs an email attribute", "add an Email field")
	}
}

// plain has no password and no email.
type plain struct {
	ID   int64 `bun:",pk,autoincrement"`
	Name string
}

func TestExtensionTransformsBeforeVerify(t *testing.T) {
	log := &callLog{}
	users := resource.New[member]("user", lister{log}, resource.Actions{
		resource.Read{Name: "list", Limit: 5}, // the user's "list" wins
	})
	groups := declare(resource.New[plain]("group", lister{log}))
	_, err := resource.NewDomain("test", users, groups.ref).Build(t.Context(), testdb.SQLite(t))
	want := fmt.Sprintf(`kiln/resource: resource "group": lister: needs an email attribute; add an Email field (build_test.go:%d)`, groups.line)
	if err == nil || err.Error() != want {
		t.Errorf("Build: %v\nwant %s", err, want)
	}
	if got, want := log.list(), []string{"transform user", "transform group", "verify user", "verify group"}; !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
}

func TestExtensionUserDeclarationWins(t *testing.T) {
	users := resource.New[member]("user", lister{&callLog{}}, resource.Actions{
		resource.Read{Name: "list", Limit: 1, Sort: []resource.Sort{resource.Asc("email")}},
		resource.Create{Name: "register", Accept: []string{"email"},
			Arguments: []resource.Argument{{Name: "source", Description: "the user's"}}},
	})
	notes := resource.New[member]("note", resource.Table("notes"), lister{&callLog{}})
	layer := testdb.SQLite(t)
	d, err := resource.NewDomain("test", users, notes).Build(t.Context(), layer)
	if err != nil {
		t.Fatal(err)
	}
	if err := layer.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	built := d.Declaration(users)
	if n := countActions(built, "list"); n != 1 {
		t.Fatalf("user has %d list actions, want 1", n)
	}
	if l := built.Action("list"); l.Limit != 1 || l.Description != "" {
		t.Errorf("user's list = limit %d %q; want the user's declaration (limit 1)", l.Limit, l.Description)
	}
	if arg := built.Action("register").Argument("source"); arg.Description != "the user's" {
		t.Errorf("register's source argument is %q; want the user's", arg.Description)
	}
	if l := d.Declaration(notes).Action("list"); l == nil || l.Description != "added by lister" {
		t.Errorf("note's list = %+v; want the one lister added", l)
	}
	// The user's list runs as declared: one record, by email.
	for _, email := range []string{"b@example.com", "a@example.com"} {
		if _, err := users.Create(t.Context(), d, "register", resource.Input{"email": email}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := users.Read(t.Context(), d, "list", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Email != "a@example.com" {
		t.Errorf("list read %d records (first %v), want only a@example.com", len(got), got)
	}
}

func countActions(d *resource.Declaration, name string) int {
	n := 0
	for _, a := range d.Actions {
		if a.Name == name {
			n++
		}
	}
	return n
}

func TestBuildClonesDeclarations(t *testing.T) {
	users := resource.New[member]("user", lister{&callLog{}}, resource.Actions{
		resource.Create{Name: "register", Accept: []string{"email", "password"}},
	})
	one, err := resource.NewDomain("one", users).Build(t.Context(), testdb.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	before := one.Describe()
	two, err := resource.NewDomain("two", users).Build(t.Context(), testdb.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	if after := one.Describe(); after != before {
		t.Errorf("building domain two changed domain one:\nbefore\n%s\nafter\n%s", before, after)
	}
	for _, c := range []struct {
		d    *resource.Domain
		want string
	}{{one, "built in one"}, {two, "built in two"}} {
		decl := c.d.Declaration(users)
		if n := countActions(decl, "list"); n != 1 {
			t.Errorf("%s: %d list actions, want 1", c.d.Name(), n)
		}
		if arg := decl.Action("register").Argument("source"); arg == nil || arg.Description != c.want {
			t.Errorf("%s: source argument %+v, want %q", c.d.Name(), arg, c.want)
		}
		if got, want := decl.Attribute("email").Description, "checked by lister in "+c.d.Name(); got != want {
			t.Errorf("%s: email described %q, want %q", c.d.Name(), got, want)
		}
	}
	// The declaration itself is as the user wrote it.
	orig := users.Declaration()
	if len(orig.Actions) != 1 || orig.Action("register").Argument("source") != nil || orig.Attribute("email").Description != "" {
		t.Errorf("Build changed the declared resource: %d actions, source %v, email described %q",
			len(orig.Actions), orig.Action("register").Argument("source"), orig.Attribute("email").Description)
	}
}

func TestDescribe(t *testing.T) {
	users := resource.New[member]("user", lister{&callLog{}}, resource.Actions{
		resource.Create{Name: "register", Accept: []string{"email", "password"},
			Changes: []resource.Change{{Name: "hash", Before: noop}}},
		resource.Read{Name: "by_email", GetBy: []string{"email"}},
		resource.Update{Name: "rename", Accept: []string{"name"}},
	}, resource.Changes{{Name: "audit", On: []resource.ActionType{resource.UpdateAction}, Before: noop}},
		resource.Indexes{{Keys: []string{"name", "created_at"}}})
	build := func() string {
		d, err := resource.NewDomain("accounts", users).Build(t.Context(), testdb.SQLite(t))
		if err != nil {
			t.Fatal(err)
		}
		return d.Describe()
	}
	first, second := build(), build()
	if first != second {
		t.Errorf("two builds describe differently:\n%s\n%s", first, second)
	}
	want := `domain accounts
resource user table=users
  attribute id uuid.UUID pk,required,default
  attribute email string required
  attribute name string 
  attribute password string sensitive
  attribute created_at time.Time readonly,required,default
  identity unique_email (email)
  index (name, created_at)
  action create register accept=[email,password] args=[source] changes=[hash]
  action read by_email accept=[] args=[] changes=[]
  action update rename accept=[name] args=[] changes=[audit]
  action read list accept=[] args=[] changes=[]
  notifiers 0
`
	if first != want {
		t.Errorf("Describe:\n%s\nwant\n%s", first, want)
	}
}

// indexer is a test extension whose Transform adds an index on name and
// created_at, recording whether AddIndex added it.
type indexer struct{ added *bool }

func (e indexer) Declare(d *resource.Declaration) { d.AddExtension(e) }

func (indexer) ExtensionName() string { return "indexer" }

func (e indexer) Transform(_ *resource.BuildContext, d *resource.Declaration) {
	*e.added = d.AddIndex(resource.Index{Keys: []string{"name", "created_at"}})
}

func (indexer) Verify(*resource.BuildContext, *resource.Declaration) {}

// TestAddIndexUserWins: an extension's index is added unless a key or an
// index of the user's begins with its keys, or its keys begin with an
// index of the user's: the user's narrower index stays, and the build
// does not blame it for the extension's wider one.
func TestAddIndexUserWins(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sections []resource.Section
		added    bool
		index    string
	}{
		{"no index of the user's", nil, true, `"members_name_created_at_idx" ON "members" ("name", "created_at")`},
		{"the user's narrower one", []resource.Section{resource.Indexes{{Keys: []string{"name"}}}}, false, `"members_name_idx" ON "members" ("name")`},
		{"the user's wider one", []resource.Section{resource.Indexes{{Keys: []string{"name", "created_at", "email"}}}}, false,
			`"members_name_created_at_email_idx" ON "members" ("name", "created_at", "email")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var added bool
			layer := testdb.SQLite(t)
			sections := append([]resource.Section{resource.Table("members"), indexer{&added}}, tc.sections...)
			if _, err := resource.NewDomain("test", resource.New[member]("member", sections...)).Build(t.Context(), layer); err != nil {
				t.Fatal(err)
			}
			sql, err := layer.MigrationSQL()
			if err != nil {
				t.Fatal(err)
			}
			if added != tc.added || strings.Count(sql, "CREATE INDEX") != 1 || !strings.Contains(sql, tc.index) {
				t.Errorf("added %v (want %v); migration:\n%s\nwant the one index %s", added, tc.added, sql, tc.index)
			}
		})
	}
}
