package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// HashProvider hashes and checks passwords.
type HashProvider interface {
	// Hash returns the hash of password.
	Hash(password string) (string, error)
	// Valid reports whether password matches hash, in constant time.
	Valid(password, hash string) bool
	// SimulateValid spends the time of a Valid call, for sign-ins whose
	// identity matches no record, so timing does not tell which exist.
	SimulateValid()
	// MaxLength is the longest password in bytes the provider hashes
	// whole; 0 for no limit.
	MaxLength() int
}

// Bcrypt hashes with bcrypt (the default provider). Passwords longer than
// 72 bytes are refused, since bcrypt would ignore the rest.
type Bcrypt struct {
	// Cost defaults to bcrypt.DefaultCost (10).
	Cost int
}

var _ HashProvider = Bcrypt{}

func (b Bcrypt) cost() int {
	if b.Cost == 0 {
		return bcrypt.DefaultCost
	}
	return b.Cost
}

// Hash implements HashProvider.
func (b Bcrypt) Hash(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), b.cost())
	if err != nil {
		return "", fmt.Errorf("kiln/password: bcrypt: %w", err)
	}
	return string(h), nil
}

// Valid implements HashProvider.
func (b Bcrypt) Valid(password, hash string) bool {
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

var dummyHashes sync.Map // cost -> hash of a fixed password

// SimulateValid implements HashProvider.
func (b Bcrypt) SimulateValid() {
	h, ok := dummyHashes.Load(b.cost())
	if !ok {
		gen, _ := bcrypt.GenerateFromPassword([]byte("kiln: no such user"), b.cost())
		h, _ = dummyHashes.LoadOrStore(b.cost(), gen)
	}
	_ = bcrypt.CompareHashAndPassword(h.([]byte), []byte("kiln: a wrong password"))
}

// MaxLength implements HashProvider: 72 bytes.
func (Bcrypt) MaxLength() int { return 72 }

// Argon2id hashes with argon2id, in the PHC string format
// ($argon2id$v=19$m=…,t=…,p=…$salt$hash).
type Argon2id struct {
	// Time defaults to 2 passes, Memory to 64 MiB (in KiB), Threads to 2,
	// KeyLength to 32 bytes.
	Time      uint32
	Memory    uint32
	Threads   uint8
	KeyLength uint32
}

var _ HashProvider = Argon2id{}

func (a Argon2id) params() Argon2id {
	if a.Time == 0 {
		a.Time = 2
	}
	if a.Memory == 0 {
		a.Memory = 64 * 1024
	}
	if a.Threads == 0 {
		a.Threads = 2
	}
	if a.KeyLength == 0 {
		a.KeyLength = 32
	}
	return a
}

// Hash implements HashProvider.
func (a Argon2id) Hash(password string) (string, error) {
	p := a.params()
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLength)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

var errBadHash = errors.New("kiln/password: not an argon2id hash")

func parseArgon2id(hash string) (p Argon2id, salt, key []byte, err error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, errBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, errBadHash
	}
	enc := base64.RawStdEncoding
	if salt, err = enc.DecodeString(parts[4]); err != nil {
		return p, nil, nil, errBadHash
	}
	if key, err = enc.DecodeString(parts[5]); err != nil {
		return p, nil, nil, errBadHash
	}
	p.KeyLength = uint32(len(key))
	return p, salt, key, nil
}

// Valid implements HashProvider.
func (a Argon2id) Valid(password, hash string) bool {
	p, salt, key, err := parseArgon2id(hash)
	if err != nil {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLength)
	return subtle.ConstantTimeCompare(got, key) == 1
}

// SimulateValid implements HashProvider.
func (a Argon2id) SimulateValid() {
	p := a.params()
	_ = argon2.IDKey([]byte("kiln: a wrong password"), make([]byte, 16), p.Time, p.Memory, p.Threads, p.KeyLength)
}

// MaxLength implements HashProvider: no limit.
func (Argon2id) MaxLength() int { return 0 }
