package resource

import (
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
)

// Attribute describes one column of a resource. Attributes are read from the
// record struct: the column name and key flags from its `bun` tag (as bun
// reads them), kiln's metadata from its `kiln` tag:
//
//	HashedPassword string    `bun:",notnull" kiln:"sensitive"`
//	CreatedAt      time.Time `kiln:"readonly,default:now"`
//	UpdatedAt      time.Time `kiln:"readonly,default:now,update_default:now"`
//	ID             uuid.UUID `bun:",pk" kiln:"default:uuid"`
//
// kiln tag words: sensitive, readonly, required, default:now, default:uuid,
// update_default:now. The Attributes section overrides metadata by name.
type Attribute struct {
	// Name is the column name, as bun names it (snake_case of the field name
	// unless the bun tag names it).
	Name string
	// Sensitive attributes are redacted wherever kiln prints a record and
	// their values never appear in error messages.
	Sensitive bool
	// ReadOnly attributes cannot be accepted by an action (not writable);
	// only changes and defaults set them. Zero value: writable.
	ReadOnly bool
	// Required attributes may not be left nil or zero by a create, nor
	// emptied by an update (the inverse of allow-nil); a bool's false, and a
	// number's 0 that the input or a change set, count as given. Zero value: taken from the bun tag,
	// where pk and notnull columns are required (autoincrement ones are not).
	Required bool
	// Default gives the value of an attribute left zero by a create.
	Default func() any
	// UpdateDefault gives the value set on every update (updated_at).
	UpdateDefault func() any
	// Description documents the attribute.
	Description string

	// The following are read from the struct and cannot be declared.

	// Field is the Go field name; Index its reflect index path.
	Field string
	Index []int
	// Type is the Go type of the field.
	Type reflect.Type
	// PrimaryKey, Unique, NotNull, AutoIncrement mirror the bun tag.
	PrimaryKey, Unique, NotNull, AutoIncrement bool
	// Nullable attributes may hold NULL: a pointer field, or a field
	// tagged nullzero (whose zero value is stored as NULL), that is neither
	// pk nor notnull. Sorts put NULL after every value (see Sort).
	Nullable bool
}

// IsNull reports whether v, a value of the attribute's field, is stored as
// NULL: a nil pointer, or the zero value of a nullzero field.
func (a *Attribute) IsNull(v reflect.Value) bool { return a.Nullable && isZero(v) }

// Writable reports whether actions may accept the attribute.
func (a *Attribute) Writable() bool { return !a.ReadOnly }

// AllowNil reports whether a create may leave the attribute nil or zero.
func (a *Attribute) AllowNil() bool { return !a.Required }

// Attributes is the section that overrides attribute metadata by name:
//
//	resource.Attributes{{Name: "hashed_password", Sensitive: true}}
//
// Flags are added to what the struct tags say (an override cannot make a
// sensitive attribute public); non-nil funcs replace the defaults. Naming an
// attribute the struct does not have is a build error.
type Attributes []Attribute

// Declare implements Section.
func (s Attributes) Declare(d *Declaration) {
	loc := d.Location
	for _, o := range s {
		a := d.Attribute(o.Name)
		if a == nil {
			d.Problem(loc, []string{"attributes", o.Name}, "no such attribute",
				fmt.Sprintf("the record struct %s has no field for column %q; add one%s", d.Type, o.Name, suggestion(o.Name, d.attributeNames())))
			continue
		}
		mergeAttribute(a, o)
	}
}

func mergeAttribute(a *Attribute, o Attribute) {
	a.Sensitive = a.Sensitive || o.Sensitive
	a.ReadOnly = a.ReadOnly || o.ReadOnly
	a.Required = a.Required || o.Required
	if o.Default != nil {
		a.Default = o.Default
	}
	if o.UpdateDefault != nil {
		a.UpdateDefault = o.UpdateDefault
	}
	if o.Description != "" {
		a.Description = o.Description
	}
}

