// Package tokenresource turns a resource into kiln's token store: every
// issued token (with StoreAllTokens) and every revocation is a row, keyed by
// the token's jti. It adds the columns' metadata and the actions
// store_token, get_token, revoke_token, revoke_jti,
// revoke_all_stored_for_subject, revoked?, read_expired and expunge_expired
// (names configurable), and a Go API on top of them (Store).
//
// Every revocation, single or bulk, sends one notification per revoked token
// after commit, carrying the row and a revocation.Reason; expunging expired tokens
// notifies too (revocation.Expired). extensions/tokenresource/tokenrevocation turns those
// notifications into closed live sessions.
package tokenresource

import (
	"maps"
	"time"

	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
)

// The purposes kiln stores tokens with.
const (
	// PurposeUser is a session token.
	PurposeUser = "user"
	// PurposeSignIn is a short-lived, one-shot sign-in token.
	PurposeSignIn = "sign_in"
	// PurposeRevocation marks a revoked jti.
	PurposeRevocation = "revocation"
	// PurposeEpoch marks a subject's revocation epoch row (see
	// Store.Epoch); it is no token and is never revoked.
	PurposeEpoch = "epoch"
)

// Fields are the columns of a token resource; embed them in the record:
//
//	type Token struct{ tokenresource.Fields }
type Fields struct {
	// JTI is the token's unique id and the only primary key.
	JTI string `bun:"jti,pk"`
	// Subject names the token's owner, "user?id=<primary key>".
	Subject string `bun:",notnull"`
	// ExpiresAt is when the token (or the revocation) stops mattering.
	ExpiresAt time.Time `bun:",notnull"`
	// Purpose is user, sign_in, revocation or a strategy's own purpose.
	Purpose string `bun:",notnull"`
	// ExtraData holds what the issuer attached (the user agent of a
	// session, for instance).
	ExtraData map[string]any `bun:",type:json"`
	CreatedAt time.Time      `bun:",notnull" kiln:"readonly,default:now"`
	UpdatedAt time.Time      `bun:",notnull" kiln:"readonly,default:now,update_default:now"`
}

// TokenFields returns the fields; through embedding, every token record has
// the method, which is how the Go API reads records of any token type.
func (f *Fields) TokenFields() *Fields { return f }

// copy is a copy of f whose ExtraData is a map of its own.
func (f *Fields) copy() *Fields {
	c := *f
	c.ExtraData = maps.Clone(f.ExtraData)
	return &c
}

// Record is any token record: a struct that embeds Fields.
type Record interface {
	TokenFields() *Fields
}

// Revoked reports whether the row marks a revocation.
func (f *Fields) Revoked() bool { return f.Purpose == PurposeRevocation }

// Expired reports whether the row has expired at now.
func (f *Fields) Expired(now time.Time) bool { return !f.ExpiresAt.After(now) }

// ReasonKey is the notification Metadata key that holds the
// revocation.Reason.
const ReasonKey = "reason"

// SocketID is what a live socket id is made from: one typed value, built
// the same way from a token's claims at sign-in (SocketIDFromClaims, in the
// authentication package) and from a stored row at revocation
// (SocketIDOf), so that the template gives the same id at both ends.
type SocketID struct {
	JTI       string
	Subject   string
	Purpose   string
	ExpiresAt time.Time
}

// SocketIDOf builds the SocketID of a stored token row. A revocation row
// keeps the jti, subject and expiry of the token it revoked; its purpose is
// reported as the session purpose.
func SocketIDOf(f *Fields) SocketID {
	purpose := f.Purpose
	if purpose == PurposeRevocation {
		purpose = PurposeUser
	}
	return SocketID{JTI: f.JTI, Subject: f.Subject, Purpose: purpose, ExpiresAt: f.ExpiresAt.UTC()}
}

// RevocationOf reads a notification of the token store: the reason and the
// row of a revocation or an expiry, or ok false for any other write
// (storing a token, say). The token revocation notifier and tests of
// revocations read notifications with it.
func RevocationOf(n resource.Notification) (reason revocation.Reason, row *Fields, ok bool) {
	reason, ok = n.Metadata[ReasonKey].(revocation.Reason)
	if !ok {
		return "", nil, false
	}
	rec, ok := n.Record.(Record)
	if !ok {
		return "", nil, false
	}
	return reason, rec.TokenFields(), true
}
