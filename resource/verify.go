package resource

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/go-playground/validator/v10"

	"github.com/kiln-go/kiln/dsl"
)

// verifyDeclaration checks the core sections of a (transformed)
// declaration and records every problem on it.
func verifyDeclaration(v *validator.Validate, d *Declaration) {
	loc := d.Location
	if d.Name == "" {
		d.Problem(loc, nil, "the resource has no name", `name it: resource.New[T]("user", …)`)
	}
	if d.Table == "" {
		d.Problem(loc, []string{"table"}, "the table name is empty", `declare resource.Table("users")`)
	}
	if d.Type == nil || d.Type.Kind() != reflect.Struct {
		return
	}
	if len(d.PrimaryKey()) == 0 {
		d.Problem(loc, []string{"attributes"}, fmt.Sprintf("%s has no primary key", d.Type),
			"tag the key field `bun:\",pk\"`")
	}
	if msg := checkStructRules(v, d.Type); msg != "" {
		d.Problem(loc, []string{"attributes"}, msg, "use validator rules go-playground/validator knows")
	}
	for i, id := range d.Identities {
		path := []string{"identities", id.Name}
		if id.Name == "" {
			d.Problem(id.location, []string{"identities"}, "an identity has no name", "name it: resource.Identity{Name: \"unique_email\", …}")
		}
		if len(id.Keys) == 0 {
			d.Problem(id.location, path, "the identity has no keys", "list its attributes in Keys")
		}
		for _, k := range id.Keys {
			if d.Attribute(k) == nil {
				d.Problem(id.location, append(path, "keys"), fmt.Sprintf("unknown attribute %q", k), didYouMean(k, d.attributeNames()))
			}
		}
		if dup := repeated(id.Keys); dup != "" {
			d.Problem(id.location, path, fmt.Sprintf("names key %q twice", dup), "name each key once")
		}
		// Each identity has its unique index: two over the same keys
		// would be two indexes for one rule.
		for _, prev := range d.Identities[:i] {
			if len(id.Keys) > 0 && slices.Equal(sortedCopy(prev.Keys), sortedCopy(id.Keys)) {
				d.Problem(id.location, path, fmt.Sprintf("has the keys of identity %q (%s)", prev.Name, strings.Join(prev.Keys, ", ")),
					"drop one; a `bun:\",unique\"` tag declares the identity unique_<column> already")
				break
			}
		}
	}
	verifyIndexes(d)
	for i, c := range d.Changes {
		name := c.Name
		if name == "" {
			name = fmt.Sprintf("#%d", i+1)
		}
		if c.Prepare == nil && c.Before == nil && c.After == nil {
			d.Problem(loc, []string{"changes", name}, "the change has no Prepare, Before or After", "give it a Prepare, a Before or an After func")
		}
	}
	for _, a := range d.Actions {
		verifyAction(v, d, a)
	}
}

