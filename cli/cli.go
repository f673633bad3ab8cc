// Package cli is the command line an app built on kiln embeds:
//
//	serve                                  run the app (the default)
//	migrate [--print]                      create tables, or print their SQL
//	tokens revoke --jti J | --subject S | --user IDENTITY
//	tokens expunge                         remove expired tokens
//
// The app gives a Build func that makes its Runtime from the Config; the
// commands do the rest.
//
//	func main() { cli.Main(cli.App{Name: "accounts", Build: build}) }
package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/resource/bunlayer"
)

// App describes an app to the command line.
type App struct {
	// Name is the command's name.
	Name string
	// Short is its one-line description.
	Short string
	// Build makes the app from its configuration: open the database, build
	// the domain. It must not start anything; Runtime.Start does.
	Build func(ctx context.Context, cfg *Config, logger *slog.Logger) (*Runtime, error)
}

// Runtime is a built app.
type Runtime struct {
	// Layer is the data layer (Migrate, MigrationSQL).
	Layer *bunlayer.Layer
	// Tokens is the token store.
	Tokens *tokenresource.Store
	// SubjectOf returns the token subject of the user with that identity
	// (an email, say), for tokens revoke --user.
	SubjectOf func(ctx context.Context, identity string) (string, error)
	// Handler serves the app.
	Handler http.Handler
	// Start starts background work (expunger, live safety net) until ctx
	// is done.
	Start func(ctx context.Context)
	// Shutdown is called before the HTTP server stops (closing live sockets
	// with 1001).
	Shutdown func(ctx context.Context) error
	// Close releases what Build opened.
	Close func() error
}

// Main runs the command line with os.Args and exits.
func Main(app App) {
	if err := app.Command().Execute(); err != nil {
		os.Exit(1)
	}
}

// Command returns the root command: serve, migrate and tokens.
func (app App) Command() *cobra.Command {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	root := &cobra.Command{
		Use:           app.Name,
		Short:         app.Short,
		SilenceUsage:  true,
		SilenceErrors: false,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return app.serve(cmd, logger)
		},
	}
	AddFlags(root.PersistentFlags())

	serve := &cobra.Command{
		Use:   "serve",
		Short: "Serve the app (the default command)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return app.serve(cmd, logger) },
	}

	var print bool
	migrate := &cobra.Command{
		Use:   "migrate",
		Short: "Create the tables and unique indexes, or print their SQL",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return app.with(cmd, logger, func(ctx context.Context, rt *Runtime) error {
				if print {
					sql, err := rt.Layer.MigrationSQL()
					if err != nil {
						return err
					}
					fmt.Fprint(cmd.OutOrStdout(), sql)
					return nil
				}
				if err := rt.Layer.Migrate(ctx); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "migrated")
				return nil
			})
		},
	}
	migrate.Flags().BoolVar(&print, "print", false, "print the SQL instead of running it")

	tokens := &cobra.Command{Use: "tokens", Short: "Manage stored tokens"}
	tokens.AddCommand(app.revokeCommand(logger), app.expungeCommand(logger))

	root.AddCommand(serve, migrate, tokens)
	return root
}

// with loads the configuration, builds the app, runs fn and closes it.
func (app App) with(cmd *cobra.Command, logger *slog.Logger, fn func(ctx context.Context, rt *Runtime) error) error {
	cfg, err := LoadConfig(cmd.Flags(), logger)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	if err := cfg.ensureDatabaseDir(); err != nil {
		return err
	}
	rt, err := app.Build(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() {
		if rt.Close != nil {
			_ = rt.Close()
		}
	}()
	return fn(ctx, rt)
}

func (app App) serve(cmd *cobra.Command, logger *slog.Logger) error {
	cfg, err := LoadConfig(cmd.Flags(), logger)
	if err != nil {
		return err
	}
	parent := cmd.Context()
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cfg.ensureDatabaseDir(); err != nil {
		return err
	}
	rt, err := app.Build(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() {
		if rt.Close != nil {
			_ = rt.Close()
		}
	}()
	if err := rt.Layer.Migrate(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("kiln: listen: %w", err)
	}
	if rt.Start != nil {
		rt.Start(ctx)
	}
	srv := NewServer(cfg, rt.Handler)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if cfg.Dev {
		logger.Warn("kiln: development mode: development pages are served to this machine's browsers; never run it in production")
	}
	logger.Info("kiln: serving", "app", app.Name, "url", "http://"+ln.Addr().String(), "database", dbKind(cfg.DatabaseURL))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("kiln: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if rt.Shutdown != nil {
		if err := rt.Shutdown(sctx); err != nil {
			logger.Warn("kiln: live shutdown", "err", err)
		}
	}
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// NewServer returns the HTTP server serve runs: h with cfg's timeouts and
// header limit (their defaults where zero). A slow client cannot hold a
// connection: reading a request, body included, is bounded by ReadTimeout,
// writing its response by WriteTimeout, waiting for the next request by
// IdleTimeout. A WebSocket upgrade clears the connection's deadlines when
// it takes the connection over, so a live socket outlives them.
func NewServer(cfg *Config, h http.Handler) *http.Server {
	or := func(d, def time.Duration) time.Duration {
		if d > 0 {
			return d
		}
		return def
	}
	read := or(cfg.ReadTimeout, 30*time.Second)
	maxHeader := cfg.MaxHeaderBytes
	if maxHeader <= 0 {
		maxHeader = 64 << 10
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(read, 10*time.Second),
		ReadTimeout:       read,
		WriteTimeout:      or(cfg.WriteTimeout, 30*time.Second),
		IdleTimeout:       or(cfg.IdleTimeout, 120*time.Second),
		MaxHeaderBytes:    maxHeader,
	}
}

func dbKind(url string) string {
	if len(url) >= 8 && url[:8] == "postgres" {
		return "postgres"
	}
	return "sqlite"
}
