package tokenresource_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
)

// TestRevokeStoredToken: revoke_token rewrites the stored row to a
// revocation, keeping its expiry, and notifies once with the reason.
func TestRevokeStoredToken(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			s := newStore(t, db, tokenresource.Token{})
			ctx := context.Background()
			exp := hour()
			s.put(t, "a", "user?id=1", "user", exp)
			s.rec.Reset()

			_, err := s.d.Run(ctx, s.tokens, "revoke_token", resource.Input{"token": signed(t, "a", "user?id=1", exp), "reason": "signed_out"})
			if err != nil {
				t.Fatalf("revoke_token: %v", err)
			}
			row := s.row(t, "a")
			if row.Purpose != tokenresource.PurposeRevocation || !row.ExpiresAt.Equal(exp) || row.Subject != "user?id=1" {
				t.Errorf("row after revoke: %+v", row.Fields)
			}
			if !row.Revoked() {
				t.Error("Revoked() is false")
			}
			want := []revoked{{"revoke_stored", "a", "user?id=1", "revocation", revocation.SignedOut}}
			if got := s.rec.revocations(t); !reflect.DeepEqual(got, want) {
				t.Errorf("notifications %+v, want %+v", got, want)
			}
			if n := len(s.rec.All()); n != 1 {
				t.Errorf("%d notifications, want 1", n)
			}
			if s.count(t) != 1 {
				t.Errorf("%d rows, want 1", s.count(t))
			}
		})
	}
}

// TestRevokeUnstoredToken: revoking a token that was never stored writes a
// revocation row with the token's jti, subject and expiry.
func TestRevokeUnstoredToken(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			s := newStore(t, db, tokenresource.Token{})
			ctx := context.Background()
			exp := hour()
			if err := s.s.Revoke(ctx, signed(t, "u", "user?id=7", exp), revocation.SignedOut); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			row := s.row(t, "u")
			if row == nil {
				t.Fatal("no revocation row")
			}
			if row.Purpose != tokenresource.PurposeRevocation || row.Subject != "user?id=7" || !row.ExpiresAt.Equal(exp) {
				t.Errorf("revocation row %+v", row.Fields)
			}
			want := []revoked{{"store_revocation", "u", "user?id=7", "revocation", revocation.SignedOut}}
			if got := s.rec.revocations(t); !reflect.DeepEqual(got, want) {
				t.Errorf("notifications %+v, want %+v", got, want)
			}
			if revoked, err := s.s.IsRevoked(ctx, "u"); err != nil || !revoked {
				t.Errorf("IsRevoked = %v, %v", revoked, err)
			}
		})
	}
}

// TestRevokeJTI revokes by jti: a stored row keeps its expiry; an unstored
// jti gets a revocation that lasts.
func TestRevokeJTI(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			s := newStore(t, db, tokenresource.Token{})
			ctx := context.Background()
			exp := hour()
			s.put(t, "stored", "user?id=1", "user", exp)
			s.rec.Reset()

			if _, err := s.d.Run(ctx, s.tokens, "revoke_jti", resource.Input{"jti": "stored", "subject": "user?id=1", "reason": "revoked"}); err != nil {
				t.Fatalf("revoke_jti: %v", err)
			}
			if err := s.s.RevokeJTI(ctx, "unstored", "user?id=2", revocation.LogOutEverywhere); err != nil {
				t.Fatalf("RevokeJTI: %v", err)
			}
			if row := s.row(t, "stored"); row.Purpose != "revocation" || !row.ExpiresAt.Equal(exp) {
				t.Errorf("stored row %+v", row.Fields)
			}
			row := s.row(t, "unstored")
			if row == nil || row.Purpose != "revocation" || row.Subject != "user?id=2" || row.ExpiresAt.Year() != 9999 {
				t.Fatalf("unstored revocation row %+v", row)
			}
			want := []revoked{
				{"revoke_stored", "stored", "user?id=1", "revocation", revocation.Revoked},
				{"store_revocation", "unstored", "user?id=2", "revocation", revocation.LogOutEverywhere},
			}
			if got := s.rec.revocations(t); !reflect.DeepEqual(got, want) {
				t.Errorf("notifications %+v, want %+v", got, want)
			}
			// The default reason is revoked.
			s.rec.Reset()
			if _, err := s.d.Run(ctx, s.tokens, "revoke_jti", resource.Input{"jti": "third", "subject": "user?id=3"}); err != nil {
				t.Fatal(err)
			}
			if got := s.rec.revocations(t); len(got) != 1 || got[0].Reason != revocation.Revoked {
				t.Errorf("default reason: %+v", got)
			}
		})
	}
}

