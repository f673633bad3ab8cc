package authentication

import (
	"context"
	"crypto/rand"
	"encoding"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/resource"
)

// Errors of token verification and sign-in. Every refusal wraps
// ErrInvalidToken or ErrAuthenticationFailed; the message never says which
// check failed to the outside, but the wrapped error does, for logs.
var (
	ErrInvalidToken         = errors.New("kiln/authentication: invalid token")
	ErrAuthenticationFailed = errors.New("kiln/authentication: authentication failed")
	ErrTokensDisabled       = errors.New("kiln/authentication: tokens are not enabled")
	ErrNotAuthenticatable   = errors.New("kiln/authentication: resource has no authentication section")
	// ErrNoToken: an action expected to issue a token issued none (an
	// action of the same name declared in its place, say).
	ErrNoToken = errors.New("kiln/authentication: the action issued no token")
)

// Auth is the run-time side of a built authenticated resource: it issues,
// stores and verifies its tokens. Make it once (For) and share it; it is
// safe for concurrent use.
type Auth struct {
	domain *resource.Domain
	users  resource.Ref
	decl   *resource.Declaration
	cfg    Authentication
	method jwt.SigningMethod
	parser *jwt.Parser
	tokens *tokenresource.Store
}

// For returns the Auth of resource r in domain d.
func For(d *resource.Domain, r resource.Ref) (*Auth, error) {
	decl := d.Declaration(r)
	if decl == nil {
		return nil, fmt.Errorf("%w: %q is not in domain %q", resource.ErrUnknownResource, r.Name(), d.Name())
	}
	ext, ok := decl.Extension("authentication").(Authentication)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotAuthenticatable, r.Name())
	}
	cfg := ext.Config(decl.Name)
	a := &Auth{domain: d, users: d.Resource(r.Name()), decl: decl, cfg: cfg}
	if cfg.Tokens.Enabled {
		a.method = signingMethods[cfg.Tokens.SigningAlgorithm]
		a.parser = jwt.NewParser(
			jwt.WithValidMethods([]string{cfg.Tokens.SigningAlgorithm}),
			jwt.WithIssuer(Issuer),
			jwt.WithAudience(Audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			// One token, one string: no set padding bits in a segment.
			jwt.WithStrictDecoding(),
		)
		store, err := tokenresource.For(d, cfg.Tokens.TokenResource)
		if err != nil {
			return nil, err
		}
		a.tokens = store
	}
	return a, nil
}

// Config is the section, defaults applied.
func (a *Auth) Config() Authentication { return a.cfg }

// Domain is the domain the resource was built in.
func (a *Auth) Domain() *resource.Domain { return a.domain }

// Resource is the authenticated resource.
func (a *Auth) Resource() resource.Ref { return a.users }

// Tokens is the token store, nil when tokens are disabled.
func (a *Auth) Tokens() *tokenresource.Store { return a.tokens }

// IssueOptions adjust Issue.
type IssueOptions struct {
	// Purpose defaults to tokenresource.PurposeUser (a session).
	Purpose string
	// Lifetime defaults to Tokens.TokenLifetime.
	Lifetime time.Duration
	// Act restricts the token to one action (a password reset); session
	// authentication refuses tokens with an act.
	Act string
	// Extra claims to sign into the token.
	Extra map[string]any
	// ExtraData is stored with the token row (a user agent, say).
	ExtraData map[string]any
	// Store stores the token even without StoreAllTokens.
	Store bool
}

