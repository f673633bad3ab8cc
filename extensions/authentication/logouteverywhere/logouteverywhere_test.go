package logouteverywhere_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/logouteverywhere"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
)

// TestLogOutEverywhere revokes every token of the user, each with one
// notification saying log_out_everywhere, and none of another user's.
func TestLogOutEverywhere(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			e := build(t, db, logouteverywhere.LogOutEverywhere{})
			ctx := context.Background()
			ada := e.register(t, "ada@example.com")
			sessions := []*authentication.Session{ada}
			for range 4 {
				sessions = append(sessions, e.signIn(t, "ada@example.com"))
			}
			bob := []*authentication.Session{e.register(t, "bob@example.com"), e.signIn(t, "bob@example.com")}
			// A sign-in token and a reset token of ada are stored too.
			signInTok, signInClaims, err := e.auth.Issue(ctx, ada.Record, authentication.IssueOptions{Purpose: tokenresource.PurposeSignIn, Store: true})
			if err != nil {
				t.Fatal(err)
			}
			// An already revoked one is not revoked again.
			if err := e.auth.Tokens().Revoke(ctx, sessions[4].Token, revocation.SignedOut); err != nil {
				t.Fatal(err)
			}
			e.rec.Reset()

			n, err := e.logOutEverywhere(ctx, ada.Record.(*accountstest.User))
			if err != nil {
				t.Fatal(err)
			}
			want := append(jtis(sessions[:4]...), signInClaims.JTI)
			slices.Sort(want)
			if n != len(want) {
				t.Errorf("revoked %d, want %d", n, len(want))
			}
			got, reasons := e.rec.revoked()
			if !reflect.DeepEqual(got, want) {
				t.Errorf("notified\n%v\nwant\n%v", got, want)
			}
			if !reflect.DeepEqual(reasons, map[revocation.Reason]int{revocation.LogOutEverywhere: len(want)}) {
				t.Errorf("reasons %v", reasons)
			}
			if e.rec.Len() != len(want)+1 {
				t.Errorf("%d notifications, want %d (the revoked tokens and the epoch bump)", e.rec.Len(), len(want)+1)
			}
			for i, s := range sessions {
				if e.valid(s.Token) {
					t.Errorf("ada's session %d still verifies", i)
				}
			}
			if _, err := e.password.SignInWithToken(ctx, e.d, password.SignInWithTokenInput{Token: signInTok}); err == nil {
				t.Error("ada's sign-in token still works")
			}
			for i, s := range bob {
				if !e.valid(s.Token) {
					t.Errorf("bob's session %d was signed out", i)
				}
			}
			// Ada can sign in again, and that session is valid.
			if s := e.signIn(t, "ada@example.com"); !e.valid(s.Token) {
				t.Error("a session after log out everywhere does not verify")
			}
			// The user argument is required.
			if _, err := e.logOut.Run(ctx, e.d, nil); !errors.Is(err, resource.ErrInvalid) {
				t.Errorf("without user: %v", err)
			}
		})
	}
}

// TestLogOutEverywherePurposes: the add-on's purposes narrow what it
// revokes.
func TestLogOutEverywherePurposes(t *testing.T) {
	cases := []struct {
		name    string
		lo      logouteverywhere.LogOutEverywhere
		revoked []string // purposes, sorted
	}{
		{"default", logouteverywhere.LogOutEverywhere{}, []string{"sign_in", "user"}},
		{"include user", logouteverywhere.LogOutEverywhere{IncludePurposes: []string{"user"}}, []string{"user"}},
		{"exclude user", logouteverywhere.LogOutEverywhere{ExcludePurposes: []string{"user"}}, []string{"sign_in"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := build(t, "sqlite", c.lo)
			ctx := context.Background()
			ada := e.register(t, "ada@example.com")
			_, signIn, err := e.auth.Issue(ctx, ada.Record, authentication.IssueOptions{Purpose: tokenresource.PurposeSignIn, Store: true})
			if err != nil {
				t.Fatal(err)
			}
			e.rec.Reset()
			if _, err := e.logOutEverywhere(ctx, ada.Record.(*accountstest.User)); err != nil {
				t.Fatal(err)
			}
			var got []string
			notified, _ := e.rec.revoked()
			for _, jti := range notified {
				switch jti {
				case ada.Claims.JTI:
					got = append(got, "user")
				case signIn.JTI:
					got = append(got, "sign_in")
				default:
					t.Errorf("unknown jti %s notified", jti)
				}
			}
			slices.Sort(got)
			if !reflect.DeepEqual(got, c.revoked) {
				t.Errorf("revoked %v, want %v", got, c.revoked)
			}
		})
	}
}

