// Package cli is the command line an app built on kiln embeds:
//
//	serve                                  run the app (the default)
//	migrate [--print]                      migrate the database, or print the SQL
//	migrate generate [--name N] [--dir D]  write the migration to the declarations
//	tokens revoke --jti J | --subject S | --user IDENTITY
//	tokens expunge                         remove expired tokens
//
// It exits 0 on success, 1 when a command fails and 2 when the command
// line is wrong (see ExitCode).
//
// The app gives a Build func that makes its Runtime from the Config, and
// the config sections it reads; the commands do the rest.
//
//	func main() {
//		cli.Main(cli.App{Name: "accounts", Build: build,
//			Sections: []string{resource.ConfigSection, live.SettingsSchema.Name}})
//	}
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kiln-go/kiln/dsl"
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
	// the domain. It must not start anything; Runtime.Start does. It should
	// report every problem of the sections it reads at once, joined. Every
	// command calls it first on a sandbox of the configuration (an
	// in-memory SQLite database, an in-process pub/sub, rate limits in
	// memory, throwaway secrets, no development mode), closed at once, to
	// check the sections before anything is made or opened; then on the
	// configuration itself.
	Build func(ctx context.Context, cfg *Config, logger *slog.Logger) (*Runtime, error)
	// Sections are the top-level sections of the configuration the app
	// reads from Config.DSL, each named by the package that reads it:
	// resource.ConfigSection, live.SettingsSchema.Name,
	// ratelimit.LimitsSchema.Name. They are registered on Config.DSL; any
	// other top-level key that is not a setting of Schema is an error.
	Sections []string
	// DataDir is the default of the data_dir setting, so that two apps run
	// from one folder keep their databases and development secrets apart.
	// Zero value: "kiln-data".
	DataDir string
	// DatabaseFile is the SQLite file, in the data folder, that
	// database_url names when it is not set. Zero value: "accounts.db".
	DatabaseFile string
	// Migrations is the app's migrations folder, written by `migrate
	// generate`: a folder per dialect (sqlite, pg) of migration files and
	// the snapshot of the declarations they lead to. Give the folder
	// embedded in the binary (an embed.FS, through fs.Sub) or
	// os.DirFS("migrations"). When it is set, migrate and serve check that
	// the declarations are those of its snapshot, then apply its pending
	// migrations under the database's lock
	// (bunlayer.Layer.ApplyMigrations). Nil: they create the tables and
	// indexes that are missing, and alter none (bunlayer.Layer.Migrate).
	Migrations fs.FS
}

// Runtime is a built app.
type Runtime struct {
	// Layer is the data layer (Migrate and MigrationSQL, or
	// ApplyMigrations and PendingMigrations, GenerateMigrations).
	Layer *bunlayer.Layer
	// Tokens is the token store.
	Tokens *tokenresource.Store
	// SubjectOf returns the token subject of the user with that identity
	// (an email, say), for tokens revoke --user: an error that
	// errors.Is(err, resource.ErrNotFound) when there is none; any other
	// error is shown as it is.
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

// Main runs the command line with os.Args and exits with ExitCode of its
// error.
func Main(app App) {
	os.Exit(ExitCode(app.Command().Execute()))
}

// The exit codes of the command line.
const (
	// ExitOK: the command did what it was asked.
	ExitOK = 0
	// ExitError: the command failed (configuration, database, not found…).
	ExitError = 1
	// ExitUsage: the command line itself is wrong (an unknown command or
	// flag, a missing or extra argument); nothing was run.
	ExitUsage = 2
)

// ExitCode is the exit code for an error of the command line: ExitOK for
// nil, ExitUsage for a usage error, ExitError for any other.
func ExitCode(err error) int {
	var u usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &u):
		return ExitUsage
	}
	return ExitError
}

// usageError is a wrong command line.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// usage marks an error as a usage error (exit code ExitUsage).
func usage(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// noSubcommand accepts no argument: an argument is an unknown command,
// reported with the nearest known one ("did you mean").
func noSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if near := cmd.SuggestionsFor(args[0]); len(near) > 0 {
		msg += "; did you mean " + strings.Join(near, " or ") + "?"
	}
	return usageError{errors.New(msg)}
}