func verifyAction(v *validator.Validate, d *Declaration, a *ActionDecl) {
	loc := a.location
	name := a.Name
	if name == "" {
		name = "(unnamed " + a.Type.String() + ")"
		d.Problem(loc, []string{"actions", name}, "the action has no name", "give it a Name")
	}
	path := func(p ...string) []string { return append([]string{"actions", name}, p...) }
	for _, acc := range a.Accept {
		if acc == AcceptAll {
			continue
		}
		attr := d.Attribute(acc)
		switch {
		case attr == nil:
			d.Problem(loc, path("accept"), fmt.Sprintf("unknown attribute %q", acc), didYouMean(acc, d.attributeNames()))
		case !attr.Writable():
			d.Problem(loc, path("accept"), fmt.Sprintf("attribute %q is read-only", acc), "remove it from Accept, or set it in a change")
		}
	}
	argNames := map[string]bool{}
	for _, arg := range a.Arguments {
		if arg.Name == "" {
			d.Problem(loc, path("arguments"), "an argument has no name", "give it a Name")
			continue
		}
		if argNames[arg.Name] {
			d.Problem(loc, path("arguments", arg.Name), "declared twice", "give each argument its own name")
		}
		argNames[arg.Name] = true
		if slices.Contains(a.Accept, arg.Name) {
			d.Problem(loc, path("arguments", arg.Name), "has the name of an accepted attribute", "rename the argument or drop the attribute from Accept")
		}
		if arg.Validate != "" {
			t := arg.Type
			if t == nil {
				t = reflect.TypeFor[string]()
			}
			if msg := checkVarRule(v, t, arg.Validate); msg != "" {
				d.Problem(loc, path("arguments", arg.Name, "validate"), msg, "use validator rules go-playground/validator knows")
			}
		}
	}
	for _, r := range a.inputRules {
		if attr := d.Attribute(r.name); attr != nil {
			if msg := checkVarRule(v, attr.Type, r.rules); msg != "" {
				d.Problem(loc, path("input", r.name, "validate"), msg, "use validator rules go-playground/validator knows")
			}
		}
	}
	for _, g := range a.GetBy {
		argNames[g] = true
		if d.Attribute(g) == nil {
			d.Problem(loc, path("get_by"), fmt.Sprintf("unknown attribute %q", g), didYouMean(g, d.attributeNames()))
		}
	}
	walkFilter(a.Filter, func(c Cmp) {
		if _, problem, fix := d.resolvePath(c.Attr); problem != "" {
			d.Problem(loc, path("filter"), problem, fix)
		}
		if av, ok := c.Value.(argValue); ok && !argNames[string(av)] {
			fix := fmt.Sprintf(`declare it: Arguments: []resource.Argument{{Name: %q}}`, string(av))
			if a.input != nil && a.input != reflect.TypeFor[Input]() {
				fix = fmt.Sprintf("add a field for it to %s", a.input.Name())
			}
			d.Problem(loc, path("filter"), fmt.Sprintf("uses argument %q, which the action does not declare", string(av)), fix)
		}
	})
	for _, s := range a.Sort {
		if problem, fix := d.checkSortPath(s.Attr); problem != "" {
			d.Problem(loc, path("sort"), problem, fix)
		}
	}
	if a.Limit < 0 {
		d.Problem(loc, path("limit"), "is negative", "use 0 for no limit")
	}
	verifyPageSize(d, a, path("page_size"))
	if a.Upsert && a.SkipOnConflict {
		d.Problem(loc, path("upsert"), "Upsert and SkipOnConflict exclude each other", "keep one: Upsert updates the conflicting row, SkipOnConflict leaves it")
	}
	if a.Upsert || a.SkipOnConflict {
		if a.UpsertIdentity != "" && d.Identity(a.UpsertIdentity) == nil {
			var ids []string
			for _, id := range d.Identities {
				ids = append(ids, id.Name)
			}
			d.Problem(loc, path("upsert_identity"), fmt.Sprintf("unknown identity %q", a.UpsertIdentity), didYouMean(a.UpsertIdentity, ids))
		}
		for _, f := range a.UpsertFields {
			if d.Attribute(f) == nil {
				d.Problem(loc, path("upsert_fields"), fmt.Sprintf("unknown attribute %q", f), didYouMean(f, d.attributeNames()))
			}
		}
	}
	switch {
	case a.runConflict:
		d.Problem(loc, path("run"), "the action has two Run funcs: the Generic's and DefineGeneric's", "drop the Generic's Run: DefineGeneric's typed func runs the action")
	case a.Type == GenericAction && a.Run == nil:
		d.Problem(loc, path("run"), "the generic action has no Run func", "give it one: Run: func(ctx context.Context, cs *resource.AnyChangeset) (any, error)")
	}
	for i, val := range a.Validations {
		if val.Check == nil {
			d.Problem(loc, path("validations", orIndex(val.Name, i)), "the validation has no Check func", "give it one")
		}
	}
	for i, c := range a.Changes {
		if c.Prepare == nil && c.Before == nil && c.After == nil {
			d.Problem(loc, path("changes", orIndex(c.Name, i)), "the change has no Prepare, Before or After", "give it a Prepare, a Before or an After func")
		}
	}
	for i, p := range a.Preparations {
		if p.Prepare == nil {
			d.Problem(loc, path("preparations", orIndex(p.Name, i)), "the preparation has no Prepare func", "give it one")
		}
	}
}

