package main

import (
	"fmt"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// drawCDF draws the empirical CDFs of the group's series into path (a PNG)
// and returns a caption: what is drawn and where the x axis was cut.
func drawCDF(g plotGroup, all []Series, path string) (string, error) {
	byName := map[string]Series{}
	for _, s := range all {
		byName[s.Name] = s
	}
	p := plot.New()
	p.Title.Text = g.Title
	p.X.Label.Text = "ms"
	p.Y.Label.Text = "fraction of samples ≤ x"
	p.Y.Min, p.Y.Max = 0, 1
	p.Legend.Top = false
	p.Legend.Left = false
	p.Add(plotter.NewGrid())

	// Cut a long tail at the largest p99 so that the bulk stays readable.
	var hi, p99 float64
	for _, name := range g.Series {
		s := byName[name]
		hi = max(hi, s.Values[len(s.Values)-1])
		p99 = max(p99, s.Quantile(0.99))
	}
	caption := "CDF of every sample"
	if hi > 3*p99 && p99 > 0 {
		p.X.Max = p99 * 1.05
		caption = fmt.Sprintf("CDF, x axis cut at the largest p99 (%s ms; the largest sample is %s ms)", fmtNum(p99), fmtNum(hi))
	}
	p.X.Min = 0

	for i, name := range g.Series {
		s := byName[name]
		pts := make(plotter.XYs, 0, 2*len(s.Values))
		n := float64(len(s.Values))
		for k, v := range s.Values {
			pts = append(pts, plotter.XY{X: v, Y: float64(k) / n}, plotter.XY{X: v, Y: float64(k+1) / n})
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return "", err
		}
		line.Color = plotutil.Color(i)
		line.Dashes = plotutil.Dashes(i)
		line.Width = vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(fmt.Sprintf("%s (n=%d, p50 %s ms)", g.Labels[i], len(s.Values), fmtNum(s.Quantile(0.5))), line)
	}
	if err := p.Save(18*vg.Centimeter, 11*vg.Centimeter, path); err != nil {
		return "", err
	}
	return caption, nil
}

// imgPath is where a group's plot goes, under docs/img beside out.
func imgPath(outDir string, g plotGroup) string {
	return filepath.Join(outDir, "img", "perf-"+g.File+".png")
}
