package main

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strings"
)

// series is one line of a panel: an implementation's figure (a stat)
// against live sessions.
type series struct {
	impl, stat string
	points     []point
}

type point struct{ x, y float64 }

// panel is one chart of the plot.
type panel struct {
	name, title, unit string
	log               bool
	series            []series
}

// colors are the implementations' line colors.
var colors = map[string]string{implKiln: "#d9480f", implMelody: "#1971c2", implCentrifuge: "#2f9e44"}

// dashed stats are drawn dashed; the others solid.
var dashed = map[string]bool{plotP99: true, plotMemRSS: true}

// panels gathers the plotted rows into the two panels: disconnect latency
// (p50 and p99, log scale) and memory per session (heap+stack and RSS),
// each with one series per implementation and stat.
func (r *Report) panels() []panel {
	ps := []panel{
		{name: panelLatency, title: "Disconnect latency (revocation commit → close frame read)", unit: "µs", log: true},
		{name: panelMemory, title: "Memory per idle live session", unit: "KiB"},
	}
	add := func(p *panel, impl, stat string, x, y float64) {
		for i := range p.series {
			if p.series[i].impl == impl && p.series[i].stat == stat {
				p.series[i].points = append(p.series[i].points, point{x, y})
				return
			}
		}
		p.series = append(p.series, series{impl: impl, stat: stat, points: []point{{x, y}}})
	}
	for _, row := range r.Rows {
		if row.Plot == "" || row.Skipped != "" {
			continue
		}
		p := &ps[0]
		if row.Plot == plotMemHS || row.Plot == plotMemRSS {
			p = &ps[1]
		}
		x := float64(row.Sessions)
		if len(row.Kiln) > 0 {
			add(p, implKiln, row.Plot, x, row.Kiln.Median())
		}
		for _, peer := range peers {
			if f := row.Peers[peer]; len(f) > 0 {
				add(p, peer, row.Plot, x, f.Median())
			}
		}
	}
	for i := range ps {
		for j := range ps[i].series {
			slices.SortFunc(ps[i].series[j].points, func(a, b point) int { return int(a.x - b.x) })
		}
	}
	return ps
}

// Plot geometry, in SVG user units.
const (
	panelW, panelH   = 460.0, 330.0
	marginL, marginR = 62.0, 16.0
	marginT, marginB = 34.0, 92.0
)

// SVG is the plot: two panels side by side, one line per implementation
// and stat, against live sessions.
func (r *Report) SVG() string {
	ps := r.panels()
	var b strings.Builder
	w := panelW * float64(len(ps))
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`+"\n", w, panelH, w, panelH)
	fmt.Fprintf(&b, `<rect width="%.0f" height="%.0f" fill="#ffffff"/>`+"\n", w, panelH)
	for i, p := range ps {
		writePanel(&b, p, float64(i)*panelW)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func writePanel(b *strings.Builder, p panel, left float64) {
	x0, x1 := left+marginL, left+panelW-marginR
	y0, y1 := panelH-marginB, marginT // bottom, top
	fmt.Fprintf(b, `<g class="panel" data-panel="%s">`+"\n", p.name)
	fmt.Fprintf(b, `<text x="%.1f" y="18" font-size="13" font-weight="bold">%s</text>`+"\n", x0, html.EscapeString(p.title))

	var xs, ys []float64
	for _, s := range p.series {
		for _, pt := range s.points {
			xs = append(xs, pt.x)
			ys = append(ys, pt.y)
		}
	}
	if len(xs) == 0 {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f">no data</text>`+"\n</g>\n", x0+20, (y0+y1)/2)
		return
	}
	xmax := slices.Max(xs) * 1.05
	fx := func(v float64) float64 { return x0 + (x1-x0)*v/xmax }
	var fy func(float64) float64
	var ticks []float64
	if p.log {
		lo, hi := math.Log10(max(slices.Min(ys), 1e-3)), math.Log10(max(slices.Max(ys), 1e-3))
		lo, hi = math.Floor(lo), math.Ceil(hi)
		if hi == lo {
			hi++
		}
		fy = func(v float64) float64 { return y0 - (y0-y1)*(math.Log10(max(v, 1e-3))-lo)/(hi-lo) }
		for e := lo; e <= hi; e++ {
			for _, m := range []float64{1, 2, 5} {
				if v := m * math.Pow(10, e); math.Log10(v) <= hi+1e-9 {
					ticks = append(ticks, v)
				}
			}
		}
	} else {
		top := niceCeil(slices.Max(ys) * 1.1)
		fy = func(v float64) float64 { return y0 - (y0-y1)*v/top }
		for i := 0; i <= 5; i++ {
			ticks = append(ticks, top*float64(i)/5)
		}
	}
	// Axes, grid and labels.
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`+"\n", x0, y0, x1, y0)
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`+"\n", x0, y0, x0, y1)
	for _, t := range ticks {
		y := fy(t)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", x0, y, x1, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-4, y+4, num(t))
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" transform="rotate(-90 %.1f %.1f)" text-anchor="middle">%s</text>`+"\n",
		left+14, (y0+y1)/2, left+14, (y0+y1)/2, html.EscapeString(p.unit))
	seen := map[float64]bool{}
	for _, x := range xs {
		if seen[x] {
			continue
		}
		seen[x] = true
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", fx(x), y0+14, sessionsText(int(x)))
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">live sessions</text>`+"\n", (x0+x1)/2, y0+30)

	// Series, then their legend.
	for i, s := range p.series {
		color := colors[s.impl]
		dash := ""
		if dashed[s.stat] {
			dash = ` stroke-dasharray="6 4"`
		}
		var pts []string
		for _, pt := range s.points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", fx(pt.x), fy(pt.y)))
		}
		fmt.Fprintf(b, `<g class="series" data-impl="%s" data-stat="%s">`+"\n", s.impl, s.stat)
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", color, dash, strings.Join(pts, " "))
		for _, pt := range s.points {
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s %s, %s sessions: %s %s</title></circle>`+"\n",
				fx(pt.x), fy(pt.y), color, s.impl, s.stat, sessionsText(int(pt.x)), num(pt.y), html.EscapeString(p.unit))
		}
		b.WriteString("</g>\n")
		lx := x0 + float64(i%2)*200
		ly := y0 + 48 + float64(i/2)*14
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n", lx, ly-4, lx+22, ly-4, color, dash)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f">%s %s</text>`+"\n", lx+28, ly, s.impl, s.stat)
	}
	b.WriteString("</g>\n")
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// sessionsText is a session count as the plot shows it: "18k", "500".
func sessionsText(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
