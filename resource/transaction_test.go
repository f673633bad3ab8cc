package resource_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
)

// account is the record of the transaction tests; every account opened
// writes an audit entry from a change, in the same transaction.
type account struct {
	ID       uuid.UUID `bun:",pk,type:uuid" kiln:"default:uuid"`
	Email    string    `bun:",unique,notnull"`
	Team     string    `bun:",notnull"`
	Score    int
	OpenedBy string
}

type entry struct {
	ID      int64  `bun:",pk,autoincrement"`
	Subject string `bun:",notnull"`
	What    string `bun:",notnull"`
	Actor   string
}

// operator is the actor of the transaction tests.
type operator struct {
	Name string
	Team string
}

var errUnlucky = errors.New("thirteen is unlucky")

// bank is a domain of accounts and their audit entries, each notifying one
// recorder.
type bank struct {
	d        *resource.Domain
	accounts *resource.Resource[account]
	entries  *resource.Resource[entry]
	rec      *recorder
	// seen is what the audit change read of the accounts, in its
	// transaction.
	seen chan []string
}

// actorName is the Name of the ctx's *operator, or "".
func actorName(ctx context.Context) string {
	if op, ok := resource.ActorFrom(ctx).(*operator); ok {
		return op.Name
	}
	return ""
}

func newBank(t *testing.T, db string, more ...resource.Section) *bank {
	t.Helper()
	return newBankWith(t, db, nil, more...)
}

