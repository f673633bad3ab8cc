package tokenresource

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/revocation"
)

// DefaultExpungeInterval is how often the expunger removes expired rows when
// Token.ExpungeInterval is zero.
const DefaultExpungeInterval = 12 * time.Hour

// Token is the section that makes a resource the token store:
//
//	var Tokens = resource.New[Token]("token",
//		resource.Table("tokens"),
//		tokenresource.Token{
//			LiveSocketIDTemplate: func(s tokenresource.SocketID) string { return "users_sessions:" + s.JTI },
//		},
//	)
//
// The live endpoints that close revoked tokens' sessions are no part of the
// declaration: they are attached to the built domain (Domain.Attach) and
// found by the token revocation notifier (extensions/tokenresource/tokenrevocation).
type Token struct {
	// LiveSocketIDTemplate is the live_socket_id_template option. Makes a
	// live socket id from a token's SocketID; required when live endpoints
	// are attached to the domain (Domain.Attach; the token revocation
	// notifier, extensions/tokenresource/tokenrevocation, closes their
	// sockets).
	LiveSocketIDTemplate func(SocketID) string
	// ExpungeInterval is the expunge_interval option. How often Store.Start
	// removes expired rows. Rules: gt=0. Default: 12h.
	ExpungeInterval time.Duration
	// Actions is the actions section. The names of the actions the token
	// section adds; a name left empty takes its default.
	Actions ActionNames
	// Knowledge is the knowledge section. What each node keeps in memory of
	// the tokens it checked and of the revocations it heard of, so that
	// checking a session token needs no read of the database. In use only
	// while the live endpoints attached to the domain (Domain.Attach) have
	// prompt transports (PostgreSQL, Redis, NATS): every revocation is then
	// announced to every node before it commits, a node answers from memory
	// that a token is good only while it holds a lease (every revocation
	// waits for its acknowledgement) or once a fence through the transport
	// has come back, and trusts what it read of a token only while its
	// subscription has stayed up since the read.
	Knowledge KnowledgeOptions

	// metrics, views and knowledge are the built resource's, set by
	// Transform on the section of the domain's copy of the declaration
	// (nil on the declared one).
	metrics   *metrics
	views     *views
	knowledge *knowledge
}

// KnowledgeOptions configure a node's knowledge of tokens (see
// Store.Follow).
type KnowledgeOptions struct {
	// Disabled is the disabled option. Reads the database on every check of
	// a session token, as a node does without a prompt transport. Default:
	// false.
	Disabled bool
	// MaxAge is the max_age option. How long, at most, a node trusts that a
	// token it read as good still is: the bound on how late it sees a
	// revocation it never heard of (one written to the database by hand, or
	// published on another transport), and how long it holds a token
	// announced as being revoked in doubt. It bounds checks of tokens only;
	// sockets whose revocation message was lost close at the live
	// endpoint's next sweep (sweep_interval, 30s). At most 1h. Rules:
	// gt=0,lte=1h. Default: 1m.
	MaxAge time.Duration
	// MaxEntries is the max_entries option. How many tokens a node
	// remembers of each kind, good and revoked, kept in 64 parts of
	// max_entries/64 each (one at least, so a value under 64 holds up to
	// 64); past it the entries that matter least are forgotten. Rules:
	// gt=0. Default: 100000.
	MaxEntries int
}

