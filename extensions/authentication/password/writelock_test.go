package password_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// probingHash is Bcrypt that, each time it hashes or checks, asks SQLite
// for the write lock on another connection without waiting: if a write
// transaction is open (the strategy hashing inside it), the probe fails.
// It also checks that the strategy's own layer has no connection in use:
// no read, transaction or connection waits on the hash.
type probingHash struct {
	password.Bcrypt
	layer      *bunlayer.Layer
	probe      *bunlayer.Layer
	calls      atomic.Int64
	mu         sync.Mutex
	violations []string
}

func (h *probingHash) check(what string) {
	h.calls.Add(1)
	if inUse := h.layer.DB().Stats().InUse; inUse != 0 {
		h.mu.Lock()
		h.violations = append(h.violations, fmt.Sprintf("%s: %d connections in use", what, inUse))
		h.mu.Unlock()
	}
	tx, err := h.probe.DB().BeginTx(context.Background(), nil)
	if err != nil {
		h.mu.Lock()
		h.violations = append(h.violations, what+": "+err.Error())
		h.mu.Unlock()
		return
	}
	_ = tx.Rollback()
}

func (h *probingHash) Hash(p string) (string, error) { h.check("Hash"); return h.Bcrypt.Hash(p) }
func (h *probingHash) Valid(p, hash string) bool     { h.check("Valid"); return h.Bcrypt.Valid(p, hash) }
func (h *probingHash) SimulateValid()                { h.check("SimulateValid"); h.Bcrypt.SimulateValid() }

// TestNoHashingInWriteTransactions: register, sign in (right, wrong and
// unknown), sign-in tokens, change and reset a password, on a SQLite file,
// through the strategy's methods.
// Every hash and check runs while the database's write lock is free, so
// failed sign-ins never make a revocation wait, and while the strategy
// holds no connection of its own.
func TestNoHashingInWriteTransactions(t *testing.T) {
	path := t.TempDir() + "/accounts.db"
	l, err := bunlayer.Open(context.Background(), "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	probe, err := bunlayer.Open(context.Background(), "file:"+path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { probe.Close() })
	hash := &probingHash{Bcrypt: password.Bcrypt{Cost: 4}, layer: l, probe: probe}
	mailbox := &accountstest.Mailbox{}
	d, _, _, p := accountsOn(t, l, password.Password{IdentityField: "email", HashProvider: hash, Resettable: &password.Resettable{}}, mailbox)
	ctx := context.Background()
	s, err := p.Register(ctx, d, password.RegisterInput{Identity: "ada@example.com", Password: pw, PasswordConfirmation: pw})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.SignIn(ctx, d, password.SignInInput{Identity: "ada@example.com", Password: pw}); err != nil {
		t.Fatal(err)
	}
	for _, in := range []password.SignInInput{{Identity: "ada@example.com", Password: "wrong-password"}, {Identity: "nobody@example.com", Password: pw}} {
		if _, err := p.SignIn(ctx, d, in); !errors.Is(err, authentication.ErrAuthenticationFailed) {
			t.Fatalf("a wrong sign-in: %v", err)
		}
	}
	one, err := p.SignIn(ctx, d, password.SignInInput{Identity: "ada@example.com", Password: pw, SignInToken: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.SignInWithToken(ctx, d, password.SignInWithTokenInput{Token: one.Token}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Change(ctx, d, s.Record, password.ChangeInput{CurrentPassword: pw, Password: "changed-password", PasswordConfirmation: "changed-password"}); err != nil {
		t.Fatal(err)
	}
	if err := p.RequestReset(ctx, d, "ada@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Reset(ctx, d, password.ResetInput{ResetToken: mailbox.Last("ada@example.com"), Password: "reset-password", PasswordConfirmation: "reset-password"}); err != nil {
		t.Fatal(err)
	}
	if hash.calls.Load() < 8 {
		t.Fatalf("only %d hash calls were probed", hash.calls.Load())
	}
	if len(hash.violations) > 0 {
		t.Errorf("hashing held the write lock or a connection:\n%s", strings.Join(hash.violations, "\n"))
	}
}