// newBankWith builds the bank with domain options and more sections of the
// account resource.
func newBankWith(t *testing.T, db string, opts []resource.Option, more ...resource.Section) *bank {
	t.Helper()
	b := &bank{rec: &recorder{}, seen: make(chan []string, 100)}
	b.entries = resource.New[entry]("entry",
		resource.Table("entries"),
		resource.Actions{
			resource.Create{Name: "record", Accept: []string{"subject", "what"}, Changes: []resource.Change{{
				Name: "actor",
				Before: func(ctx context.Context, cs *resource.AnyChangeset) error {
					return cs.Set("actor", actorName(ctx))
				},
			}}},
			resource.Read{Name: "list", Sort: []resource.Sort{resource.Asc("id")}},
		},
		resource.Notifiers(b.rec),
	)
	b.accounts = resource.New[account]("account", append([]resource.Section{
		resource.Actions{
			resource.Create{Name: "open", Accept: []string{"email", "team", "score"},
				Arguments: []resource.Argument{{Name: "fail", Type: reflect.TypeFor[bool]()}},
				Changes: []resource.Change{
					{Name: "opened_by", Before: func(_ context.Context, cs *resource.AnyChangeset) error {
						if op, ok := cs.Actor().(*operator); ok {
							return cs.Set("opened_by", op.Name)
						}
						return nil
					}},
					{Name: "audit", After: func(ctx context.Context, cs *resource.AnyChangeset, rec any) error {
						a := rec.(*account)
						// Another action with the change's ctx: the same transaction.
						if _, err := b.entries.Create(ctx, cs.Domain(), "record", resource.Input{"subject": a.Email, "what": "opened"}); err != nil {
							return err
						}
						all, err := b.accounts.Read(ctx, cs.Domain(), "list", nil)
						if err != nil {
							return err
						}
						var emails []string
						for _, a := range all {
							emails = append(emails, a.Email)
						}
						b.seen <- emails
						return nil
					}},
					{Name: "fail", After: func(_ context.Context, cs *resource.AnyChangeset, _ any) error {
						if resource.Arg[bool](cs, "fail") {
							return errors.New("refused after the audit entry")
						}
						return nil
					}},
				}},
			resource.Read{Name: "list", Sort: []resource.Sort{resource.Asc("email")}},
			resource.Read{Name: "all"},
			resource.Read{Name: "mine", Filter: resource.Eq("team", resource.FromActor("Team")), Sort: []resource.Sort{resource.Asc("email")}},
			resource.Read{Name: "top",
				Arguments: []resource.Argument{{Name: "team", Validate: "required"}, {Name: "n", Type: reflect.TypeFor[int](), Default: 2}},
				Preparations: []resource.Preparation{
					{Name: "team", Prepare: func(_ context.Context, q *resource.Query) error {
						q.Where(resource.Eq("team", q.Argument("team")))
						return nil
					}},
					{Name: "best", Prepare: func(_ context.Context, q *resource.Query) error {
						q.Sort = append([]resource.Sort{resource.Desc("score")}, q.Sort...)
						q.Limit = q.Argument("n").(int)
						return nil
					}},
				}},
			resource.Read{Name: "private", Preparations: []resource.Preparation{{
				Prepare: func(ctx context.Context, q *resource.Query) error {
					if resource.ActorFrom(ctx) == nil {
						return fmt.Errorf("%w: private needs an actor", resource.ErrForbidden)
					}
					return nil
				},
			}}},
			resource.Update{Name: "score", Accept: []string{"score"}, Changes: []resource.Change{{
				Name: "unlucky",
				After: func(_ context.Context, _ *resource.AnyChangeset, rec any) error {
					if rec.(*account).Score == 13 && rec.(*account).Team == "red" {
						return errUnlucky
					}
					return nil
				},
			}}},
			resource.Destroy{Name: "close"},
			resource.Generic{Name: "open_many",
				Arguments: []resource.Argument{
					{Name: "emails", Type: reflect.TypeFor[[]string](), Validate: "required,min=1"},
					{Name: "fail", Type: reflect.TypeFor[bool]()},
					{Name: "as_text", Type: reflect.TypeFor[bool]()},
				},
				Run: func(ctx context.Context, cs *resource.AnyChangeset) (any, error) {
					emails := resource.Arg[[]string](cs, "emails")
					for _, e := range emails {
						if _, err := b.accounts.Create(ctx, cs.Domain(), "open", resource.Input{"email": e, "team": "blue"}); err != nil {
							return nil, err
						}
					}
					if resource.Arg[bool](cs, "fail") {
						return nil, errors.New("open_many failed after opening")
					}
					if resource.Arg[bool](cs, "as_text") {
						return fmt.Sprint(len(emails)), nil
					}
					return len(emails), nil
				}},
		},
		resource.Notifiers(b.rec),
	}, more...)...)
	layer := testdb.Open(t, db)
	d, err := resource.NewDomain("bank", b.accounts, b.entries).Build(t.Context(), layer, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := layer.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	b.d = d
	return b
}

// open opens accounts of a team, with no actor, and forgets their
// notifications.
func (b *bank) open(t *testing.T, team string, emailScores ...any) {
	t.Helper()
	for i := 0; i < len(emailScores); i += 2 {
		if _, err := b.accounts.Create(t.Context(), b.d, "open", resource.Input{"email": emailScores[i], "team": team, "score": emailScores[i+1]}); err != nil {
			t.Fatal(err)
		}
		<-b.seen
	}
	b.rec.Reset()
}

// state lists the accounts' emails and the entries' subjects.
func (b *bank) state(t *testing.T) (accounts, entries []string) {
	t.Helper()
	as, err := b.accounts.Read(t.Context(), b.d, "list", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		accounts = append(accounts, a.Email)
	}
	es, err := b.entries.Read(t.Context(), b.d, "list", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		entries = append(entries, e.Subject+" "+e.What)
	}
	return accounts, entries
}

func TestChangeRunsActionsInTheSameTransaction(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			b := newBank(t, db)
			ctx := t.Context()
			if _, err := b.accounts.Create(ctx, b.d, "open", resource.Input{"email": "ada@example.com", "team": "red"}); err != nil {
				t.Fatal(err)
			}
			// The change saw the account it runs in, not yet committed.
			if seen := <-b.seen; !slices.Equal(seen, []string{"ada@example.com"}) {
				t.Errorf("the audit change read %q, want the new account", seen)
			}
			accounts, entries := b.state(t)
			if !slices.Equal(accounts, []string{"ada@example.com"}) || !slices.Equal(entries, []string{"ada@example.com opened"}) {
				t.Errorf("committed accounts %q, entries %q", accounts, entries)
			}
			// The inner action finished first; both are sent after commit.
			if got, want := b.rec.actions(), []string{"entry.record", "account.open"}; !slices.Equal(got, want) {
				t.Errorf("notifications %q, want %q", got, want)
			}
			b.rec.Reset()

			_, err := b.accounts.Create(ctx, b.d, "open", resource.Input{"email": "bob@example.com", "team": "red", "fail": true})
			if err == nil || err.Error() != "refused after the audit entry" {
				t.Fatalf("open with fail: %v", err)
			}
			if seen := <-b.seen; !slices.Equal(seen, []string{"ada@example.com", "bob@example.com"}) {
				t.Errorf("the audit change read %q", seen)
			}
			accounts, entries = b.state(t)
			if !slices.Equal(accounts, []string{"ada@example.com"}) || !slices.Equal(entries, []string{"ada@example.com opened"}) {
				t.Errorf("after the rollback: accounts %q, entries %q; want bob's account and entry rolled back", accounts, entries)
			}
			if n := b.rec.Len(); n != 0 {
				t.Errorf("a rolled-back action sent %d notifications: %q", n, b.rec.actions())
			}
		})
	}
}