// ActionNames are the names of the token store's actions.
type ActionNames struct {
	// StoreToken is the store_token option. Stores an issued token.
	// Default: "store_token".
	StoreToken string
	// GetToken is the get_token option. Gets an unexpired row by jti.
	// Default: "get_token".
	GetToken string
	// RevokeToken is the revoke_token option. Revokes a token (a JWT).
	// Default: "revoke_token".
	RevokeToken string
	// RevokeJTI is the revoke_jti option. Revokes a token by jti and
	// subject. Default: "revoke_jti".
	RevokeJTI string
	// RevokeAllStoredForSubject is the revoke_all_stored_for_subject
	// option. Revokes every stored token of a subject in one statement.
	// Default: "revoke_all_stored_for_subject".
	RevokeAllStoredForSubject string
	// IsRevoked is the is_revoked option. Reports whether a jti is revoked.
	// Default: "revoked?".
	IsRevoked string
	// ReadExpired is the read_expired option. Reads expired rows. Default:
	// "read_expired".
	ReadExpired string
	// ExpungeExpired is the expunge_expired option. Removes expired rows,
	// notifying each (reason expired). Default: "expunge_expired".
	ExpungeExpired string
	// RevokeStored is the revoke_stored option. The bulk update every
	// revocation of stored tokens runs: one UPDATE … RETURNING, one
	// notification per row. Default: "revoke_stored".
	RevokeStored string
	// StoreRevocation is the store_revocation option. Records the
	// revocation of a token that was not stored (INSERT … ON CONFLICT DO
	// NOTHING). Default: "store_revocation".
	StoreRevocation string
	// ReadTokens is the read_tokens option. Reads rows with a caller's
	// filter: the live safety net checks its sessions' jtis with it, one
	// query per batch. Default: "read_tokens".
	ReadTokens string
	// LockEpoch is the lock_epoch option. Locks a subject's revocation
	// epoch row, creating it, for a token-issuing transaction: an upsert
	// that changes nothing holds the row until the transaction ends (see
	// Store.LockEpoch). Default: "lock_epoch".
	LockEpoch string
	// BumpEpoch is the bump_epoch option. Gives a subject a new revocation
	// epoch; every revoke-all runs it first (see
	// Store.RevokeAllForSubject). Default: "bump_epoch".
	BumpEpoch string
}

// withDefaults fills the names left empty, from Schema.
func (n ActionNames) withDefaults() ActionNames {
	Schema.Sub("actions").Defaults(&n)
	return n
}

// ExtensionName is "token".
func (Token) ExtensionName() string { return "token" }

// Declare implements resource.Section.
func (t Token) Declare(d *resource.Declaration) { d.AddExtension(t) }

// Config returns the options with defaults applied.
func (t Token) Config() Token {
	Schema.Defaults(&t)
	return t
}

