package resource_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
)

// precommitter is a PrecommitNotifier that writes down what it is told
// before each commit and what it is notified of after; check, when set,
// runs in Precommit and gives its error.
type precommitter struct {
	calls    [][]string // per Precommit, "action email" of each notification
	notified []string   // per Notify, "action email"
	// notifiedAt is len(notified) at each Precommit.
	notifiedAt []int
	check      func(ctx context.Context, ns []resource.Notification) error
}

var _ resource.PrecommitNotifier = (*precommitter)(nil)

// said is "action email" of a notification of an account.
func said(n resource.Notification) string {
	if a, ok := resource.RecordAs[account](n); ok {
		return n.Action + " " + a.Email
	}
	return n.Resource + "." + n.Action
}

func (p *precommitter) Notify(_ context.Context, n resource.Notification) error {
	p.notified = append(p.notified, said(n))
	return nil
}

func (p *precommitter) Precommit(ctx context.Context, ns []resource.Notification) error {
	var call []string
	for _, n := range ns {
		call = append(call, said(n))
	}
	p.calls = append(p.calls, call)
	p.notifiedAt = append(p.notifiedAt, len(p.notified))
	if p.check != nil {
		return p.check(ctx, ns)
	}
	return nil
}

// A PrecommitNotifier is told once per committed transaction, before any
// notifier is notified, of exactly the notifications it then gets, in
// order: the writes of one InTransaction together, without those of a
// nested write or group that failed and was rolled back to its
// savepoint. A transaction rolled back tells it nothing. Two such
// notifiers are each told of their own.
func TestPrecommitNotifierOncePerTransaction(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			var b *bank
			var recAt []int // notifications b.rec had at each Precommit
			pre := &precommitter{check: func(context.Context, []resource.Notification) error {
				recAt = append(recAt, b.rec.Len())
				return nil
			}}
			other := &precommitter{}
			b = newBank(t, db, resource.Notifiers(pre, other))
			ctx := t.Context()
			open := func(ctx context.Context, email string) (*account, error) {
				return b.accounts.Create(ctx, b.d, "open", resource.Input{"email": email, "team": "red"})
			}
			err := b.d.InTransaction(ctx, func(ctx context.Context) error {
				ada, err := open(ctx, "ada@example.com")
				if err != nil {
					return err
				}
				if _, err := open(ctx, "bob@example.com"); err != nil {
					return err
				}
				// A nested group that fails after a write: rolled back.
				if err := b.d.InTransaction(ctx, func(ctx context.Context) error {
					if _, err := open(ctx, "cy@example.com"); err != nil {
						return err
					}
					return errors.New("changed my mind")
				}); err == nil {
					t.Error("the nested group succeeded; want its error")
				}
				// A nested write that fails after writing: rolled back.
				if _, err := b.accounts.Create(ctx, b.d, "open", resource.Input{"email": "dee@example.com", "team": "red", "fail": true}); err == nil {
					t.Error("the failing open succeeded")
				}
				if _, err := b.accounts.Update(ctx, b.d, "score", ada, resource.Input{"score": 5}); err != nil {
					return err
				}
				_, err = open(ctx, "eve@example.com")
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"open ada@example.com", "open bob@example.com", "score ada@example.com", "open eve@example.com"}
			for name, p := range map[string]*precommitter{"the first": pre, "the second": other} {
				if len(p.calls) != 1 || !slices.Equal(p.calls[0], want) {
					t.Fatalf("%s PrecommitNotifier was told %q; want once %q", name, p.calls, want)
				}
				if !slices.Equal(p.notified, want) {
					t.Fatalf("%s PrecommitNotifier was notified of %q after commit; want %q", name, p.notified, want)
				}
			}
			if pre.notifiedAt[0] != 0 || other.notifiedAt[0] != 0 || recAt[0] != 0 {
				t.Fatalf("notified of %d, %d and %d before Precommit; want none", pre.notifiedAt[0], other.notifiedAt[0], recAt[0])
			}
			if accounts, _ := b.state(t); !slices.Equal(accounts, []string{"ada@example.com", "bob@example.com", "eve@example.com"}) {
				t.Fatalf("committed accounts %q", accounts)
			}

			// One action, its own transaction; then one rolled back.
			if _, err := open(ctx, "fay@example.com"); err != nil {
				t.Fatal(err)
			}
			if err := b.d.InTransaction(ctx, func(ctx context.Context) error {
				if _, err := open(ctx, "gus@example.com"); err != nil {
					return err
				}
				return errors.New("rolled back")
			}); err == nil {
				t.Fatal("the transaction succeeded; want its error")
			}
			if len(pre.calls) != 2 || !slices.Equal(pre.calls[1], []string{"open fay@example.com"}) || pre.notifiedAt[1] != len(want) {
				t.Fatalf("told %q (notified of %v before each); want the single open's alone after the group", pre.calls, pre.notifiedAt)
			}
		})
	}
}

