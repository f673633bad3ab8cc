package web

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Session is the data of a browser session, kept in a cookie.
type Session map[string]string

// Session keys kiln uses.
const (
	// SessionToken holds the session's token (SessionUnsafe), SessionJTI
	// its jti (SessionJTI).
	SessionToken = "token"
	SessionJTI   = "jti"
	// SessionSubject holds the token's subject.
	SessionSubject = "subject"
	// LiveSocketIDKey holds the live socket id set by SetLiveSocketID.
	LiveSocketIDKey = "live_socket_id"
)

// MinKeyLength is the shortest cookie key accepted, in bytes.
const MinKeyLength = 32

// Sessions keeps sessions in cookies that are both signed and encrypted
// (AES-256-GCM with keys derived by HKDF), HttpOnly, SameSite=Lax, and
// Secure when the request came over TLS. With several keys, the first seals
// and all open: list the new key first to rotate without signing anyone out.
type Sessions struct {
	// Name is the cookie's name. Default: "kiln_session".
	Name string
	// MaxAge is the cookie's lifetime. Default: 14 days.
	MaxAge time.Duration
	// Secure forces the Secure flag even without TLS (behind a TLS proxy).
	Secure bool

	aeads []cipher.AEAD
}

// NewSessions returns cookie sessions sealed with keys (newest first), each
// at least 32 bytes.
func NewSessions(keys ...[]byte) (*Sessions, error) {
	if len(keys) == 0 {
		return nil, errors.New("kiln/web: NewSessions needs at least one key")
	}
	s := &Sessions{Name: "kiln_session", MaxAge: 14 * 24 * time.Hour}
	for i, k := range keys {
		if len(k) < MinKeyLength {
			return nil, fmt.Errorf("kiln/web: session key %d is %d bytes long; use at least %d random bytes", i, len(k), MinKeyLength)
		}
		dk, err := hkdf.Key(sha256.New, k, nil, "kiln session cookie", 32)
		if err != nil {
			return nil, err
		}
		block, err := aes.NewCipher(dk)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s.aeads = append(s.aeads, aead)
	}
	return s, nil
}

// Load returns the request's session, empty when there is none or it does
// not open with any key.
func (s *Sessions) Load(r *http.Request) Session {
	c, err := r.Cookie(s.Name)
	if err != nil {
		return Session{}
	}
	sess, err := s.Open(c.Value)
	if err != nil {
		return Session{}
	}
	return sess
}

// Open decodes a cookie value.
func (s *Sessions) Open(value string) (Session, error) {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		return nil, errors.New("kiln/web: bad session cookie")
	}
	for _, aead := range s.aeads {
		n := aead.NonceSize()
		if len(raw) < n {
			break
		}
		plain, err := aead.Open(nil, raw[:n], raw[n:], []byte(s.Name))
		if err != nil {
			continue
		}
		var sess Session
		if err := json.Unmarshal(plain, &sess); err != nil {
			return nil, errors.New("kiln/web: bad session cookie")
		}
		return sess, nil
	}
	return nil, errors.New("kiln/web: session cookie does not open with any key")
}

// Seal encodes a session with the newest key.
func (s *Sessions) Seal(sess Session) (string, error) {
	plain, err := json.Marshal(sess)
	if err != nil {
		return "", err
	}
	aead := s.aeads[0]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, []byte(s.Name))), nil
}

// Save writes the session cookie.
func (s *Sessions) Save(w http.ResponseWriter, r *http.Request, sess Session) error {
	v, err := s.Seal(sess)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: s.Name, Value: v, Path: "/", MaxAge: int(s.MaxAge / time.Second),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.Secure || r.TLS != nil,
	})
	return nil
}

// Clear deletes the session cookie.
func (s *Sessions) Clear(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: s.Name, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.Secure || r.TLS != nil,
	})
}
