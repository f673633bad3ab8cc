package logouteverywhere_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/logouteverywhere"
	"github.com/kiln-go/kiln/internal/accountstest"
)

// issued is a token with the times the issuing call started and returned:
// its store committed between the two.
type issued struct {
	token     string
	began     time.Time
	committed time.Time
}

// spin yields a random number of times (up to n), so that two goroutines
// released together start in either order, and at varying distances.
func spin(n int) {
	for range rand.IntN(n) {
		runtime.Gosched()
	}
}

// TestRevokeRacesSignIn: a revocation (log out everywhere, or a password
// change) racing a sign-in of the same user. Afterwards no token stored
// before the revocation started is valid; the race's own sign-in is valid
// or not depending on which committed first, never an error.
func TestRevokeRacesSignIn(t *testing.T) {
	iterations := 40
	if testing.Short() {
		iterations = 10
	}
	revokes := map[string]func(e *env, u *accountstest.User) error{
		"log_out_everywhere": func(e *env, u *accountstest.User) error {
			_, err := e.logOutEverywhere(context.Background(), u)
			return err
		},
		// The same password again: the racing sign-in must still be able
		// to succeed.
		"password change": func(e *env, u *accountstest.User) error {
			return e.setPassword(context.Background(), u, pw)
		},
	}
	for _, db := range concurrentDatabases {
		for name, revoke := range revokes {
			t.Run(db+"/"+name, func(t *testing.T) {
				e := build(t, db, logouteverywhere.LogOutEverywhere{ApplyOnPasswordChange: true})
				ada := e.register(t, "ada@example.com")
				user := ada.Record.(*accountstest.User)
				before, after, refused := 0, 0, 0
				for i := range iterations {
					old := []issued{{token: ada.Token}, {token: e.signIn(t, "ada@example.com").Token}}
					var raced issued
					var signInErr, revokeErr error
					var revokeStarted time.Time
					// Every third iteration, the revoke starts once the
					// sign-in has committed; the others race freely.
					stored := e.rec.onStore()
					afterCommit := i%3 == 0
					var start, wg sync.WaitGroup
					start.Add(1)
					wg.Add(2)
					go func() {
						defer wg.Done()
						start.Wait()
						spin(100)
						s, err := e.trySignIn("ada@example.com", pw)
						if err != nil {
							signInErr = err
							return
						}
						raced = issued{token: s.Token, committed: time.Now()}
					}()
					go func() {
						defer wg.Done()
						start.Wait()
						if afterCommit {
							<-stored
						} else {
							spin(1000)
						}
						revokeStarted = time.Now()
						revokeErr = revoke(e, user)
					}()
					start.Done()
					wg.Wait()
					// A sign-in whose check began before the revoke
					// committed may be refused, never fail otherwise.
					if signInErr != nil && !errors.Is(signInErr, authentication.ErrCredentialChanged) || revokeErr != nil {
						t.Fatalf("iteration %d: sign in: %v; revoke: %v", i, signInErr, revokeErr)
					}
					if signInErr != nil {
						refused++
						continue
					}
					for j, o := range old {
						if e.valid(o.token) {
							t.Errorf("iteration %d: token %d, stored before the race, survived it", i, j)
						}
					}
					// The store committed before the revoke started when the
					// revoke waited for its notification, or when the
					// sign-in had returned by then.
					if afterCommit || raced.committed.Before(revokeStarted) {
						before++
						if e.valid(raced.token) {
							t.Errorf("iteration %d: the sign-in committed before the revoke started, and its token survived", i)
						}
					} else {
						after++
					}
					ada = &authentication.Session{Token: raced.token, Record: user}
				}
				t.Logf("%d sign-ins committed before the revoke started, %d after, %d refused", before, after, refused)
			})
		}
	}
}

// TestLogOutEverywhereWhileIssuing: goroutines sign in and issue tokens
// for one user while log out everywhere runs. Every token stored before it
// started is refused afterwards; every token stored after it ended is
// valid; the notifications match the count it returned.
//
// Each issuer issues a bounded number of tokens per round: SQLite's busy
// handler is not fair, and writers that never pause can starve another
// connection past its busy timeout.
func TestLogOutEverywhereWhileIssuing(t *testing.T) {
	const issuers, perIssuer = 4, 12
	rounds := 10
	if testing.Short() {
		rounds = 3
	}
	for _, db := range concurrentDatabases {
		t.Run(db, func(t *testing.T) {
			e := build(t, db, logouteverywhere.LogOutEverywhere{})
			ada := e.register(t, "ada@example.com")
			user := ada.Record.(*accountstest.User)
			bob := e.register(t, "bob@example.com")
			ctx := context.Background()
			for round := range rounds {
				var mu sync.Mutex
				var tokens []issued
				refused := 0
				progress := make(chan struct{}, issuers*perIssuer)
				var wg sync.WaitGroup
				errs := make(chan error, issuers)
				for g := range issuers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range perIssuer {
							var tok string
							began := time.Now()
							if g%2 == 0 {
								s, err := e.trySignIn("ada@example.com", pw)
								if errors.Is(err, authentication.ErrCredentialChanged) {
									// Refused: it began before the revoke committed.
									mu.Lock()
									refused++
									mu.Unlock()
									continue
								}
								if err != nil {
									errs <- err
									return
								}
								tok = s.Token
							} else {
								var err error
								if tok, _, err = e.auth.Issue(ctx, user, authentication.IssueOptions{}); err != nil {
									errs <- err
									return
								}
							}
							mu.Lock()
							tokens = append(tokens, issued{tok, began, time.Now()})
							mu.Unlock()
							select {
							case progress <- struct{}{}:
							default:
							}
						}
					}()
				}
				// Some tokens first, then the revoke while they keep coming.
				for range 2 * issuers {
					<-progress
				}
				e.rec.Reset()
				started := time.Now()
				n, err := e.logOutEverywhere(ctx, user)
				ended := time.Now()
				if err != nil {
					t.Fatal(err)
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Fatalf("round %d: issuing failed: %v", round, err)
				}
				revoked, reasons := e.rec.revoked()
				if len(revoked) != n || reasons["log_out_everywhere"] != n {
					t.Errorf("round %d: returned %d, notified %d (%v)", round, n, len(revoked), reasons)
				}
				var early, late, between int
				for _, tok := range tokens {
					switch {
					case tok.committed.Before(started):
						early++
						if e.valid(tok.token) {
							t.Errorf("round %d: a token stored before the revoke started survived it", round)
						}
					case tok.began.After(ended):
						late++
						if !e.valid(tok.token) {
							t.Errorf("round %d: a token issued after the revoke ended was revoked", round)
						}
					default:
						between++
					}
				}
				if early < 2*issuers || early+between+late+refused != issuers*perIssuer {
					t.Errorf("round %d: %d tokens before the revoke, %d during, %d after, %d refused", round, early, between, late, refused)
				}
				if n < early {
					t.Errorf("round %d: revoked %d, fewer than the %d stored before", round, n, early)
				}
				if !e.valid(bob.Token) {
					t.Fatalf("round %d: bob was signed out", round)
				}
				t.Logf("round %d: %d tokens stored before the revoke, %d during, %d after; %d revoked", round, early, between, late, n)
			}
		})
	}
}
