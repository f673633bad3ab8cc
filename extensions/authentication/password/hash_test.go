package password_test

import (
	"strings"
	"testing"

	"github.com/kiln-go/kiln/extensions/authentication/password"
)

// TestHashProviders: each provider checks its own hashes, refuses wrong
// passwords and foreign or broken hashes, and salts every hash.
func TestHashProviders(t *testing.T) {
	providers := map[string]password.HashProvider{
		"bcrypt":   password.Bcrypt{Cost: 4},
		"argon2id": password.Argon2id{Memory: 8 * 1024, Time: 1, Threads: 1},
	}
	foreign := map[string]string{}
	for name, p := range providers {
		h, err := p.Hash(pw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		foreign[name] = h
	}
	for name, p := range providers {
		t.Run(name, func(t *testing.T) {
			h, err := p.Hash(pw)
			if err != nil {
				t.Fatal(err)
			}
			if !p.Valid(pw, h) {
				t.Error("the right password is refused")
			}
			if p.Valid(pw+"!", h) || p.Valid("", h) {
				t.Error("a wrong password is accepted")
			}
			if again, _ := p.Hash(pw); again == h {
				t.Error("two hashes of one password are equal: no salt")
			}
			for other, fh := range foreign {
				if other != name && p.Valid(pw, fh) {
					t.Errorf("accepts a %s hash", other)
				}
			}
			for _, broken := range []string{"", "garbage", h[:len(h)-4], strings.Replace(h, "$", "", 1)} {
				if p.Valid(pw, broken) {
					t.Errorf("accepts the broken hash %q", broken)
				}
			}
			p.SimulateValid() // must not panic
		})
	}
}

// TestArgon2idFormat: the PHC string carries the parameters, and a hash
// made with other parameters is checked with its own.
func TestArgon2idFormat(t *testing.T) {
	h, err := password.Argon2id{}.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=2,p=2$") {
		t.Errorf("default parameters: %q", h)
	}
	custom, err := password.Argon2id{Memory: 8 * 1024, Time: 1, Threads: 1, KeyLength: 16}.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(custom, "$argon2id$v=19$m=8192,t=1,p=1$") {
		t.Errorf("custom parameters: %q", custom)
	}
	// A provider with the defaults checks a hash of custom parameters.
	if !(password.Argon2id{}).Valid(pw, custom) {
		t.Error("the parameters of the hash are not used to check it")
	}
	if strings.Replace(custom, "v=19", "v=16", 1) == custom || (password.Argon2id{}).Valid(pw, strings.Replace(custom, "v=19", "v=16", 1)) {
		t.Error("accepts another argon2 version")
	}
	if (password.Argon2id{}).MaxLength() != 0 || (password.Bcrypt{}).MaxLength() != 72 {
		t.Error("MaxLength")
	}
}

// TestBcryptCost: the cost is in the hash; zero is bcrypt's default, 10.
func TestBcryptCost(t *testing.T) {
	h, err := password.Bcrypt{}.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$2a$10$") {
		t.Errorf("default cost: %q", h)
	}
	if _, err := (password.Bcrypt{Cost: 99}).Hash(pw); err == nil || !strings.HasPrefix(err.Error(), "kiln/password: bcrypt:") {
		t.Errorf("cost 99: %v", err)
	}
}
