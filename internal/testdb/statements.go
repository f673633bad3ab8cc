package testdb

import (
	"context"
	"strings"
	"sync"

	"github.com/uptrace/bun"
)

// Statements is a bun query hook (add it with DB().AddQueryHook) that
// records the SQL statements a database runs between Record and Stop, for
// tests that count them.
type Statements struct {
	mu        sync.Mutex
	recording bool
	queries   []string
}

var _ bun.QueryHook = (*Statements)(nil)

// BeforeQuery implements bun.QueryHook.
func (s *Statements) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}

// AfterQuery implements bun.QueryHook.
func (s *Statements) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recording {
		s.queries = append(s.queries, e.Query)
	}
}

// Record starts recording, forgetting what was recorded before.
func (s *Statements) Record() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recording, s.queries = true, nil
}

// Stop stops recording and returns the statements recorded.
func (s *Statements) Stop() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recording = false
	return s.queries
}

// Verbs returns each statement's first word, upper-cased: SELECT, BEGIN…
func Verbs(queries []string) []string {
	verbs := make([]string, len(queries))
	for i, q := range queries {
		verb, _, _ := strings.Cut(strings.TrimSpace(q), " ")
		verbs[i] = strings.ToUpper(verb)
	}
	return verbs
}