// TestRevokeRefusesBadInput: a token that is not a JWT, or has no jti or
// sub, is invalid input and writes nothing.
func TestRevokeRefusesBadInput(t *testing.T) {
	s := newStore(t, "sqlite", tokenresource.Token{})
	ctx := context.Background()
	for _, tok := range []string{"garbage", "a.b.c", signed(t, "", "user?id=1", hour()), signed(t, "j", "", hour())} {
		err := s.s.Revoke(ctx, tok, revocation.Revoked)
		var ve *resource.ValidationError
		if !errors.As(err, &ve) || ve.Field != "token" {
			t.Errorf("Revoke(%q) = %v, want a validation error on token", tok, err)
		}
	}
	if err := s.s.RevokeJTI(ctx, "", "user?id=1", revocation.Revoked); !errors.Is(err, resource.ErrInvalid) {
		t.Errorf("RevokeJTI without jti = %v, want ErrInvalid", err)
	}
	if s.count(t) != 0 || len(s.rec.All()) != 0 {
		t.Errorf("bad input wrote %d rows, %d notifications", s.count(t), len(s.rec.All()))
	}
}

// TestRevokeTwice: the second revoke of one token, stored or not, by token
// or by jti, fails with ErrAlreadyRevoked and notifies nothing.
func TestRevokeTwice(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			s := newStore(t, db, tokenresource.Token{})
			ctx := context.Background()
			exp := hour()
			s.put(t, "stored", "user?id=1", "user", exp)
			s.rec.Reset()
			revokes := map[string]func(jti string) error{
				"Revoke": func(jti string) error {
					return s.s.Revoke(ctx, signed(t, jti, "user?id=1", exp), revocation.SignedOut)
				},
				"RevokeJTI": func(jti string) error {
					return s.s.RevokeJTI(ctx, jti, "user?id=1", revocation.Revoked)
				},
			}
			for _, jti := range []string{"stored", "unstored"} {
				if err := revokes["Revoke"](jti); err != nil {
					t.Fatalf("first Revoke(%s): %v", jti, err)
				}
				for name, revoke := range revokes {
					err := revoke(jti)
					if !errors.Is(err, tokenresource.ErrAlreadyRevoked) {
						t.Errorf("%s(%s) again = %v, want ErrAlreadyRevoked", name, jti, err)
					}
				}
			}
			if err := revokes["RevokeJTI"]("third"); err != nil {
				t.Fatal(err)
			}
			if err := revokes["RevokeJTI"]("third"); !errors.Is(err, tokenresource.ErrAlreadyRevoked) {
				t.Errorf("RevokeJTI twice = %v, want ErrAlreadyRevoked", err)
			}
			if got := s.rec.revocations(t); len(got) != 3 {
				t.Errorf("%d notifications for 3 revoked tokens: %+v", len(got), got)
			}
			if msg := tokenresource.ErrAlreadyRevoked.Error(); msg != "kiln/tokenresource: token has already been revoked" {
				t.Errorf("ErrAlreadyRevoked says %q", msg)
			}
		})
	}
}

