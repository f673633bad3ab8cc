package ratelimit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-go/kiln/web/ratelimit"
)

// signInServer is a sign-in handler wired as web's is: the limiter
// counts the attempt before the credentials are checked, and the tokens
// come back when they are right. checked counts the attempts that
// reached the credential check.
type signInServer struct {
	l       *ratelimit.Limiter
	checked atomic.Int64
	// gate, when set, holds every credential check until it is closed.
	gate chan struct{}
}

func (s *signInServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	email, password := r.FormValue("email"), r.FormValue("password")
	a, err := s.l.SignIn(r, email)
	if err != nil {
		ratelimit.Deny(w, r, err)
		return
	}
	s.checked.Add(1)
	if s.gate != nil {
		<-s.gate
	}
	if password != "right" {
		http.Error(w, "invalid credentials", http.StatusUnauthorized)
		return
	}
	a.Succeeded(r.Context())
	w.WriteHeader(http.StatusOK)
}

func signIn(h http.Handler, remote, email, password string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/auth/user/password/sign_in", strings.NewReader("email="+email+"&password="+password))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// newLimiter returns a Limiter on store; a nil store is a MemoryStore
// whose clock stands still, so that no token comes back mid-test.
func newLimiter(t *testing.T, store ratelimit.Store, limits ratelimit.Limits, opts ...ratelimit.Option) *ratelimit.Limiter {
	t.Helper()
	if store == nil {
		store = ratelimit.NewMemoryStore(ratelimit.WithClock(newClock().Now))
	}
	l, err := ratelimit.New(store, limits, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// The attack: 199 wrong passwords, then the right one.
func TestSignInStopsBruteForceOnOneIdentity(t *testing.T) {
	s := &signInServer{l: newLimiter(t, nil, ratelimit.Limits{})}
	refused := 0
	for i := range 199 {
		w := signIn(s, fmt.Sprintf("198.51.100.%d:1234", i%250), "victim@example.com", "wrong")
		if w.Code == http.StatusTooManyRequests {
			refused++
		}
	}
	if got := s.checked.Load(); got != 10 {
		t.Fatalf("%d of 199 wrong passwords reached the credential check; want the default burst, 10", got)
	}
	w := signIn(s, "203.0.113.9:1", "victim@example.com", "right")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("the right password after 199 wrong ones answered %d; want 429", w.Code)
	}
	if ra := w.Header().Get("Retry-After"); ra != "90" {
		t.Fatalf("Retry-After = %q; want 90 (15m/10)", ra)
	}
	if refused != 189 {
		t.Fatalf("%d refused; want 189", refused)
	}
}

// Concurrent attempts each take a token before the check, so no more
// than the burst can be in the check at once.
func TestSignInConcurrentAttemptsCannotOutrunTheLimit(t *testing.T) {
	s := &signInServer{l: newLimiter(t, nil, ratelimit.Limits{}), gate: make(chan struct{})}
	var wg sync.WaitGroup
	codes := make(chan int, 100)
	for i := range 100 {
		wg.Go(func() { codes <- signIn(s, fmt.Sprintf("198.51.100.%d:1", i), "victim@example.com", "wrong").Code })
	}
	// 90 are refused while 10 wait in the check.
	for range 90 {
		select {
		case c := <-codes:
			if c != http.StatusTooManyRequests {
				t.Fatalf("answered %d while the burst was in the check; want 429", c)
			}
		case <-time.After(ratelimittestDeadline):
			t.Fatal("the refusals did not come")
		}
	}
	close(s.gate)
	wg.Wait()
	if got := s.checked.Load(); got != 10 {
		t.Fatalf("%d of 100 concurrent attempts reached the check; want the burst, 10", got)
	}
}

const ratelimittestDeadline = 15 * time.Second

func TestSignInSuccessesDoNotCount(t *testing.T) {
	s := &signInServer{l: newLimiter(t, nil, ratelimit.Limits{})}
	for range 9 {
		signIn(s, "192.0.2.1:1", "ann@example.com", "wrong")
	}
	for i := range 100 {
		if w := signIn(s, "192.0.2.1:1", "ann@example.com", "right"); w.Code != http.StatusOK {
			t.Fatalf("successful sign-in %d answered %d; want 200 (only failures count)", i+1, w.Code)
		}
	}
	if w := signIn(s, "192.0.2.1:1", "ann@example.com", "wrong"); w.Code != http.StatusUnauthorized {
		t.Fatalf("10th failure answered %d; want 401", w.Code)
	}
	if w := signIn(s, "192.0.2.1:1", "ann@example.com", "wrong"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("11th failure answered %d; want 429", w.Code)
	}
}

func TestSignInIdentityIsNormalised(t *testing.T) {
	s := &signInServer{l: newLimiter(t, nil, ratelimit.Limits{})}
	spellings := []string{"ann@example.com", "Ann@Example.com", "  ANN@EXAMPLE.COM ", "ann@example.COM"}
	for i := range 10 {
		signIn(s, "192.0.2.1:1", spellings[i%len(spellings)], "wrong")
	}
	for _, e := range spellings {
		if w := signIn(s, "192.0.2.2:1", e, "wrong"); w.Code != http.StatusTooManyRequests {
			t.Fatalf("%q after 10 failures under other spellings answered %d; want 429", e, w.Code)
		}
	}
}

func TestSignInPerAddressAcrossIdentities(t *testing.T) {
	s := &signInServer{l: newLimiter(t, nil, ratelimit.Limits{})}
	for i := range 100 {
		if w := signIn(s, "192.0.2.7:1", fmt.Sprintf("user%d@example.com", i), "wrong"); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d answered %d; want 401", i+1, w.Code)
		}
	}
	if w := signIn(s, "192.0.2.7:1", "fresh@example.com", "right"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("101st attempt from one address answered %d; want 429", w.Code)
	}
	if w := signIn(s, "192.0.2.8:1", "fresh@example.com", "right"); w.Code != http.StatusOK {
		t.Fatalf("another address answered %d; want 200", w.Code)
	}
	// IPv6: a host has a /64, so the limit counts the /64.
	for i := range 100 {
		signIn(s, fmt.Sprintf("[2001:db8:1:2::%x]:1", i), fmt.Sprintf("v6user%d@example.com", i), "wrong")
	}
	if w := signIn(s, "[2001:db8:1:2:ffff::1]:1", "fresh@example.com", "right"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("a new address in a spent /64 answered %d; want 429", w.Code)
	}
}

// A refused identity does not spend the address's budget: the attempt
// was not made.
func TestRefusedAttemptGivesBackEarlierTokens(t *testing.T) {
	s := &signInServer{l: newLimiter(t, nil, ratelimit.Limits{})}
	for range 10 {
		signIn(s, "192.0.2.1:1", "victim@example.com", "wrong")
	}
	for range 200 {
		signIn(s, "192.0.2.9:1", "victim@example.com", "wrong")
	}
	if w := signIn(s, "192.0.2.9:1", "other@example.com", "right"); w.Code != http.StatusOK {
		t.Fatalf("after 200 refused attempts, the address answered %d; want 200", w.Code)
	}
}

func TestSpoofedForwardedForFromUntrustedPeerIsIgnored(t *testing.T) {
	l := newLimiter(t, nil, ratelimit.Limits{}, ratelimit.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8")))
	allowed := 0
	for i := range 150 {
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = "192.0.2.50:4321"
		r.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))
		if _, err := l.SignIn(r, fmt.Sprintf("u%d@example.com", i)); err == nil {
			allowed++
		}
	}
	if allowed != 100 {
		t.Fatalf("%d of 150 attempts with rotating X-Forwarded-For from one untrusted peer let through; want 100", allowed)
	}
}

