// Command bench measures kiln beside its peers — a plain melody hub that
// scans every session (melody-scan) and centrifuge — and writes
// docs/benchmarks.md with an SVG plot (docs/benchmarks.svg):
//
//	cd bench && go run .            # every scenario: 1k/9k/18k sessions, 50k on 3 nodes, 3 repeats
//	cd bench && go run . -short     # small counts, about two minutes (CI)
//	cd bench && go run . -h         # the flags
//
// It is a Go module of its own, so that the peers' dependencies stay out
// of kiln's go.mod. Servers and the client ends of their sockets run in
// child processes of this command (this binary again, in a role), so that
// each holds its own open files and its memory can be read alone.
// Progress lines go to stderr, the table to stdout.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Config is what a run measures.
type Config struct {
	Short     bool
	Scenarios []string
	Sessions  []int
	Repeats   int
	// Samples is how many disconnects each latency figure is taken from,
	// per repeat.
	Samples int
	// Users is how many users are online in the example app (scenario
	// accounts); Everywhere how many sessions log out everywhere closes.
	Users, Everywhere int
	// ClusterSessions is how many sessions the cluster scenario opens over
	// its nodes.
	ClusterSessions int
	// Duration is how long each throughput loop runs.
	Duration time.Duration
	// Timeout bounds each scenario.
	Timeout time.Duration
	// Out is the markdown file; the SVG goes beside it. "" writes none.
	Out string
	// Save is a file to keep the measured report in, as JSON; From is
	// such a file to render instead of measuring. "" for none.
	Save, From string
	// PostgresURL, RedisURL and NATSURL are the services; "" when not
	// configured. CI makes a missing one an error.
	PostgresURL, RedisURL, NATSURL string
	CI                             bool
}

// Env is what scenarios run with.
type Env struct {
	Config
	// Self is this command's binary, run again in a role.
	Self string
	// KilnRoot is kiln's module folder.
	KilnRoot string
	// Temp is a folder removed at the end of the run.
	Temp string
	// Progress writes a progress line.
	Progress func(format string, args ...any)
}

// Scenario is one measured scenario.
type Scenario interface {
	// Section names and describes it.
	Section() Section
	// Run measures it and returns its rows: one per metric, each with kiln
	// and the peers it has, or marked skipped when a service is missing.
	Run(ctx context.Context, env *Env) ([]Row, error)
}

// scenarios are every scenario, in the report's order.
var scenarios = []Scenario{memoryScenario{}, disconnectScenario{}, accountsScenario{}, verifyScenario{}, crossNodeScenario{}, clusterScenario{}}