// TestRevokeConcurrently: of N goroutines revoking one token at once,
// exactly one succeeds; the others get ErrAlreadyRevoked. One
// notification.
func TestRevokeConcurrently(t *testing.T) {
	const goroutines = 8
	for _, db := range concurrentDatabases {
		for _, stored := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/stored=%v", db, stored), func(t *testing.T) {
				s := newStore(t, db, tokenresource.Token{})
				ctx := context.Background()
				for round := range 10 {
					jti := fmt.Sprintf("jti-%d", round)
					exp := hour()
					if stored {
						s.put(t, jti, "user?id=1", "user", exp)
					}
					s.rec.Reset()
					tok := signed(t, jti, "user?id=1", exp)
					errs := make([]error, goroutines)
					var start, wg sync.WaitGroup
					start.Add(1)
					for i := range goroutines {
						wg.Add(1)
						go func() {
							defer wg.Done()
							start.Wait()
							if i%2 == 0 {
								errs[i] = s.s.Revoke(ctx, tok, revocation.SignedOut)
							} else {
								errs[i] = s.s.RevokeJTI(ctx, jti, "user?id=1", revocation.SignedOut)
							}
						}()
					}
					start.Done()
					wg.Wait()
					ok := 0
					for _, err := range errs {
						switch {
						case err == nil:
							ok++
						case !errors.Is(err, tokenresource.ErrAlreadyRevoked):
							t.Errorf("round %d: unexpected error %v", round, err)
						}
					}
					if ok != 1 {
						t.Errorf("round %d: %d revokes succeeded, want exactly 1 (errors %v)", round, ok, errs)
					}
					if got := s.rec.revocations(t); len(got) != 1 || got[0].JTI != jti {
						t.Errorf("round %d: notifications %+v, want one for %s", round, got, jti)
					}
				}
			})
		}
	}
}

// TestRevokeAllForSubject revokes every stored token of one subject in one
// statement, with one notification per token, and nothing else.
func TestRevokeAllForSubject(t *testing.T) {
	const n = 25
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			s := newStore(t, db, tokenresource.Token{})
			ctx := context.Background()
			var want []string
			for i := range n {
				jti := fmt.Sprintf("a-%02d", i)
				s.put(t, jti, "user?id=a", "user", hour())
				want = append(want, jti)
			}
			for i := range 3 {
				s.put(t, fmt.Sprintf("b-%d", i), "user?id=b", "user", hour())
			}
			// A subject that only shares a prefix is another subject.
			s.put(t, "a2", "user?id=a2", "user", hour())
			// A token revoked already is not revoked (nor notified) again.
			s.put(t, "a-revoked", "user?id=a", "user", hour())
			if err := s.s.RevokeJTI(ctx, "a-revoked", "user?id=a", revocation.SignedOut); err != nil {
				t.Fatal(err)
			}
			s.rec.Reset()

			statements := countStatements(s)
			got, err := s.s.RevokeAllForSubject(ctx, "user?id=a", revocation.LogOutEverywhere, tokenresource.RevokeAllOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got != n {
				t.Errorf("revoked %d, want %d", got, n)
			}
			// The epoch bump (one upsert), then one UPDATE: no savepoint,
			// as the action began the transaction itself.
			if stmts := statements(); len(stmts) != 2 || !strings.HasPrefix(stmts[0], "INSERT") || !strings.Contains(stmts[0], "epoch:user?id=a") ||
				!strings.HasPrefix(stmts[1], "UPDATE") {
				t.Errorf("the bulk revoke ran %d statements, want the epoch upsert then one UPDATE:\n%s", len(stmts), strings.Join(stmts, "\n"))
			}
			revs := s.rec.revocations(t)
			var jtis []string
			for _, r := range revs {
				jtis = append(jtis, r.JTI)
				if r.Reason != revocation.LogOutEverywhere || r.Subject != "user?id=a" || r.Purpose != "revocation" || r.Action != "revoke_stored" {
					t.Errorf("notification %+v", r)
				}
			}
			slices.Sort(jtis)
			if !reflect.DeepEqual(jtis, want) {
				t.Errorf("notified jtis %v, want %v", jtis, want)
			}
			if len(s.rec.All()) != n+1 {
				t.Errorf("%d notifications, want %d (the revoked tokens and the epoch bump)", len(s.rec.All()), n+1)
			}
			for _, jti := range []string{"b-0", "b-1", "b-2", "a2"} {
				if row := s.row(t, jti); row.Purpose != "user" {
					t.Errorf("%s of another subject became %q", jti, row.Purpose)
				}
			}
			for _, jti := range want {
				if revoked, err := s.s.IsRevoked(ctx, jti); err != nil || !revoked {
					t.Errorf("IsRevoked(%s) = %v, %v", jti, revoked, err)
				}
			}
			// Nothing left to revoke.
			s.rec.Reset()
			if got, err := s.s.RevokeAllForSubject(ctx, "user?id=a", revocation.LogOutEverywhere, tokenresource.RevokeAllOptions{}); err != nil || got != 0 {
				t.Errorf("second RevokeAllForSubject = %d, %v; want 0", got, err)
			}
			if len(s.rec.revocations(t)) != 0 {
				t.Errorf("the second revoke notified %d revocations", len(s.rec.revocations(t)))
			}
		})
	}
}

