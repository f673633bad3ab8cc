package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary play the command's roles: the command
// runs itself again (os.Executable) as its servers and clients.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		if role, ok := roles[os.Args[1]]; ok {
			if err := role(os.Args[2:]); err != nil {
				os.Stderr.WriteString(err.Error() + "\n")
				os.Exit(1)
			}
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}

// sampleReport is a fixed report with a row of every kind: every
// scenario, peers, goals absolute, against a peer and against another
// row, and a skipped row.
func sampleReport() *Report {
	r := &Report{Command: "cd bench && go run . -short", Took: "1m2s",
		Machine: Machine{Date: "2026-01-02 03:04 UTC", GoVersion: "go1.26", OS: "linux/amd64", CPU: "Test CPU", Cores: 2,
			LoadAverage: "0.10 0.20 0.30", OpenFiles: "20000"}}
	for _, s := range scenarios {
		r.Sections = append(r.Sections, s.Section())
	}
	peersOf := func(melody, centrifuge Figure) map[string]Figure {
		return map[string]Figure{implMelody: melody, implCentrifuge: centrifuge}
	}
	for _, n := range []int{1000, 9000} {
		r.Rows = append(r.Rows,
			Row{ID: "hs" + sessionsText(n), Scenario: "memory", Metric: "heap+stack per session, " + sessionsText(n) + " sessions", Unit: "KiB",
				Kiln: Figure{12, 14, 13}, Peers: peersOf(Figure{26}, Figure{26}), Goals: []Goal{{AtMost: true, Value: 16}}, Plot: plotMemHS, Sessions: n},
			Row{ID: "rss" + sessionsText(n), Scenario: "memory", Metric: "RSS per session, " + sessionsText(n) + " sessions", Unit: "KiB",
				Kiln: Figure{20, 21, 22}, Peers: peersOf(Figure{40}, Figure{10}), Goals: []Goal{{AtMost: true, Value: 18}}, Plot: plotMemRSS, Sessions: n},
			Row{ID: "p50" + sessionsText(n), Scenario: "disconnect", Metric: "p50, " + sessionsText(n) + " sessions", Unit: "µs",
				Kiln: Figure{100, 120}, Peers: peersOf(Figure{400, 500}, Figure{200, 200}), Plot: plotP50, Sessions: n},
			Row{ID: "p99" + sessionsText(n), Scenario: "disconnect", Metric: "p99, " + sessionsText(n) + " sessions", Unit: "µs",
				Kiln: Figure{300}, Peers: peersOf(Figure{9000}, Figure{250}), Plot: plotP99, Sessions: n,
				Goals: []Goal{{AtMost: true, Value: 500, Note: "quiet machine"}, {AtMost: true, Value: 1, Of: "peer:" + implCentrifuge}}},
		)
	}
	r.Rows = append(r.Rows,
		Row{ID: "signins", Scenario: "accounts", Metric: "sign-ins per second", Unit: "/s", Kiln: Figure{30}, Goals: []Goal{{Value: 25}}},
		Row{ID: "share-pg", Scenario: "verify", Metric: "verify as a share, postgres", Unit: "%", Skipped: "KILN_TEST_POSTGRES_URL is not set",
			Goals: []Goal{{Value: 80}}},
		Row{ID: "crossnode-p50-in-process", Scenario: "crossnode", Metric: "p50, in-process", Unit: "µs", Kiln: Figure{100}},
		Row{ID: "crossnode-p50-redis", Scenario: "crossnode", Metric: "p50, redis", Unit: "µs", Kiln: Figure{250},
			Goals: []Goal{{AtMost: true, Value: 3, Of: "row:crossnode-p50-in-process"}}},
	)
	return r
}

func TestFigure(t *testing.T) {
	f := Figure{3, 1, 2, 10}
	if got := f.Median(); got != 2.5 {
		t.Errorf("median of %v = %v, want 2.5", f, got)
	}
	if lo, hi := f.Range(); lo != 1 || hi != 10 {
		t.Errorf("range of %v = %v–%v, want 1–10", f, lo, hi)
	}
	if !math.IsNaN(Figure{}.Median()) {
		t.Errorf("the median of no values is a number")
	}
	for _, c := range []struct {
		f    Figure
		want string
	}{{Figure{34.12}, "34.1"}, {Figure{0.5123}, "0.512"}, {Figure{1234.6}, "1235"}, {Figure{16}, "16"},
		{Figure{2, 1, 3}, "2 (1–3)"}, {nil, "—"}} {
		if got := FigureText(c.f); got != c.want {
			t.Errorf("FigureText(%v) = %q, want %q", c.f, got, c.want)
		}
	}
}

