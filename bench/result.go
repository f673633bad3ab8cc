package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Implementations, as the table's columns name them: kiln, then its peers.
const (
	implKiln       = "kiln"
	implMelody     = "melody-scan"
	implCentrifuge = "centrifuge"
)

// peers are the table's peer columns, in order.
var peers = []string{implMelody, implCentrifuge}

// Figure is one measured value over repeats: one value per repeat.
type Figure []float64

// Median is the figure's median; NaN when it has no values.
func (f Figure) Median() float64 {
	if len(f) == 0 {
		return math.NaN()
	}
	s := slices.Clone(f)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Range is the smallest and the largest value.
func (f Figure) Range() (lo, hi float64) {
	if len(f) == 0 {
		return math.NaN(), math.NaN()
	}
	return slices.Min(f), slices.Max(f)
}

// Goal is a bound on a row's kiln figure (its median).
type Goal struct {
	// AtMost: the figure must be at most the bound; otherwise at least.
	AtMost bool
	// Value is the bound, in the row's unit, or a factor when Of is set.
	Value float64
	// Of, when set, makes the bound Value times another figure's median:
	// a peer's in the same row ("peer:centrifuge"), or the kiln figure of
	// the row of that ID ("row:<id>").
	Of string
	// Note says when the goal applies ("on a quiet machine").
	Note string
}

// Row is one line of the table: a metric of kiln beside its peers.
type Row struct {
	// ID names the row for other rows' goals; unique in a report.
	ID string
	// Scenario is the section the row belongs to (Scenario.Name).
	Scenario string
	// Metric says what is measured, with its conditions.
	Metric string
	// Unit is the figures' unit: "KiB", "µs", "ms", "/s", "%".
	Unit string
	// Kiln is kiln's figure; Peers the peers' by column name.
	Kiln  Figure
	Peers map[string]Figure
	// Goals are what kiln's figure should meet.
	Goals []Goal
	// Skipped, when set, says why the row was not measured.
	Skipped string
	// Plot places the row in the SVG: the panel's series kind and the
	// session count it was measured at; "" for rows not plotted.
	Plot     string
	Sessions int
}

// Plot kinds.
const (
	plotP50      = "p50"
	plotP99      = "p99"
	plotMemHS    = "heap+stack"
	plotMemRSS   = "rss"
	panelLatency = "latency"
	panelMemory  = "memory"
)

// Report is the result of one run.
type Report struct {
	Rows []Row
	// Sections describe each scenario that ran, in order.
	Sections []Section
	// Machine is what the run ran on.
	Machine Machine
	// Command is how to reproduce the run.
	Command string
	// Took is how long the run took.
	Took string

	errs []error // the scenarios that failed
}

// Section is a scenario's part of the report.
type Section struct {
	Name, Title, Measures string
}

// Machine describes where a run ran.
type Machine struct {
	Date, GoVersion, OS, CPU string
	Cores                    int
	LoadAverage              string
	OpenFiles                string
}

// row finds a row by ID.
func (r *Report) row(id string) (Row, bool) {
	for _, row := range r.Rows {
		if row.ID == id {
			return row, true
		}
	}
	return Row{}, false
}

// Ratio is kiln's median over the peer's, NaN when either is missing.
func (row Row) Ratio(peer string) float64 {
	p, ok := row.Peers[peer]
	if !ok || len(p) == 0 || len(row.Kiln) == 0 {
		return math.NaN()
	}
	return row.Kiln.Median() / p.Median()
}

// Verdict says whether the row's goals are met: "yes", "no", or "—"
// when there is nothing to judge, with each goal's verdict when there are
// several.
func (r *Report) Verdict(row Row) string {
	if row.Skipped != "" || len(row.Goals) == 0 || len(row.Kiln) == 0 {
		return "—"
	}
	var parts []string
	for _, g := range row.Goals {
		met, ok := r.met(row, g)
		v := "—"
		switch {
		case ok && met:
			v = "yes"
		case ok:
			v = "no"
		}
		if len(row.Goals) > 1 {
			v = r.goalText(row, g) + ": " + v
		}
		parts = append(parts, v)
	}
	return strings.Join(parts, "; ")
}

// bound is the goal's bound in the row's unit, false when the figure it
// refers to is missing.
func (r *Report) bound(row Row, g Goal) (float64, bool) {
	switch {
	case g.Of == "":
		return g.Value, true
	case strings.HasPrefix(g.Of, "peer:"):
		p := row.Peers[strings.TrimPrefix(g.Of, "peer:")]
		if len(p) == 0 {
			return 0, false
		}
		return g.Value * p.Median(), true
	case strings.HasPrefix(g.Of, "row:"):
		other, ok := r.row(strings.TrimPrefix(g.Of, "row:"))
		if !ok || len(other.Kiln) == 0 {
			return 0, false
		}
		return g.Value * other.Kiln.Median(), true
	}
	return 0, false
}

func (r *Report) met(row Row, g Goal) (met, ok bool) {
	b, ok := r.bound(row, g)
	if !ok {
		return false, false
	}
	if g.AtMost {
		return row.Kiln.Median() <= b, true
	}
	return row.Kiln.Median() >= b, true
}

// goalText is how the table shows a goal: "≤ 16 KiB", "≤ 3× in-process",
// "≤ centrifuge".
func (r *Report) goalText(row Row, g Goal) string {
	op := "≥"
	if g.AtMost {
		op = "≤"
	}
	var s string
	switch {
	case g.Of == "":
		s = fmt.Sprintf("%s %s %s", op, num(g.Value), row.Unit)
	case strings.HasPrefix(g.Of, "peer:"):
		peer := strings.TrimPrefix(g.Of, "peer:")
		if g.Value == 1 {
			s = fmt.Sprintf("%s %s", op, peer)
		} else {
			s = fmt.Sprintf("%s %s× %s", op, num(g.Value), peer)
		}
	default:
		name := strings.TrimPrefix(g.Of, "row:")
		if other, ok := r.row(name); ok {
			name = other.Metric
		}
		s = fmt.Sprintf("%s %s× %s", op, num(g.Value), name)
	}
	if g.Note != "" {
		s += " (" + g.Note + ")"
	}
	return s
}

// Goals is the row's goals as the table shows them.
func (r *Report) Goals(row Row) string {
	var parts []string
	for _, g := range row.Goals {
		parts = append(parts, r.goalText(row, g))
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, "; ")
}

// num formats a figure with three significant digits at most, without
// exponent: 0.512, 16, 25.5, 1234.
func num(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "—"
	case a >= 100 || a == math.Trunc(a):
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// FigureText is a figure as the table shows it: its median, and its range
// over repeats when there were several: "34.1 (33.8–34.5)".
func FigureText(f Figure) string {
	if len(f) == 0 {
		return "—"
	}
	s := num(f.Median())
	if len(f) > 1 {
		lo, hi := f.Range()
		s += " (" + num(lo) + "–" + num(hi) + ")"
	}
	return s
}

// RatioText is a ratio as the table shows it: "1.32×", "—".
func RatioText(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	return fmt.Sprintf("%.2f×", v)
}