// TestRenamedAction: ActionName and ArgumentName rename the action and
// its argument; Run runs the renamed one.
func TestRenamedAction(t *testing.T) {
	e := build(t, "sqlite", logouteverywhere.LogOutEverywhere{ActionName: "sign_out_all", ArgumentName: "account"})
	ctx := context.Background()
	ada := e.register(t, "ada@example.com")
	n, err := resource.Call[int](ctx, e.d, e.users, "sign_out_all", resource.Input{"account": ada.Record})
	if err != nil || n != 1 {
		t.Fatalf("sign_out_all = %d, %v", n, err)
	}
	if e.valid(ada.Token) {
		t.Error("the session survived")
	}
	phone := e.signIn(t, "ada@example.com")
	if n, err := e.logOut.Run(ctx, e.d, ada.Record); err != nil || n != 1 {
		t.Fatalf("Run = %d, %v", n, err)
	}
	if e.valid(phone.Token) {
		t.Error("the session survived Run")
	}
	if e.d.Declaration(e.users).Action("log_out_everywhere") != nil {
		t.Error("the default action is there too")
	}
	if c := (logouteverywhere.LogOutEverywhere{}).Config(); c.ActionName != "log_out_everywhere" || c.ArgumentName != "user" ||
		!reflect.DeepEqual(c.ExcludePurposes, []string{"revocation"}) || c.IncludePurposes != nil || c.ApplyOnPasswordChange {
		t.Errorf("defaults %+v", c)
	}
}

// TestLogOutEverywhereOneStatement: the revocation is one UPDATE,
// whatever the number of tokens.
func TestLogOutEverywhereOneStatement(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			e := build(t, db, logouteverywhere.LogOutEverywhere{})
			ada := e.register(t, "ada@example.com")
			seedTokens(t, e, ada.Claims.Subject, 200)
			h := &testdb.Statements{}
			e.layer.DB().AddQueryHook(h)
			h.Record()
			n, err := e.logOutEverywhere(context.Background(), ada.Record.(*accountstest.User))
			got := testdb.Verbs(h.Stop())
			if err != nil || n != 201 {
				t.Fatalf("revoked %d, %v; want 201", n, err)
			}
			// The epoch bump, then one UPDATE for every token; no
			// savepoint, as the action began the transaction itself.
			if !reflect.DeepEqual(got, []string{"BEGIN", "INSERT", "UPDATE", "COMMIT"}) {
				t.Errorf("statements %v, want BEGIN, the epoch upsert, one UPDATE, COMMIT", got)
			}
			if e.rec.Len() < 201 {
				t.Errorf("%d notifications", e.rec.Len())
			}
		})
	}
}

// seedTokens stores n session tokens of subject straight into the table,
// in one statement.
func seedTokens(t testing.TB, e *env, subject string, n int) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	rows := make([]accountstest.Token, n)
	for i := range rows {
		rows[i].JTI = fmt.Sprintf("%s/seed/%d", subject, i)
		rows[i].Subject = subject
		rows[i].Purpose = tokenresource.PurposeUser
		rows[i].ExpiresAt = now.Add(time.Hour)
		rows[i].CreatedAt, rows[i].UpdatedAt = now, now
	}
	if _, err := e.layer.DB().NewInsert().Model(&rows).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
}
