package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kiln-go/kiln/cli"
	"github.com/kiln-go/kiln/dsl"
	"github.com/kiln-go/kiln/examples/accounts/users"
	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/authentication/password"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
	"github.com/kiln-go/kiln/web"
	"github.com/kiln-go/kiln/web/ratelimit"
)

// app is the running example.
type app struct {
	pubsub   live.PubSub
	layer    *bunlayer.Layer
	domain   *resource.Domain
	auth     *authentication.Auth
	web      *web.Web
	endpoint *live.Endpoint
	// mailbox holds the reset mails in development mode; nil otherwise.
	mailbox *Mailbox
	logger  *slog.Logger
	// https: the app is served over https (its public URL says so).
	https bool
	// closeLimiter releases the rate limiter's store connection.
	closeLimiter func()
	// metrics are the app's Prometheus metrics, served at /metrics.
	metrics *prometheus.Registry
	// metricsPublic serves /metrics to every client, not only to this
	// machine's.
	metricsPublic bool
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
		Start:    a.start,
		Shutdown: a.endpoint.Shutdown,
		Close:    a.close,
	}, nil
}

// newApp makes the example from its configuration. It reports every
// problem of the live, rate_limits and resources sections at once: a
// section with problems is read as its defaults, so that the next ones
// are still checked.
func newApp(ctx context.Context, layer *bunlayer.Layer, cfg *cli.Config, logger *slog.Logger) (*app, error) {
	settings, liveErr := live.SettingsFrom(cfg.DSL)
	limits, limitsErr := ratelimit.LimitsFrom(cfg.DSL)
	ps, err := cli.PubSub(ctx, cfg, layer, logger)
	if err != nil {
		return nil, err
	}
	// What is opened here is closed again when a later step fails.
	built, closeLimiter := false, func() {}
	defer func() {
		if !built {
			if closeLimiter != nil {
				closeLimiter()
			}
			_ = ps.Close()
		}
	}()
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		// The pool's statistics (go_sql_…): how full it is, how often and
		// how long queries wait for a connection.
		collectors.NewDBStatsCollector(layer.DB().DB, "accounts"))
	// The transports are collectors of their own metrics; the in-process
	// one has none.
	if c, ok := ps.(prometheus.Collector); ok {
		if err := metrics.Register(c); err != nil {
			return nil, fmt.Errorf("pub/sub metrics: %w", err)
		}
	}
	liveOpts := []live.Option{live.WithPubSub(ps), live.WithLogger(logger), live.WithSettings(settings),
		live.WithMetrics(metrics),
		live.OnOpen(func(c *live.Conn) { c.Subscribe("clock") })}
	var webOpts []web.Option
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil {
			return nil, fmt.Errorf("public_url: %s is not a URL", dsl.Quote(cfg.PublicURL)) // err would show a password
		}
		liveOpts = append(liveOpts, live.WithPublicURL(u))
		webOpts = append(webOpts, web.WithPublicURL(u))
	}
	// The development mailbox exists in development mode alone: it shows
	// every reset link.
	var mailbox *Mailbox
	var sender password.Sender = noMail{logger}
	if cfg.Development() {
		mailbox = &Mailbox{}
		sender = mailbox
	}
	var previous []authentication.Secret
	for _, s := range cfg.PreviousTokenSigningSecrets {
		previous = append(previous, authentication.SecretString(s))
	}
	people, tokens := users.Declare(users.Config{SigningSecret: authentication.SecretString(cfg.TokenSigningSecret),
		PreviousSecrets: previous, Resettable: true})
	domain, buildErr := resource.NewDomain("accounts", people, tokens).Build(ctx, layer, resource.WithLogger(logger), resource.WithConfig(cfg.DSL), resource.With(sender))
	if err := errors.Join(liveErr, limitsErr, buildErr); err != nil {
		return nil, err
	}
	auth, err := authentication.For(domain, people)
	if err != nil {
		return nil, err
	}
	if err := metrics.Register(auth.Tokens()); err != nil {
		return nil, fmt.Errorf("token store metrics: %w", err)
	}
	keys := make([][]byte, len(cfg.CookieKeys))
	for i, k := range cfg.CookieKeys {
		keys[i] = []byte(k)
	}
	sessions, err := web.NewSessions(keys...)
	if err != nil {
		return nil, err
	}
	limiter, closeLimiter, err := rateLimiter(ctx, cfg, limits, layer, logger, metrics)
	if err != nil {
		return nil, err
	}
	glue := web.New(auth, sessions, append(webOpts, web.WithLogger(logger), web.WithRateLimiter(limiter))...)
	// The endpoint is made from the glue, which needs the built domain, and
	// attached to the domain: the token revocation notifier closes its
	// sockets.
	endpoint, err := live.New(append(liveOpts,
		live.WithAuthenticator(glue.LiveAuthenticator()), live.WithChecker(glue.SessionChecker()))...)
	if err != nil {
		return nil, err
	}
	if err := domain.Attach(endpoint); err != nil {
		_ = endpoint.Shutdown(ctx)
		return nil, err
	}
	built = true
	return &app{pubsub: ps, layer: layer, domain: domain, auth: auth, web: glue,
		endpoint: endpoint, mailbox: mailbox, logger: logger, https: cfg.HTTPS(), closeLimiter: closeLimiter,
		metrics: metrics, metricsPublic: cfg.MetricsPublic}, nil
}

