package ratelimit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrUnavailable wraps a store's error when an attempt could not be
// counted and Limits.FailOpen is false: the attempt is refused.
var ErrUnavailable = errors.New("kiln/ratelimit: limit store unavailable")

// Exceeded is the error of an attempt refused by a limit.
type Exceeded struct {
	// Rule is the name of the rule that refused it: "sign_in_per_identity".
	Rule string
	// RetryAfter is how long until the rule lets one attempt through.
	RetryAfter time.Duration
}

func (e *Exceeded) Error() string {
	return fmt.Sprintf("kiln/ratelimit: too many attempts (%s), retry in %s", e.Rule, e.RetryAfter)
}

// Limiter applies Limits to requests, keeping its buckets in a Store. It
// is safe for concurrent use.
type Limiter struct {
	limits  Limits
	store   Store
	trusted []netip.Prefix
	hashKey []byte
	logger  *slog.Logger

	registry prometheus.Registerer
	refused  *prometheus.CounterVec
}

// Option configures a Limiter.
type Option func(*Limiter)

// WithTrustedProxies names the proxies whose X-Forwarded-For entries are
// believed (see ClientAddr). Default: none, the peer is the client.
func WithTrustedProxies(p ...netip.Prefix) Option {
	return func(l *Limiter) { l.trusted = append(l.trusted, p...) }
}

// WithHashKey makes keys HMAC-SHA-256 digests under key instead of
// SHA-256 digests, so that a store's keys cannot be matched against a list
// of emails. Nodes sharing a store must use the same key.
func WithHashKey(key []byte) Option {
	return func(l *Limiter) { l.hashKey = append([]byte(nil), key...) }
}

// WithLogger sets the logger for store errors let through under
// Limits.FailOpen. Default: slog.Default().
func WithLogger(lg *slog.Logger) Option { return func(l *Limiter) { l.logger = lg } }

// New returns a Limiter applying limits (zero rules take their defaults)
// with store; a nil store is a new MemoryStore.
func New(store Store, limits Limits, opts ...Option) (*Limiter, error) {
	if err := limits.Check(); err != nil {
		return nil, err
	}
	if store == nil {
		store = NewMemoryStore()
	}
	l := &Limiter{limits: limits, store: store, logger: slog.Default(), refused: newRefused()}
	for _, o := range opts {
		o(l)
	}
	if l.registry != nil {
		if err := l.registry.Register(l.refused); err != nil {
			return nil, fmt.Errorf("kiln/ratelimit: metrics: %w", err)
		}
	}
	return l, nil
}

// Limits returns the limits in force, defaults applied.
func (l *Limiter) Limits() Limits { return l.limits }

// ClientAddr is r's client address under the limiter's trusted proxies.
func (l *Limiter) ClientAddr(r *http.Request) netip.Addr { return ClientAddr(r, l.trusted) }

// Attempt is a sign-in let through: it has taken a token from each of
// its buckets, so that concurrent attempts cannot all pass a check before
// any of them fails. Call Succeeded when the credentials were right; a
// failure needs no call.
type Attempt struct {
	l     *Limiter
	taken []check
}

// Succeeded gives the attempt's tokens back: only failed sign-ins count.
// It is safe on a nil Attempt.
func (a *Attempt) Succeeded(ctx context.Context) {
	if a == nil {
		return
	}
	a.l.refund(ctx, a.taken)
}

// SignIn counts a sign-in attempt for identity from r's client address,
// before the credentials are checked. It returns an *Exceeded when a limit
// refuses it, an error wrapping ErrUnavailable when the store failed (and
// Limits.FailOpen is false), else the Attempt.
func (l *Limiter) SignIn(r *http.Request, identity string) (*Attempt, error) {
	taken, err := l.take(r.Context(),
		l.addrCheck("sign_in_per_address", l.limits.SignInPerAddress, r),
		l.identityCheck("sign_in_per_identity", l.limits.SignInPerIdentity, identity))
	if err != nil {
		return nil, err
	}
	return &Attempt{l: l, taken: taken}, nil
}

// ResetRequest counts a password reset request for identity from r's
// client address; its errors are SignIn's.
func (l *Limiter) ResetRequest(r *http.Request, identity string) error {
	_, err := l.take(r.Context(),
		l.addrCheck("reset_request_per_address", l.limits.ResetRequestPerAddress, r),
		l.identityCheck("reset_request_per_identity", l.limits.ResetRequestPerIdentity, identity))
	return err
}

// Register counts a registration from r's client address; its errors are
// SignIn's.
func (l *Limiter) Register(r *http.Request) error {
	_, err := l.take(r.Context(), l.addrCheck("register_per_address", l.limits.RegisterPerAddress, r))
	return err
}

// check is one bucket an attempt takes from.
type check struct {
	name string
	key  string
	rule Rule
}

// NormalizeIdentity is the form of an identity its keys are made from:
// trimmed and lower-cased, so that " Ann@Example.com" and
// "ann@example.com" share their limits.
func NormalizeIdentity(identity string) string {
	return strings.ToLower(strings.TrimSpace(identity))
}

func (l *Limiter) identityCheck(name string, rule Rule, identity string) check {
	return check{name: name, key: l.key(name, NormalizeIdentity(identity)), rule: rule}
}

func (l *Limiter) addrCheck(name string, rule Rule, r *http.Request) check {
	return check{name: name, key: l.key(name, addrKey(l.ClientAddr(r))), rule: rule}
}

// key is the rule's name and a digest of value: stores never see an
// identity or an address.
func (l *Limiter) key(rule, value string) string {
	var h hash.Hash
	if l.hashKey != nil {
		h = hmac.New(sha256.New, l.hashKey)
	} else {
		h = sha256.New()
	}
	h.Write([]byte(value))
	return rule + ":" + hex.EncodeToString(h.Sum(nil)[:16])
}

// take takes a token from every check in order. When one refuses, the
// tokens already taken are given back: the attempt is not made.
func (l *Limiter) take(ctx context.Context, checks ...check) ([]check, error) {
	if l.limits.Disabled {
		return nil, nil
	}
	taken := make([]check, 0, len(checks))
	for _, c := range checks {
		ok, retry, err := l.store.Take(ctx, c.key, c.rule)
		if err != nil {
			if l.limits.FailOpen {
				l.logger.Error("kiln/ratelimit: store failed; attempt let through (fail_open)", "rule", c.name, "err", err)
				continue
			}
			l.refund(ctx, taken)
			return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, c.name, err)
		}
		if !ok {
			l.refused.WithLabelValues(c.name).Inc()
			l.refund(ctx, taken)
			return nil, &Exceeded{Rule: c.name, RetryAfter: retry}
		}
		taken = append(taken, c)
	}
	return taken, nil
}

// refund gives back tokens; a failure leaves them spent (the error is
// logged), which errs on the side of the limit.
func (l *Limiter) refund(ctx context.Context, checks []check) {
	ctx = context.WithoutCancel(ctx)
	for _, c := range checks {
		if err := l.store.Refund(ctx, c.key, c.rule); err != nil {
			l.logger.Error("kiln/ratelimit: refund failed", "rule", c.name, "err", err)
		}
	}
}
