package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/google/uuid"

	"github.com/kiln-go/kiln/cli"
	"github.com/kiln-go/kiln/dsl"
	"github.com/kiln-go/kiln/examples/accounts/users"
	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
	"github.com/kiln-go/kiln/web"
)

// app is the running example.
type app struct {
	layer    *bunlayer.Layer
	pubsub   live.PubSub
	domain   *resource.Domain
	auth     *authentication.Auth
	web      *web.Web
	endpoint *live.Endpoint
	logger   *slog.Logger
	https    bool
}

// build makes the example from its configuration.
func build(ctx context.Context, cfg *cli.Config, logger *slog.Logger) (*cli.Runtime, error) {
	layer, err := cli.OpenDatabase(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a, err := newApp(ctx, layer, cfg, logger)
	if err != nil {
		layer.Close()
		return nil, err
	}
	return &cli.Runtime{
		Layer:  layer,
		Tokens: a.auth.Tokens(),
		SubjectOf: func(ctx context.Context, email string) (string, error) {
			u, err := users.GetByEmail.Run(ctx, a.domain, users.ByEmail{Email: email})
			if err != nil {
				return "", err
			}
			return a.auth.Subject(u)
		},
		Handler:  a.routes(),
		Start:    func(ctx context.Context) { a.auth.Tokens().Start(ctx, logger) },
		Shutdown: a.endpoint.Shutdown,
		Close:    a.close,
	}, nil
}

// newApp declares the accounts example's users and tokens and the blog's
// posts and comments, builds them, and joins the web glue and the live
// endpoint to them. It reports the problems of the live and resources
// sections at once.
func newApp(ctx context.Context, layer *bunlayer.Layer, cfg *cli.Config, logger *slog.Logger) (*app, error) {
	settings, liveErr := live.SettingsFrom(cfg.DSL)
	ps, err := cli.PubSub(ctx, cfg, layer, logger)
	if err != nil {
		return nil, err
	}
	built := false
	defer func() {
		if !built {
			_ = ps.Close() // a later step failed
		}
	}()
	liveOpts := []live.Option{live.WithPubSub(ps), live.WithLogger(logger), live.WithSettings(settings)}
	webOpts := []web.Option{web.WithLogger(logger)}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil {
			return nil, fmt.Errorf("public_url: %s is not a URL", dsl.Quote(cfg.PublicURL)) // err would show a password
		}
		liveOpts = append(liveOpts, live.WithPublicURL(u))
		webOpts = append(webOpts, web.WithPublicURL(u))
	}
	var previous []authentication.Secret
	for _, s := range cfg.PreviousTokenSigningSecrets {
		previous = append(previous, authentication.SecretString(s))
	}
	authors, tokens := users.Declare(users.Config{
		SigningSecret: authentication.SecretString(cfg.TokenSigningSecret), PreviousSecrets: previous})
	posts, comments := declare(authors, commentFeed{})
	domain, buildErr := resource.NewDomain("blog", authors, tokens, posts, comments).
		Build(ctx, layer, resource.WithLogger(logger), resource.WithConfig(cfg.DSL))
	if err := errors.Join(liveErr, buildErr); err != nil {
		return nil, err
	}
	auth, err := authentication.For(domain, authors)
	if err != nil {
		return nil, err
	}
	keys := make([][]byte, len(cfg.CookieKeys))
	for i, k := range cfg.CookieKeys {
		keys[i] = []byte(k)
	}
	sessions, err := web.NewSessions(keys...)
	if err != nil {
		return nil, err
	}
	glue := web.New(auth, sessions, webOpts...)
	// The endpoint is made from the glue, which needs the built domain, and
	// attached to the domain: the token revocation notifier closes its
	// sockets, the comment feed pushes over it.
	endpoint, err := live.New(append(liveOpts,
		live.WithAuthenticator(watchingPosts(glue.LiveAuthenticator())), live.WithChecker(glue.SessionChecker()))...)
	if err != nil {
		return nil, err
	}
	if err := domain.Attach(endpoint); err != nil {
		_ = endpoint.Shutdown(ctx)
		return nil, err
	}
	built = true
	return &app{layer: layer, pubsub: ps, domain: domain, auth: auth, web: glue, endpoint: endpoint,
		logger: logger, https: cfg.HTTPS()}, nil
}

// watchingPosts authenticates sockets as auth does, and subscribes the
// socket of a post's page to the post's comments: the page opens it with
// ?post=<id>. Only an id that parses names a topic, so a socket cannot
// subscribe to another kind of topic.
func watchingPosts(auth live.Authenticator) live.Authenticator {
	return live.AuthenticatorFunc(func(r *http.Request) (*live.Identity, error) {
		id, err := auth.AuthenticateSocket(r)
		if err != nil {
			return nil, err
		}
		if post, err := uuid.Parse(r.URL.Query().Get("post")); err == nil {
			id.Topics = append(id.Topics, postTopic(post))
		}
		return id, nil
	})
}

// routes is the example's HTTP surface: the web glue's auth routes, the
// live endpoint and the pages, all signed-in but sign-in and register.
func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	auth := a.web.Routes()
	mux.Handle("/auth/", auth)
	mux.Handle("POST /sign-out", auth)
	mux.Handle("GET /live/websocket", a.endpoint)
	mux.Handle("GET /live/client.js", live.ClientJS())

	signedIn := func(h http.HandlerFunc) http.Handler { return web.RequireUser("/sign-in", h) }
	pages := http.NewServeMux()
	pages.HandleFunc("GET /sign-in", a.signInPage)
	pages.HandleFunc("GET /register", a.registerPage)
	pages.Handle("GET /{$}", signedIn(a.postsPage))
	pages.Handle("POST /posts", signedIn(a.publish))
	pages.Handle("GET /posts/{id}", signedIn(a.postPage))
	pages.Handle("POST /posts/{id}/comments", signedIn(a.comment))
	mux.Handle("/", a.web.Protect(a.web.Middleware(pages)))
	return web.SecurityHeaders(mux, web.HeaderOptions{HTTPS: a.https})
}

// close releases the pub/sub connection and the database.
func (a *app) close() error {
	// Shut down (again, after serve's): the endpoint tells the other
	// nodes it leaves, so that none waits for it (a command line's, too).
	ctx, cancel := context.WithTimeout(context.Background(), live.EchoTimeout)
	defer cancel()
	_ = a.endpoint.Shutdown(ctx)
	err := a.pubsub.Close()
	return errors.Join(err, a.layer.Close())
}