// Now is a Default for time attributes: the current time in UTC, truncated to
// microseconds so that it survives a round trip through every database.
func Now() any { return time.Now().UTC().Truncate(time.Microsecond) }

// NewUUID is a Default for uuid.UUID attributes.
func NewUUID() any { return uuid.New() }

// parseAttributes reads the attributes of struct type t, flattening embedded
// structs as bun does.
func parseAttributes(t reflect.Type, index []int, out *[]*Attribute, problems *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		idx := append(append([]int(nil), index...), i)
		bunTag, hasBun := f.Tag.Lookup("bun")
		if bunTag == "-" {
			continue
		}
		if f.Anonymous {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Name() == "BaseModel" && strings.HasSuffix(ft.PkgPath(), "uptrace/bun") {
				continue
			}
			if ft.Kind() == reflect.Struct && !hasBun {
				if f.Type.Kind() == reflect.Pointer {
					*problems = append(*problems, fmt.Sprintf("embedded field %s is a pointer; embed the struct value", f.Name))
					continue
				}
				parseAttributes(ft, idx, out, problems)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		name, opts := parseBunTag(bunTag)
		if _, rel := opts["rel"]; rel {
			continue
		}
		if _, m2m := opts["m2m"]; m2m {
			continue
		}
		if name == "" {
			name = underscore(f.Name)
		}
		a := &Attribute{
			Name:  name,
			Field: f.Name,
			Index: idx,
			Type:  f.Type,
		}
		_, a.PrimaryKey = opts["pk"]
		_, a.Unique = opts["unique"]
		_, a.NotNull = opts["notnull"]
		_, a.AutoIncrement = opts["autoincrement"]
		if a.PrimaryKey || a.NotNull {
			a.Required = true
		}
		if a.AutoIncrement {
			a.Required = false
		}
		_, nullZero := opts["nullzero"]
		a.Nullable = !a.PrimaryKey && !a.NotNull && (f.Type.Kind() == reflect.Pointer || nullZero)
		for _, w := range strings.Split(f.Tag.Get("kiln"), ",") {
			switch w = strings.TrimSpace(w); w {
			case "":
			case "sensitive":
				a.Sensitive = true
			case "readonly":
				a.ReadOnly = true
			case "required":
				a.Required = true
			case "default:now":
				a.Default = Now
			case "default:uuid":
				a.Default = NewUUID
			case "update_default:now":
				a.UpdateDefault = Now
			default:
				*problems = append(*problems, fmt.Sprintf("field %s: unknown kiln tag %q; use sensitive, readonly, required, default:now, default:uuid or update_default:now", f.Name, w))
			}
		}
		*out = append(*out, a)
	}
}

// parseBunTag splits `name,opt,opt:value` as bun does.
func parseBunTag(tag string) (string, map[string]string) {
	opts := map[string]string{}
	if tag == "" {
		return "", opts
	}
	parts := strings.Split(tag, ",")
	name := parts[0]
	if strings.Contains(name, ":") {
		// "table:users" style first part: an option, not a name.
		k, v, _ := strings.Cut(name, ":")
		opts[k] = v
		name = ""
	}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, ":")
		opts[k] = v
	}
	return name, opts
}

// underscore converts a Go field name to bun's column name.
func underscore(s string) string {
	r := make([]rune, 0, len(s)+5)
	rs := []rune(s)
	for i, c := range rs {
		if unicode.IsUpper(c) {
			if i > 0 && i+1 < len(rs) && (unicode.IsLower(rs[i-1]) || unicode.IsLower(rs[i+1])) {
				r = append(r, '_', unicode.ToLower(c))
			} else {
				r = append(r, unicode.ToLower(c))
			}
		} else {
			r = append(r, c)
		}
	}
	return string(r)
}

// isZero reports whether v (a field value) is nil or its type's zero value.
func isZero(v reflect.Value) bool { return !v.IsValid() || v.IsZero() }
