// Package password is the password strategy of the authentication
// extension: register, sign in (with a password or a one-shot sign-in
// token), change and reset passwords.
//
//	authentication.Authentication{
//		Tokens:     authentication.Tokens{…},
//		Strategies: []authentication.Strategy{password.Password{IdentityField: "email"}},
//	}
//
// Actions it adds to the resource (unless declared): register_with_password
// (create), sign_in_with_password, sign_in_with_token (generic),
// change_password and set_password (update), get_by_<identity> (read), and
// with Resettable, request_password_reset and reset_with_password
// (generic). Token-issuing actions put the token in the result's Metadata
// under authentication.TokenKey.
//
// At run time, For(auth) returns the strategy as the domain built it; its
// methods (Register, SignIn, Change, Reset…) run those actions, under
// their configured names, and return the session. The strategy as built
// also serves them over HTTP (Routes, an authroute.Provider), through the
// web glue, which finds it on the authentication section.
package password

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"reflect"
	"time"
	"unicode/utf8"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
	"github.com/kiln-go/kiln/web/ratelimit"
)

// PurposePasswordReset is the stored purpose of a reset token. The token
// also carries an act claim, so no session check ever accepts it.
const PurposePasswordReset = "password_reset"

// Defaults of the strategy's options.
const (
	DefaultMinLength           = 8
	DefaultSignInTokenLifetime = 60 * time.Second
	DefaultResetTokenLifetime  = 3 * 24 * time.Hour
)

// Password is the password strategy. The zero value of every field takes
// the default documented on it.
type Password struct {
	// Name is the name option. Names the strategy and its actions. Default:
	// "password".
	Name string
	// IdentityField is the identity_field option. The attribute users sign
	// in with; must be an identity (unique). Default: "username".
	IdentityField string
	// HashedPasswordField is the hashed_password_field option. The
	// attribute that holds the hash; marked sensitive and read-only.
	// Default: "hashed_password".
	HashedPasswordField string
	// HashProvider is the hash_provider option. Hashes passwords:
	// password.Bcrypt{} (default, cost 10) or password.Argon2id{}.
	HashProvider HashProvider
	// CaseSensitiveIdentity is the case_sensitive_identity option. Keeps
	// the identity as typed. Default: false, identities are trimmed and
	// lower-cased when stored and looked up, so Ada@Example.com and
	// ada@example.com are one account.
	CaseSensitiveIdentity bool
	// ConfirmationOptional is the confirmation_optional option. Drops the
	// password_confirmation argument. Default: false (required).
	ConfirmationOptional bool
	// MinLength is the min_length option. The shortest password, in
	// characters. Rules: gt=0. Default: 8.
	MinLength int
	// SignInTokenLifetime is the sign_in_token_lifetime option. The
	// lifetime of a one-shot sign-in token. Rules: gt=0. Default: 1m.
	SignInTokenLifetime time.Duration
	// Resettable is the resettable option. Enables the reset flow with a
	// Sender; reset tokens live 3 days unless its TokenLifetime says
	// otherwise. Default: no reset.
	Resettable *Resettable
	// Actions is the actions section. The names of the strategy's actions;
	// a name left empty takes its default, which follows the strategy's
	// name (and identity field).
	Actions ActionNames

	// built holds the views of the strategy's actions, made by Transform
	// for the declaration it builds; nil before.
	built *views
}

// views are the strategy's handles on its actions. Most inputs name the
// identity field, or drop the confirmation, as configured: those views take
// a resource.Input. sign_in_with_token's arguments are fixed.
type views struct {
	getByIdentity, register, signIn, change, set *resource.View[any, resource.Input]
	signInWithToken                              *resource.View[any, SignInWithTokenInput]
	// requestReset and reset are nil unless the strategy is Resettable.
	requestReset, reset *resource.View[any, resource.Input]
}