// farFuture is the expiry of a revocation by jti alone, whose token's
// expiry is unknown.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// Transform adds the attribute metadata and the actions the user did not
// declare, each through a view (see views). The section, holding those
// views and the metrics its actions count, then replaces the declared one
// in d: For finds it there.
func (t Token) Transform(_ *resource.BuildContext, d *resource.Declaration) {
	if !embedsFields(d) {
		// Verify reports the record; actions over columns it lacks would
		// only add build errors that point the wrong way.
		return
	}
	// Revoking every token of a subject (log out everywhere, a password
	// change) finds them by subject: without the index, by reading the
	// whole table, revocations and expired rows alike, in a write
	// transaction.
	d.AddIndex(resource.Index{Keys: []string{"subject"}})
	n := t.Actions.withDefaults()
	m := newMetrics()
	k := newKnowledge(t.Config().Knowledge, m)
	v := &views{}
	jtiArg := resource.Argument{Name: "jti", Validate: "required"}
	subjectArg := resource.Argument{Name: "subject", Validate: "required"}
	reasonArg := resource.Argument{Name: "reason", Default: string(revocation.Revoked)}

	v.storeToken = resource.NewView[Record, storeTokenInput](resource.Create{
		Name:        n.StoreToken,
		Description: "Stores an issued token.",
		Accept:      []string{"jti", "subject", "expires_at", "purpose", "extra_data"},
	})
	v.getToken = resource.NewView[Record, getTokenInput](resource.Read{
		Name:        n.GetToken,
		Description: "Gets an unexpired token row by jti, of the given purpose when one is given.",
		Arguments:   []resource.Argument{jtiArg, {Name: "purpose"}},
		Filter:      resource.And{resource.Eq("jti", resource.FromArg("jti")), resource.Gt("expires_at", resource.CurrentTime)},
		Get:         true,
		Preparations: []resource.Preparation{{Name: "purpose", Prepare: func(_ context.Context, q *resource.Query) error {
			if p, _ := q.Argument("purpose").(string); p != "" {
				q.Where(resource.Eq("purpose", p))
			}
			return nil
		}}},
	})
	v.revokeStored = resource.NewView[Record, reasonInput](resource.Update{
		Name:        n.RevokeStored,
		Description: "Marks the stored tokens a filter matches as revoked, in one statement.",
		Arguments:   []resource.Argument{reasonArg},
		Changes: []resource.Change{{Name: "revoke", Before: func(_ context.Context, cs *resource.AnyChangeset) error {
			cs.SetMetadata(ReasonKey, reasonOf(cs))
			return cs.Set("purpose", PurposeRevocation)
		}}},
		Notifiers: []resource.Notifier{resource.NotifierFunc(m.countRevoked)},
	})
	v.storeRevocation = resource.NewView[Record, storeRevocationInput](resource.Create{
		Name:           n.StoreRevocation,
		Description:    "Records the revocation of a token that was not stored.",
		Accept:         []string{"jti", "subject", "expires_at"},
		SkipOnConflict: true,
		Arguments:      []resource.Argument{reasonArg},
		Changes: []resource.Change{{Name: "revocation", Before: func(_ context.Context, cs *resource.AnyChangeset) error {
			cs.SetMetadata(ReasonKey, reasonOf(cs))
			return cs.Set("purpose", PurposeRevocation)
		}}},
		Notifiers: []resource.Notifier{resource.NotifierFunc(m.countRevoked)},
	})
	v.revokeToken = resource.NewView[Record, revokeTokenInput](resource.Generic{
		Name:        n.RevokeToken,
		Description: "Revokes a token (a JWT); fails with ErrAlreadyRevoked when it is.",
		Arguments:   []resource.Argument{{Name: "token", Validate: "required", Sensitive: true}, reasonArg},
		Run: func(ctx context.Context, cs *resource.AnyChangeset) (any, error) {
			claims, err := unverifiedClaims(resource.Arg[string](cs, "token"))
			if err != nil {
				return nil, cs.Invalid("token", err.Error())
			}
			return nil, v.revoke(ctx, cs, claims.JTI, claims.Subject, claims.ExpiresAt, resource.Arg[string](cs, "reason"))
		},
	})
	v.revokeJTI = resource.NewView[Record, revokeJTIInput](resource.Generic{
		Name:        n.RevokeJTI,
		Description: "Revokes a token by jti and subject; fails with ErrAlreadyRevoked when it is.",
		Arguments:   []resource.Argument{jtiArg, subjectArg, reasonArg},
		Run: func(ctx context.Context, cs *resource.AnyChangeset) (any, error) {
			return nil, v.revoke(ctx, cs, resource.Arg[string](cs, "jti"), resource.Arg[string](cs, "subject"), farFuture, resource.Arg[string](cs, "reason"))
		},
	})
	v.revokeAll = resource.NewView[Record, revokeAllInput](resource.Generic{
		Name:        n.RevokeAllStoredForSubject,
		Description: "Revokes every stored token of a subject in one statement; returns how many.",
		Arguments: []resource.Argument{subjectArg, reasonArg,
			{Name: "include_purposes", Type: reflect.TypeFor[[]string]()},
			{Name: "exclude_purposes", Type: reflect.TypeFor[[]string]()}},
		Run: func(ctx context.Context, cs *resource.AnyChangeset) (any, error) {
			subject := resource.Arg[string](cs, "subject")
			// The new epoch first: its row lock orders this revocation
			// with every token-issuing transaction of the subject, so the
			// revoke below sees each token issued before it, and a sign-in
			// whose check began before it refuses to issue one.
			if err := v.bumpEpochOf(ctx, cs.Domain(), subject); err != nil {
				return nil, err
			}
			f := resource.And{resource.Eq("subject", subject), resource.NotIn("purpose", []string{PurposeRevocation, PurposeEpoch})}
			if inc := resource.Arg[[]string](cs, "include_purposes"); inc != nil {
				f = append(f, resource.In("purpose", inc))
			}
			if exc := resource.Arg[[]string](cs, "exclude_purposes"); len(exc) > 0 {
				f = append(f, resource.NotIn("purpose", exc))
			}
			rows, err := v.revokeStored.UpdateAll(ctx, cs.Domain(), f, reasonInput{Reason: resource.Arg[string](cs, "reason")})
			if err != nil {
				return nil, err
			}
			return len(rows), nil
		},
	})
	isRevoked := resource.Generic{
		Name:        n.IsRevoked,
		Description: "Reports whether a jti is revoked.",
		Arguments:   []resource.Argument{jtiArg},
		Run: func(ctx context.Context, cs *resource.AnyChangeset) (any, error) {
			return v.isRevoked(ctx, cs.Domain(), resource.Arg[string](cs, "jti"))
		},
	}
	v.readTokens = resource.NewView[Record, resource.NoInput](resource.Read{
		Name:        n.ReadTokens,
		Description: "Reads token rows; run it with a filter (resource.Where).",
	})
	v.lockEpoch = resource.NewView[Record, lockEpochInput](resource.Create{
		Name:         n.LockEpoch,
		Description:  "Locks a subject's revocation epoch row, creating it; returns the row.",
		Accept:       []string{"jti", "subject", "expires_at", "purpose"},
		Upsert:       true,
		UpsertFields: []string{"subject"},
	})
	v.bumpEpoch = resource.NewView[Record, bumpEpochInput](resource.Create{
		Name:         n.BumpEpoch,
		Description:  "Gives a subject's revocation epoch row a new value.",
		Accept:       []string{"jti", "subject", "expires_at", "purpose", "extra_data"},
		Upsert:       true,
		UpsertFields: []string{"extra_data", "updated_at"},
	})
	v.readExpired = resource.NewView[Record, resource.NoInput](resource.Read{
		Name:        n.ReadExpired,
		Description: "Reads the rows that have expired.",
		Filter:      resource.Le("expires_at", resource.CurrentTime),
	})
	v.expungeExpired = resource.NewView[Record, resource.NoInput](resource.Destroy{
		Name:        n.ExpungeExpired,
		Description: "Removes expired rows (run in bulk with a filter on expires_at); notifies each with reason expired.",
		Changes: []resource.Change{{Name: "expired", Before: func(_ context.Context, cs *resource.AnyChangeset) error {
			cs.SetMetadata(ReasonKey, revocation.Expired)
			return nil
		}}},
		Notifiers: []resource.Notifier{resource.NotifierFunc(m.countExpunged)},
	})
	for _, a := range []resource.Action{v.storeToken, v.getToken, v.revokeStored, v.storeRevocation, v.revokeToken, v.revokeJTI, v.revokeAll,
		isRevoked, v.readTokens, v.lockEpoch, v.bumpEpoch, v.readExpired, v.expungeExpired} {
		d.AddAction(a)
	}
	t.built(d, m, v, k)
	for _, name := range []string{"extra_data"} {
		if a := d.Attribute(name); a != nil {
			a.Required = false
		}
	}
}

