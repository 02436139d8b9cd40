package main

import (
	"bufio"
	"bytes"
	"io"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/perf/benchfmt"
)

// A Value is one measurement of a result, in the unit the benchmark
// printed (not benchfmt's tidied one: custom metrics keep their names).
type Value struct {
	Value float64
	Unit  string
}

// A Result is one benchmark line.
type Result struct {
	Name   string // without "Benchmark" and the GOMAXPROCS suffix: "Reconcile/items=1M/diffs=1"
	Procs  int    // the GOMAXPROCS suffix, 0 if none
	Iters  int
	Values []Value
}

// Value returns the measurement in unit.
func (r Result) Value(unit string) (float64, bool) {
	for _, v := range r.Values {
		if v.Unit == unit {
			return v.Value, true
		}
	}
	return 0, false
}

// Results is the results of a run, in order.
type Results []Result

// Value returns the measurement in unit of the benchmark named bench (the
// last one, if it ran more than once).
func (rs Results) Value(bench, unit string) (float64, bool) {
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].Name == bench {
			if v, ok := rs[i].Value(unit); ok {
				return v, true
			}
		}
	}
	return 0, false
}

var procsSuffix = regexp.MustCompile(`-(\d+)$`)

// Parse reads go test's benchmark output (the standard benchmark format)
// and returns its results and its other notable lines: the benchmarks'
// logs (b.Logf, indented under "--- BENCH:"), failures and panics.
func Parse(r io.Reader) (Results, []string, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, err
	}
	var rs Results
	br := benchfmt.NewReader(bytes.NewReader(data), "go test")
	for br.Scan() {
		res, ok := br.Result().(*benchfmt.Result)
		if !ok {
			continue // unit metadata, or a line that is not a result
		}
		name := res.Name.String()
		out := Result{Name: name, Iters: res.Iters}
		if m := procsSuffix.FindStringSubmatch(name); m != nil {
			out.Name = strings.TrimSuffix(name, m[0])
			out.Procs, _ = strconv.Atoi(m[1])
		}
		for _, v := range res.Values {
			if v.OrigUnit != "" {
				out.Values = append(out.Values, Value{v.OrigValue, v.OrigUnit})
			} else {
				out.Values = append(out.Values, Value{v.Value, v.Unit})
			}
		}
		rs = append(rs, out)
	}
	if err := br.Err(); err != nil {
		return rs, nil, err
	}
	var notes []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "--- BENCH:"), strings.HasPrefix(line, "--- FAIL"), strings.HasPrefix(line, "--- SKIP"),
			strings.HasPrefix(line, "    "), strings.HasPrefix(line, "panic:"), strings.HasPrefix(line, "FAIL"):
			notes = append(notes, line)
		}
	}
	return rs, notes, nil
}
