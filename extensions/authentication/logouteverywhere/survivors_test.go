package logouteverywhere_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/logouteverywhere"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/revocation"
)

// TestNoSurvivorsOfRevokeAll: many sign-ins with the current password run
// in a loop while a revoke-all of the user commits — a password change, a
// password reset, log out everywhere, an admin's revoke of the subject.
// Every sign-in whose check began before the revoke-all started is either
// refused or revoked: none survives it, over many rounds, on SQLite and
// PostgreSQL.
func TestNoSurvivorsOfRevokeAll(t *testing.T) {
	rounds, signers := 6, 16
	if testing.Short() {
		rounds = 2
	}
	kinds := []struct {
		name string
		// revoke revokes every token of user, whose password is current,
		// and returns the password to sign in with from now on.
		revoke func(e *env, user *accountstest.User, current string, round int) (string, error)
	}{
		{"password change", func(e *env, user *accountstest.User, current string, round int) (string, error) {
			next := fmt.Sprintf("changed-%d-password", round)
			_, err := e.password.Change(context.Background(), e.d, user, password.ChangeInput{
				CurrentPassword: current, Password: next, PasswordConfirmation: next})
			return next, err
		}},
		{"password reset", func(e *env, user *accountstest.User, current string, round int) (string, error) {
			ctx := context.Background()
			if err := e.password.RequestReset(ctx, e.d, user.Email); err != nil {
				return "", err
			}
			token := e.mailbox.Last(user.Email)
			if token == "" {
				return "", errors.New("no reset mail")
			}
			next := fmt.Sprintf("reset-%d-password", round)
			_, err := e.password.Reset(ctx, e.d, password.ResetInput{ResetToken: token, Password: next, PasswordConfirmation: next})
			return next, err
		}},
		{"log out everywhere", func(e *env, user *accountstest.User, current string, _ int) (string, error) {
			_, err := e.logOutEverywhere(context.Background(), user)
			return current, err
		}},
		{"admin revoke", func(e *env, user *accountstest.User, current string, _ int) (string, error) {
			subject, err := e.auth.Subject(user)
			if err != nil {
				return "", err
			}
			_, err = e.auth.Tokens().RevokeAllForSubject(context.Background(), subject, revocation.Revoked, tokenresource.RevokeAllOptions{})
			return current, err
		}},
	}
	for _, db := range concurrentDatabases {
		for _, kind := range kinds {
			t.Run(db+"/"+kind.name, func(t *testing.T) {
				e := build(t, db, logouteverywhere.LogOutEverywhere{ApplyOnPasswordChange: true})
				e.register(t, "ada@example.com")
				current := pw
				var total, refused, revoked, survived int
				for round := range rounds {
					user := e.getUser(t, "ada@example.com")
					type attempt struct {
						began time.Time
						token string
					}
					var (
						mu       sync.Mutex
						attempts []attempt
						failures []error
						wg       sync.WaitGroup
						stop     atomic.Bool
					)
					progress := make(chan struct{}, signers*4)
					for range signers {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for !stop.Load() {
								// The sign-in counts from began, as one
								// through the web glue counts from its
								// request's arrival: one preempted between
								// here and its own start still counts as
								// begun before the revoke-all.
								began := time.Now()
								s, err := e.trySignInAt(began, "ada@example.com", current)
								mu.Lock()
								switch {
								case err == nil:
									attempts = append(attempts, attempt{began, s.Token})
								case errors.Is(err, authentication.ErrAuthenticationFailed):
									// Refused: the credential changed or was
									// revoked before the token was issued.
									attempts = append(attempts, attempt{began: began})
								default:
									failures = append(failures, err)
								}
								mu.Unlock()
								select {
								case progress <- struct{}{}:
								default:
								}
							}
						}()
					}
					// Sign-ins under way on every goroutine, then the revoke.
					for range signers {
						<-progress
					}
					started := time.Now()
					next, err := kind.revoke(e, user, current, round)
					stop.Store(true)
					wg.Wait()
					if err != nil {
						t.Fatalf("round %d: revoke: %v", round, err)
					}
					for _, err := range failures {
						t.Fatalf("round %d: a sign-in failed with something else than a refusal: %v", round, err)
					}
					survivors := 0
					for _, a := range attempts {
						if !a.began.Before(started) {
							continue
						}
						total++
						switch {
						case a.token == "":
							refused++
						case e.valid(a.token):
							survivors++
						default:
							revoked++
						}
					}
					survived += survivors
					if survivors > 0 {
						t.Errorf("round %d: %d sign-ins that began before the revoke-all survived it", round, survivors)
					}
					current = next
				}
				if total < rounds*signers {
					t.Errorf("only %d sign-ins began before a revoke-all in %d rounds", total, rounds)
				}
				t.Logf("%d sign-ins began before a revoke-all: %d revoked, %d refused, %d survived", total, revoked, refused, survived)
			})
		}
	}
}

// getUser reads a user by email.
func (e *env) getUser(t testing.TB, email string) *accountstest.User {
	t.Helper()
	user, err := e.password.GetByIdentity(context.Background(), e.d, email)
	if err != nil {
		t.Fatalf("get %s: %v", email, err)
	}
	return user.(*accountstest.User)
}

// TestSignInCountsFromItsRequest: a sign-in whose request arrived before a
// revoke-all committed is refused even when its check begins after the
// commit (it waited for a hash slot, say); one that arrived after it is
// not.
func TestSignInCountsFromItsRequest(t *testing.T) {
	for _, db := range databases {
		t.Run(db, func(t *testing.T) {
			e := build(t, db, logouteverywhere.LogOutEverywhere{})
			e.register(t, "ada@example.com")
			user := e.getUser(t, "ada@example.com")
			arrived := time.Now()
			if _, err := e.logOutEverywhere(context.Background(), user); err != nil {
				t.Fatal(err)
			}
			_, err := e.trySignInAt(arrived, "ada@example.com", pw)
			if !errors.Is(err, authentication.ErrCredentialChanged) {
				t.Fatalf("sign-in of a request that arrived before the revoke-all: %v, want ErrCredentialChanged", err)
			}
			if _, err := e.trySignIn("ada@example.com", pw); err != nil {
				t.Fatalf("sign-in of a request that arrived after the revoke-all: %v", err)
			}
		})
	}
}
