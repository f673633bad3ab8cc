package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql's pgx driver, to create and drop schemas

	"github.com/kiln-go/kiln/internal/sessionbench"
	"github.com/kiln-go/kiln/live"
	"github.com/kiln-go/kiln/live/pubsub"
)

// verifyScenario is scenario 4.
type verifyScenario struct{}

func (verifyScenario) Section() Section {
	return Section{Name: "verify", Title: "4. Token verify with the revocation check",
		Measures: "How many session tokens 64 goroutines at once verify per second with the store check that makes revocation " +
			"work (Auth.Verify: signature, claims, and the token's stored row, as the accounts require presence), as a share " +
			"of the signature-and-claims check alone (Auth.Parse), on SQLite (in memory) and PostgreSQL. Each loop runs for " +
			"the -duration on the same token. \"From the database\" is a node without a prompt transport (one node, or the " +
			"SQLite transport): every check reads the row. \"From memory\" is a node whose endpoint is on Redis pub/sub, so " +
			"its token store trusts what it read while the subscription stays up; the node holds a lease, so it answers " +
			"without waiting for a fence through Redis (docs/auto-signout.md, Checks from memory)."}
}

func (verifyScenario) Run(ctx context.Context, env *Env) ([]Row, error) {
	dbs, err := databases(env)
	if err != nil {
		return nil, err
	}
	var rows []Row
	for _, db := range dbs {
		parse := Row{ID: "verify-parse-" + db.name, Metric: "signature only (Parse), " + db.name, Unit: "/s", Peers: map[string]Figure{}}
		verify := Row{ID: "verify-verify-" + db.name, Metric: "verify with presence check from the database, " + db.name, Unit: "/s", Peers: map[string]Figure{}}
		share := Row{ID: "verify-share-" + db.name, Metric: "verify from the database as a share of signature only, " + db.name, Unit: "%",
			Peers: map[string]Figure{}}
		memory := Row{ID: "verify-memory-" + db.name, Metric: "verify with presence check from memory (node on Redis pub/sub), " + db.name, Unit: "/s", Peers: map[string]Figure{}}
		memoryShare := Row{ID: "verify-memory-share-" + db.name, Metric: "verify from memory as a share of signature only, " + db.name, Unit: "%",
			Peers: map[string]Figure{}, Goals: []Goal{{Value: 80}}}
		if db.skip != "" {
			parse.Skipped, verify.Skipped, share.Skipped, memory.Skipped, memoryShare.Skipped = db.skip, db.skip, db.skip, db.skip, db.skip
			rows = append(rows, parse, verify, share, memory, memoryShare)
			continue
		}
		redisSkip, err := env.service(env.RedisURL, "KILN_TEST_REDIS_URL")
		if err != nil {
			return nil, err
		}
		memory.Skipped, memoryShare.Skipped = redisSkip, redisSkip
		for rep := range env.Repeats {
			p, v, err := measureVerify(ctx, env, db, "")
			if err != nil {
				return nil, fmt.Errorf("%s: %w", db.name, err)
			}
			env.Progress("verify: %s, repeat %d/%d: parse %.0f/s, verify %.0f/s (%.0f %%)", db.name, rep+1, env.Repeats, p, v, 100*v/p)
			parse.Kiln = append(parse.Kiln, p)
			verify.Kiln = append(verify.Kiln, v)
			share.Kiln = append(share.Kiln, 100*v/p)
			if redisSkip != "" {
				continue
			}
			p, v, err = measureVerify(ctx, env, db, env.RedisURL)
			if err != nil {
				return nil, fmt.Errorf("%s, from memory: %w", db.name, err)
			}
			env.Progress("verify: %s from memory, repeat %d/%d: parse %.0f/s, verify %.0f/s (%.0f %%)", db.name, rep+1, env.Repeats, p, v, 100*v/p)
			memory.Kiln = append(memory.Kiln, v)
			memoryShare.Kiln = append(memoryShare.Kiln, 100*v/p)
		}
		rows = append(rows, parse, verify, share, memory, memoryShare)
	}
	return rows, nil
}