func TestNotifierRunsAfterCommitOutsideTheTransaction(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			type report struct {
				accounts []string
				welcome  *entry
				err      error
				actor    string
			}
			reports := make(chan report, 10)
			var b *bank
			welcomer := resource.NotifierFunc(func(ctx context.Context, n resource.Notification) error {
				if n.Resource != "account" {
					return nil
				}
				var r report
				r.actor = actorName(ctx)
				defer func() { reports <- r }()
				all, err := b.accounts.Read(ctx, b.d, "list", nil)
				if err != nil {
					r.err = err
					return err
				}
				for _, a := range all {
					r.accounts = append(r.accounts, a.Email)
				}
				a, _ := resource.RecordAs[account](n)
				r.welcome, r.err = b.entries.Create(ctx, b.d, "record", resource.Input{"subject": a.Email, "what": "welcomed"})
				return r.err
			})
			b = newBank(t, db, resource.Notifiers(welcomer))
			ctx := resource.WithActor(t.Context(), &operator{Name: "root", Team: "red"})
			res, err := b.d.Run(ctx, b.accounts, "open", resource.Input{"email": "ada@example.com", "team": "red"})
			if err != nil {
				t.Fatal(err)
			}
			<-b.seen
			if len(res.NotifyErrors) != 0 {
				t.Errorf("notifier errors: %v", res.NotifyErrors)
			}
			r := <-reports
			if r.err != nil {
				t.Fatalf("the notifier's action failed: %v", r.err)
			}
			// Committed before the notifier ran: it read the account outside
			// the transaction.
			if !slices.Equal(r.accounts, []string{"ada@example.com"}) {
				t.Errorf("the notifier read %q, want the committed account", r.accounts)
			}
			if r.actor != "root" {
				t.Errorf("the notifier's ctx has actor %q, want root", r.actor)
			}
			// The notifier's action ran in a transaction of its own: it
			// committed, and its notification was sent when it did, before
			// the outer Run returned.
			_, entries := b.state(t)
			if want := []string{"ada@example.com opened", "ada@example.com welcomed"}; !slices.Equal(entries, want) {
				t.Errorf("entries %q, want %q", entries, want)
			}
			if r.welcome == nil || r.welcome.Actor != "root" {
				t.Errorf("welcome entry %+v, want one written for root", r.welcome)
			}
			// b.rec is the account's first notifier, the welcomer its second.
			want := []string{"entry.record", "account.open", "entry.record"}
			if got := b.rec.actions(); !slices.Equal(got, want) {
				t.Errorf("notifications %q, want %q", got, want)
			}
		})
	}
}