// TestRevokeAllForSubjectPurposes narrows the revocation by purpose.
func TestRevokeAllForSubjectPurposes(t *testing.T) {
	purposes := []string{"user", "user", "sign_in", "password_reset"}
	cases := []struct {
		name string
		opts tokenresource.RevokeAllOptions
		want []string // purposes revoked, sorted
	}{
		{"all", tokenresource.RevokeAllOptions{}, []string{"password_reset", "sign_in", "user", "user"}},
		{"include user", tokenresource.RevokeAllOptions{IncludePurposes: []string{"user"}}, []string{"user", "user"}},
		{"include two", tokenresource.RevokeAllOptions{IncludePurposes: []string{"user", "sign_in"}}, []string{"sign_in", "user", "user"}},
		{"include none", tokenresource.RevokeAllOptions{IncludePurposes: []string{}}, nil},
		{"exclude sign_in", tokenresource.RevokeAllOptions{ExcludePurposes: []string{"sign_in"}}, []string{"password_reset", "user", "user"}},
		{"include and exclude", tokenresource.RevokeAllOptions{IncludePurposes: []string{"user", "sign_in"}, ExcludePurposes: []string{"user"}}, []string{"sign_in"}},
		// Revocation rows are never touched, even when included.
		{"include revocation", tokenresource.RevokeAllOptions{IncludePurposes: []string{"revocation"}}, nil},
	}
	for _, db := range databases {
		for _, c := range cases {
			t.Run(db+"/"+c.name, func(t *testing.T) {
				s := newStore(t, db, tokenresource.Token{})
				ctx := context.Background()
				for i, p := range purposes {
					s.put(t, fmt.Sprintf("t%d", i), "user?id=1", p, hour())
					s.put(t, fmt.Sprintf("other%d", i), "user?id=2", p, hour())
				}
				if err := s.s.RevokeJTI(ctx, "gone", "user?id=1", revocation.SignedOut); err != nil {
					t.Fatal(err)
				}
				s.rec.Reset()
				n, err := s.s.RevokeAllForSubject(ctx, "user?id=1", revocation.Revoked, c.opts)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for i, p := range purposes {
					if s.row(t, fmt.Sprintf("t%d", i)).Revoked() {
						got = append(got, p)
					}
					if s.row(t, fmt.Sprintf("other%d", i)).Revoked() {
						t.Errorf("other%d of another subject revoked", i)
					}
				}
				slices.Sort(got)
				if !reflect.DeepEqual(got, c.want) || n != len(c.want) {
					t.Errorf("revoked %d: %v, want %v", n, got, c.want)
				}
				if revs := s.rec.revocations(t); len(revs) != len(c.want) {
					t.Errorf("%d notifications, want %d", len(revs), len(c.want))
				}
			})
		}
	}
}