// TestTable checks the stdout table: its header, a line per row with
// kiln's figure, each peer's and the ratios, the goals and verdicts.
func TestTable(t *testing.T) {
	r := sampleReport()
	lines := strings.Split(strings.TrimRight(r.Table(), "\n"), "\n")
	if want := 2 + len(r.Rows); len(lines) != want {
		t.Fatalf("the table has %d lines, want %d:\n%s", len(lines), want, r.Table())
	}
	header := strings.Fields(lines[0])
	wantHeader := []string{"scenario", "metric", "unit", "kiln", "melody-scan", "centrifuge", "kiln/melody-scan", "kiln/centrifuge", "goal", "met"}
	if !slices.Equal(header, wantHeader) {
		t.Errorf("header %q, want %q", header, wantHeader)
	}
	if strings.Trim(lines[1], "- ") != "" {
		t.Errorf("second line %q is not a rule", lines[1])
	}
	for _, want := range []string{
		// memory 1k: kiln 13 (12–14) against 26 and 26: 0.50×, met.
		"memory      heap+stack per session, 1k sessions",
		"13 (12–14)", "0.50×",
		// disconnect p50: 110 against 450 and 200.
		"110 (100–120)", "0.24×", "0.55×",
		// p99: 300 ≤ 500 yes, 300 ≤ 250 no.
		"≤ 500 µs (quiet machine): yes; ≤ centrifuge: no",
		"skipped: KILN_TEST_POSTGRES_URL is not set",
		"≤ 3× p50, in-process",
	} {
		if !strings.Contains(r.Table(), want) {
			t.Errorf("the table lacks %q:\n%s", want, r.Table())
		}
	}
	for _, row := range r.Rows {
		found := false
		for _, l := range lines[2:] {
			if strings.HasPrefix(l, row.Scenario) && strings.Contains(l, row.Metric) {
				found = true
			}
		}
		if !found {
			t.Errorf("no line for %s %q", row.Scenario, row.Metric)
		}
	}
}

func TestRatiosAndVerdicts(t *testing.T) {
	r := sampleReport()
	byID := func(id string) Row {
		row, ok := r.row(id)
		if !ok {
			t.Fatalf("no row %s", id)
		}
		return row
	}
	for _, c := range []struct {
		id, peer string
		want     float64
	}{{"hs1k", implMelody, 0.5}, {"rss1k", implCentrifuge, 2.1}, {"p501k", implMelody, 110.0 / 450}, {"p991k", implCentrifuge, 1.2}} {
		if got := byID(c.id).Ratio(c.peer); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s kiln/%s = %v, want %v", c.id, c.peer, got, c.want)
		}
	}
	if !math.IsNaN(byID("signins").Ratio(implMelody)) {
		t.Errorf("a ratio to a peer without a figure is a number")
	}
	for id, want := range map[string]string{
		"hs1k":                "yes",
		"rss1k":               "no",
		"p501k":               "—",
		"signins":             "yes",
		"share-pg":            "—",
		"crossnode-p50-redis": "yes", // 250 ≤ 3 × 100
	} {
		if got := r.Verdict(byID(id)); got != want {
			t.Errorf("verdict of %s = %q, want %q", id, got, want)
		}
	}
}