func TestNotifierErrorDoesNotFailTheAction(t *testing.T) {
	boom := errors.New("boom")
	failing := resource.NotifierFunc(func(context.Context, resource.Notification) error { return boom })
	var logs bytes.Buffer
	reported := make(chan *resource.NotifyError, 10)
	b := newBankWith(t, "sqlite", []resource.Option{
		resource.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			},
		}))),
		resource.OnNotifyError(func(_ context.Context, err *resource.NotifyError) { reported <- err }),
	}, resource.Notifiers(failing))
	res, err := b.d.Run(t.Context(), b.accounts, "open", resource.Input{"email": "ada@example.com", "team": "red"})
	if err != nil {
		t.Fatalf("a failing notifier failed the action: %v", err)
	}
	<-b.seen
	if n := len(reported); n != 1 {
		t.Errorf("OnNotifyError was called %d times, want once", n)
	} else if err := <-reported; !errors.Is(err, boom) {
		t.Errorf("OnNotifyError got %v, want boom", err)
	}
	if want := "level=ERROR msg=\"kiln: notifier failed\" domain=bank resource=account action=open notifier=resource.NotifierFunc err=boom\n"; logs.String() != want {
		t.Errorf("logged %q, want %q", logs.String(), want)
	}
	// Two notifications (the entry, the account), and the account's
	// notifiers are b.rec and failing: one failure.
	if len(res.NotifyErrors) != 1 || !errors.Is(res.NotifyErrors[0], boom) {
		t.Fatalf("NotifyErrors %v, want one wrapping boom", res.NotifyErrors)
	}
	var ne *resource.NotifyError
	if !errors.As(res.NotifyErrors[0], &ne) || ne.Notification.Action != "open" {
		t.Errorf("NotifyError %+v, want the open's", ne)
	}
	if want := "kiln/resource: notifier failed on account.open: boom"; res.NotifyErrors[0].Error() != want {
		t.Errorf("%v, want %s", res.NotifyErrors[0], want)
	}
	if accounts, _ := b.state(t); len(accounts) != 1 {
		t.Errorf("accounts %q, want the one committed", accounts)
	}
}

func TestInTransaction(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			b := newBank(t, db)
			ctx := t.Context()
			err := b.d.InTransaction(ctx, func(ctx context.Context) error {
				for _, e := range []string{"ada@example.com", "bob@example.com"} {
					if _, err := b.accounts.Create(ctx, b.d, "open", resource.Input{"email": e, "team": "red"}); err != nil {
						return err
					}
					<-b.seen
				}
				if n := b.rec.Len(); n != 0 {
					t.Errorf("%d notifications before commit", n)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := b.rec.actions(), []string{"entry.record", "account.open", "entry.record", "account.open"}; !slices.Equal(got, want) {
				t.Errorf("notifications %q, want %q", got, want)
			}
			b.rec.Reset()

			errStop := errors.New("stop")
			err = b.d.InTransaction(ctx, func(ctx context.Context) error {
				if _, err := b.accounts.Create(ctx, b.d, "open", resource.Input{"email": "cy@example.com", "team": "red"}); err != nil {
					return err
				}
				<-b.seen
				return errStop
			})
			if !errors.Is(err, errStop) {
				t.Fatalf("InTransaction: %v, want fn's error", err)
			}
			accounts, entries := b.state(t)
			if len(accounts) != 2 || len(entries) != 2 {
				t.Errorf("after the rollback: accounts %q, entries %q", accounts, entries)
			}
			if n := b.rec.Len(); n != 0 {
				t.Errorf("a rolled-back transaction sent %d notifications", n)
			}
		})
	}
}