func main() {
	if len(os.Args) > 1 {
		if role, ok := roles[os.Args[1]]; ok {
			if err := role(os.Args[2:]); err != nil {
				fmt.Fprintf(os.Stderr, "bench %s: %v\n", os.Args[1], err)
				os.Exit(1)
			}
			return
		}
	}
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run is the command: it parses args, runs the scenarios, prints the
// table on stdout and writes the markdown and SVG.
func run(args []string, stdout, stderr io.Writer) error {
	cfg, command, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	root, err := kilnRoot()
	if err != nil {
		return err
	}
	temp, err := os.MkdirTemp("", "kiln-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(temp)
	start := time.Now()
	env := &Env{Config: cfg, Self: self, KilnRoot: root, Temp: temp, Progress: func(format string, args ...any) {
		fmt.Fprintf(stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}}
	var report *Report
	var errs []error
	if cfg.From != "" {
		if report, err = load(cfg.From); err != nil {
			return err
		}
	} else {
		// An interrupt ends the scenario under way, which stops its
		// servers and clients on the way out.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		report = measure(ctx, env, command)
		stop()
		report.Took = time.Since(start).Round(time.Second).String()
		errs = report.errs
	}
	if cfg.Save != "" {
		if err := save(report, cfg.Save); err != nil {
			return err
		}
	}
	fmt.Fprint(stdout, report.Table())
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if cfg.Out == "" {
		return nil
	}
	svg := strings.TrimSuffix(cfg.Out, filepath.Ext(cfg.Out)) + ".svg"
	if err := os.WriteFile(cfg.Out, []byte(report.Markdown(filepath.Base(svg))), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(svg, []byte(report.SVG()), 0o644); err != nil {
		return err
	}
	env.Progress("wrote %s and %s in %s", cfg.Out, svg, report.Took)
	return nil
}

// measure runs the scenarios of env's configuration, one after the
// other, each bounded by env.Timeout, until ctx ends. A scenario that
// fails is left out of the report, and its error kept in report.errs.
func measure(ctx context.Context, env *Env, command string) *Report {
	report := &Report{Machine: machine(), Command: command}
	env.Progress("bench: %s on %d cores, load average %s", strings.Join(env.Scenarios, ","), report.Machine.Cores, report.Machine.LoadAverage)
	for _, s := range scenarios {
		sec := s.Section()
		if !slices.Contains(env.Scenarios, sec.Name) {
			continue
		}
		env.Progress("%s: start (at most %s)", sec.Name, env.Timeout)
		sctx, cancel := context.WithTimeout(ctx, env.Timeout)
		rows, err := s.Run(sctx, env)
		cancel()
		if err != nil {
			report.errs = append(report.errs, fmt.Errorf("%s: %w", sec.Name, err))
			env.Progress("%s: failed: %v", sec.Name, err)
			continue
		}
		for i := range rows {
			rows[i].Scenario = sec.Name
		}
		report.Sections = append(report.Sections, sec)
		report.Rows = append(report.Rows, rows...)
		env.Progress("%s: done", sec.Name)
	}
	return report
}

// save keeps a report in path, as JSON.
func save(r *Report, path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// load reads a report that -save kept.
func load(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// parseFlags reads the command line; command is the run's command line as
// the markdown shows it.
func parseFlags(args []string, stderr io.Writer) (cfg Config, command string, err error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	short := fs.Bool("short", false, "small counts (sessions 100,500; fewer samples, users and repeats): about two minutes")
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.Section().Name
	}
	which := fs.String("scenarios", strings.Join(names, ","), "the scenarios to run, comma-separated")
	sessions := fs.String("sessions", "", "live session counts of the memory and disconnect scenarios (default 1000,9000,18000; -short 100,500)")
	repeats := fs.Int("repeats", 0, "repeats of each measurement (default 3; -short 2)")
	samples := fs.Int("samples", 0, "disconnects per latency figure and repeat (default 300; -short 30); the example app's sign-outs as many, at most one per user")
	users := fs.Int("users", 0, "users online in the example app (default 1000; -short 40)")
	everywhere := fs.Int("everywhere", 0, "sessions one log out everywhere closes (default 1000; -short 40)")
	cluster := fs.Int("cluster-sessions", 0, "sessions over the cluster scenario's three nodes (default 50000; -short 300)")
	duration := fs.Duration("duration", 0, "how long each throughput loop runs (default 2s; -short 300ms)")
	timeout := fs.Duration("timeout", 0, "bound on each scenario (default 30m; -short 3m)")
	out := fs.String("out", "../docs/benchmarks.md", "the markdown file to write (its SVG plot goes beside it); empty for none")
	save := fs.String("save", "", "a file to keep the measured results in, as JSON")
	from := fs.String("from", "", "render the results a -save file kept, instead of measuring")
	if err := fs.Parse(args); err != nil {
		return cfg, "", err
	}
	if fs.NArg() > 0 {
		return cfg, "", fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg = Config{Short: *short, Repeats: *repeats, Samples: *samples, Users: *users, Everywhere: *everywhere, ClusterSessions: *cluster,
		Duration: *duration, Timeout: *timeout, Out: *out, Save: *save, From: *from,
		PostgresURL: os.Getenv("KILN_TEST_POSTGRES_URL"), RedisURL: os.Getenv("KILN_TEST_REDIS_URL"),
		NATSURL: os.Getenv("KILN_TEST_NATS_URL"), CI: os.Getenv("CI") == "true"}
	pick := func(v *int, long, short int) {
		if *v <= 0 {
			*v = long
			if cfg.Short {
				*v = short
			}
		}
	}
	pick(&cfg.Repeats, 3, 2)
	pick(&cfg.Samples, 300, 30)
	pick(&cfg.Users, 1000, 40)
	pick(&cfg.Everywhere, 1000, 40)
	pick(&cfg.ClusterSessions, 50000, 300)
	if cfg.Duration <= 0 {
		cfg.Duration = map[bool]time.Duration{false: 2 * time.Second, true: 300 * time.Millisecond}[cfg.Short]
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = map[bool]time.Duration{false: 30 * time.Minute, true: 3 * time.Minute}[cfg.Short]
	}
	counts := *sessions
	if counts == "" {
		counts = map[bool]string{false: "1000,9000,18000", true: "100,500"}[cfg.Short]
	}
	for f := range strings.SplitSeq(counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return cfg, "", fmt.Errorf("-sessions: %q is not a positive count", f)
		}
		cfg.Sessions = append(cfg.Sessions, n)
	}
	for f := range strings.SplitSeq(*which, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(names, f) {
			return cfg, "", fmt.Errorf("-scenarios: unknown scenario %q (want some of %s)", f, strings.Join(names, ","))
		}
		cfg.Scenarios = append(cfg.Scenarios, f)
	}
	if limit := openFileLimit(); limit > 0 {
		for _, n := range cfg.Sessions {
			if n+1000 > limit {
				return cfg, "", fmt.Errorf("-sessions: %d sessions need %d open files in the server process and as many in the client process; the limit is %d (ulimit -n)", n, n+1000, limit)
			}
		}
		if n := cfg.ClusterSessions/clusterNodes + 1; n+1000 > limit {
			return cfg, "", fmt.Errorf("-cluster-sessions: %d sessions need %d open files in each node's server process and as many in its client process; the limit is %d (ulimit -n)", cfg.ClusterSessions, n+1000, limit)
		}
	}
	command = "cd bench && go run ."
	fs.Visit(func(f *flag.Flag) {
		switch {
		case f.Name == "out" || f.Name == "save" || f.Name == "from":
		case f.Value.String() == "true":
			command += " -" + f.Name
		default:
			command += " -" + f.Name + "=" + shellQuote(f.Value.String())
		}
	})
	return cfg, command, nil
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789,._-/:=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// kilnRoot is the folder of kiln's module, which bench/go.mod replaces.
func kilnRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/kiln-go/kiln").Output()
	if err != nil {
		return "", fmt.Errorf("finding kiln's module with go list: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// openFileLimit is this process's soft limit on open files; 0 when
// unknown. Child processes inherit it.
func openFileLimit() int {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return int(l.Cur)
}

// machine describes this machine now.
func machine() Machine {
	m := Machine{Date: time.Now().UTC().Format("2006-01-02 15:04 MST"), GoVersion: runtime.Version(),
		OS: runtime.GOOS + "/" + runtime.GOARCH, Cores: runtime.NumCPU(), CPU: "unknown", LoadAverage: "unknown",
		OpenFiles: strconv.Itoa(openFileLimit())}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAverage = strings.Join(f[:3], " ")
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.OS += ", Linux " + strings.TrimSpace(string(b))
	}
	return m
}

// service checks a service a scenario needs, by its URL (from the
// variable named): when it is not configured, skip says why the
// scenario's rows are skipped, or, under CI=true, err says it is missing.
func (e *Env) service(url, variable string) (skip string, err error) {
	if url != "" {
		return "", nil
	}
	if e.CI {
		return "", fmt.Errorf("%s is not set; CI requires it", variable)
	}
	return variable + " is not set", nil
}