// ActionNames are the names of the strategy's actions; "password" below
// stands for the strategy's Name.
type ActionNames struct {
	// Register is the register option. Registers with an identity and a
	// password. Default: register_with_<name>.
	Register string
	// SignIn is the sign_in option. Signs in with an identity and a
	// password. Default: sign_in_with_<name>.
	SignIn string
	// SignInWithToken is the sign_in_with_token option. Exchanges a
	// one-shot sign-in token for a session token. Default:
	// sign_in_with_token.
	SignInWithToken string
	// Change is the change option. Changes the password after checking the
	// current one. Default: change_<name>.
	Change string
	// Set is the set option. Sets a new password without checking the old
	// one (used by the reset flow). Default: set_<name>.
	Set string
	// GetByIdentity is the get_by_identity option. Gets a record by its
	// identity. Default: get_by_<identity_field>.
	GetByIdentity string
	// RequestReset is the request_reset option. Sends a reset token to the
	// user with that identity, if there is one; always succeeds. Default:
	// request_<name>_reset.
	RequestReset string
	// Reset is the reset option. Sets a new password with a reset token
	// (used once). Default: reset_with_<name>.
	Reset string
}

// Resettable enables password resets.
//
// The reset tokens are delivered by the domain's Sender, a runtime part
// given to Build: resource.With(sender). Build fails without one.
type Resettable struct {
	// TokenLifetime is a reset token's lifetime. Default: 3 days.
	TokenLifetime time.Duration
}

// Sender delivers a reset token to a user, by mail for instance.
type Sender interface {
	SendResetToken(ctx context.Context, user any, token string) error
}

// SenderFunc adapts a function to Sender.
type SenderFunc func(ctx context.Context, user any, token string) error

// SendResetToken calls f.
func (f SenderFunc) SendResetToken(ctx context.Context, user any, token string) error {
	return f(ctx, user, token)
}

// Argument names of the strategy's actions.
const (
	ArgPassword             = "password"
	ArgPasswordConfirmation = "password_confirmation"
	ArgCurrentPassword      = "current_password"
	ArgToken                = "token"
	ArgResetToken           = "reset_token"
	// ArgExtraData is an optional map stored with the issued token row
	// (the web glue stores the user agent there).
	ArgExtraData = "extra_data"
	// ArgSignInToken, true on sign_in_with_password, issues a one-shot
	// sign-in token (SignInTokenLifetime) instead of a session token, to be
	// exchanged with sign_in_with_token.
	ArgSignInToken = "sign_in_token"
)