func TestActor(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			b := newBank(t, db)
			b.open(t, "blue", "bea@example.com", 1)
			ctx := resource.WithActor(t.Context(), &operator{Name: "root", Team: "red"})
			for _, e := range []string{"ada@example.com", "bob@example.com"} {
				if _, err := b.accounts.Create(ctx, b.d, "open", resource.Input{"email": e, "team": "red"}); err != nil {
					t.Fatal(err)
				}
				<-b.seen
			}
			// Changes see the actor, in the inner action too.
			all, err := b.accounts.Read(ctx, b.d, "list", nil)
			if err != nil {
				t.Fatal(err)
			}
			var openedBy []string
			for _, a := range all {
				openedBy = append(openedBy, a.Email+":"+a.OpenedBy)
			}
			if want := []string{"ada@example.com:root", "bea@example.com:", "bob@example.com:root"}; !slices.Equal(openedBy, want) {
				t.Errorf("opened by %q, want %q", openedBy, want)
			}
			es, err := b.entries.Read(ctx, b.d, "list", nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 3 || es[0].Actor != "" || es[1].Actor != "root" || es[2].Actor != "root" {
				t.Errorf("entries %+v; want the last two written for root", es)
			}
			// Notifications carry it.
			got := b.rec.All()
			if len(got) != 4 {
				t.Fatalf("%d notifications, want 4", len(got))
			}
			for _, n := range got {
				if op, ok := n.Actor.(*operator); !ok || op.Name != "root" {
					t.Errorf("%s.%s notified with actor %#v, want root", n.Resource, n.Action, n.Actor)
				}
			}
			// FromActor filters by it.
			mine, err := b.accounts.Read(ctx, b.d, "mine", nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(mine) != 2 || mine[0].Email != "ada@example.com" || mine[1].Email != "bob@example.com" {
				t.Errorf("mine for the red operator: %+v", mine)
			}
			blue := resource.WithActor(t.Context(), map[string]any{"Team": "blue"})
			if mine, err := b.accounts.Read(blue, b.d, "mine", nil); err != nil || len(mine) != 1 || mine[0].Email != "bea@example.com" {
				t.Errorf("mine for a blue map actor: %+v, %v", mine, err)
			}
			if _, err := b.accounts.Read(t.Context(), b.d, "mine", nil); !errors.Is(err, resource.ErrForbidden) {
				t.Errorf("mine with no actor: %v, want ErrForbidden", err)
			}
			nameless := resource.WithActor(t.Context(), &struct{ Name string }{"x"})
			if _, err := b.accounts.Read(nameless, b.d, "mine", nil); err == nil {
				t.Errorf("mine with an actor that has no Team succeeded")
			}
		})
	}
}

func TestGenericCall(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			b := newBank(t, db)
			ctx := t.Context()
			n, err := resource.Call[int](ctx, b.d, b.accounts, "open_many", resource.Input{"emails": []string{"ada@example.com", "bob@example.com"}})
			if err != nil || n != 2 {
				t.Fatalf("open_many = %d, %v; want 2", n, err)
			}
			<-b.seen
			<-b.seen
			if got, want := b.rec.actions(), []string{"entry.record", "account.open", "entry.record", "account.open"}; !slices.Equal(got, want) {
				t.Errorf("notifications %q, want %q", got, want)
			}
			b.rec.Reset()

			for _, tt := range []struct {
				name string
				call func() error
				want string
			}{
				{"failing Run", func() error {
					_, err := resource.Call[int](ctx, b.d, b.accounts, "open_many", resource.Input{"emails": []string{"cy@example.com"}, "fail": true})
					return err
				}, "open_many failed after opening"},
				{"value of another type", func() error {
					_, err := resource.Call[int](ctx, b.d, b.accounts, "open_many", resource.Input{"emails": []string{"cy@example.com"}, "as_text": true})
					return err
				}, "kiln/resource: account.open_many returned string, not int"},
				{"inner action fails", func() error {
					_, err := resource.Call[int](ctx, b.d, b.accounts, "open_many", resource.Input{"emails": []string{"cy@example.com", "ada@example.com"}})
					if !errors.Is(err, resource.ErrConflict) {
						t.Errorf("%v, want ErrConflict", err)
					}
					return err
				}, "kiln/resource: account: conflict on identity unique_email: a record with the same email exists"},
			} {
				err := tt.call()
				if err == nil || err.Error() != tt.want {
					t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
				}
				for range len(b.seen) {
					<-b.seen
				}
				accounts, entries := b.state(t)
				if len(accounts) != 2 || len(entries) != 2 {
					t.Errorf("%s: accounts %q, entries %q; want the two of before", tt.name, accounts, entries)
				}
				if n := b.rec.Len(); n != 0 {
					t.Errorf("%s: %d notifications", tt.name, n)
				}
			}
			_, err = resource.Call[int](ctx, b.d, b.accounts, "open_many", resource.Input{"emails": []string{}})
			if !errors.Is(err, resource.ErrInvalid) || err.Error() != "kiln/resource: account.open_many: emails: must have at least 1 item" {
				t.Errorf("open_many of no emails: %v", err)
			}
		})
	}
}

