package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kiln-go/kiln/cli"
	"github.com/kiln-go/kiln/extensions/authentication"
	"github.com/kiln-go/kiln/extensions/tokenresource/tokenrevocation"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/internal/livetest"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/resource"
	"github.com/kiln-go/kiln/resource/bunlayer"
	"github.com/kiln-go/kiln/web"
)

// The command line is tested on an app built like the accounts example:
// the test accounts, a live endpoint on the configured pub/sub, the web
// glue and the token revocation notifier.

// testApp is the command line of the test app.
func testApp() cli.App {
	return cli.App{Name: "kilntest", Short: "kiln's command line on the test accounts", Build: buildTestApp,
		Sections: []string{live.SettingsSchema.Name}}
}

func buildTestApp(ctx context.Context, cfg *cli.Config, logger *slog.Logger) (*cli.Runtime, error) {
	layer, err := bunlayer.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*cli.Runtime, error) {
		layer.Close()
		return nil, err
	}
	ps, err := cli.PubSub(ctx, cfg, layer, logger)
	if err != nil {
		return fail(err)
	}
	settings, err := live.SettingsFrom(cfg.DSL)
	if err != nil {
		return fail(err)
	}
	mailbox := &accountstest.Mailbox{}
	users, tokens := accountstest.Declare(accountstest.Options{
		Template:       livetest.Template,
		TokenNotifiers: []resource.Notifier{tokenrevocation.Notifier{}},
		Mailbox:        mailbox,
	})
	d, err := resource.NewDomain("accounts", users, tokens).Build(ctx, layer, resource.WithLogger(logger), resource.With(mailbox))
	if err != nil {
		return fail(err)
	}
	auth, err := authentication.For(d, users)
	if err != nil {
		return fail(err)
	}
	keys := make([][]byte, len(cfg.CookieKeys))
	for i, k := range cfg.CookieKeys {
		keys[i] = []byte(k)
	}
	sessions, err := web.NewSessions(keys...)
	if err != nil {
		return fail(err)
	}
	glue := web.New(auth, sessions, web.WithLogger(logger))
	ep, err := live.New(live.WithPubSub(ps), live.WithLogger(logger), live.WithSettings(settings),
		live.WithAuthenticator(glue.LiveAuthenticator()), live.WithChecker(glue.SessionChecker()))
	if err != nil {
		return fail(err)
	}
	if err := d.Attach(ep); err != nil {
		return fail(err)
	}
	mux := http.NewServeMux()
	routes := glue.Routes()
	mux.Handle("/auth/", routes)
	mux.Handle("POST /sign-out", routes)
	mux.Handle("GET /live/websocket", ep)
	return &cli.Runtime{
		Layer:  layer,
		Tokens: auth.Tokens(),
		SubjectOf: func(ctx context.Context, email string) (string, error) {
			u, err := users.Get(ctx, d, "get_by_email", resource.Input{"email": email})
			if err != nil {
				return "", err
			}
			return auth.Subject(u)
		},
		Handler:  mux,
		Shutdown: ep.Shutdown,
		Close: func() error {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return errors.Join(ep.Shutdown(sctx), layer.Close())
		},
	}, nil
}

// server is a runtime of the test app serving over HTTP in this process.
type server struct {
	rt  *cli.Runtime
	srv *httptest.Server
}

// serve builds the test app from cfg, migrates it and serves it until t
// ends.
func serve(t *testing.T, cfg *cli.Config) *server {
	t.Helper()
	ctx := context.Background()
	rt, err := buildTestApp(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	if err := rt.Layer.Migrate(ctx); err != nil {
		rt.Close()
		t.Fatalf("migrate: %v", err)
	}
	srv := httptest.NewServer(rt.Handler)
	t.Cleanup(func() {
		srv.Close()
		rt.Close()
	})
	return &server{rt: rt, srv: srv}
}

// register registers email (password "password123") over HTTP and returns
// the session token.
func (s *server) register(t *testing.T, email string) string {
	t.Helper()
	return s.post(t, "/auth/user/password/register", url.Values{
		"email": {email}, "password": {"password123"}, "password_confirmation": {"password123"}})
}

// signIn signs email in over HTTP and returns the token.
func (s *server) signIn(t *testing.T, email string) string {
	t.Helper()
	return s.post(t, "/auth/user/password/sign_in", url.Values{"email": {email}, "password": {"password123"}})
}

func (s *server) post(t *testing.T, path string, form url.Values) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Token string `json:"token"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.Token == "" {
		t.Fatalf("POST %s: %d %q %v", path, resp.StatusCode, out.Error, err)
	}
	return out.Token
}