// flagError is the error of flags that do not parse: a usage error. A
// command group given an unknown command before the bad flag ("tokens
// revok --user …", the flag being revoke's) reports the unknown command,
// with the nearest one, as it would without the flag. A value a flag
// refuses (--dev=maybe) is quoted through dsl.Quote, as a setting's value
// is.
func flagError(cmd *cobra.Command, err error) error {
	if cmd.HasSubCommands() {
		if unknown := noSubcommand(cmd, cmd.Flags().Args()); unknown != nil {
			return unknown
		}
	}
	var bad *pflag.InvalidValueError
	if errors.As(err, &bad) {
		want := "a " + bad.GetFlag().Value.Type()
		if want == "a bool" {
			want = "true or false"
		}
		return usage("flag --%s: want %s, got %s", bad.GetFlag().Name, want, dsl.Quote(bad.GetValue()))
	}
	return usageError{err}
}

// helpCommand is help [command]: the command's help, or, for one that does
// not exist, a usage error with the nearest command, as running it would
// give.
func helpCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(cmd *cobra.Command, args []string) error {
			target, rest, err := cmd.Root().Find(args)
			if err != nil {
				return usageError{err}
			}
			if err := noSubcommand(target, rest); err != nil {
				return err
			}
			return target.Help()
		},
	}
}

// noArgs accepts no argument, for a command without subcommands.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usage("%q takes no arguments; got %q", cmd.CommandPath(), args[0])
	}
	return nil
}

// Command returns the root command: serve, migrate and tokens.
func (app App) Command() *cobra.Command {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	root := &cobra.Command{
		Use:           app.Name,
		Short:         app.Short,
		SilenceUsage:  true,
		SilenceErrors: false,
		Args:          noSubcommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return app.serve(cmd, logger)
		},
	}
	root.SetFlagErrorFunc(flagError)
	root.SetHelpCommand(helpCommand())
	AddFlags(root.PersistentFlags())
	if app.DataDir != "" {
		root.PersistentFlags().Lookup(flagName("data_dir")).DefValue = app.DataDir
	}
	if app.DatabaseFile != "" {
		f := root.PersistentFlags().Lookup(flagName("database_url"))
		f.Usage = strings.Replace(f.Usage, "<data_dir>/accounts.db", "<data_dir>/"+app.DatabaseFile, 1)
	}

	serve := &cobra.Command{
		Use:   "serve",
		Short: "Serve the app (the default command)",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return app.serve(cmd, logger) },
	}

	var print bool
	migrate := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the pending migrations (or create the missing tables), or print their SQL",
		Args:  noSubcommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if print {
				return app.printMigration(cmd, logger)
			}
			return app.with(cmd, logger, func(ctx context.Context, rt *Runtime) error {
				applied, err := app.migrate(ctx, rt, func() {
					fmt.Fprintln(cmd.ErrOrStderr(), "waiting for another migration of the database to finish")
				})
				for _, name := range applied {
					fmt.Fprintln(cmd.OutOrStdout(), "applied", name)
				}
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "migrated")
				return nil
			})
		},
	}
	migrate.Flags().BoolVar(&print, "print", false, "print the SQL instead of running it")
	migrate.AddCommand(app.generateCommand())

	tokens := &cobra.Command{
		Use:   "tokens",
		Short: "Manage stored tokens",
		Args:  noSubcommand,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	tokens.AddCommand(app.revokeCommand(logger), app.expungeCommand(logger))

	root.AddCommand(serve, migrate, tokens)
	return root
}

// defaults are the app's own defaults of the command line's settings.
func (app App) defaults() defaults {
	return defaults{dataDir: app.DataDir, databaseFile: app.DatabaseFile}
}

// read reads and checks the whole configuration, leaving missing secrets
// empty: the command line's own settings, then the app's sections, by
// building the app on a sandbox of the configuration (see
// sectionProblems). Every problem is reported at once, before the data
// folder, a development secret or a database is made or opened.
func (app App) read(cmd *cobra.Command) (*Config, error) {
	return app.readInSandbox(cmd, func(context.Context, *Runtime) error { return nil })
}

