package main

import (
	"context"
	"sync"
	"time"

	"github.com/kiln-go/kiln/examples/accounts/users"
)

// Mail is a message the development mailbox holds.
type Mail struct {
	To   string
	Sent time.Time
	Link string
}

// Mailbox is the example's password.Sender: it keeps reset mails for
// /dev/mailbox instead of sending them.
type Mailbox struct {
	mu    sync.Mutex
	mails []Mail
}

// SendResetToken implements password.Sender.
func (m *Mailbox) SendResetToken(_ context.Context, user any, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mails = append(m.mails, Mail{To: user.(*users.User).Email, Sent: time.Now(), Link: "/reset?token=" + token})
	return nil
}

// Mails returns the mails, newest first.
func (m *Mailbox) Mails() []Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Mail, len(m.mails))
	for i, mail := range m.mails {
		out[len(m.mails)-1-i] = mail
	}
	return out
}