// Issue signs a token for record (a *T of the resource) and, with
// StoreAllTokens or opts.Store, stores it (in ctx's transaction when there
// is one).
func (a *Auth) Issue(ctx context.Context, record any, opts IssueOptions) (string, *Claims, error) {
	if !a.cfg.Tokens.Enabled {
		return "", nil, ErrTokensDisabled
	}
	subject, err := a.Subject(record)
	if err != nil {
		return "", nil, err
	}
	if opts.Purpose == "" {
		opts.Purpose = tokenresource.PurposeUser
	}
	if opts.Lifetime == 0 {
		opts.Lifetime = a.cfg.Tokens.TokenLifetime
	}
	now := time.Now().UTC().Truncate(time.Second)
	c := &Claims{JTI: newJTI(), Subject: subject, Purpose: opts.Purpose, Act: opts.Act,
		IssuedAt: now, NotBefore: now, ExpiresAt: now.Add(opts.Lifetime), Extra: opts.Extra}
	secret, err := a.cfg.Tokens.SigningSecret.Secret(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("kiln/authentication: signing secret: %w", err)
	}
	token, err := jwt.NewWithClaims(a.method, c.mapClaims()).SignedString([]byte(secret))
	if err != nil {
		return "", nil, fmt.Errorf("kiln/authentication: sign: %w", err)
	}
	if a.cfg.Tokens.StoreAllTokens || opts.Store {
		err := a.tokens.StoreToken(ctx, tokenresource.Fields{JTI: c.JTI, Subject: c.Subject, ExpiresAt: c.ExpiresAt,
			Purpose: c.Purpose, ExtraData: opts.ExtraData})
		if err != nil {
			return "", nil, fmt.Errorf("kiln/authentication: store token: %w", err)
		}
	}
	if c.Extra == nil {
		c.Extra = map[string]any{}
	}
	return token, c, nil
}

// Parse checks a token's signature (with the configured algorithm only,
// against the signing secret and then the previous ones), issuer, audience,
// expiry and not-before, and returns its claims. It does not consult the
// token store: use Verify for that.
func (a *Auth) Parse(ctx context.Context, token string) (*Claims, error) {
	if !a.cfg.Tokens.Enabled {
		return nil, ErrTokensDisabled
	}
	if !compact(token) {
		return nil, fmt.Errorf("%w: token is malformed: a character outside base64url and '.'", ErrInvalidToken)
	}
	secrets := append([]Secret{a.cfg.Tokens.SigningSecret}, a.cfg.Tokens.PreviousSecrets...)
	var lastErr error
	for _, s := range secrets {
		key, err := s.Secret(ctx)
		if err != nil {
			lastErr = err
			continue
		}
		m := jwt.MapClaims{}
		_, err = a.parser.ParseWithClaims(token, m, func(*jwt.Token) (any, error) { return []byte(key), nil })
		if err == nil {
			c := claimsFrom(m)
			if c.JTI == "" || c.Subject == "" || c.Purpose == "" {
				return nil, fmt.Errorf("%w: missing jti, sub or purpose", ErrInvalidToken)
			}
			if _, hasAct := m["act"]; hasAct && c.Act == "" {
				// An act that is not a non-empty string would read as no
				// act, and pass for a session.
				return nil, fmt.Errorf("%w: act claim is not a string", ErrInvalidToken)
			}
			return c, nil
		}
		lastErr = err
		if !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			break // only a wrong key is worth trying the next secret
		}
	}
	return nil, fmt.Errorf("%w: %v", ErrInvalidToken, lastErr)
}

// Verify checks a session token: Parse, purpose "user", no act claim, not
// revoked (when the store cannot tell, the token counts as revoked) and,
// with RequireTokenPresenceForAuthentication, a stored unexpired "user"
// row.
func (a *Auth) Verify(ctx context.Context, token string) (*Claims, error) {
	return a.VerifyPurpose(ctx, token, tokenresource.PurposeUser, "")
}