// readInSandbox is read, running fn on the sandbox's runtime when the
// command line's own settings are fine, so that a command that needs no
// more than the sandbox (migrate generate) builds the app once.
func (app App) readInSandbox(cmd *cobra.Command, fn func(ctx context.Context, rt *Runtime) error) (*Config, error) {
	cfg, err := readConfig(cmd.Flags(), app.defaults(), app.Sections)
	if cfg == nil {
		return nil, err
	}
	if err != nil {
		fn = func(context.Context, *Runtime) error { return nil }
	}
	if err := errors.Join(err, app.sectionProblems(cmd, cfg, fn)); err != nil {
		return nil, err
	}
	return cfg, nil
}

// load reads the configuration as LoadConfig does, with read's report.
func (app App) load(cmd *cobra.Command, logger *slog.Logger) (*Config, error) {
	cfg, err := app.read(cmd)
	if err != nil {
		return nil, err
	}
	if err := cfg.devSecrets(logger); err != nil {
		return nil, err
	}
	return cfg, nil
}

// sectionProblems builds the app on a sandbox copy of cfg — an in-memory
// SQLite database, an in-process pub/sub, rate limits in memory, secrets
// kept nowhere, no development mode — and returns Build's error: the
// problems of the app's own sections (resources, live …), or else fn's
// error. It writes, connects to and starts nothing, and closes what it
// built.
func (app App) sectionProblems(cmd *cobra.Command, cfg *Config, fn func(ctx context.Context, rt *Runtime) error) error {
	sandbox, err := cfg.sandbox()
	if err != nil {
		return err
	}
	return app.run(cmd, sandbox, slog.New(slog.DiscardHandler), fn)
}

// sandbox is a copy of the configuration that writes, connects to and
// starts nothing: an in-memory SQLite database, an in-process pub/sub, rate
// limits in memory, secrets kept nowhere, no development mode.
func (c *Config) sandbox() (*Config, error) {
	sandbox := *c
	sandbox.DatabaseURL, sandbox.PubSubURL, sandbox.RateLimitStore, sandbox.Dev = "sqlite::memory:", "", "memory", false
	if err := sandbox.throwawaySecrets(); err != nil {
		return nil, err
	}
	return &sandbox, nil
}

// migrate applies the app's pending migrations, after checking that the
// declarations are those of their snapshot, and returns their names; for
// an app without migrations it creates the missing tables. wait is called
// when another process holds the migration lock.
func (app App) migrate(ctx context.Context, rt *Runtime, wait func()) ([]string, error) {
	if app.Migrations == nil {
		return nil, rt.Layer.Migrate(ctx)
	}
	if err := rt.Layer.CheckMigrations(app.Migrations); err != nil {
		return nil, err
	}
	return rt.Layer.ApplyMigrations(ctx, app.Migrations, bunlayer.OnWait(wait))
}

// with loads the configuration, builds the app, runs fn and closes it.
func (app App) with(cmd *cobra.Command, logger *slog.Logger, fn func(ctx context.Context, rt *Runtime) error) error {
	cfg, err := app.load(cmd, logger)
	if err != nil {
		return err
	}
	if err := cfg.ensureDatabaseDir(); err != nil {
		return err
	}
	return app.run(cmd, cfg, logger, fn)
}

// run builds the app from cfg, runs fn and closes it.
func (app App) run(cmd *cobra.Command, cfg *Config, logger *slog.Logger, fn func(ctx context.Context, rt *Runtime) error) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
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