func TestBulkActions(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			b := newBank(t, db)
			b.open(t, "red", "ada@example.com", 1, "bob@example.com", 2, "cy@example.com", 3)
			b.open(t, "blue", "bea@example.com", 4)
			ctx := t.Context()

			updated, err := b.accounts.BulkUpdate(ctx, b.d, "score", resource.Eq("team", "red"), resource.Input{"score": 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(updated) != 3 {
				t.Fatalf("updated %d accounts, want 3", len(updated))
			}
			for _, a := range updated {
				if a.Team != "red" || a.Score != 10 {
					t.Errorf("updated %+v", a)
				}
			}
			got := b.rec.All()
			if len(got) != 3 {
				t.Fatalf("%d notifications, want one per account: %q", len(got), b.rec.actions())
			}
			var emails []string
			for _, n := range got {
				a, ok := resource.RecordAs[account](n)
				if !ok || n.ActionType != resource.UpdateAction || !slices.Equal(n.Changed, []string{"score"}) || a.Score != 10 {
					t.Errorf("notification %+v", n)
					continue
				}
				emails = append(emails, a.Email)
			}
			slices.Sort(emails)
			if want := []string{"ada@example.com", "bob@example.com", "cy@example.com"}; !slices.Equal(emails, want) {
				t.Errorf("notified of %q, want %q", emails, want)
			}
			blue, err := b.accounts.Read(ctx, b.d, "top", resource.Input{"team": "blue"})
			if err != nil || len(blue) != 1 || blue[0].Score != 4 {
				t.Errorf("the blue account: %+v, %v; want it untouched", blue, err)
			}
			b.rec.Reset()

			// Nothing matches: nothing written, nothing sent.
			none, err := b.accounts.BulkUpdate(ctx, b.d, "score", resource.Eq("team", "green"), resource.Input{"score": 5})
			if err != nil || len(none) != 0 || b.rec.Len() != 0 {
				t.Errorf("bulk update of nothing: %d records, %v, %d notifications", len(none), err, b.rec.Len())
			}
			// An After change failing on one record rolls every record back.
			_, err = b.accounts.BulkUpdate(ctx, b.d, "score", resource.Eq("team", "red"), resource.Input{"score": 13})
			if !errors.Is(err, errUnlucky) {
				t.Errorf("bulk update to 13: %v, want errUnlucky", err)
			}
			red, err := b.accounts.Read(ctx, b.d, "top", resource.Input{"team": "red", "n": 10})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range red {
				if a.Score != 10 {
					t.Errorf("after the rollback %s has score %d, want 10", a.Email, a.Score)
				}
			}
			// A bulk update must set something.
			_, err = b.accounts.BulkUpdate(ctx, b.d, "score", resource.Eq("team", "red"), nil)
			if !errors.Is(err, resource.ErrInvalid) || err.Error() != "kiln/resource: account.score: a bulk update must set at least one attribute" {
				t.Errorf("bulk update of nothing: %v", err)
			}
			if n := b.rec.Len(); n != 0 {
				t.Errorf("failed bulk updates sent %d notifications", n)
			}

			destroyed, err := b.accounts.BulkDestroy(ctx, b.d, "close", resource.Or{resource.Eq("team", "blue"), resource.Eq("email", "cy@example.com")}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var gone []string
			for _, a := range destroyed {
				gone = append(gone, a.Email)
			}
			slices.Sort(gone)
			if want := []string{"bea@example.com", "cy@example.com"}; !slices.Equal(gone, want) {
				t.Errorf("destroyed %q, want %q", gone, want)
			}
			var notified []string
			for _, n := range b.rec.All() {
				if a, ok := resource.RecordAs[account](n); ok && n.ActionType == resource.DestroyAction {
					notified = append(notified, a.Email)
				}
			}
			slices.Sort(notified)
			if !slices.Equal(notified, gone) || b.rec.Len() != 2 {
				t.Errorf("destroy notifications %q (%d), want one per destroyed account", notified, b.rec.Len())
			}
			if accounts, _ := b.state(t); !slices.Equal(accounts, []string{"ada@example.com", "bob@example.com"}) {
				t.Errorf("left %q", accounts)
			}
		})
	}
}

