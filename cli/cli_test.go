package cli_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kiln-go/kiln/cli"
	"github.com/kiln-go/kiln/dsl"
	"github.com/kiln-go/kiln/extensions/tokenresource"
	"github.com/kiln-go/kiln/internal/accountstest"
	"github.com/kiln-go/kiln/internal/testdb"
	"github.com/kiln-go/kiln/live"
	_ "github.com/kiln-go/kiln/live/pubsub/postgres" // the transport of TestTokensRevokeLiveSockets
	"github.com/kiln-go/kiln/resource/bunlayer"
	"github.com/kiln-go/kiln/revocation"
)

const (
	testSecret    = "cli-test-token-signing-secret-0123456789abcdef"
	testCookieKey = "cli-test-cookie-key-0123456789abcdef"
)

// clearEnv unsets the KILN_… configuration variables for t (an empty
// variable counts as unset).
func clearEnv(t *testing.T) {
	for _, k := range []string{"ADDR", "DATA_DIR", "DATABASE_URL", "PUBSUB_URL", "TOKEN_SIGNING_SECRET",
		"PREVIOUS_TOKEN_SIGNING_SECRETS", "COOKIE_KEYS", "SWEEP_INTERVAL", "CONFIG", "DEV", "PUBLIC_URL",
		"TRUSTED_PROXIES", "RATE_LIMIT_STORE", "READ_TIMEOUT", "WRITE_TIMEOUT", "IDLE_TIMEOUT", "MAX_HEADER_BYTES", "DATABASE_MAX_CONNS"} {
		t.Setenv("KILN_"+k, "")
	}
}

// env is a configuration for the test app: a SQLite file in a folder of
// its own, and secrets.
type env struct {
	dir string
	cfg *cli.Config
}

func newEnv(t *testing.T) *env {
	clearEnv(t)
	dir := t.TempDir()
	return &env{dir: dir, cfg: &cli.Config{
		Addr:               "127.0.0.1:0",
		DataDir:            dir,
		DatabaseURL:        "sqlite:" + filepath.Join(dir, "kiln.db"),
		TokenSigningSecret: testSecret,
		CookieKeys:         []string{testCookieKey},
		DSL:                dsl.FromEnv("KILN", []string{"KILN_LIVE__SWEEP_INTERVAL=1m"}),
	}}
}

// args are the flags that give the command line e's configuration.
func (e *env) args(args ...string) []string {
	return append(args, "--data-dir", e.cfg.DataDir, "--database-url", e.cfg.DatabaseURL,
		"--token-signing-secret", e.cfg.TokenSigningSecret, "--cookie-keys", strings.Join(e.cfg.CookieKeys, ","),
		"--sweep-interval", "1m")
}

// run runs the command line in this process with args.
func run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := testApp().Command()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

// mustRun runs the command line and fails t when it fails.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := run(t, args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

func TestHelp(t *testing.T) {
	out := mustRun(t, "--help")
	for _, want := range []string{
		"\n  serve ", "\n  migrate ", "\n  tokens ",
		"--config string", "--database-url string", "[KILN_DATABASE_URL]", "--pubsub-url string", "[KILN_PUBSUB_URL]",
		"--token-signing-secret string", "[KILN_TOKEN_SIGNING_SECRET]", "--addr string", `(default "127.0.0.1:4000")`,
		"--dev ", "[KILN_DEV]", "--public-url string", "[KILN_PUBLIC_URL]", "--trusted-proxies string", "[KILN_TRUSTED_PROXIES]",
		"--rate-limit-store string", `(default "memory")`, "--read-timeout string", "--write-timeout string", "--idle-timeout string",
		"--max-header-bytes string", `(default "65536")`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
	out = mustRun(t, "tokens", "--help")
	for _, want := range []string{"\n  revoke ", "\n  expunge "} {
		if !strings.Contains(out, want) {
			t.Errorf("tokens --help lacks %q:\n%s", want, out)
		}
	}
	out = mustRun(t, "tokens", "revoke", "--help")
	for _, want := range []string{"--jti string", "--subject string", "--user string"} {
		if !strings.Contains(out, want) {
			t.Errorf("tokens revoke --help lacks %q:\n%s", want, out)
		}
	}
	if _, _, err := run(t, "frobnicate"); err == nil || !strings.Contains(err.Error(), `unknown command "frobnicate"`) {
		t.Errorf("an unknown command: %v", err)
	}
}

// tables lists the tables of a SQLite database.
func tables(t *testing.T, dbURL string) []string {
	t.Helper()
	l, err := bunlayer.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var names []string
	if err := l.DB().NewSelect().Table("sqlite_master").Column("name").Where("type = 'table'").Order("name").Scan(context.Background(), &names); err != nil {
		t.Fatal(err)
	}
	return names
}

func TestMigrate(t *testing.T) {
	e := newEnv(t)
	out := mustRun(t, e.args("migrate", "--print")...)
	for _, want := range []string{`CREATE TABLE IF NOT EXISTS "users"`, `CREATE TABLE IF NOT EXISTS "tokens"`, `"hashed_password"`, `"jti"`} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate --print lacks %s:\n%s", want, out)
		}
	}
	if got := tables(t, e.cfg.DatabaseURL); len(got) != 0 {
		t.Errorf("migrate --print created tables: %v", got)
	}
	for range 2 { // migrate is idempotent
		if out := mustRun(t, e.args("migrate")...); out != "migrated\n" {
			t.Errorf("migrate printed %q", out)
		}
	}
	// The resources' tables, and the live transport's (a SQLite file is
	// the pub/sub of the app and its commands).
	if got := tables(t, e.cfg.DatabaseURL); !slices.Equal(got, []string{"kiln_live_messages", "sqlite_sequence", "tokens", "users"}) {
		t.Errorf("tables after migrate: %v", got)
	}
}