// start runs the expunger and the clock that shows the page is live.
func (a *app) start(ctx context.Context) {
	a.auth.Tokens().Start(ctx, a.logger)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				_ = a.endpoint.Broadcast(ctx, "clock", "tick", map[string]string{"time": now.Format("15:04:05")})
			}
		}
	}()
}

// routes is the example's HTTP contract.
func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	auth := a.web.Routes()
	mux.Handle("/auth/", auth)
	mux.Handle("POST /sign-out", auth)
	mux.Handle("GET /live/websocket", a.endpoint)
	mux.Handle("GET /live/client.js", live.ClientJS())
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.Handle("GET /metrics", a.metricsHandler())

	pages := http.NewServeMux()
	pages.HandleFunc("GET /{$}", a.livePage)
	pages.HandleFunc("GET /sign-in", a.signInPage)
	pages.HandleFunc("GET /register", a.registerPage)
	pages.HandleFunc("GET /change-password", a.changePasswordPage)
	pages.HandleFunc("GET /reset-request", a.resetRequestPage)
	pages.HandleFunc("GET /reset", a.resetPage)
	pages.HandleFunc("GET /sessions", a.sessionsPage)
	pages.HandleFunc("POST /sessions/revoke", a.revokeSession)
	if a.mailbox != nil {
		pages.Handle("GET /dev/mailbox", loopbackOnly("development pages answer browsers on this machine only", http.HandlerFunc(a.mailboxPage)))
	}
	mux.Handle("/", a.web.Protect(a.web.Middleware(pages)))
	return web.SecurityHeaders(mux, web.HeaderOptions{HTTPS: a.https})
}

// metricsHandler serves the Prometheus metrics: to this machine's
// clients alone unless metrics_public is set.
func (a *app) metricsHandler() http.Handler {
	h := promhttp.HandlerFor(a.metrics, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(a.logger.Handler(), slog.LevelError)})
	if a.metricsPublic {
		return h
	}
	return loopbackOnly("metrics answer clients on this machine only; set metrics_public to serve them to others", h)
}

// loopbackOnly serves h to clients on this machine alone, and refuses
// others with 403 and refusal: the connection's peer must be a loopback
// address, and the request must not have come through a proxy, which
// connects from loopback on behalf of anyone. Forwarding headers are not
// believed, only looked for.
func loopbackOnly(refusal string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil || !peer.Addr().Unmap().IsLoopback() || proxied(r) || !loopbackHost(r.Host) {
			http.Error(w, refusal, http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// proxied reports whether a request carries a header that proxies add.
func proxied(r *http.Request) bool {
	for _, name := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip",
		"Via", "True-Client-Ip", "Cf-Connecting-Ip", "X-Client-Ip", "X-Original-Forwarded-For", "X-Cluster-Client-Ip", "Fastly-Client-Ip"} {
		if _, ok := r.Header[name]; ok {
			return true
		}
	}
	return false
}

// loopbackHost reports whether the request names this machine: a page on
// another site that rebinds its own name to 127.0.0.1 sends its own name
// in Host, and is refused.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && addr.Unmap().IsLoopback()
}

// noMail is the example's password.Sender outside development mode: the
// example has no mail service, so a reset mail goes nowhere and its token
// is kept nowhere.
type noMail struct{ logger *slog.Logger }

// SendResetToken implements password.Sender.
func (n noMail) SendResetToken(ctx context.Context, _ any, _ string) error {
	n.logger.InfoContext(ctx, "accounts: a password reset mail is not sent: this example delivers mail only to its development mailbox (--dev)")
	return nil
}

func (a *app) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.layer.Ping(ctx); err != nil {
		http.Error(w, "database unavailable", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// currentUser returns the signed-in user, or redirects to /sign-in.
func (a *app) currentUser(w http.ResponseWriter, r *http.Request) (*users.User, *web.Principal, bool) {
	p := web.CurrentPrincipal(r.Context())
	if p == nil {
		http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
		return nil, nil, false
	}
	return p.User.(*users.User), p, true
}

var errNotYours = errors.New("that session is not yours")

// close releases the pub/sub connection and the database.
func (a *app) close() error {
	// Shut down (again, after serve's): the endpoint tells the other
	// nodes it leaves, so that none waits for it (a command line's, too).
	ctx, cancel := context.WithTimeout(context.Background(), live.EchoTimeout)
	defer cancel()
	_ = a.endpoint.Shutdown(ctx)
	err := a.pubsub.Close()
	a.closeLimiter()
	return errors.Join(err, a.layer.Close())
}