// printMigration prints the SQL migrate would run and writes nothing: no
// data folder, no development secret, no database file. A SQLite app is
// built on an in-memory database (the SQL is the same; the migrations its
// file has applied are read from it, read-only); a PostgreSQL one is built
// on its database as usual, and Build writes nothing.
func (app App) printMigration(cmd *cobra.Command, logger *slog.Logger) error {
	cfg, err := app.read(cmd)
	if err != nil {
		return err
	}
	if err := cfg.throwawaySecrets(); err != nil {
		return err
	}
	file, sqlite := bunlayer.SQLiteFile(cfg.DatabaseURL)
	if dbKind(cfg.DatabaseURL) == "sqlite" {
		cfg.DatabaseURL = "sqlite::memory:"
	}
	return app.run(cmd, cfg, logger, func(ctx context.Context, rt *Runtime) error {
		if app.Migrations != nil {
			return app.printPending(ctx, cmd.OutOrStdout(), rt.Layer, file, sqlite)
		}
		sql, err := rt.Layer.MigrationSQL()
		if err != nil {
			return err
		}
		fmt.Fprint(cmd.OutOrStdout(), sql)
		return nil
	})
}

// printPending prints the app's pending migrations, each under its name,
// after checking that the declarations are those of their snapshot. The
// applied ones are read from layer, or from the SQLite file, opened
// read-only, when there is one.
func (app App) printPending(ctx context.Context, w io.Writer, layer *bunlayer.Layer, file string, sqlite bool) error {
	if err := layer.CheckMigrations(app.Migrations); err != nil {
		return err
	}
	if sqlite {
		if _, err := os.Stat(file); err == nil {
			ro, err := bunlayer.Open(ctx, "file:"+file+"?mode=ro")
			if err != nil {
				return err
			}
			defer ro.Close()
			layer = ro
		}
	}
	pending, err := layer.PendingMigrations(ctx, app.Migrations)
	if err != nil {
		return err
	}
	if len(pending) == 0 {
		fmt.Fprintln(w, "-- no pending migrations")
	}
	for _, m := range pending {
		fmt.Fprintf(w, "-- %s\n%s", m.Path, m.SQL)
	}
	return nil
}

// generateCommand is migrate generate.
func (app App) generateCommand() *cobra.Command {
	var opts bunlayer.GenerateOptions
	var dir string
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Write the migration from the last snapshot to the declarations, for SQLite and PostgreSQL",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := app.readInSandbox(cmd, func(_ context.Context, rt *Runtime) error {
				return app.generate(cmd.OutOrStdout(), cmd.ErrOrStderr(), rt.Layer, dir, opts)
			})
			return err
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "", `the migration's name: lower-case letters, digits, _ and - (default "initial" for the first, then "update")`)
	cmd.Flags().StringVar(&dir, "dir", "migrations", "the migrations folder")
	cmd.Flags().BoolVar(&opts.AllowDrop, "allow-drop", false, "drop the columns and tables no longer declared (otherwise written commented out)")
	return cmd
}

// generate writes the migration to the declarations of layer into dir and
// says what it wrote.
func (app App) generate(out, errOut io.Writer, layer *bunlayer.Layer, dir string, opts bunlayer.GenerateOptions) error {
	gen, err := layer.GenerateMigrations(dir, opts)
	if err != nil {
		return err
	}
	if len(gen) == 0 {
		fmt.Fprintf(out, "nothing to generate: the declarations are those of the snapshots in %s\n", dir)
		return nil
	}
	for _, g := range gen {
		fmt.Fprintln(out, "wrote", g.Migration)
		for _, s := range g.Summary {
			fmt.Fprintln(out, "  "+s)
		}
		fmt.Fprintln(out, "wrote", g.Snapshot)
	}
	fmt.Fprintln(out, "review the migrations, then run migrate")
	if app.Migrations == nil {
		fmt.Fprintf(errOut, "note: cli.App.Migrations is not set, so migrate and serve do not apply these files: set it to the folder (embedded, or os.DirFS(%q))\n", dir)
	}
	return nil
}

func (app App) serve(cmd *cobra.Command, logger *slog.Logger) error {
	cfg, err := app.load(cmd, logger)
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
	applied, err := app.migrate(ctx, rt, func() {
		logger.Info("kiln: waiting for another migration of the database to finish")
	})
	for _, name := range applied {
		logger.Info("kiln: applied migration", "name", name)
	}
	if err != nil {
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