// claims returns the jti and subject of a token.
func claims(t *testing.T, token string) (jti, subject string) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a JWT", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		JTI string `json:"jti"`
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(raw, &c); err != nil || c.JTI == "" || c.Sub == "" {
		t.Fatalf("no jti or sub in %s: %v", raw, err)
	}
	return c.JTI, c.Sub
}

func TestTokensRevoke(t *testing.T) {
	e := newEnv(t)
	s := serve(t, e.cfg)
	alice := []string{s.register(t, "alice@example.com"), s.signIn(t, "alice@example.com")}
	bob := []string{s.register(t, "bob@example.com"), s.signIn(t, "bob@example.com")}
	carol := s.register(t, "carol@example.com")
	_, aliceSubject := claims(t, alice[0])
	_, carolSubject := claims(t, carol)
	bobJTI, _ := claims(t, bob[0])

	revoked := func(token string) bool {
		t.Helper()
		jti, _ := claims(t, token)
		r, err := s.rt.Tokens.IsRevoked(context.Background(), jti)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	if out := mustRun(t, e.args("tokens", "revoke", "--user", "alice@example.com")...); out != "revoked 2 tokens of "+aliceSubject+"\n" {
		t.Errorf("revoke --user printed %q", out)
	}
	if !revoked(alice[0]) || !revoked(alice[1]) {
		t.Errorf("alice's tokens are not revoked")
	}
	if revoked(bob[0]) || revoked(bob[1]) || revoked(carol) {
		t.Fatalf("revoke --user alice revoked someone else's token")
	}
	if out := mustRun(t, e.args("tokens", "revoke", "--user", "alice@example.com")...); out != "revoked 0 tokens of "+aliceSubject+"\n" {
		t.Errorf("a second revoke --user printed %q", out)
	}

	if out := mustRun(t, e.args("tokens", "revoke", "--jti", bobJTI)...); out != "revoked 1 token ("+bobJTI+")\n" {
		t.Errorf("revoke --jti printed %q", out)
	}
	if !revoked(bob[0]) || revoked(bob[1]) {
		t.Errorf("revoke --jti revoked the wrong tokens")
	}

	if out := mustRun(t, e.args("tokens", "revoke", "--subject", carolSubject)...); out != "revoked 1 tokens of "+carolSubject+"\n" {
		t.Errorf("revoke --subject printed %q", out)
	}
	if !revoked(carol) || revoked(bob[1]) {
		t.Errorf("revoke --subject revoked the wrong tokens")
	}

	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--jti", bobJTI}, "token " + bobJTI + " is already revoked"},
		{[]string{"--jti", "no-such-jti"}, `no unexpired token with jti "no-such-jti"`},
		{[]string{"--user", "nobody@example.com"}, `no user "nobody@example.com"`},
		{nil, "give exactly one of --jti, --subject or --user"},
		{[]string{"--jti", bobJTI, "--user", "bob@example.com"}, "give exactly one of --jti, --subject or --user"},
	} {
		out, errOut, err := run(t, e.args(append([]string{"tokens", "revoke"}, tc.args...)...)...)
		if err == nil || err.Error() != tc.err {
			t.Errorf("revoke %v: error %v, want %q", tc.args, err, tc.err)
		}
		if out != "" || !strings.Contains(errOut, "Error: "+tc.err) {
			t.Errorf("revoke %v printed %q, and %q on stderr", tc.args, out, errOut)
		}
	}
	if revoked(bob[1]) {
		t.Errorf("a failed revoke revoked a token")
	}
}

