package main

import (
	"bufio"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// A Series is one samples file: values in ms, sorted.
type Series struct {
	Name   string // the file's name without .samples
	Values []float64
}

// readSamples reads dir/*.samples.
func readSamples(dir string) ([]Series, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.samples"))
	if err != nil {
		return nil, err
	}
	slices.Sort(paths)
	var out []Series
	for _, p := range paths {
		s, err := readSeries(p)
		if err != nil {
			return nil, err
		}
		if len(s.Values) > 0 {
			out = append(out, s)
		}
	}
	return out, nil
}

func readSeries(path string) (Series, error) {
	f, err := os.Open(path)
	if err != nil {
		return Series{}, err
	}
	defer f.Close()
	s := Series{Name: strings.TrimSuffix(filepath.Base(path), ".samples")}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(line, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		s.Values = append(s.Values, v)
	}
	slices.Sort(s.Values)
	return s, sc.Err()
}

// Quantile is the q-quantile (nearest rank) of the sorted values.
func (s Series) Quantile(q float64) float64 {
	if len(s.Values) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(s.Values)))) - 1
	return s.Values[min(max(i, 0), len(s.Values)-1)]
}

// A plotGroup is one PNG: several series on one set of axes.
type plotGroup struct {
	File   string // docs/img/perf-<File>.png
	Title  string
	Series []string // samples names, the first the figure, the others its baselines
	Labels []string
}

// plotGroups are the plots that put a figure beside its baseline; every
// other samples file gets a plot of its own.
var plotGroups = []plotGroup{
	{File: "advert-propagation", Title: "Advert propagation, 100 nodes, 20 ms links: arrival delay per node",
		Series: []string{"advert-propagation", "gossipsub-propagation"}, Labels: []string{"signed advert", "raw gossipsub"}},
	{File: "tally-convergence", Title: "Tally convergence, 50 nodes: per node",
		Series: []string{"tally-convergence", "tally-gossip-baseline"},
		Labels: []string{"final tally identical (from end+grace)", "raw gossipsub message (from publish)"}},
	{File: "delegation-latency", Title: "Delegation latency, loopback, one at a time",
		Series: []string{"delegation-latency", "signed-echo-latency", "stream-echo-latency"},
		Labels: []string{"delegation", "signed echo", "raw stream echo"}},
	// The scale simulation's (testbed/sim), one figure each.
	{File: "sim-advert-propagation", Title: "Scale simulation: advert propagation, per node",
		Series: []string{"sim-advert-propagation"}, Labels: []string{"advert in the node's index"}},
	{File: "sim-delegation", Title: "Scale simulation: delegation latency",
		Series: []string{"sim-delegation"}, Labels: []string{"delegation"}},
	{File: "sim-record-convergence", Title: "Scale simulation: record convergence, per record",
		Series: []string{"sim-record-convergence"}, Labels: []string{"record held by every node"}},
	{File: "sim-churn-catchup", Title: "Scale simulation: catch-up after churn, per returning node",
		Series: []string{"sim-churn-catchup"}, Labels: []string{"caught up"}},
}

// groupsFor returns the plots to draw for the series present: the declared
// groups that have at least one of their series, then one plot per
// remaining series.
func groupsFor(series []Series) []plotGroup {
	have := map[string]bool{}
	for _, s := range series {
		have[s.Name] = true
	}
	used := map[string]bool{}
	var out []plotGroup
	for _, g := range plotGroups {
		var keep plotGroup
		keep.File, keep.Title = g.File, g.Title
		for i, name := range g.Series {
			if have[name] {
				keep.Series = append(keep.Series, name)
				keep.Labels = append(keep.Labels, g.Labels[i])
				used[name] = true
			}
		}
		if len(keep.Series) > 0 {
			out = append(out, keep)
		}
	}
	for _, s := range series {
		if !used[s.Name] {
			out = append(out, plotGroup{File: s.Name, Title: s.Name, Series: []string{s.Name}, Labels: []string{s.Name}})
		}
	}
	return out
}
