package authentication_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/accountstest"
)

// The fuzz seed's fixed claims: a session token of a fixed jti and
// subject, valid from 2023 to 2100, signed with accountstest.Secret.
const (
	seedJTI     = "fuzz-seed-jti-0001"
	seedSubject = "user?id=00000000-0000-4000-8000-000000000001"
	seedIssued  = 1700000000 // 2023-11-14
	seedExpires = 4102444800 // 2100-01-01
)

// seedClaims are the claims of the valid seed.
func seedClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"sub": seedSubject, "jti": seedJTI, "iat": seedIssued, "nbf": seedIssued, "exp": seedExpires,
		"iss": authentication.Issuer, "aud": authentication.Audience, "purpose": tokenresource.PurposeUser,
	}
}

// seedCorpus is the checked-in corpus of FuzzVerify, by file name: the
// valid token, made deterministically (HMAC signatures and the sorted keys
// of the claims' JSON make the same bytes every time), and tokens that
// must be refused. Regenerate the files with KILN_UPDATE_FUZZ_CORPUS=1.
func seedCorpus(t testing.TB) map[string]string {
	t.Helper()
	key := []byte(accountstest.Secret)
	hs := func(m jwt.SigningMethod, c jwt.MapClaims) string { return sign(t, m, key, c) }
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, seedClaims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	valid := hs(jwt.SigningMethodHS256, seedClaims())
	return map[string]string{
		"valid":          valid,
		"padding_bits":   setPaddingBits(t, valid),
		"newline":        valid[:len(valid)-3] + "\n" + valid[len(valid)-3:],
		"alg_none":       none,
		"hs512":          hs(jwt.SigningMethodHS512, seedClaims()),
		"expired":        hs(jwt.SigningMethodHS256, with(seedClaims(), map[string]any{"exp": seedIssued + 60})),
		"not_yet_valid":  hs(jwt.SigningMethodHS256, with(seedClaims(), map[string]any{"nbf": seedExpires - 60})),
		"wrong_issuer":   hs(jwt.SigningMethodHS256, with(seedClaims(), map[string]any{"iss": "evil"})),
		"wrong_audience": hs(jwt.SigningMethodHS256, with(seedClaims(), map[string]any{"aud": []string{"kiln/2"}})),
		"act":            hs(jwt.SigningMethodHS256, with(seedClaims(), map[string]any{"act": "reset_with_password"})),
		"unstored_jti":   hs(jwt.SigningMethodHS256, with(seedClaims(), map[string]any{"jti": "not-stored"})),
		"sign_in":        hs(jwt.SigningMethodHS256, with(seedClaims(), map[string]any{"purpose": "sign_in"})),
		"wrong_key":      sign(t, jwt.SigningMethodHS256, []byte("not-the-secret-0123456789abcdefghijkl"), seedClaims()),
		"empty":          "",
		"two_segments":   "a.b",
		"garbage":        "garbage",
	}
}

const corpusDir = "testdata/fuzz/FuzzVerify"

// corpusFile is a corpus entry in the "go test fuzz v1" format.
func corpusFile(tok string) string {
	return "go test fuzz v1\nstring(" + strconv.Quote(tok) + ")\n"
}

// TestFuzzCorpus checks the checked-in corpus against seedCorpus, so the
// valid seed stays valid (and the others stay what their names say).
func TestFuzzCorpus(t *testing.T) {
	seeds := seedCorpus(t)
	if os.Getenv("KILN_UPDATE_FUZZ_CORPUS") == "1" {
		if err := os.MkdirAll(corpusDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, tok := range seeds {
			if err := os.WriteFile(filepath.Join(corpusDir, name), []byte(corpusFile(tok)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, tok := range seeds {
		got, err := os.ReadFile(filepath.Join(corpusDir, name))
		if err != nil {
			t.Errorf("corpus entry %s: %v (regenerate with KILN_UPDATE_FUZZ_CORPUS=1)", name, err)
			continue
		}
		if string(got) != corpusFile(tok) {
			t.Errorf("corpus entry %s is stale:\n%s\nwant\n%s", name, got, corpusFile(tok))
		}
	}
	a, valid := fuzzAccounts(t)
	ctx := context.Background()
	if valid != seeds["valid"] {
		t.Fatal("the valid seed is not deterministic")
	}
	for name, tok := range seeds {
		_, err := a.Auth.Verify(ctx, tok)
		if (err == nil) != (name == "valid") {
			t.Errorf("seed %s: Verify = %v", name, err)
		}
	}
}

// fuzzAccounts builds the accounts FuzzVerify verifies against, with the
// valid seed's row stored, and returns the valid seed.
func fuzzAccounts(t testing.TB) (*accountstest.Accounts, string) {
	t.Helper()
	a := accountstest.Build(t, "sqlite", accountstest.Options{})
	err := a.Auth.Tokens().StoreToken(context.Background(), tokenresource.Fields{
		JTI: seedJTI, Subject: seedSubject, Purpose: tokenresource.PurposeUser, ExpiresAt: time.Unix(seedExpires, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	return a, sign(t, jwt.SigningMethodHS256, []byte(accountstest.Secret), seedClaims())
}

// FuzzVerify: no input makes Verify panic, and none verifies but the
// unmutated valid seed. Every refusal is an ErrInvalidToken.
//
//	go test -run '^$' -fuzz FuzzVerify -fuzztime 20s ./extensions/authentication/
func FuzzVerify(f *testing.F) {
	a, valid := fuzzAccounts(f)
	ctx := context.Background()
	parts := strings.Split(valid, ".")
	// More seeds, beyond the corpus files: pieces of the valid token.
	f.Add(valid + ".")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + ".." + parts[2])
	f.Add(strings.Join([]string{parts[0], parts[1], parts[2], parts[2]}, "."))
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := a.Auth.Verify(ctx, tok)
		if tok == valid {
			if err != nil {
				t.Fatalf("the valid seed is refused: %v", err)
			}
			return
		}
		if err == nil {
			t.Fatalf("a mutated token verifies: %q (claims %s)", tok, fmt.Sprintf("%+v", *c))
		}
		if !errors.Is(err, authentication.ErrInvalidToken) {
			t.Fatalf("refused with %v, not ErrInvalidToken", err)
		}
	})
}