// dial opens a live socket with a bearer token and reads its hello.
func dial(t *testing.T, s *server, token string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(s.srv.URL, "http")+"/live/websocket",
		http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	var hello live.Frame
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if err := conn.ReadJSON(&hello); err != nil || hello.Event != "hello" {
		t.Fatalf("first frame %+v, %v; want hello", hello, err)
	}
	return conn
}

// TestTokensRevokeLiveSockets: the command line revokes through a runtime
// of its own. With the default in-process pub/sub it cannot reach the
// server's sockets (the server's safety net closes them at its next
// sweep); with a PostgreSQL pub/sub connecting both, the socket closes at
// once.
func TestTokensRevokeLiveSockets(t *testing.T) {
	t.Run("sqlite file, no pubsub_url", func(t *testing.T) {
		// The default set-up: the revoke, another process on the same
		// database file, reaches the app's sockets through that file.
		e := newEnv(t)
		s := serve(t, e.cfg)
		token := s.register(t, "dave@example.com")
		conn := dial(t, s, token)
		other := dial(t, s, s.register(t, "gus@example.com"))
		started := time.Now()
		mustRun(t, e.args("tokens", "revoke", "--user", "dave@example.com")...)
		// The transport is polled: the server does not trust what it read
		// of the token, and refuses it as soon as the command returns.
		expectRefused(t, s, token)
		code, reason := waitClose(t, conn)
		t.Logf("revoke command to close: %v", time.Since(started))
		if code != live.CloseSignedOut || reason != live.ReasonText(revocation.Revoked) {
			t.Errorf("the socket closed with %d %q, want %d %q", code, reason, live.CloseSignedOut, live.ReasonText(revocation.Revoked))
		}
		if err := other.WriteJSON(live.Frame{Event: "ping", Payload: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
		var f live.Frame
		_ = other.SetReadDeadline(time.Now().Add(30 * time.Second))
		if err := other.ReadJSON(&f); err != nil || f.Event != "error" {
			t.Errorf("another user's socket: %+v, %v; want it open", f, err)
		}
	})
	t.Run("postgres pubsub", func(t *testing.T) {
		e := newEnv(t)
		e.cfg.DatabaseURL = testdb.PostgresSchemaURL(t)
		e.cfg.PubSubURL = testdb.PostgresURL(t)
		s := serve(t, e.cfg)
		token := s.register(t, "erin@example.com")
		conn := dial(t, s, token)
		other := dial(t, s, s.register(t, "frank@example.com"))
		// The configuration comes from the environment this time.
		t.Setenv("KILN_DATABASE_URL", e.cfg.DatabaseURL)
		t.Setenv("KILN_PUBSUB_URL", e.cfg.PubSubURL)
		out := mustRun(t, "tokens", "revoke", "--user", "erin@example.com", "--data-dir", e.dir,
			"--token-signing-secret", testSecret, "--cookie-keys", testCookieKey)
		if !strings.HasPrefix(out, "revoked 1 tokens of user?id=") {
			t.Errorf("revoke printed %q", out)
		}
		// The server read the token as good when the socket opened, and
		// checks it from memory: it refuses it as soon as the command
		// returns all the same, its message arrived or not (the command
		// announced the revocation before it committed).
		expectRefused(t, s, token)
		code, reason := waitClose(t, conn)
		if code != live.CloseSignedOut || reason != live.ReasonText(revocation.Revoked) {
			t.Errorf("the socket closed with %d %q, want %d %q", code, reason, live.CloseSignedOut, live.ReasonText(revocation.Revoked))
		}
		expectRefused(t, s, token)
		// Another user's socket stays open.
		if err := other.WriteJSON(live.Frame{Event: "ping", Payload: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
		var f live.Frame
		_ = other.SetReadDeadline(time.Now().Add(30 * time.Second))
		if err := other.ReadJSON(&f); err != nil || f.Event != "error" {
			t.Errorf("another user's socket: %+v, %v; want it open", f, err)
		}
	})
}

// expectRefused dials s with token and wants a 401 before any upgrade.
func expectRefused(t *testing.T, s *server, token string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, resp, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(s.srv.URL, "http")+"/live/websocket",
		http.Header{"Authorization": {"Bearer " + token}})
	if err == nil {
		conn.Close()
		t.Fatal("a socket opened with the revoked token")
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dial with the revoked token: %v; want 401", err)
	}
}

// waitClose reads until the server closes the socket.
func waitClose(t *testing.T, conn *websocket.Conn) (int, string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Text
			}
			t.Fatalf("the socket ended without a close frame: %v", err)
		}
	}
}