// VerifyPurpose is Verify for a token of another purpose, or one whose act
// claim must equal act.
func (a *Auth) VerifyPurpose(ctx context.Context, token, purpose, act string) (*Claims, error) {
	c, err := a.Parse(ctx, token)
	if err != nil {
		return nil, err
	}
	if c.Purpose != purpose {
		return nil, fmt.Errorf("%w: purpose %q, want %q", ErrInvalidToken, c.Purpose, purpose)
	}
	if c.Act != act {
		return nil, fmt.Errorf("%w: act %q, want %q", ErrInvalidToken, c.Act, act)
	}
	if err := a.checkStore(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

// checkStore consults the token store: presence (which implies not
// revoked: a revocation rewrites the row) or the revocation row. Tokens of
// a purpose other than a session (sign-in, password reset) are always
// stored when issued, so they always need their row: a forged one with an
// unstored jti gets nothing; they are read from the database every time.
// A session token's check is answered from the store's knowledge when it
// knows (tokenresource.Store.Follow).
func (a *Auth) checkStore(ctx context.Context, c *Claims) error {
	var err error
	switch {
	case c.Purpose != tokenresource.PurposeUser:
		_, err = a.tokens.Get(ctx, c.JTI, c.Purpose)
	case a.cfg.Tokens.RequireTokenPresenceForAuthentication:
		_, err = a.tokens.Session(ctx, c.JTI)
	default:
		revoked, err := a.tokens.IsRevoked(ctx, c.JTI)
		if err != nil {
			return fmt.Errorf("%w: revocation check failed (counted as revoked): %v", ErrInvalidToken, err)
		}
		if revoked {
			return fmt.Errorf("%w: revoked", ErrInvalidToken)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: not stored or revoked: %v", ErrInvalidToken, err)
	}
	return nil
}

// Authenticate verifies a session token and loads its record (*T).
func (a *Auth) Authenticate(ctx context.Context, token string) (any, *Claims, error) {
	c, err := a.Verify(ctx, token)
	if err != nil {
		return nil, nil, err
	}
	rec, err := a.RecordFor(ctx, c.Subject)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	return rec, c, nil
}

// Subject is the subject of record: "<subject name>?<pk>=<value>", the
// key url-encoded.
func (a *Auth) Subject(record any) (string, error) {
	rv := reflect.ValueOf(record)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Type() != a.decl.Type {
		return "", fmt.Errorf("kiln/authentication: subject of %T: want a non-nil *%s", record, a.decl.Type)
	}
	q := url.Values{}
	for _, attr := range a.decl.PrimaryKey() {
		v := rv.Elem().FieldByIndex(attr.Index).Interface()
		q.Set(attr.Name, keyString(v))
	}
	return a.cfg.SubjectName + "?" + q.Encode(), nil
}

// RecordFor loads the record a subject names, with the get-by-subject
// action.
func (a *Auth) RecordFor(ctx context.Context, subject string) (any, error) {
	name, query, ok := strings.Cut(subject, "?")
	if !ok || name != a.cfg.SubjectName {
		return nil, fmt.Errorf("kiln/authentication: subject %q is not a %s", subject, a.cfg.SubjectName)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("kiln/authentication: bad subject: %w", err)
	}
	in := resource.Input{}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, attr := range a.decl.PrimaryKey() {
		v, ok := q[attr.Name]
		if !ok || len(v) != 1 {
			return nil, fmt.Errorf("kiln/authentication: subject %q lacks %s", subject, attr.Name)
		}
		in[attr.Name] = v[0]
	}
	if len(keys) != len(in) {
		return nil, fmt.Errorf("kiln/authentication: subject %q has unknown keys", subject)
	}
	if a.cfg.getBySubject == nil {
		return nil, fmt.Errorf("%w: %s has no primary key, so no %s action", resource.ErrUnknownAction, a.users.Name(), a.cfg.GetBySubjectAction)
	}
	return a.cfg.getBySubject.Get(ctx, a.domain, in)
}

// keyString renders a primary key value for a subject.
func keyString(v any) string {
	if m, ok := v.(encoding.TextMarshaler); ok {
		if b, err := m.MarshalText(); err == nil {
			return string(b)
		}
	}
	return fmt.Sprint(v)
}

// compact reports whether token holds only the characters of a compact
// JWS, base64url and dots. The base64 decoder skips CR and LF, so without
// this check one token would verify under many strings.
func compact(token string) bool {
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// newJTI returns a random token id: 128 bits, URL-safe.
func newJTI() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Metadata keys under which token-issuing actions return their token.
const (
	// TokenKey holds the issued token (a string) in the Metadata of
	// RunResult, Result[T] and ViewResult.
	TokenKey = "token"
	// ClaimsKey holds its *Claims.
	ClaimsKey = "claims"
)

// Session is a signed-in record with its token.
type Session struct {
	// Record is the user (*T).
	Record any
	Token  string
	Claims *Claims
}

// SessionOf returns the session a token-issuing action (register, sign
// in, reset…) run through a view returned: the record (a create's or
// update's, or a generic action's value) and the token its changes put in
// the metadata. It fails when the action issued no token.
func SessionOf[V any](res *resource.ViewResult[V]) (*Session, error) {
	s := &Session{Record: res.Value}
	s.Token, _ = res.Metadata[TokenKey].(string)
	s.Claims, _ = res.Metadata[ClaimsKey].(*Claims)
	if s.Token == "" || s.Claims == nil {
		return nil, ErrNoToken
	}
	return s, nil
}