// verifyCheckers is how many goroutines check tokens at once, as a
// server's concurrent requests do.
const verifyCheckers = 64

// measureVerify returns Parse's and Verify's throughput, per second, on a
// node whose endpoint is on the pub/sub at pubsubURL ("" for none: every
// check reads the database).
func measureVerify(ctx context.Context, env *Env, db database, pubsubURL string) (parse, verify float64, err error) {
	dbURL, drop, err := db.open(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer drop()
	var ps live.PubSub
	if pubsubURL != "" {
		u, err := freshChannel(pubsubURL)
		if err != nil {
			return 0, 0, err
		}
		if ps, err = pubsub.FromURL(ctx, u, sessionbench.Quiet); err != nil {
			return 0, 0, err
		}
		defer ps.Close()
	}
	s, err := sessionbench.NewServer(ctx, sessionbench.Kiln, sessionbench.Options{DatabaseURL: dbURL, Sessions: 1, PubSub: ps})
	if err != nil {
		return 0, 0, err
	}
	defer s.Close()
	tokens, err := s.Issue(ctx, 1)
	if err != nil {
		return 0, 0, err
	}
	if pubsubURL != "" {
		if err := leased(ctx, s.Endpoint.(*live.Endpoint)); err != nil {
			return 0, 0, err
		}
	}
	loop := func(check func(context.Context, string) error) (float64, error) {
		var n atomic.Int64
		start := time.Now()
		g, gctx := errgroup.WithContext(ctx)
		for range verifyCheckers {
			g.Go(func() error {
				for gctx.Err() == nil && time.Since(start) < env.Duration {
					if err := check(gctx, tokens[0]); err != nil {
						return err
					}
					n.Add(1)
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return 0, err
		}
		return float64(n.Load()) / time.Since(start).Seconds(), nil
	}
	if parse, err = loop(func(ctx context.Context, t string) error { _, err := s.Auth.Parse(ctx, t); return err }); err != nil {
		return 0, 0, err
	}
	verify, err = loop(func(ctx context.Context, t string) error { _, err := s.Auth.Verify(ctx, t); return err })
	return parse, verify, err
}

// leased waits until ep holds a lease (live.LeaseTerm), two alives
// after it subscribed.
func leased(ctx context.Context, ep *live.Endpoint) error {
	for !ep.Leased() {
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("the endpoint holds no lease: %w", ctx.Err())
		}
	}
	return nil
}

// database is a database a scenario runs on.
type database struct {
	name string
	// skip says why it is not measured; "" when it is.
	skip string
	// open gives a fresh database's URL and a function that drops it.
	open func(ctx context.Context) (string, func(), error)
}

// databases are SQLite, in memory, and PostgreSQL, in a fresh schema
// each time, skipped when not configured.
func databases(env *Env) ([]database, error) {
	sqlite := database{name: "sqlite", open: func(context.Context) (string, func(), error) { return "sqlite::memory:", func() {}, nil }}
	pg := database{name: "postgres", open: func(ctx context.Context) (string, func(), error) { return postgresSchema(ctx, env.PostgresURL) }}
	skip, err := env.service(env.PostgresURL, "KILN_TEST_POSTGRES_URL")
	pg.skip = skip
	return []database{sqlite, pg}, err
}

// postgresSchema creates a fresh schema on the server at base and returns
// base with search_path set to it, and a function that drops it.
func postgresSchema(ctx context.Context, base string) (string, func(), error) {
	schema := "kiln_bench_" + randomHex(6)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop := func() {
		if admin, err := sql.Open("pgx", base); err == nil {
			_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
			admin.Close()
		}
	}
	u, err := url.Parse(base)
	if err != nil {
		drop()
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