// TestMarkdown checks docs/benchmarks.md's structure: the notice that it
// is generated, how to reproduce, the machine, the plot, and a section
// with a table for every scenario, whose columns are the peers it has.
func TestMarkdown(t *testing.T) {
	r := sampleReport()
	md := r.Markdown("benchmarks.svg")
	if !strings.HasPrefix(md, generatedNotice+"\n") {
		t.Errorf("the markdown does not open with the generated notice:\n%.200s", md)
	}
	for _, want := range []string{
		"# Benchmarks\n",
		"not edited by hand",
		"## How to reproduce\n\n```sh\ncd bench && go run . -short\n```",
		"## Machine\n",
		"| CPU | Test CPU, 2 cores |",
		"| load average at start | 0.10 0.20 0.30 |",
		"| run took | 1m2s |",
		"](benchmarks.svg)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the markdown lacks %q", want)
		}
	}
	if strings.Contains(md, "```go") {
		t.Errorf("the markdown has a go block, which docs/docs_test.go would compile")
	}
	for _, s := range scenarios {
		sec := s.Section()
		i := strings.Index(md, "\n## "+sec.Title+"\n")
		if i < 0 {
			t.Errorf("no section %q", sec.Title)
			continue
		}
		rest := md[i+1:]
		if j := strings.Index(rest[3:], "\n## "); j >= 0 {
			rest = rest[:j+3]
		}
		if !strings.Contains(rest, sec.Measures) {
			t.Errorf("section %q does not say what it measures", sec.Title)
		}
		wantHeader := "| metric | unit | kiln | goal | met |"
		if sec.Name == "memory" || sec.Name == "disconnect" {
			wantHeader = "| metric | unit | kiln | melody-scan | centrifuge | kiln/melody-scan | kiln/centrifuge | goal | met |"
		}
		if !strings.Contains(rest, wantHeader+"\n") {
			t.Errorf("section %q lacks the header %q:\n%s", sec.Title, wantHeader, rest)
		}
		for _, row := range r.Rows {
			if row.Scenario == sec.Name && !strings.Contains(rest, "| "+row.Metric+" | ") {
				t.Errorf("section %q lacks the row %q", sec.Title, row.Metric)
			}
		}
	}
}

// svgSeries parses the SVG as XML and returns its panels' series, as
// "panel impl stat" with their point counts.
func svgSeries(t *testing.T, svg string) map[string]int {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(svg))
	got := map[string]int{}
	var panel, series string
	depth, seriesDepth := 0, -1
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not XML: %v\n%s", err, svg)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			depth++
			attr := func(name string) string {
				for _, a := range el.Attr {
					if a.Name.Local == name {
						return a.Value
					}
				}
				return ""
			}
			if depth == 1 && (el.Name.Local != "svg" || el.Name.Space != "http://www.w3.org/2000/svg") {
				t.Fatalf("the root is %v, want svg", el.Name)
			}
			if el.Name.Local == "g" && attr("class") == "panel" {
				panel = attr("data-panel")
			}
			if el.Name.Local == "g" && attr("class") == "series" {
				series = panel + " " + attr("data-impl") + " " + attr("data-stat")
				got[series] = 0
				seriesDepth = depth
			}
			if el.Name.Local == "circle" && seriesDepth >= 0 {
				got[series]++
			}
		case xml.EndElement:
			if depth == seriesDepth {
				seriesDepth = -1
			}
			depth--
		}
	}
	return got
}

func TestSVG(t *testing.T) {
	got := svgSeries(t, sampleReport().SVG())
	want := map[string]int{}
	for _, impl := range []string{implKiln, implMelody, implCentrifuge} {
		want[panelLatency+" "+impl+" "+plotP50] = 2
		want[panelLatency+" "+impl+" "+plotP99] = 2
		want[panelMemory+" "+impl+" "+plotMemHS] = 2
		want[panelMemory+" "+impl+" "+plotMemRSS] = 2
	}
	if len(got) != len(want) {
		t.Errorf("series %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("series %q has %d points, want %d", k, got[k], n)
		}
	}
}