// Config returns the strategy with defaults applied.
func (p Password) Config() Password {
	Schema.Defaults(&p)
	if p.HashProvider == nil {
		p.HashProvider = Bcrypt{}
	}
	if p.Resettable != nil {
		r := *p.Resettable
		if r.TokenLifetime == 0 {
			r.TokenLifetime = DefaultResetTokenLifetime
		}
		p.Resettable = &r
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	n := &p.Actions
	def(&n.Register, "register_with_"+p.Name)
	def(&n.SignIn, "sign_in_with_"+p.Name)
	def(&n.SignInWithToken, "sign_in_with_token")
	def(&n.Change, "change_"+p.Name)
	def(&n.Set, "set_"+p.Name)
	def(&n.GetByIdentity, "get_by_"+p.IdentityField)
	def(&n.RequestReset, "request_"+p.Name+"_reset")
	def(&n.Reset, "reset_with_"+p.Name)
	return p
}

// StrategyName implements authentication.Strategy.
func (p Password) StrategyName() string { return p.Config().Name }

var mapType = reflect.TypeFor[map[string]any]()

// Transform adds the strategy's actions and marks the hash attribute
// sensitive and read-only. It returns the strategy as built, whose methods
// (SignIn, Register…) run those actions.
func (p Password) Transform(_ *resource.BuildContext, d *resource.Declaration, auth authentication.Authentication) authentication.Strategy {
	p = p.Config()
	n := p.Actions
	if a := d.Attribute(p.HashedPasswordField); a != nil {
		a.Sensitive, a.ReadOnly = true, true
	}
	if d.Attribute(p.IdentityField) == nil {
		// Verify reports the missing identity field; actions over it
		// would only add build errors that point the wrong way.
		return p
	}
	pw := resource.Argument{Name: ArgPassword, Validate: "required", Sensitive: true}
	confirm := resource.Argument{Name: ArgPasswordConfirmation, Sensitive: true}
	extra := resource.Argument{Name: ArgExtraData, Type: mapType}
	newPassword := []resource.Argument{pw}
	if !p.ConfirmationOptional {
		newPassword = append(newPassword, confirm)
	}
	policy := []resource.Validation{{Name: "password_policy", Field: ArgPassword, Check: p.checkPolicy}}
	if !p.ConfirmationOptional {
		policy = append(policy, resource.Validation{Name: "password_confirmation", Field: ArgPasswordConfirmation, Check: checkConfirmation})
	}
	// Hashing is slow on purpose: it runs before the write's transaction,
	// so it never holds a write lock, and in a slot of the domain's
	// HashLimiter.
	hash := resource.Change{Name: "hash_password", Prepare: func(ctx context.Context, cs *resource.AnyChangeset) error {
		h, err := p.hash(ctx, cs.Domain(), resource.Arg[string](cs, ArgPassword))
		if err != nil {
			return err
		}
		return cs.Set(p.HashedPasswordField, h)
	}}
	issue := resource.Change{Name: "issue_token", After: func(ctx context.Context, cs *resource.AnyChangeset, rec any) error {
		return issueSession(ctx, cs, rec)
	}}

	if !p.CaseSensitiveIdentity {
		field := p.IdentityField
		d.AddChange(resource.Change{
			Name: "normalize_" + field,
			On:   []resource.ActionType{resource.CreateAction, resource.UpdateAction},
			Prepare: func(_ context.Context, cs *resource.AnyChangeset) error {
				if s, ok := cs.Get(field).(string); ok && cs.Changing(field) {
					return cs.Set(field, NormalizeIdentity(s))
				}
				return nil
			},
		})
	}
	v := &views{}
	p.built = v
	v.getByIdentity = resource.NewView[any, resource.Input](resource.Read{Name: n.GetByIdentity, Description: "Gets a record by its " + p.IdentityField + ".", GetBy: []string{p.IdentityField}})
	v.register = resource.NewView[any, resource.Input](resource.Create{
		Name:        n.Register,
		Description: "Registers with an identity and a password; issues a session token.",
		Accept:      []string{p.IdentityField},
		Arguments:   append(append([]resource.Argument{}, newPassword...), extra),
		Validations: policy,
		Changes:     []resource.Change{hash, issue},
	})
	v.signIn = resource.NewView[any, resource.Input](resource.Generic{
		Name:        n.SignIn,
		Description: "Signs in with an identity and a password; issues a session token.",
		Arguments:   []resource.Argument{{Name: p.IdentityField, Validate: "required"}, pw, extra, {Name: ArgSignInToken, Type: reflect.TypeFor[bool]()}},
		Run:         p.signIn,
		// The hash check runs outside any transaction; the token is
		// issued in one of its own (see signIn).
		OutsideTransaction: true,
	})
	v.signInWithToken = resource.NewView[any, SignInWithTokenInput](resource.Generic{
		Name:               n.SignInWithToken,
		Description:        "Exchanges a one-shot sign-in token for a session token.",
		Arguments:          []resource.Argument{{Name: ArgToken, Validate: "required", Sensitive: true}, extra},
		Run:                p.signInWithToken,
		OutsideTransaction: true,
	})
	v.change = resource.NewView[any, resource.Input](resource.Update{
		Name:        n.Change,
		Description: "Changes the password after checking the current one; issues a fresh session token.",
		Arguments:   append([]resource.Argument{{Name: ArgCurrentPassword, Validate: "required", Sensitive: true}}, append(newPassword, extra)...),
		Validations: policy,
		Changes: []resource.Change{{Name: "check_current_password", Prepare: func(ctx context.Context, cs *resource.AnyChangeset) error {
			old := reflect.ValueOf(cs.Old()).Elem().FieldByIndex(d.Attribute(p.HashedPasswordField).Index).String()
			ok, err := p.valid(ctx, cs.Domain(), resource.Arg[string](cs, ArgCurrentPassword), old)
			if err != nil {
				return err
			}
			if !ok {
				return cs.Invalid(ArgCurrentPassword, "is not correct")
			}
			return nil
		}}, hash, issue},
	})
	v.set = resource.NewView[any, resource.Input](resource.Update{
		Name:        n.Set,
		Description: "Sets a new password without checking the old one (used by the reset flow).",
		Arguments:   newPassword,
		Validations: policy,
		Changes:     []resource.Change{hash},
	})
	added := []resource.Action{v.getByIdentity, v.register, v.signIn, v.signInWithToken, v.change, v.set}
	if p.Resettable != nil {
		v.requestReset = resource.NewView[any, resource.Input](resource.Generic{
			Name:               n.RequestReset,
			Description:        "Sends a reset token to the user with that identity, if there is one; always succeeds.",
			Arguments:          []resource.Argument{{Name: p.IdentityField, Validate: "required"}},
			Run:                p.requestReset,
			OutsideTransaction: true,
		})
		v.reset = resource.NewView[any, resource.Input](resource.Generic{
			Name:               n.Reset,
			Description:        "Sets a new password with a reset token (used once); issues a session token.",
			Arguments:          append([]resource.Argument{{Name: ArgResetToken, Validate: "required", Sensitive: true}}, append(newPassword, extra)...),
			Validations:        policy,
			Run:                p.reset,
			OutsideTransaction: true,
		})
		added = append(added, v.requestReset, v.reset)
	}
	for _, a := range added {
		d.AddAction(a)
	}
	return p
}

// Verify checks the strategy's attributes and options.
func (p Password) Verify(b *resource.BuildContext, d *resource.Declaration, auth authentication.Authentication) {
	p = p.Config()
	loc := d.Location
	path := func(s ...string) []string {
		return append([]string{"authentication", "strategies", p.Name}, s...)
	}
	if !auth.Tokens.Enabled {
		d.Problem(loc, path(), "the password strategy needs tokens, which are disabled",
			"add Enabled: true (with TokenResource and SigningSecret) to authentication.Tokens")
	}
	if a := d.Attribute(p.IdentityField); a == nil {
		d.Problem(loc, path("identity_field"), fmt.Sprintf("unknown attribute %q", p.IdentityField),
			fmt.Sprintf("add a field for it to the record struct, or set IdentityField; %s", resource.DidYouMean(p.IdentityField, attrNames(d))))
	} else {
		unique := false
		for _, id := range d.Identities {
			if len(id.Keys) == 1 && id.Keys[0] == p.IdentityField {
				unique = true
			}
		}
		if !unique {
			d.Problem(loc, path("identity_field"), fmt.Sprintf("attribute %q is not an identity", p.IdentityField),
				"tag its field `bun:\",unique\"` or declare a resource.Identity on it")
		}
	}
	switch a := d.Attribute(p.HashedPasswordField); {
	case a == nil:
		d.Problem(loc, path("hashed_password_field"), fmt.Sprintf("unknown attribute %q", p.HashedPasswordField),
			"add HashedPassword string `bun:\",notnull\"` to the record struct, or set HashedPasswordField")
	case a.Type.Kind() != reflect.String:
		d.Problem(loc, path("hashed_password_field"), fmt.Sprintf("attribute %q is a %s, not a string", p.HashedPasswordField, a.Type), "make it a string")
	}
	d.Check(Schema, p, "authentication", "strategies", p.Name)
	if max := p.HashProvider.MaxLength(); max > 0 && p.MinLength > max {
		d.Problem(loc, path("min_length"), fmt.Sprintf("%d is more than the %d bytes the hash provider takes", p.MinLength, max), "lower it")
	}
	if p.Resettable != nil {
		if _, ok := resource.PartOf[Sender](b.Parts()); !ok {
			d.Problem(loc, path("resettable"), "no password.Sender to deliver the reset tokens",
				"give Build one: resource.With(sender), a password.Sender such as password.SenderFunc")
		}
		if p.Resettable.TokenLifetime < 0 {
			d.Problem(loc, path("resettable", "token_lifetime"), "is negative", "use a positive duration, or 0 for the default of 3 days")
		}
	}
}

func attrNames(d *resource.Declaration) []string {
	names := make([]string, len(d.Attributes))
	for i, a := range d.Attributes {
		names[i] = a.Name
	}
	return names
}

func (p Password) checkPolicy(_ context.Context, cs *resource.AnyChangeset) error {
	pw := resource.Arg[string](cs, ArgPassword)
	if utf8.RuneCountInString(pw) < p.MinLength {
		return cs.Invalid(ArgPassword, fmt.Sprintf("must be at least %d characters long", p.MinLength))
	}
	if max := p.HashProvider.MaxLength(); max > 0 && len(pw) > max {
		return cs.Invalid(ArgPassword, fmt.Sprintf("must be at most %d bytes long (the hash would ignore the rest)", max))
	}
	return nil
}

func checkConfirmation(_ context.Context, cs *resource.AnyChangeset) error {
	if resource.Arg[string](cs, ArgPassword) != resource.Arg[string](cs, ArgPasswordConfirmation) {
		return cs.Invalid(ArgPasswordConfirmation, "does not match the password")
	}
	return nil
}

// issueSession issues a session token for rec and puts it on the
// changeset's metadata.
func issueSession(ctx context.Context, cs *resource.AnyChangeset, rec any) error {
	auth, err := authentication.For(cs.Domain(), cs.ResourceRef())
	if err != nil {
		return err
	}
	token, claims, err := auth.Issue(ctx, rec, authentication.IssueOptions{ExtraData: extraData(cs)})
	if err != nil {
		return err
	}
	cs.SetMetadata(authentication.TokenKey, token)
	cs.SetMetadata(authentication.ClaimsKey, claims)
	return nil
}

// lookup reads the record of the identity the action was given (see
// GetByIdentity).
func (p Password) lookup(ctx context.Context, cs *resource.AnyChangeset) (any, error) {
	return p.GetByIdentity(ctx, cs.Domain(), resource.Arg[string](cs, p.IdentityField))
}

func (p Password) hashOf(cs *resource.AnyChangeset, rec any) string {
	return reflect.ValueOf(rec).Elem().FieldByIndex(cs.ResourceRef().Declaration().Attribute(p.HashedPasswordField).Index).String()
}

func (p Password) signIn(ctx context.Context, cs *resource.AnyChangeset) (any, error) {
	began := authentication.RequestBegan(ctx)
	auth, err := authentication.For(cs.Domain(), cs.ResourceRef())
	if err != nil {
		return nil, err
	}
	// The whole credential check (the record, its revocation epoch, the
	// hash) takes one hash slot: a burst of sign-ins waits for the cores
	// holding no connection, and reads no faster than it can hash.
	var (
		rec      any
		check    *authentication.Check
		hash     string
		checkErr error
	)
	if err := hashLimiter(cs.Domain()).Do(ctx, func() {
		rec, check, hash, checkErr = p.checkCredential(ctx, cs, auth, began)
	}); err != nil {
		return nil, err
	}
	if checkErr != nil {
		return nil, checkErr
	}
	opts := authentication.IssueOptions{ExtraData: extraData(cs)}
	if resource.Arg[bool](cs, ArgSignInToken) {
		opts = authentication.IssueOptions{Purpose: tokenresource.PurposeSignIn, Lifetime: p.SignInTokenLifetime, Store: true}
	}
	var token string
	var claims *authentication.Claims
	err = cs.Domain().InTransaction(ctx, func(ctx context.Context) error {
		// The credential must still be the one checked: no password
		// change and no revoke-all since the check began.
		if err := check.Confirm(ctx); err != nil {
			return err
		}
		now, err := p.lookup(ctx, cs)
		if err != nil {
			return fmt.Errorf("%w: %v", authentication.ErrAuthenticationFailed, err)
		}
		if !constantTimeEqual(p.hashOf(cs, now), hash) {
			return fmt.Errorf("%w: %w", authentication.ErrAuthenticationFailed, authentication.ErrCredentialChanged)
		}
		token, claims, err = auth.Issue(ctx, rec, opts)
		return err
	})
	if err != nil {
		return nil, err
	}
	cs.SetMetadata(authentication.TokenKey, token)
	cs.SetMetadata(authentication.ClaimsKey, claims)
	return rec, nil
}

func (p Password) signInWithToken(ctx context.Context, cs *resource.AnyChangeset) (any, error) {
	auth, err := authentication.For(cs.Domain(), cs.ResourceRef())
	if err != nil {
		return nil, err
	}
	began := authentication.RequestBegan(ctx)
	token := resource.Arg[string](cs, ArgToken)
	unverified, err := auth.Parse(ctx, token)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", authentication.ErrAuthenticationFailed, err)
	}
	check, err := auth.BeginCheckSubject(ctx, began, unverified.Subject)
	if err != nil {
		return nil, err
	}
	claims, err := auth.VerifyPurpose(ctx, token, tokenresource.PurposeSignIn, "")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", authentication.ErrAuthenticationFailed, err)
	}
	rec, err := auth.RecordFor(ctx, claims.Subject)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", authentication.ErrAuthenticationFailed, err)
	}
	var session string
	var sessionClaims *authentication.Claims
	err = cs.Domain().InTransaction(ctx, func(ctx context.Context) error {
		if err := check.Confirm(ctx); err != nil {
			return err
		}
		// One use: of two exchanges of one token, one revokes it.
		if err := auth.Tokens().Revoke(ctx, token, revocation.Revoked); err != nil {
			return fmt.Errorf("%w: %v", authentication.ErrAuthenticationFailed, err)
		}
		session, sessionClaims, err = auth.Issue(ctx, rec, authentication.IssueOptions{ExtraData: extraData(cs)})
		return err
	})
	if err != nil {
		return nil, err
	}
	cs.SetMetadata(authentication.TokenKey, session)
	cs.SetMetadata(authentication.ClaimsKey, sessionClaims)
	return rec, nil
}

