package ui

// Bar charts for the Community and Trust pages, drawn on the node as inline
// SVG: no library, no script, nothing fetched. Colours come from the
// dashboard's CSS variables (classes in community.css), so charts follow the
// light and dark themes. The chart's data is also in its aria-label, for
// screen readers.

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// svgBar is one bar: its label under the axis and its height.
type svgBar struct {
	Label string
	Value float64
}

// svgBarChart is a titled bar chart; Unit names what a value counts
// in the plural ("providers"), Axis what the bars' labels measure
// ("milliseconds").
type svgBarChart struct {
	Title string
	Unit  string
	Axis  string
	Bars  []svgBar
}

// The chart's geometry, in viewBox units; CSS scales it to the width at hand.
const (
	svgChartW, svgChartH           = 360, 200
	svgChartLeft, svgChartRight    = 4, 4
	svgChartTop, svgChartBottom    = 20, 50
	svgChartBarFill                = 0.7 // share of a slot the bar fills
	svgChartLabelFont, svgChartGap = 12, 4
)

// SVG renders the chart. A chart without bars renders as nothing: the page
// says in words that there is no data.
func (c svgBarChart) SVG() template.HTML {
	if len(c.Bars) == 0 {
		return ""
	}
	top := 0.0
	for _, b := range c.Bars {
		top = math.Max(top, b.Value)
	}
	if top <= 0 {
		top = 1
	}
	plotW := float64(svgChartW - svgChartLeft - svgChartRight)
	plotH := float64(svgChartH - svgChartTop - svgChartBottom)
	slot := plotW / float64(len(c.Bars))
	barW := slot * svgChartBarFill
	base := float64(svgChartH - svgChartBottom)

	parts := make([]string, 0, len(c.Bars))
	for _, b := range c.Bars {
		unit := c.Unit
		if b.Value == 1 {
			unit = strings.TrimSuffix(unit, "s")
		}
		parts = append(parts, fmt.Sprintf("%s: %s %s", b.Label, svgNumber(b.Value), unit))
	}
	label := c.Title
	if c.Axis != "" {
		label += ", by " + c.Axis
	}
	var sb strings.Builder
	esc := template.HTMLEscapeString
	fmt.Fprintf(&sb, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s">`, svgChartW, svgChartH,
		esc(label+". "+strings.Join(parts, "; ")+"."))
	fmt.Fprintf(&sb, `<title>%s</title>`, esc(c.Title))
	fmt.Fprintf(&sb, `<line class="chart-axis" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, svgChartLeft, base, svgChartW-svgChartRight, base)
	for i, b := range c.Bars {
		h := 0.0
		if b.Value > 0 {
			h = math.Max(1, b.Value/top*plotH) // a non-zero bar stays visible
		}
		x := float64(svgChartLeft) + float64(i)*slot + (slot-barW)/2
		mid := x + barW/2
		fmt.Fprintf(&sb, `<g class="chart-bar" data-label="%s" data-value="%s"><title>%s</title>`,
			esc(b.Label), svgNumber(b.Value), esc(parts[i]))
		fmt.Fprintf(&sb, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="2"/>`, x, base-h, barW, h)
		fmt.Fprintf(&sb, `<text class="chart-value" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, mid, base-h-svgChartGap, svgNumber(b.Value))
		fmt.Fprintf(&sb, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, mid, base+svgChartLabelFont+svgChartGap, esc(b.Label))
		sb.WriteString(`</g>`)
	}
	if c.Axis != "" {
		fmt.Fprintf(&sb, `<text class="chart-axis-label" x="%d" y="%d" text-anchor="middle">%s</text>`,
			svgChartW/2, svgChartH-svgChartGap, esc(c.Axis))
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}

// svgBin counts values into n equal bins over [lo, hi), the last bin closed.
// Values outside the range count in the end bins; NaNs are skipped. label
// names a bin by its bounds.
func svgBin(values []float64, lo, hi float64, n int, label func(lo, hi float64) string) []svgBar {
	if n < 1 {
		return nil
	}
	if !(hi > lo) {
		hi = lo + 1
	}
	width := (hi - lo) / float64(n)
	bars := make([]svgBar, n)
	for i := range bars {
		bars[i].Label = label(lo+float64(i)*width, lo+float64(i+1)*width)
	}
	for _, v := range values {
		if math.IsNaN(v) {
			continue
		}
		i := int(math.Floor((v - lo) / width))
		bars[min(max(i, 0), n-1)].Value++
	}
	return bars
}

// svgNiceCeil rounds x up to 1, 2 or 5 times a power of ten, for axis ranges
// people read easily. Zero and negative values give 1.
func svgNiceCeil(x float64) float64 {
	if !(x > 0) || math.IsInf(x, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if x <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// svgNumber prints a value without needless decimals.
func svgNumber(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}