// built gives the section of d, the domain's copy of the declaration, the
// built resource's metrics, views and knowledge, where For finds them.
func (t Token) built(d *resource.Declaration, m *metrics, v *views, k *knowledge) {
	t.metrics, t.views, t.knowledge = m, v, k
	for i, e := range d.Extensions {
		if _, ok := e.(Token); ok {
			d.Extensions[i] = t
		}
	}
}

// Verify checks the record's columns, the options and user-declared
// actions of the same names.
func (t Token) Verify(_ *resource.BuildContext, d *resource.Declaration) {
	loc := d.Location
	want := map[string]reflect.Type{
		"jti": reflect.TypeFor[string](), "subject": reflect.TypeFor[string](), "expires_at": reflect.TypeFor[time.Time](),
		"purpose": reflect.TypeFor[string](), "extra_data": reflect.TypeFor[map[string]any](),
		"created_at": reflect.TypeFor[time.Time](), "updated_at": reflect.TypeFor[time.Time](),
	}
	if !embedsFields(d) {
		// One problem, not one per missing column: the fix is the same.
		d.Problem(loc, []string{"token"}, fmt.Sprintf("record type %s does not embed tokenresource.Fields", d.Type), "type Token struct{ tokenresource.Fields }")
	} else {
		for _, name := range []string{"jti", "subject", "expires_at", "purpose", "extra_data", "created_at", "updated_at"} {
			a := d.Attribute(name)
			switch {
			case a == nil:
				d.Problem(loc, []string{"token", "attributes", name}, "missing column", "embed tokenresource.Fields in the record struct: type Token struct{ tokenresource.Fields }")
			case a.Type != want[name]:
				d.Problem(loc, []string{"token", "attributes", name}, fmt.Sprintf("has type %s, want %s", a.Type, want[name]), "embed tokenresource.Fields instead of declaring the column")
			}
		}
		pk := d.PrimaryKey()
		if len(pk) != 1 || pk[0].Name != "jti" {
			d.Problem(loc, []string{"token", "attributes", "jti"}, "jti must be the only primary key", "embed tokenresource.Fields and declare no other pk")
		}
	}
	d.Check(Schema, t.Config(), "token")
	n := t.Actions.withDefaults()
	wantTypes := map[string]resource.ActionType{
		n.StoreToken: resource.CreateAction, n.GetToken: resource.ReadAction, n.RevokeToken: resource.GenericAction,
		n.RevokeJTI: resource.GenericAction, n.RevokeAllStoredForSubject: resource.GenericAction, n.IsRevoked: resource.GenericAction,
		n.ReadExpired: resource.ReadAction, n.ExpungeExpired: resource.DestroyAction, n.RevokeStored: resource.UpdateAction,
		n.StoreRevocation: resource.CreateAction, n.ReadTokens: resource.ReadAction,
		n.LockEpoch: resource.CreateAction, n.BumpEpoch: resource.CreateAction,
	}
	for name, typ := range wantTypes {
		if a := d.Action(name); a != nil && a.Type != typ {
			d.Problem(a.Location(), []string{"actions", name}, fmt.Sprintf("is %s action; the token store needs %s action of that name", a.Type.Article(), typ.Article()),
				"rename your action, or name the token store's action otherwise in Token.Actions")
		}
	}
}