// Precommit runs inside the transaction, just before it commits: what it
// reads with its ctx is the transaction's uncommitted writes, which a
// read outside the transaction (on another connection) does not see yet.
func TestPrecommitNotifierInTheTransaction(t *testing.T) {
	for _, db := range concurrentLayers {
		t.Run(db.name, func(t *testing.T) {
			pre := &precommitter{}
			people := resource.New[person]("person",
				resource.Table("people"),
				resource.Actions{
					resource.Create{Name: "invite", Accept: []string{"email", "name"}},
					resource.Read{Name: "list", Sort: []resource.Sort{resource.Asc("email")}},
				},
				resource.Notifiers(pre),
			)
			layer := db.open(t)
			d, err := resource.NewDomain("test", people).Build(t.Context(), layer)
			if err != nil {
				t.Fatal(err)
			}
			if err := layer.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			emails := func(ctx context.Context) ([]string, error) {
				list, err := people.Read(ctx, d, "list", nil)
				var out []string
				for _, p := range list {
					out = append(out, p.Email)
				}
				return out, err
			}
			var inside, outside []string
			pre.check = func(ctx context.Context, _ []resource.Notification) error {
				var err error
				if inside, err = emails(ctx); err != nil {
					return err
				}
				outside, err = emails(t.Context()) // no transaction in it
				return err
			}
			if _, err := people.Create(t.Context(), d, "invite", resource.Input{"email": "a@example.com", "name": "A"}); err != nil {
				t.Fatal(err)
			}
			err = d.InTransaction(t.Context(), func(ctx context.Context) error {
				for _, e := range []string{"b@example.com", "c@example.com"} {
					if _, err := people.Create(ctx, d, "invite", resource.Input{"email": e, "name": "B"}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"a@example.com", "b@example.com", "c@example.com"}; !slices.Equal(inside, want) {
				t.Errorf("Precommit read %q with its ctx; want the transaction's writes too, %q", inside, want)
			}
			if want := []string{"a@example.com"}; !slices.Equal(outside, want) {
				t.Errorf("Precommit read %q outside the transaction; want only what was committed, %q", outside, want)
			}
			if after, err := emails(t.Context()); err != nil || len(after) != 3 {
				t.Errorf("after commit: %q, %v", after, err)
			}
		})
	}
}

// A Precommit that fails — an error, a panic, or a write of its own —
// fails the action with an error (that wraps its error): the transaction is rolled back, nothing it
// wrote is kept (the audit entries of its change included), and no
// notifier is notified. The domain goes on working.
func TestPrecommitNotifierFailure(t *testing.T) {
	boom := errors.New("boom")
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			var current *bank // the bank of the case running, for a Precommit that writes
			for _, tc := range []struct {
				name  string
				check func(context.Context, []resource.Notification) error
				want  string
			}{
				{"error", func(context.Context, []resource.Notification) error { return boom },
					"kiln/resource: before commit, *resource_test.precommitter: boom"},
				{"panic", func(context.Context, []resource.Notification) error { panic("kaboom") },
					"kiln/resource: before commit, *resource_test.precommitter: panic: kaboom"},
				// A write would commit without its notifiers having been told.
				{"write", func(ctx context.Context, _ []resource.Notification) error {
					_, err := current.accounts.Create(ctx, current.d, "open", resource.Input{"email": "late@example.com", "team": "red"})
					return err
				}, "kiln/resource: a PrecommitNotifier wrote in the transaction it was told of; it must only read"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					pre, second := &precommitter{check: tc.check}, &precommitter{}
					b := newBank(t, db, resource.Notifiers(pre, second))
					current = b
					ctx := t.Context()
					_, err := b.accounts.Create(ctx, b.d, "open", resource.Input{"email": "ada@example.com", "team": "red"})
					if err == nil || err.Error() != tc.want {
						t.Fatalf("open: %v; want %q", err, tc.want)
					}
					if tc.name == "error" && !errors.Is(err, boom) {
						t.Fatalf("open: %v does not wrap the notifier's error", err)
					}
					err = b.d.InTransaction(ctx, func(ctx context.Context) error {
						for _, e := range []string{"bob@example.com", "cy@example.com"} {
							if _, err := b.accounts.Create(ctx, b.d, "open", resource.Input{"email": e, "team": "red"}); err != nil {
								return err
							}
						}
						return nil
					})
					if err == nil || err.Error() != tc.want {
						t.Fatalf("InTransaction: %v; want %q", err, tc.want)
					}
					if len(pre.calls) != 2 || !slices.Equal(pre.calls[1], []string{"open bob@example.com", "open cy@example.com"}) {
						t.Fatalf("Precommit told %q; want each transaction once", pre.calls)
					}
					accounts, entries := b.state(t)
					if len(accounts) != 0 || len(entries) != 0 {
						t.Fatalf("accounts %q, entries %q after a failed Precommit; want nothing written", accounts, entries)
					}
					if n := b.rec.Len(); n != 0 || len(pre.notified) != 0 || len(second.notified) != 0 {
						t.Fatalf("notified after a failed Precommit: %q, %q, %q", b.rec.actions(), pre.notified, second.notified)
					}

					pre.check = nil
					if _, err := b.accounts.Create(ctx, b.d, "open", resource.Input{"email": "dan@example.com", "team": "red"}); err != nil {
						t.Fatalf("open once Precommit succeeds: %v", err)
					}
					if accounts, _ := b.state(t); !slices.Equal(accounts, []string{"dan@example.com"}) {
						t.Fatalf("accounts %q; want dan's alone", accounts)
					}
					if !slices.Equal(pre.notified, []string{"open dan@example.com"}) || !strings.Contains(strings.Join(b.rec.actions(), " "), "account.open") {
						t.Fatalf("notified %q and %q; want dan's open", pre.notified, b.rec.actions())
					}
				})
			}
		})
	}
}
