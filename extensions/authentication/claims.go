package authentication

import (
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kiln-go/kiln/extensions/tokenresource"
)

// Issuer is the iss claim of every token kiln issues, and Audience its aud.
// Verification refuses tokens with others.
const (
	Issuer   = "kiln"
	Audience = "kiln/1"
)

var signingMethods = map[string]jwt.SigningMethod{
	"HS256": jwt.SigningMethodHS256,
	"HS384": jwt.SigningMethodHS384,
	"HS512": jwt.SigningMethodHS512,
}

// reserved claims cannot be set through Extra.
var reserved = map[string]bool{"sub": true, "jti": true, "iat": true, "nbf": true, "exp": true, "iss": true, "aud": true, "purpose": true, "act": true}

// Claims are a verified token's claims.
type Claims struct {
	JTI       string
	Subject   string
	Purpose   string
	Act       string
	IssuedAt  time.Time
	NotBefore time.Time
	ExpiresAt time.Time
	// Extra holds the non-standard claims given at issue.
	Extra map[string]any
}

// SocketID is the typed value a live socket id is made from, the same as
// tokenresource.SocketIDOf gives for the stored row of this token.
func (c *Claims) SocketID() tokenresource.SocketID {
	return tokenresource.SocketID{JTI: c.JTI, Subject: c.Subject, Purpose: c.Purpose, ExpiresAt: c.ExpiresAt.UTC()}
}

func (c *Claims) mapClaims() jwt.MapClaims {
	m := jwt.MapClaims{}
	for k, v := range c.Extra {
		if !reserved[k] {
			m[k] = v
		}
	}
	m["sub"] = c.Subject
	m["jti"] = c.JTI
	m["iat"] = c.IssuedAt.Unix()
	m["nbf"] = c.NotBefore.Unix()
	m["exp"] = c.ExpiresAt.Unix()
	m["iss"] = Issuer
	m["aud"] = Audience
	m["purpose"] = c.Purpose
	if c.Act != "" {
		m["act"] = c.Act
	}
	return m
}

func claimsFrom(m jwt.MapClaims) *Claims {
	c := &Claims{Extra: map[string]any{}}
	c.Subject, _ = m["sub"].(string)
	c.JTI, _ = m["jti"].(string)
	c.Purpose, _ = m["purpose"].(string)
	c.Act, _ = m["act"].(string)
	if t, err := m.GetIssuedAt(); err == nil && t != nil {
		c.IssuedAt = t.UTC()
	}
	if t, err := m.GetNotBefore(); err == nil && t != nil {
		c.NotBefore = t.UTC()
	}
	if t, err := m.GetExpirationTime(); err == nil && t != nil {
		c.ExpiresAt = t.UTC()
	}
	for k, v := range m {
		if !reserved[k] {
			c.Extra[k] = v
		}
	}
	return c
}