// TestRevokeAllStoredForSubjectAction runs the action itself, by name.
func TestRevokeAllStoredForSubjectAction(t *testing.T) {
	s := newStore(t, "sqlite", tokenresource.Token{})
	ctx := context.Background()
	s.put(t, "a", "user?id=1", "user", hour())
	s.put(t, "b", "user?id=1", "sign_in", hour())
	s.rec.Reset()
	n, err := resource.Call[int](ctx, s.d, s.tokens, "revoke_all_stored_for_subject", resource.Input{
		"subject": "user?id=1", "reason": "password_changed", "exclude_purposes": []string{"sign_in"}})
	if err != nil || n != 1 {
		t.Fatalf("revoke_all_stored_for_subject = %d, %v; want 1", n, err)
	}
	want := []revoked{{"revoke_stored", "a", "user?id=1", "revocation", revocation.PasswordChanged}}
	if got := s.rec.revocations(t); !reflect.DeepEqual(got, want) {
		t.Errorf("notifications %+v, want %+v", got, want)
	}
	if _, err := resource.Call[int](ctx, s.d, s.tokens, "revoke_all_stored_for_subject", resource.Input{}); !errors.Is(err, resource.ErrInvalid) {
		t.Errorf("without subject: %v, want ErrInvalid", err)
	}
}

// TestRevocationRollsBack: a revocation inside a transaction that fails
// writes nothing and notifies nothing.
func TestRevocationRollsBack(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			s := newStore(t, db, tokenresource.Token{})
			ctx := context.Background()
			s.put(t, "a", "user?id=1", "user", hour())
			s.put(t, "b", "user?id=1", "user", hour())
			s.rec.Reset()
			boom := errors.New("boom")
			err := s.d.InTransaction(ctx, func(ctx context.Context) error {
				if _, err := s.s.RevokeAllForSubject(ctx, "user?id=1", revocation.LogOutEverywhere, tokenresource.RevokeAllOptions{}); err != nil {
					return err
				}
				if err := s.s.RevokeJTI(ctx, "c", "user?id=1", revocation.Revoked); err != nil {
					return err
				}
				// Inside the transaction the revocation is seen.
				if revoked, err := s.s.IsRevoked(ctx, "a"); err != nil || !revoked {
					return fmt.Errorf("IsRevoked inside = %v, %v", revoked, err)
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("InTransaction = %v", err)
			}
			if n := len(s.rec.All()); n != 0 {
				t.Errorf("a rolled-back revocation notified %d times", n)
			}
			for _, jti := range []string{"a", "b"} {
				if revoked, err := s.s.IsRevoked(ctx, jti); err != nil || revoked {
					t.Errorf("IsRevoked(%s) after rollback = %v, %v", jti, revoked, err)
				}
			}
			if s.row(t, "c") != nil {
				t.Error("the rolled-back revocation row exists")
			}
		})
	}
}

// countStatements starts counting the SQL statements the store's database
// runs, BEGIN and COMMIT aside; the returned func stops and returns them.
func countStatements(s *store) func() []string {
	h := &statementHook{on: true}
	s.layer.DB().AddQueryHook(h)
	return func() []string {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.on = false
		return h.stmts
	}
}

type statementHook struct {
	mu    sync.Mutex
	on    bool
	stmts []string
}

func (h *statementHook) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}

func (h *statementHook) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	switch e.Query {
	case "BEGIN", "COMMIT", "ROLLBACK":
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.on {
		h.stmts = append(h.stmts, e.Query)
	}
}

var _ bun.QueryHook = (*statementHook)(nil)