// verifyPageSize checks the page bounds of a read, and that its pages can
// be read: a cursor carries the values of the sort attributes and of the
// primary key, so none may be sensitive.
func verifyPageSize(d *Declaration, a *ActionDecl, path []string) {
	ps := a.PageSize
	if ps == (PageSize{}) {
		return
	}
	if ps.Default < 0 || ps.Max < 0 {
		d.Problem(a.location, path, "is negative", "use 0 for the default size, or for no maximum")
	}
	if ps.Max > 0 && ps.Default > ps.Max {
		d.Problem(a.location, path, fmt.Sprintf("Default %d is above Max %d", ps.Default, ps.Max), "lower Default or raise Max")
	}
	if a.Get {
		d.Problem(a.location, path, "a read declared with Get or GetBy returns one record, not pages", "drop PageSize, or declare another read for many records")
	}
	var keys []string
	for _, s := range a.Sort {
		if strings.Contains(s.Attr, ".") {
			d.Problem(a.location, path, fmt.Sprintf("pages cannot be sorted by %q: a cursor holds the record's own attributes", s.Attr),
				"sort pages by attributes of the record")
			continue
		}
		keys = append(keys, s.Attr)
	}
	for _, pk := range d.PrimaryKey() {
		keys = append(keys, pk.Name)
	}
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		if attr := d.Attribute(k); attr != nil && attr.Sensitive {
			d.Problem(a.location, path, fmt.Sprintf("pages are sorted by %q, which is sensitive: a cursor would carry its value", k),
				"sort by attributes that are not sensitive")
		}
	}
}

func orIndex(name string, i int) string {
	if name != "" {
		return name
	}
	return fmt.Sprintf("#%d", i+1)
}

// checkStructRules runs the validator over a zero record so that an unknown
// rule in a `validate` tag is a build error, not a panic on first use.
func checkStructRules(v *validator.Validate, t reflect.Type) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprintf("bad validate tag: %v", r)
		}
	}()
	_ = v.Struct(reflect.New(t).Interface())
	return ""
}

func checkVarRule(v *validator.Validate, t reflect.Type, rule string) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			// The validator names the field, which a lone value has not.
			msg = fmt.Sprintf("bad rule %q: %s", rule, strings.TrimSuffix(fmt.Sprint(r), " on field ''"))
		}
	}()
	_ = v.Var(reflect.New(t).Elem().Interface(), rule)
	return ""
}

// didYouMean suggests the candidate nearest to name, or lists them.
func didYouMean(name string, candidates []string) string {
	if best := dsl.Nearest(name, candidates); best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	if len(candidates) == 0 {
		return ""
	}
	return "use one of: " + strings.Join(candidates, ", ")
}

// suggestion is didYouMean as a clause to append to a sentence.
func suggestion(name string, candidates []string) string {
	if s := didYouMean(name, candidates); s != "" {
		return "; " + s
	}
	return ""
}

// DidYouMean is the suggestion kiln's build errors use, for extensions:
// `did you mean "email"?` for a near miss, else the list of candidates.
func DidYouMean(name string, candidates []string) string { return didYouMean(name, candidates) }

// verifyIndexes checks the Indexes of d: known attributes, and none that
// the primary key, an identity or another index serves already (see
// Index).
func verifyIndexes(d *Declaration) {
	for i, ix := range d.Indexes {
		path := []string{"indexes", strings.Join(ix.Keys, ",")}
		if len(ix.Keys) == 0 {
			d.Problem(ix.location, []string{"indexes"}, "an index has no keys", "list its attributes in Keys")
			continue
		}
		known := true
		for _, k := range ix.Keys {
			if d.Attribute(k) == nil {
				known = false
				d.Problem(ix.location, append(path, "keys"), fmt.Sprintf("unknown attribute %q", k), didYouMean(k, d.attributeNames()))
			}
		}
		if !known {
			continue
		}
		if dup := repeated(ix.Keys); dup != "" {
			d.Problem(ix.location, path, fmt.Sprintf("names key %q twice", dup), "name each key once")
			continue
		}
		// Against the others: the earlier ones, and the longer later ones
		// (of two equal ones, the second is reported).
		others := slices.Clone(d.Indexes[:i])
		for _, later := range d.Indexes[i+1:] {
			if len(later.Keys) > len(ix.Keys) {
				others = append(others, later)
			}
		}
		if by := d.indexedBy(ix.Keys, others); by != "" {
			d.Problem(ix.location, path, by+" begins with these keys and serves the same lookups", "drop this index")
		}
	}
}

// repeated returns a key that keys has twice, or "".
func repeated(keys []string) string {
	for i, k := range keys {
		if slices.Contains(keys[:i], k) {
			return k
		}
	}
	return ""
}