// reasonOf is the reason argument; an empty one (the Go API passes its
// reason through, given or not) is revocation.Revoked, the argument's default.
func reasonOf(cs *resource.AnyChangeset) revocation.Reason {
	if r := resource.Arg[string](cs, "reason"); r != "" {
		return revocation.Reason(r)
	}
	return revocation.Revoked
}

// embedsFields reports whether the record type embeds Fields.
func embedsFields(d *resource.Declaration) bool {
	return d.Type != nil && reflect.PointerTo(d.Type).Implements(reflect.TypeFor[Record]())
}

// tokenClaims are the claims the store needs from a token.
type tokenClaims struct {
	JTI       string
	Subject   string
	ExpiresAt time.Time
}

// unverifiedClaims reads jti, sub and exp from a JWT without checking its
// signature: revoking a token needs no trust in it.
func unverifiedClaims(token string) (tokenClaims, error) {
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &claims); err != nil {
		return tokenClaims{}, fmt.Errorf("is not a JWT")
	}
	if claims.ID == "" || claims.Subject == "" {
		return tokenClaims{}, fmt.Errorf("has no jti or sub claim")
	}
	exp := farFuture
	if claims.ExpiresAt != nil {
		exp = claims.ExpiresAt.UTC()
	}
	return tokenClaims{JTI: claims.ID, Subject: claims.Subject, ExpiresAt: exp}, nil
}