func (p Password) requestReset(ctx context.Context, cs *resource.AnyChangeset) (any, error) {
	rec, err := p.lookup(ctx, cs)
	if err != nil {
		if !errors.Is(err, resource.ErrNotFound) {
			cs.Domain().Logger().ErrorContext(ctx, "kiln: password reset request failed", "resource", cs.Resource(), "err", err)
		}
		return nil, nil
	}
	auth, err := authentication.For(cs.Domain(), cs.ResourceRef())
	if err != nil {
		return nil, err
	}
	token, _, err := auth.Issue(ctx, rec, authentication.IssueOptions{
		Purpose: PurposePasswordReset, Act: p.Actions.Reset, Lifetime: p.Resettable.TokenLifetime, Store: true})
	if err != nil {
		return nil, err
	}
	sender, ok := resource.Part[Sender](cs.Domain())
	if !ok { // Build refuses a resettable strategy without one
		return nil, errors.New("kiln/password: no password.Sender given to Build (resource.With)")
	}
	if err := sender.SendResetToken(ctx, rec, token); err != nil {
		cs.Domain().Logger().ErrorContext(ctx, "kiln: sending a password reset token failed", "resource", cs.Resource(), "err", err)
	}
	return nil, nil
}

func (p Password) reset(ctx context.Context, cs *resource.AnyChangeset) (any, error) {
	auth, err := authentication.For(cs.Domain(), cs.ResourceRef())
	if err != nil {
		return nil, err
	}
	began := authentication.RequestBegan(ctx)
	token := resource.Arg[string](cs, ArgResetToken)
	claims, err := auth.VerifyPurpose(ctx, token, PurposePasswordReset, p.Actions.Reset)
	if err != nil {
		return nil, cs.Invalid(ArgResetToken, "is invalid or expired")
	}
	check, err := auth.BeginCheckSubject(ctx, began, claims.Subject)
	if err != nil {
		return nil, err
	}
	rec, err := auth.RecordFor(ctx, claims.Subject)
	if err != nil {
		return nil, cs.Invalid(ArgResetToken, "is invalid or expired")
	}
	// Hash now, outside the transaction; set_password's hash change finds
	// it in ctx instead of hashing in the transaction.
	pw := resource.Arg[string](cs, ArgPassword)
	h, err := p.hash(ctx, cs.Domain(), pw)
	if err != nil {
		return nil, err
	}
	ctx = context.WithValue(ctx, prehashedKey{}, prehashed{password: pw, hash: h})
	var out any
	err = cs.Domain().InTransaction(ctx, func(ctx context.Context) error {
		// The subject's epoch first, as every token-issuing and
		// revoke-all transaction takes it: one lock order, no deadlock.
		if err := check.Confirm(ctx); err != nil {
			return cs.Invalid(ArgResetToken, "is invalid or expired")
		}
		// One use: of two resets with one token, one revokes it.
		if err := auth.Tokens().Revoke(ctx, token, revocation.Revoked); err != nil {
			if errors.Is(err, tokenresource.ErrAlreadyRevoked) {
				return cs.Invalid(ArgResetToken, "is invalid or expired")
			}
			return err
		}
		user, err := p.Set(ctx, cs.Domain(), rec, SetInput{Password: pw, PasswordConfirmation: resource.Arg[string](cs, ArgPasswordConfirmation)})
		if err != nil {
			return err
		}
		out = user
		return issueSession(ctx, cs, user)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// prehashed carries a hash made before a transaction to the hash change
// of an action run in it.
type prehashed struct{ password, hash string }

type prehashedKey struct{}

// hash hashes password in a slot of d's HashLimiter, or takes the hash
// ctx carries for it.
func (p Password) hash(ctx context.Context, d *resource.Domain, password string) (h string, err error) {
	if pre, ok := ctx.Value(prehashedKey{}).(prehashed); ok && constantTimeEqual(pre.password, password) {
		return pre.hash, nil
	}
	if err := hashLimiter(d).Do(ctx, func() { h, err = p.HashProvider.Hash(password) }); err != nil {
		return "", err
	}
	return h, err
}

// valid checks password against hash in a slot of d's HashLimiter.
func (p Password) valid(ctx context.Context, d *resource.Domain, password, hash string) (ok bool, err error) {
	err = hashLimiter(d).Do(ctx, func() { ok = p.HashProvider.Valid(password, hash) })
	return ok, err
}

// hashLimiter is the HashLimiter given to d's Build, else the process's.
func hashLimiter(d *resource.Domain) *HashLimiter {
	if l, ok := resource.Part[*HashLimiter](d); ok {
		return l
	}
	return processHashes
}

// checkCredential reads the record of the sign-in's identity and its
// subject's revocation epoch, then checks the password against the
// record's hash. It runs in a hash slot. It returns the record, the check
// begun and the hash, or ErrAuthenticationFailed for an unknown identity
// (after spending the time of a check) or a wrong password.
func (p Password) checkCredential(ctx context.Context, cs *resource.AnyChangeset, auth *authentication.Auth, began time.Time) (any, *authentication.Check, string, error) {
	rec, err := p.lookup(ctx, cs)
	if errors.Is(err, resource.ErrNotFound) {
		p.HashProvider.SimulateValid()
		return nil, nil, "", authentication.ErrAuthenticationFailed
	}
	if err != nil {
		return nil, nil, "", err
	}
	check, err := auth.BeginCheck(ctx, began, rec)
	if err != nil {
		return nil, nil, "", err
	}
	hash := p.hashOf(cs, rec)
	if !p.HashProvider.Valid(resource.Arg[string](cs, ArgPassword), hash) {
		return nil, nil, "", authentication.ErrAuthenticationFailed
	}
	return rec, check, hash, nil
}

// NormalizeIdentity is how the strategy stores and looks up identities
// unless CaseSensitiveIdentity is set: trimmed and lower-cased, the form
// the rate limiter keys identities by (ratelimit.NormalizeIdentity).
func NormalizeIdentity(s string) string { return ratelimit.NormalizeIdentity(s) }

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func extraData(cs *resource.AnyChangeset) map[string]any {
	extra, _ := cs.Argument(ArgExtraData).(map[string]any)
	return extra
}

var _ authentication.HashedPasswordStrategy = Password{}

// HashedPasswordAttribute implements authentication.HashedPasswordStrategy:
// the attribute the strategy keeps the hash in, which the
// log_out_everywhere add-on watches.
func (p Password) HashedPasswordAttribute() string { return p.Config().HashedPasswordField }