func TestResetRequestLimits(t *testing.T) {
	l := newLimiter(t, nil, ratelimit.Limits{})
	req := func(remote string) *http.Request {
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = remote
		return r
	}
	for i := range 5 {
		if err := l.ResetRequest(req("192.0.2.1:1"), "ann@example.com"); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	var ex *ratelimit.Exceeded
	if err := l.ResetRequest(req("192.0.2.2:1"), "ANN@example.com"); !errors.As(err, &ex) || ex.Rule != "reset_request_per_identity" || ex.RetryAfter != 12*time.Minute {
		t.Fatalf("6th request = %v; want Exceeded by reset_request_per_identity, retry in 12m", err)
	}
	for i := range 30 {
		if err := l.ResetRequest(req("192.0.2.3:1"), fmt.Sprintf("u%d@example.com", i)); err != nil {
			t.Fatalf("request %d from one address: %v", i+1, err)
		}
	}
	if err := l.ResetRequest(req("192.0.2.3:1"), "new@example.com"); !errors.As(err, &ex) || ex.Rule != "reset_request_per_address" {
		t.Fatalf("31st request from one address = %v; want Exceeded by reset_request_per_address", err)
	}
}

// The defaults let a test suite register a few hundred users from
// loopback, and stop a registration flood.
func TestRegisterLimitPerAddress(t *testing.T) {
	l := newLimiter(t, nil, ratelimit.Limits{})
	r := httptest.NewRequest("POST", "/", nil)
	r.RemoteAddr = "127.0.0.1:5555"
	for i := range 200 {
		if err := l.Register(r); err != nil {
			t.Fatalf("registration %d: %v", i+1, err)
		}
	}
	var ex *ratelimit.Exceeded
	if err := l.Register(r); !errors.As(err, &ex) || ex.Rule != "register_per_address" {
		t.Fatalf("201st registration = %v; want Exceeded", err)
	}
}

func TestDisabledLetsEverythingThrough(t *testing.T) {
	s := &signInServer{l: newLimiter(t, nil, ratelimit.Limits{Disabled: true})}
	for range 50 {
		signIn(s, "192.0.2.1:1", "ann@example.com", "wrong")
	}
	if got := s.checked.Load(); got != 50 {
		t.Fatalf("%d of 50 checked; want all with limits disabled", got)
	}
}

// recordingStore records the keys it is given and can fail.
type recordingStore struct {
	mu   sync.Mutex
	keys []string
	err  error
	ratelimit.Store
}

func (s *recordingStore) Take(ctx context.Context, key string, rule ratelimit.Rule) (bool, time.Duration, error) {
	s.mu.Lock()
	s.keys = append(s.keys, key)
	s.mu.Unlock()
	if s.err != nil {
		return false, 0, s.err
	}
	return s.Store.Take(ctx, key, rule)
}

func TestKeysHoldNoIdentityOrAddress(t *testing.T) {
	for _, opts := range [][]ratelimit.Option{nil, {ratelimit.WithHashKey([]byte("0123456789abcdef0123456789abcdef"))}} {
		st := &recordingStore{Store: ratelimit.NewMemoryStore(ratelimit.WithClock(newClock().Now))}
		l := newLimiter(t, st, ratelimit.Limits{}, opts...)
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = "192.0.2.77:1"
		if _, err := l.SignIn(r, "Secret.Person@example.com"); err != nil {
			t.Fatal(err)
		}
		for _, k := range st.keys {
			for _, leak := range []string{"secret", "person", "example", "192.0.2.77", "@"} {
				if strings.Contains(strings.ToLower(k), leak) {
					t.Fatalf("store key %q holds %q", k, leak)
				}
			}
		}
	}
}

func TestHashKeyChangesKeys(t *testing.T) {
	keys := func(opts ...ratelimit.Option) []string {
		st := &recordingStore{Store: ratelimit.NewMemoryStore(ratelimit.WithClock(newClock().Now))}
		r := httptest.NewRequest("POST", "/", nil)
		if _, err := newLimiter(t, st, ratelimit.Limits{}, opts...).SignIn(r, "ann@example.com"); err != nil {
			t.Fatal(err)
		}
		return st.keys
	}
	plain, keyed := keys(), keys(ratelimit.WithHashKey([]byte("k")))
	if plain[1] == keyed[1] {
		t.Fatal("WithHashKey left the identity key as the plain SHA-256")
	}
}

func TestStoreFailureFailsClosed(t *testing.T) {
	st := &recordingStore{err: errors.New("connection refused")}
	s := &signInServer{l: newLimiter(t, st, ratelimit.Limits{})}
	w := signIn(s, "192.0.2.1:1", "ann@example.com", "right")
	if w.Code != http.StatusServiceUnavailable || s.checked.Load() != 0 {
		t.Fatalf("with the store down: %d, %d checked; want 503 and no credential check", w.Code, s.checked.Load())
	}
	if _, err := s.l.SignIn(httptest.NewRequest("POST", "/", nil), "ann@example.com"); !errors.Is(err, ratelimit.ErrUnavailable) {
		t.Fatalf("err = %v; want ErrUnavailable", err)
	}
}

func TestStoreFailureFailOpenLogsWithoutKeys(t *testing.T) {
	var logs bytes.Buffer
	st := &recordingStore{err: errors.New("connection refused")}
	s := &signInServer{l: newLimiter(t, st, ratelimit.Limits{FailOpen: true}, ratelimit.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))}
	if w := signIn(s, "192.0.2.1:1", "ann@example.com", "right"); w.Code != http.StatusOK {
		t.Fatalf("fail_open with the store down answered %d; want 200", w.Code)
	}
	out := logs.String()
	if !strings.Contains(out, "connection refused") {
		t.Fatalf("log %q does not say why", out)
	}
	for _, leak := range append([]string{"ann@example.com", "192.0.2.1"}, st.keys...) {
		if strings.Contains(out, leak) {
			t.Fatalf("log %q holds %q", out, leak)
		}
	}
}

func TestBadLimitsAreRefused(t *testing.T) {
	_, err := ratelimit.New(nil, ratelimit.Limits{
		SignInPerIdentity:  ratelimit.Rule{Burst: -1},
		RegisterPerAddress: ratelimit.Rule{Window: -time.Second},
	})
	want := "kiln/ratelimit: rate_limits.sign_in_per_identity.burst: must be positive (-1); use a positive number of attempts\n" +
		"kiln/ratelimit: rate_limits.register_per_address.window: must be positive (-1s); use a positive duration such as 15m"
	if err == nil || err.Error() != want {
		t.Fatalf("err =\n%v\nwant\n%s", err, want)
	}
}
