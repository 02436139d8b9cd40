package ui

import (
	"encoding/xml"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestSvgBin(t *testing.T) {
	label := func(lo, hi float64) string { return svgNumber(lo) + "-" + svgNumber(hi) }
	counts := func(bars []svgBar) []float64 {
		var out []float64
		for _, b := range bars {
			out = append(out, b.Value)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		values []float64
		lo, hi float64
		n      int
		want   []float64
		labels []string
	}{
		{"spread", []float64{0, 1, 9.9, 10, 25, 49, 50}, 0, 50, 5, []float64{3, 1, 1, 0, 2}, []string{"0-10", "10-20", "20-30", "30-40", "40-50"}},
		{"outside counts at the ends", []float64{-5, 120}, 0, 100, 2, []float64{1, 1}, []string{"0-50", "50-100"}},
		{"NaN skipped", []float64{math.NaN(), 1}, 0, 2, 2, []float64{0, 1}, nil},
		{"empty range widened", []float64{3, 3}, 3, 3, 1, []float64{2}, []string{"3-4"}},
		{"no values", nil, 0, 1000, 5, []float64{0, 0, 0, 0, 0}, nil},
		{"no bins", []float64{1}, 0, 1, 0, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bars := svgBin(tc.values, tc.lo, tc.hi, tc.n, label)
			if got := counts(bars); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("counts %v, want %v", got, tc.want)
			}
			for i, l := range tc.labels {
				if bars[i].Label != l {
					t.Errorf("bar %d label %q, want %q", i, bars[i].Label, l)
				}
			}
		})
	}
}

func TestSvgNiceCeil(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{
		{0, 1}, {-3, 1}, {math.NaN(), 1}, {math.Inf(1), 1},
		{0.3, 0.5}, {1, 1}, {1.01, 2}, {3, 5}, {7, 10}, {37, 50}, {100, 100}, {101, 200}, {4999, 5000},
	} {
		if got := svgNiceCeil(tc.in); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("svgNiceCeil(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestSvgNumber(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 3: "3", 2.5: "2.5", 1000: "1000", 0.25: "0.2"} {
		if got := svgNumber(in); got != want {
			t.Errorf("svgNumber(%v) = %q, want %q", in, got, want)
		}
	}
}

// svgElements parses an SVG fragment as XML and returns its elements with
// their attributes: the test of well-formedness and of escaping.
func svgElements(t *testing.T, svg string) []xml.StartElement {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(svg))
	var out []xml.StartElement
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			out = append(out, se.Copy())
		}
	}
}

func svgAttr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func TestSvgBarChart(t *testing.T) {
	if got := (svgBarChart{Title: "Nothing"}).SVG(); got != "" {
		t.Fatalf("a chart without bars renders %q", got)
	}
	c := svgBarChart{Title: `Latency <"fast" & slow>`, Unit: "providers", Axis: "milliseconds",
		Bars: []svgBar{{"0–10 ms", 3}, {"10–20 ms", 0}, {`<b>`, 1.5}}}
	svg := string(c.SVG())
	els := svgElements(t, svg)
	root := els[0]
	if root.Name.Local != "svg" || svgAttr(root, "role") != "img" {
		t.Fatalf("root %v", root)
	}
	label := svgAttr(root, "aria-label")
	for _, want := range []string{`Latency <"fast" & slow>, by milliseconds.`, "0–10 ms: 3 providers", "10–20 ms: 0 providers", "<b>: 1.5 providers"} {
		if !strings.Contains(label, want) {
			t.Errorf("aria-label %q lacks %q", label, want)
		}
	}
	if !strings.Contains(svg, "<title>Latency &lt;&#34;fast&#34; &amp; slow&gt;</title>") {
		t.Errorf("no escaped <title>: %s", svg)
	}
	var bars, rects []xml.StartElement
	for _, e := range els {
		switch {
		case e.Name.Local == "g" && svgAttr(e, "class") == "chart-bar":
			bars = append(bars, e)
		case e.Name.Local == "rect":
			rects = append(rects, e)
		}
	}
	if len(bars) != 3 || len(rects) != 3 || !strings.Contains(svg, ">milliseconds</text>") {
		t.Fatalf("%d bars, %d rects", len(bars), len(rects))
	}
	if svgAttr(bars[2], "data-label") != "<b>" || svgAttr(bars[0], "data-value") != "3" {
		t.Errorf("bar data %v %v", bars[0], bars[2])
	}
	// The tallest bar fills the plot; a zero bar has no height; bars scale.
	h := func(i int) string { return svgAttr(rects[i], "height") }
	if h(0) != "130.0" || h(1) != "0.0" || h(2) != "65.0" {
		t.Errorf("heights %s %s %s", h(0), h(1), h(2))
	}
}