func TestReadOptions(t *testing.T) {
	for _, db := range testdb.Layers() {
		t.Run(db, func(t *testing.T) {
			b := newBank(t, db)
			b.open(t, "red", "a@example.com", 5, "b@example.com", 3, "c@example.com", 4)
			b.open(t, "blue", "d@example.com", 1, "e@example.com", 2)
			ctx := t.Context()
			tests := []struct {
				name   string
				action string
				in     resource.Input
				opts   []resource.RunOption
				want   []string
			}{
				{"sort", "all", nil, []resource.RunOption{resource.SortBy(resource.Desc("score"))}, []string{"a", "c", "b", "e", "d"}},
				{"sort, limit, offset", "all", nil, []resource.RunOption{resource.SortBy(resource.Asc("score")), resource.Limit(2), resource.Offset(1)}, []string{"e", "b"}},
				{"where", "list", nil, []resource.RunOption{resource.Where(resource.Gt("score", 2))}, []string{"a", "b", "c"}},
				{"two wheres", "list", nil, []resource.RunOption{resource.Where(resource.Gt("score", 2)), resource.Where(resource.Lt("score", 5))}, []string{"b", "c"}},
				{"where in", "list", nil, []resource.RunOption{resource.Where(resource.In("email", []string{"d@example.com", "a@example.com", "x@example.com"}))}, []string{"a", "d"}},
				{"where not", "list", nil, []resource.RunOption{resource.Where(resource.Not(resource.Eq("team", "red")))}, []string{"d", "e"}},
				{"the action's sort comes first", "list", nil, []resource.RunOption{resource.SortBy(resource.Desc("score"))}, []string{"a", "b", "c", "d", "e"}},
				{"preparations", "top", resource.Input{"team": "red"}, nil, []string{"a", "c"}},
				{"preparations with an argument", "top", resource.Input{"team": "blue", "n": "1"}, nil, []string{"e"}},
				{"preparations and where", "top", resource.Input{"team": "red", "n": 3}, []resource.RunOption{resource.Where(resource.Ne("email", "a@example.com"))}, []string{"c", "b"}},
			}
			for _, tt := range tests {
				got, err := b.accounts.Read(ctx, b.d, tt.action, tt.in, tt.opts...)
				if err != nil {
					t.Errorf("%s: %v", tt.name, err)
					continue
				}
				var names []string
				for _, a := range got {
					names = append(names, a.Email[:1])
				}
				if !slices.Equal(names, tt.want) {
					t.Errorf("%s: read %q, want %q", tt.name, names, tt.want)
				}
			}
			_, err := b.accounts.Read(ctx, b.d, "top", nil)
			if !errors.Is(err, resource.ErrInvalid) || err.Error() != "kiln/resource: account.top: team: is required" {
				t.Errorf("top without a team: %v", err)
			}
			if _, err := b.accounts.Read(ctx, b.d, "private", nil); !errors.Is(err, resource.ErrForbidden) {
				t.Errorf("a preparation's error: %v, want ErrForbidden", err)
			}
			actor := resource.WithActor(ctx, &operator{Name: "root"})
			if got, err := b.accounts.Read(actor, b.d, "private", nil); err != nil || len(got) != 5 {
				t.Errorf("private with an actor: %d records, %v", len(got), err)
			}
		})
	}
}
