package livetest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/logouteverywhere"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/extensions/tokenresource/tokenrevocation"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
	"github.com/kiln-go/kiln/web"
)

// Shared is a database that several nodes share, as the processes of one
// deployment do: each node opens it with a connection pool and builds a
// domain of its own.
type Shared struct {
	// URL opens the database (bunlayer.Open).
	URL string
}

// SharedPostgres is a fresh PostgreSQL schema for nodes to share. It skips
// the test without KILN_TEST_POSTGRES_URL (and fails it under CI=true).
func SharedPostgres(t testing.TB) *Shared {
	t.Helper()
	return &Shared{URL: testdb.PostgresSchemaURL(t)}
}

// NodeOptions adjust a node.
type NodeOptions struct {
	// PubSub is the node's own connection to the transport between nodes;
	// an InProcess of its own when nil (then the node hears no other).
	PubSub live.PubSub
	// EndpointOptions are passed to live.New.
	EndpointOptions []live.Option
	// SweepInterval turns the safety net on, with web.SessionChecker, at
	// this interval. Zero leaves it off.
	SweepInterval time.Duration
	// CookieKeys seal the session cookies, newest first. Default:
	// CookieKey.
	CookieKeys [][]byte
	// SigningSecret signs the node's tokens. Default: accountstest.Secret.
	SigningSecret string
	// PreviousSecrets still verify tokens signed before a rotation.
	PreviousSecrets []string
	// WebOptions are passed to web.New.
	WebOptions []web.Option
	// TokenNotifiers are notifiers of the token store that run before the
	// token revocation notifier (to time a commit, say).
	TokenNotifiers []resource.Notifier
	// Knowledge goes to the token section.
	Knowledge tokenresource.KnowledgeOptions
}

// Node is one node of a deployment: its own data layer (connection pool)
// on the shared database, its own domain, live endpoint, transport
// connection, web glue and HTTP server. The embedded Harness dials and
// posts to it like to a single server.
type Node struct {
	*Harness
	// Layer is the node's data layer on the shared database.
	Layer *bunlayer.Layer

	stopOnce sync.Once
}

// NewNode starts a node on db. The node stops when t ends; Stop stops it
// sooner.
func NewNode(t testing.TB, db *Shared, o NodeOptions) *Node {
	t.Helper()
	ctx := context.Background()
	layer, err := bunlayer.Open(ctx, db.URL)
	if err != nil {
		t.Fatalf("livetest: open the shared database: %v", err)
	}
	t.Cleanup(func() { layer.Close() })
	mailbox := &accountstest.Mailbox{}
	users, tokens := declareNode(mailbox, o)
	d, err := resource.NewDomain("accounts", users, tokens).Build(ctx, layer, resource.With(mailbox))
	if err != nil {
		t.Fatalf("livetest: build: %v", err)
	}
	if err := layer.Migrate(ctx); err != nil {
		t.Fatalf("livetest: migrate: %v", err)
	}
	acc := accountstest.New(t, d, users, tokens, mailbox)
	keys := o.CookieKeys
	if len(keys) == 0 {
		keys = [][]byte{CookieKey}
	}
	sessions, err := web.NewSessions(keys...)
	if err != nil {
		t.Fatal(err)
	}
	wb := web.New(acc.Auth, sessions, o.WebOptions...)
	opts := append([]live.Option{live.WithAuthenticator(wb.LiveAuthenticator())}, o.EndpointOptions...)
	if o.PubSub != nil {
		opts = append(opts, live.WithPubSub(o.PubSub))
	}
	if o.SweepInterval > 0 {
		opts = append(opts, live.WithSafetyNet(wb.SessionChecker(), o.SweepInterval))
	}
	ep, err := live.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Attach(ep); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	routes := wb.Routes()
	mux.Handle("/auth/", routes)
	mux.Handle("/sign-out", routes)
	mux.Handle("GET /live/websocket", ep)
	srv := httptest.NewServer(mux)
	n := &Node{Harness: &Harness{Accounts: acc, Endpoint: ep, Web: wb, Server: srv}, Layer: layer}
	t.Cleanup(n.Stop)
	return n
}

// Stop stops the node as a process would: its sockets are closed with
// 1001 (going away), its subscription ends and its server closes. Its data
// layer stays open until the test ends. Stop is idempotent.
func (n *Node) Stop() {
	n.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Endpoint.Shutdown(ctx)
		n.Server.Close()
	})
}

// declareNode declares the accounts of accountstest.Declare, with the
// harness's template and the node's secrets.
func declareNode(mailbox *accountstest.Mailbox, o NodeOptions) (*resource.Resource[accountstest.User], *resource.Resource[accountstest.Token]) {
	secret := o.SigningSecret
	if secret == "" {
		secret = accountstest.Secret
	}
	var previous []authentication.Secret
	for _, s := range o.PreviousSecrets {
		previous = append(previous, authentication.SecretString(s))
	}
	tokens := resource.New[accountstest.Token]("token",
		resource.Table("tokens"),
		tokenresource.Token{LiveSocketIDTemplate: Template, Knowledge: o.Knowledge},
		resource.Notifiers(append(append([]resource.Notifier{}, o.TokenNotifiers...), tokenrevocation.Notifier{})...),
	)
	users := resource.New[accountstest.User]("user",
		resource.Table("users"),
		authentication.Authentication{
			Tokens: authentication.Tokens{
				Enabled:                               true,
				TokenResource:                         tokens,
				SigningSecret:                         authentication.SecretString(secret),
				PreviousSecrets:                       previous,
				StoreAllTokens:                        true,
				RequireTokenPresenceForAuthentication: true,
			},
			Strategies: []authentication.Strategy{password.Password{
				IdentityField: "email",
				HashProvider:  password.Bcrypt{Cost: 4},
				Resettable:    &password.Resettable{},
			}},
			AddOns: []authentication.AddOn{logouteverywhere.LogOutEverywhere{ApplyOnPasswordChange: true}},
		},
	)
	return users, tokens
}