// TestSaveAndRender renders a kept report (-from) to the markdown and the
// SVG beside it, as a run does, and keeps it again (-save) unchanged.
func TestSaveAndRender(t *testing.T) {
	dir := t.TempDir()
	kept := filepath.Join(dir, "kept.json")
	r := sampleReport()
	if err := save(r, kept); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	out := filepath.Join(dir, "benchmarks.md")
	if err := run([]string{"-from", kept, "-out", out, "-save", filepath.Join(dir, "again.json")}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(md) != r.Markdown("benchmarks.svg") {
		t.Errorf("the rendered markdown differs from the report's")
	}
	svg, err := os.ReadFile(filepath.Join(dir, "benchmarks.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if string(svg) != r.SVG() {
		t.Errorf("the rendered SVG differs from the report's")
	}
	if stdout.String() != r.Table() {
		t.Errorf("stdout is not the table:\n%s", stdout.String())
	}
	a, _ := os.ReadFile(kept)
	b, _ := os.ReadFile(filepath.Join(dir, "again.json"))
	if !bytes.Equal(a, b) {
		t.Errorf("a kept report changed on the way through")
	}
}

func TestFlags(t *testing.T) {
	cfg, command, err := parseFlags([]string{"-short", "-scenarios", "memory,verify", "-out", "x.md"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Short || !slices.Equal(cfg.Sessions, []int{100, 500}) || cfg.Repeats != 2 || !slices.Equal(cfg.Scenarios, []string{"memory", "verify"}) {
		t.Errorf("short config %+v", cfg)
	}
	if command != "cd bench && go run . -scenarios=memory,verify -short" {
		t.Errorf("command %q", command)
	}
	cfg, _, err = parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Sessions, []int{1000, 9000, 18000}) || cfg.Repeats != 3 || len(cfg.Scenarios) != len(scenarios) ||
		cfg.Out != "../docs/benchmarks.md" {
		t.Errorf("default config %+v", cfg)
	}
	for _, bad := range [][]string{{"-scenarios", "memory,nope"}, {"-sessions", "10,x"}, {"-sessions", "1000000"}, {"-cluster-sessions", "100000"}, {"extra"}} {
		if _, _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%q is accepted", bad)
		}
	}
}

// TestMissingService: a scenario whose service is not configured reports
// its rows skipped, and fails under CI=true.
func TestMissingService(t *testing.T) {
	env := &Env{Config: Config{Repeats: 1, Duration: 20 * time.Millisecond}, Progress: func(string, ...any) {}}
	rows, err := verifyScenario{}.Run(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	var skipped, measured []string
	for _, row := range rows {
		if row.Skipped != "" {
			skipped = append(skipped, row.ID)
			want := "KILN_TEST_POSTGRES_URL"
			if strings.HasPrefix(row.ID, "verify-memory-") && strings.HasSuffix(row.ID, "-sqlite") {
				want = "KILN_TEST_REDIS_URL" // from memory needs a prompt transport
			}
			if !strings.Contains(row.Skipped, want) {
				t.Errorf("row %s skipped because %q, want %s named", row.ID, row.Skipped, want)
			}
		} else if len(row.Kiln) == 1 && row.Kiln[0] > 0 {
			measured = append(measured, row.ID)
		}
	}
	if len(skipped) != 7 || len(measured) != 3 {
		t.Errorf("skipped %v, measured %v; want the 5 postgres rows and the 2 sqlite rows from memory skipped, the other 3 sqlite rows measured", skipped, measured)
	}
	env.CI = true
	if _, err := (verifyScenario{}).Run(context.Background(), env); err == nil || !strings.Contains(err.Error(), "KILN_TEST_POSTGRES_URL") {
		t.Errorf("under CI a missing PostgreSQL gives %v", err)
	}
}

// TestShortRun runs the command on real servers and clients, small: the
// session scenarios with their three endpoints in child processes, the
// cross-node and three-node ones (skipped without their services), and
// checks what it writes.
func TestShortRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs servers and clients")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "benchmarks.md")
	var stdout, stderr bytes.Buffer
	err := run([]string{"-short", "-scenarios", "memory,disconnect,crossnode,cluster", "-sessions", "20,50", "-samples", "10",
		"-cluster-sessions", "30", "-out", out}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	for _, want := range []string{"memory: kiln, 20 sessions, repeat 1/2", "disconnect: centrifuge, 50 sessions, repeat 2/2", "crossnode: in-process"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("no progress line %q:\n%s", want, stderr.String())
		}
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## 1. Memory per idle live session", "## 2. Disconnect latency", "## 5. Cross-node disconnect",
		"## 6. Three nodes", "| p99, 50 sessions | µs |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("the markdown lacks %q", want)
		}
	}
	svg, err := os.ReadFile(filepath.Join(dir, "benchmarks.svg"))
	if err != nil {
		t.Fatal(err)
	}
	series := svgSeries(t, string(svg))
	for _, impl := range []string{implKiln, implMelody, implCentrifuge} {
		want := 2 // 20 and 50 sessions
		if impl == implKiln && os.Getenv("KILN_TEST_POSTGRES_URL") != "" && os.Getenv("KILN_TEST_REDIS_URL") != "" {
			want = 3 // and 30 on three nodes
		}
		if series[panelLatency+" "+impl+" "+plotP99] != want || series[panelMemory+" "+impl+" "+plotMemHS] != want {
			t.Errorf("the plot has not %d points of %s: %v", want, impl, series)
		}
	}
	if !strings.Contains(stdout.String(), "disconnect  p50, 20 sessions") {
		t.Errorf("the table lacks the disconnect rows:\n%s", stdout.String())
	}
}