// storeTokens inserts n token rows of subject expiring at expires.
func storeTokens(t *testing.T, s *server, subject string, n int, expires time.Time) {
	t.Helper()
	rows := make([]accountstest.Token, n)
	for i := range rows {
		rows[i].JTI = fmt.Sprintf("%s-%d-%d", subject, expires.Unix(), i)
		rows[i].Subject = subject
		rows[i].ExpiresAt = expires.UTC()
		rows[i].Purpose = tokenresource.PurposeUser
		rows[i].CreatedAt = time.Now().UTC()
		rows[i].UpdatedAt = rows[i].CreatedAt
	}
	for start := 0; start < n; start += 500 {
		batch := rows[start:min(start+500, n)]
		if _, err := s.rt.Layer.DB().NewInsert().Model(&batch).Exec(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func countTokens(t *testing.T, s *server) int {
	t.Helper()
	n, err := s.rt.Layer.DB().NewSelect().Table("tokens").Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

func TestTokensExpunge(t *testing.T) {
	e := newEnv(t)
	s := serve(t, e.cfg)
	past, future := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	storeTokens(t, s, "user?id=old", 3, past)
	storeTokens(t, s, "user?id=new", 2, future)

	out, errOut, err := run(t, e.args("tokens", "expunge")...)
	if err != nil || out != "expunged 3 expired tokens\n" || errOut != "" {
		t.Fatalf("expunge: %v, printed %q and %q", err, out, errOut)
	}
	if n := countTokens(t, s); n != 2 {
		t.Errorf("%d rows left, want the 2 unexpired ones", n)
	}
	if out := mustRun(t, e.args("tokens", "expunge")...); out != "expunged 0 expired tokens\n" {
		t.Errorf("a second expunge printed %q", out)
	}

	// Many rows: batches of 1,000 and a progress bar on stderr.
	storeTokens(t, s, "user?id=many", 2345, past)
	out, errOut, err = run(t, e.args("tokens", "expunge")...)
	if err != nil || out != "expunged 2345 expired tokens\n" || !strings.Contains(errOut, "expunging") {
		t.Errorf("expunge of many: %v, printed %q and %q", err, out, errOut)
	}
	if n := countTokens(t, s); n != 2 {
		t.Errorf("%d rows left, want 2", n)
	}

	storeTokens(t, s, "user?id=batch", 2001, past)
	var total int
	var steps []int
	n, err := cli.Expunge(context.Background(), s.rt.Tokens, func(n int) func(int) {
		total = n
		return func(done int) { steps = append(steps, done) }
	})
	if err != nil || n != 2001 || total != 2001 || !slices.Equal(steps, []int{1000, 1000, 1}) {
		t.Errorf("Expunge = %d, %v; progress total %d, steps %v; want 2001 in 1000, 1000, 1", n, err, total, steps)
	}
}

// TestProductionSecretsCreateTheDataFolder: with both secrets set (no
// development secret written) and a data folder that does not exist yet,
// the embedded database still opens: its folder is created, 0700.
func TestProductionSecretsCreateTheDataFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data")
	out := mustRun(t, "migrate", "--data-dir", dir,
		"--token-signing-secret", "production-token-signing-secret-0123456789abcdef",
		"--cookie-keys", "production-cookie-key-0123456789abcdef0123")
	if out != "migrated\n" {
		t.Fatalf("migrate printed %q", out)
	}
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o700 {
		t.Errorf("data folder mode %v, want 0700", info.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(dir, "accounts.db")); err != nil {
		t.Errorf("no database: %v", err)
	}
}

// TestAppDataDir: an app's own default data folder and database file are
// used when no setting names them, and --help shows that folder.
func TestAppDataDir(t *testing.T) {
	app := testApp()
	app.DataDir = filepath.Join(t.TempDir(), "blog-data")
	app.DatabaseFile = "blog.db"
	runApp := func(args ...string) string {
		t.Helper()
		cmd := app.Command()
		var out, errOut bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		cmd.SetArgs(args)
		if err := cmd.ExecuteContext(t.Context()); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String()
	}
	if help := runApp("--help"); !strings.Contains(help, fmt.Sprintf("(default %q)", app.DataDir)) {
		t.Errorf("--help does not show the app's data folder %s:\n%s", app.DataDir, help)
	}
	if help := runApp("--help"); !strings.Contains(help, "sqlite:<data_dir>/blog.db") || strings.Contains(help, "accounts.db") {
		t.Errorf("--help does not show the app's database file blog.db:\n%s", help)
	}
	if out := runApp("migrate"); out != "migrated\n" {
		t.Fatalf("migrate printed %q", out)
	}
	for _, name := range []string{"blog.db", "dev-token-signing-secret"} {
		if _, err := os.Stat(filepath.Join(app.DataDir, name)); err != nil {
			t.Errorf("the app's data folder lacks %s: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(app.DataDir, "accounts.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("accounts.db was made besides the app's own database file: %v", err)
	}
}
