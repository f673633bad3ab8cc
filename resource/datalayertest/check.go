package datalayertest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-go/kiln/resource"
)

// create runs the item action (a create) with in and fails t on error.
func (e *env) create(t *testing.T, action string, in resource.Input) *item {
	t.Helper()
	it, err := e.items.Create(e.ctx, e.d, action, in)
	if err != nil {
		t.Fatalf("create %v: %v", in, err)
	}
	return it
}

// items reads items, sorted by code unless opts sort otherwise.
func (e *env) list(t *testing.T, opts ...resource.RunOption) []*item {
	t.Helper()
	got, err := e.items.Read(e.ctx, e.d, "list", nil, opts...)
	if err != nil {
		t.Fatalf("read items: %v", err)
	}
	return got
}

// byCode reads the items of the database by code.
func (e *env) byCode(t *testing.T) map[string]*item {
	t.Helper()
	m := map[string]*item{}
	for _, it := range e.list(t) {
		m[it.Code] = it
	}
	return m
}

// tagKeys lists the keys of every tag in the database, sorted.
func (e *env) tagKeys(t *testing.T) []string {
	t.Helper()
	got, err := e.tags.Read(e.ctx, e.d, "list", nil, resource.SortBy(resource.Asc("key")))
	if err != nil {
		t.Fatalf("read tags: %v", err)
	}
	keys := make([]string, len(got))
	for i, tg := range got {
		keys[i] = tg.Key
	}
	return keys
}

// codes returns the items' codes, in order.
func codes(items []*item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Code
	}
	return out
}

// sortedCodes returns the items' codes, sorted.
func sortedCodes(items []*item) []string {
	out := codes(items)
	slices.Sort(out)
	return out
}

// diffItem describes how got differs from want, or returns "".
func diffItem(got, want *item) string {
	var diffs []string
	add := func(field string, g, w any) { diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", field, g, w)) }
	if got.ID != want.ID {
		add("id", got.ID, want.ID)
	}
	if got.Code != want.Code {
		add("code", got.Code, want.Code)
	}
	if got.Name != want.Name {
		add("name", got.Name, want.Name)
	}
	if !equalPtr(got.Note, want.Note, func(a, b string) bool { return a == b }) {
		add("note", fmtPtr(got.Note), fmtPtr(want.Note))
	}
	if got.Rank != want.Rank {
		add("rank", got.Rank, want.Rank)
	}
	if got.Active != want.Active {
		add("active", got.Active, want.Active)
	}
	if got.Status != want.Status {
		add("status", got.Status, want.Status)
	}
	if !got.DueAt.Equal(want.DueAt) {
		add("due_at", got.DueAt, want.DueAt)
	}
	if !equalPtr(got.DoneAt, want.DoneAt, time.Time.Equal) {
		add("done_at", fmtPtr(got.DoneAt), fmtPtr(want.DoneAt))
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		add("created_at", got.CreatedAt, want.CreatedAt)
	}
	if !got.UpdatedAt.Equal(want.UpdatedAt) {
		add("updated_at", got.UpdatedAt, want.UpdatedAt)
	}
	return strings.Join(diffs, "; ")
}

func equalPtr[T any](a, b *T, eq func(T, T) bool) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return eq(*a, *b)
}

func fmtPtr[T any](p *T) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

func ptr[T any](v T) *T { return &v }

// wantNotFound fails t unless err is ErrNotFound, as a *NotFoundError of
// that resource and action.
func wantNotFound(t *testing.T, err error, res, action string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s.%s: err = nil, want ErrNotFound", res, action)
	}
	if !errors.Is(err, resource.ErrNotFound) {
		t.Fatalf("%s.%s: err = %v, want errors.Is(err, resource.ErrNotFound)", res, action, err)
	}
	var nf *resource.NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("%s.%s: err = %T %v, want a *resource.NotFoundError", res, action, err, err)
	}
	if nf.Resource != res || nf.Action != action {
		t.Errorf("NotFoundError = {Resource: %q, Action: %q}, want {%q, %q}", nf.Resource, nf.Action, res, action)
	}
}

// wantConflict fails t unless err is ErrConflict, as a *ConflictError on
// that identity and its fields.
func wantConflict(t *testing.T, err error, res, identity string, fields ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want a conflict on %s", identity)
	}
	if !errors.Is(err, resource.ErrConflict) {
		t.Fatalf("err = %v, want errors.Is(err, resource.ErrConflict)", err)
	}
	var ce *resource.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %T %v, want a *resource.ConflictError", err, err)
	}
	if ce.Resource != res || ce.Identity != identity || !slices.Equal(ce.Fields, fields) {
		t.Errorf("ConflictError = {Resource: %q, Identity: %q, Fields: %q}, want {%q, %q, %q}",
			ce.Resource, ce.Identity, ce.Fields, res, identity, fields)
	}
	if !strings.Contains(err.Error(), identity) {
		t.Errorf("err = %q, want it to name the identity %q", err, identity)
	}
}

// between fails t unless lo <= got <= hi.
func between(t *testing.T, what string, got, lo, hi time.Time) {
	t.Helper()
	if got.Before(lo) || got.After(hi) {
		t.Errorf("%s = %v, want between %v and %v", what, got, lo, hi)
	}
}

// now is the current time as kiln's defaults give it: UTC, microseconds.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
