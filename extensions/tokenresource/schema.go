package tokenresource

import (
	"github.com/kiln-go/kiln/dsl"
	"github.com/kiln-go/kiln/resource"
)

// Schema is the schema of the token section: Token's defaults, rules,
// config keys and reference docs come from it.
var Schema = dsl.Bind[Token](&dsl.Section{
	Name:   "token",
	GoType: "tokenresource.Token",
	Doc:    "Makes a resource the token store: every issued token (with store-all) and every revocation is a row keyed by jti.",
	Options: []dsl.Option{
		{Name: "live_socket_id_template", Field: "LiveSocketIDTemplate", Kind: dsl.Code,
			Doc: "Makes a live socket id from a token's SocketID; required when live endpoints are attached to the domain (Domain.Attach; the token revocation notifier, extensions/tokenresource/tokenrevocation, closes their sockets)."},
		{Name: "expunge_interval", Field: "ExpungeInterval", Kind: dsl.Duration, Default: DefaultExpungeInterval,
			Doc: "How often Store.Start removes expired rows.", Rules: "gt=0", Fix: "use a positive duration, or leave it out for 12h"},
	},
	Sections: []*dsl.Section{{
		Name: "actions", Field: "Actions", GoType: "tokenresource.ActionNames",
		Doc: "The names of the actions the token section adds; a name left empty takes its default.",
		Options: []dsl.Option{
			{Name: "store_token", Field: "StoreToken", Kind: dsl.String, Default: "store_token", Doc: "Stores an issued token."},
			{Name: "get_token", Field: "GetToken", Kind: dsl.String, Default: "get_token", Doc: "Gets an unexpired row by jti."},
			{Name: "revoke_token", Field: "RevokeToken", Kind: dsl.String, Default: "revoke_token", Doc: "Revokes a token (a JWT)."},
			{Name: "revoke_jti", Field: "RevokeJTI", Kind: dsl.String, Default: "revoke_jti", Doc: "Revokes a token by jti and subject."},
			{Name: "revoke_all_stored_for_subject", Field: "RevokeAllStoredForSubject", Kind: dsl.String, Default: "revoke_all_stored_for_subject", Doc: "Revokes every stored token of a subject in one statement."},
			{Name: "is_revoked", Field: "IsRevoked", Kind: dsl.String, Default: "revoked?", Doc: "Reports whether a jti is revoked."},
			{Name: "read_expired", Field: "ReadExpired", Kind: dsl.String, Default: "read_expired", Doc: "Reads expired rows."},
			{Name: "expunge_expired", Field: "ExpungeExpired", Kind: dsl.String, Default: "expunge_expired", Doc: "Removes expired rows, notifying each (reason expired)."},
			{Name: "revoke_stored", Field: "RevokeStored", Kind: dsl.String, Default: "revoke_stored", Doc: "The bulk update every revocation of stored tokens runs: one UPDATE … RETURNING, one notification per row."},
			{Name: "store_revocation", Field: "StoreRevocation", Kind: dsl.String, Default: "store_revocation", Doc: "Records the revocation of a token that was not stored (INSERT … ON CONFLICT DO NOTHING)."},
			{Name: "read_tokens", Field: "ReadTokens", Kind: dsl.String, Default: "read_tokens", Doc: "Reads rows with a caller's filter: the live safety net checks its sessions' jtis with it, one query per batch."},
			{Name: "lock_epoch", Field: "LockEpoch", Kind: dsl.String, Default: "lock_epoch", Doc: "Locks a subject's revocation epoch row, creating it, for a token-issuing transaction: an upsert that changes nothing holds the row until the transaction ends (see Store.LockEpoch)."},
			{Name: "bump_epoch", Field: "BumpEpoch", Kind: dsl.String, Default: "bump_epoch", Doc: "Gives a subject a new revocation epoch; every revoke-all runs it first (see Store.RevokeAllForSubject)."},
		},
	}, {
		Name: "knowledge", Field: "Knowledge", GoType: "tokenresource.KnowledgeOptions",
		Doc: "What each node keeps in memory of the tokens it checked and of the revocations it heard of, so that checking a session token needs no read of the database. In use only while the live endpoints attached to the domain (Domain.Attach) have prompt transports (PostgreSQL, Redis, NATS): every revocation is then announced to every node before it commits, a node answers from memory that a token is good only while it holds a lease (every revocation waits for its acknowledgement) or once a fence through the transport has come back, and trusts what it read of a token only while its subscription has stayed up since the read.",
		Options: []dsl.Option{
			{Name: "disabled", Field: "Disabled", Kind: dsl.Bool, Doc: "Reads the database on every check of a session token, as a node does without a prompt transport. Default: false."},
			{Name: "max_age", Field: "MaxAge", Kind: dsl.Duration, Default: DefaultKnowledgeMaxAge,
				Doc:   "How long, at most, a node trusts that a token it read as good still is: the bound on how late it sees a revocation it never heard of (one written to the database by hand, or published on another transport), and how long it holds a token announced as being revoked in doubt. It bounds checks of tokens only; sockets whose revocation message was lost close at the live endpoint's next sweep (sweep_interval, 30s). At most 1h.",
				Rules: "gt=0,lte=1h", Fix: "use a positive duration up to 1h, or leave it out for 1m"},
			{Name: "max_entries", Field: "MaxEntries", Kind: dsl.Int, Default: DefaultKnowledgeMaxEntries,
				Doc:   "How many tokens a node remembers of each kind, good and revoked, kept in 64 parts of max_entries/64 each (one at least, so a value under 64 holds up to 64); past it the entries that matter least are forgotten.",
				Rules: "gt=0", Fix: "use a positive number, or leave it out for 100000"},
		},
	}},
	GoExample: `tokenresource.Token{
	LiveSocketIDTemplate: func(s tokenresource.SocketID) string { return "users_sessions:" + s.JTI },
	ExpungeInterval:      time.Hour,
}`,
	YAMLExample: `resources:
  token:
    token:
      expunge_interval: 1h`,
})

// Configure applies a config file's token section; see resource.Configurable.
func (t Token) Configure(a *dsl.Applier, values map[string]any, path []string) resource.Extension {
	a.Apply(Schema, &t, values, path)
	return t
}

// DescribeOptions prints the options, defaults applied.
func (t Token) DescribeOptions(*resource.Declaration) string { return dsl.Describe(Schema, t.Config()) }