// TestEmptyReasonIsRevoked: the Go API with no reason revokes with the
// default reason, revoked, as the actions do.
func TestEmptyReasonIsRevoked(t *testing.T) {
	s := newStore(t, "sqlite", tokenresource.Token{})
	ctx := context.Background()
	s.put(t, "a", "user?id=1", "user", hour())
	s.put(t, "b", "user?id=2", "user", hour())
	s.rec.Reset()
	if err := s.s.Revoke(ctx, signed(t, "t", "user?id=1", hour()), ""); err != nil {
		t.Fatal(err)
	}
	if err := s.s.RevokeJTI(ctx, "a", "user?id=1", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.s.RevokeAllForSubject(ctx, "user?id=2", "", tokenresource.RevokeAllOptions{}); err != nil {
		t.Fatal(err)
	}
	revs := s.rec.revocations(t)
	if len(revs) != 3 {
		t.Fatalf("notifications %+v", revs)
	}
	for _, r := range revs {
		if r.Reason != revocation.Revoked {
			t.Errorf("%s revoked with reason %q, want revoked", r.JTI, r.Reason)
		}
	}
}

// TestRevokeStatements: a revocation on its own is one transaction with
// no savepoint: one UPDATE for a stored token (a sign-out), the UPDATE and
// an INSERT for a jti never stored, and the same for one revoked already,
// which fails with ErrAlreadyRevoked.
func TestRevokeStatements(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			s := newStore(t, db, tokenresource.Token{})
			ctx := context.Background()
			s.put(t, "stored", "user?id=a", "user", hour())
			for _, c := range []struct {
				jti   string
				verbs []string
				err   error
			}{
				{"stored", []string{"UPDATE"}, nil},
				{"never-stored", []string{"UPDATE", "INSERT"}, nil},
				{"stored", []string{"UPDATE", "INSERT"}, tokenresource.ErrAlreadyRevoked},
			} {
				statements := countStatements(s)
				err := s.s.RevokeJTI(ctx, c.jti, "user?id=a", revocation.SignedOut)
				stmts := statements()
				if !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
					t.Fatalf("revoke %s: %v, want %v", c.jti, err, c.err)
				}
				var verbs []string
				for _, st := range stmts {
					verb, _, _ := strings.Cut(st, " ")
					verbs = append(verbs, verb)
				}
				if !slices.Equal(verbs, c.verbs) {
					t.Errorf("revoke %s ran\n%s\nwant %v", c.jti, strings.Join(stmts, "\n"), c.verbs)
				}
			}
		})
	}
}

// TestRevokeAllForSubjectUsesIndex: the token resource indexes subject,
// and the UPDATE that revokes every token of a subject finds them
// through that index rather than by reading the whole table.
func TestRevokeAllForSubjectUsesIndex(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			s := newStore(t, db, tokenresource.Token{})
			ctx := context.Background()
			for i := range 20 {
				s.put(t, fmt.Sprint("t", i), fmt.Sprintf("user?id=%d", i%4), tokenresource.PurposeUser, hour())
			}
			h := &testdb.Statements{}
			s.layer.DB().AddQueryHook(h)
			h.Record()
			if n, err := s.s.RevokeAllForSubject(ctx, "user?id=1", revocation.LogOutEverywhere, tokenresource.RevokeAllOptions{}); err != nil || n != 5 {
				t.Fatalf("RevokeAllForSubject = %d, %v; want 5", n, err)
			}
			var update string
			for _, q := range h.Stop() {
				if strings.HasPrefix(q, "UPDATE") {
					update = q
				}
			}
			if update == "" {
				t.Fatal("no UPDATE ran")
			}
			plan := explain(t, s.layer.DB(), db, update)
			if !strings.Contains(plan, "tokens_subject_idx") {
				t.Errorf("the revocation's plan does not use tokens_subject_idx:\n%s\nof %s", plan, update)
			}
		})
	}
}

// explain returns the query plan of query, one line a step. On
// PostgreSQL, whose planner reads a table this small whole, it is the
// plan with sequential scans turned off: the one an index makes possible.
func explain(t *testing.T, db *bun.DB, name, query string) string {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	prefix := "EXPLAIN QUERY PLAN "
	if name == "postgres" {
		prefix = "EXPLAIN "
		if _, err := tx.ExecContext(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := tx.QueryContext(ctx, prefix+query)
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprint(vals[len(vals)-1]))
	}
	return strings.Join(lines, "\n")
}
