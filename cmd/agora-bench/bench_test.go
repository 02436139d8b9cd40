package main

import (
	"bytes"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// parseFile parses a benchmark output captured from a real run.
func parseFile(t *testing.T, name string) (Results, []string) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rs, notes, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return rs, notes
}

func TestParse(t *testing.T) {
	rs, _ := parseFile(t, "registry-ingest.out")
	if len(rs) != 4 {
		t.Fatalf("%d results, want 4: %+v", len(rs), rs)
	}
	for _, c := range []struct {
		bench, unit string
		want        float64
	}{
		{"Ingest", "ns/op", 251571},
		{"Ingest", "cpu-ns/op", 173505},
		{"Ingest", "records/sync", 58.82},
		{"Ingest", "MB/s", 2.47}, // as printed, not benchfmt's B/s
		{"Ingest", "allocs/op", 128},
		{"VerifyBaseline", "ns/op", 69922},
		{"BaselineBadgerWrite/group-commit", "ns/op", 42155},
		{"BaselineBadgerWrite/txn-each", "cpu-ns/op", 328984},
	} {
		if got, ok := rs.Value(c.bench, c.unit); !ok || got != c.want {
			t.Errorf("%s %s = %v, %v; want %v", c.bench, c.unit, got, ok, c.want)
		}
	}
	if rs[0].Procs != 2 || rs[0].Iters != 2000 {
		t.Errorf("first result %+v: want GOMAXPROCS 2, 2000 iterations", rs[0])
	}

	rs, notes := parseFile(t, "delegation.out")
	if got, _ := rs.Value("Delegation", "deleg_p50_us"); got != 616.6 {
		t.Errorf("deleg_p50_us = %v", got)
	}
	if got, _ := rs.Value("DelegationThroughput/tuned", "echo_ops/s"); got != 5424 {
		t.Errorf("tuned echo_ops/s = %v", got)
	}
	if got, _ := rs.Value("BaselineStreamEcho/parallel-64", "echo_ops/s"); got != 8587 {
		t.Errorf("raw echo_ops/s = %v", got)
	}
	if !slicesContain(notes, "median time from Submit") || !slicesContain(notes, "--- BENCH: BenchmarkDelegation-2") {
		t.Errorf("notes lack the benchmark's log: %q", notes)
	}

	rs, _ = parseFile(t, "recon.out")
	if got, _ := rs.Value("Reconcile/items=1M/diffs=1", "roundtrips/op"); got != 3 {
		t.Errorf("round trips = %v", got)
	}
	if got, _ := rs.Value("Reconcile/items=1M/diffs=1000", "bytes-up/op"); got != 679179 {
		t.Errorf("bytes up = %v", got)
	}

	// Failures, logs and noise around the results.
	out := "goos: linux\npkg: x\nBenchmarkA-4 \t 10\t 100 ns/op\t 3.5 widgets\n--- FAIL: BenchmarkB-4\n    b_test.go:1: boom\nFAIL\nexit status 1\n"
	rs, notes, err := Parse(strings.NewReader(out))
	if err != nil || len(rs) != 1 || rs[0].Name != "A" || rs[0].Procs != 4 {
		t.Fatalf("%+v %v", rs, err)
	}
	if v, _ := rs.Value("A", "widgets"); v != 3.5 {
		t.Errorf("widgets = %v", v)
	}
	if !slicesContain(notes, "boom") || !slicesContain(notes, "--- FAIL") {
		t.Errorf("notes %q", notes)
	}
}

func slicesContain(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func TestEvaluate(t *testing.T) {
	rs, _ := parseFile(t, "registry-ingest.out")
	rows := Evaluate(figures, rs)
	var ingest Row
	for _, r := range rows {
		if r.Name == "ingest rate, 2 cores" {
			ingest = r
		}
	}
	if !ingest.HasValue || !ingest.HasBase {
		t.Fatalf("ingest row %+v", ingest)
	}
	if want := 1e9 / 251571; math.Abs(ingest.Value-want) > 1e-9 {
		t.Errorf("ingest rate %v, want %v", ingest.Value, want)
	}
	if want := 69922.0 / 251571; math.Abs(ingest.Ratio-want) > 1e-12 || ingest.Met != "not met" {
		t.Errorf("ratio %v (%s), want %v, not met", ingest.Ratio, ingest.Met, want)
	}
	for _, r := range rows {
		if r.Job != "registry-ingest" && (r.HasValue || r.Met != "") {
			t.Errorf("%q measured from results that do not hold it: %+v", r.Name, r)
		}
	}

	// The four kinds of target, at the limit and on either side.
	fig := func(tg Target) Figure {
		return Figure{Name: "x", Value: Metric{Bench: "V", Unit: "u"}, Baseline: &Metric{Bench: "B", Unit: "u"}, Target: &tg}
	}
	res := func(v, b float64) Results {
		return Results{{Name: "V", Values: []Value{{v, "u"}}}, {Name: "B", Values: []Value{{b, "u"}}}}
	}
	for _, c := range []struct {
		tg   Target
		v, b float64
		want string
	}{
		{Target{OfRatio: true, AtMost: true, Limit: 1.2}, 12, 10, "met"},
		{Target{OfRatio: true, AtMost: true, Limit: 1.2}, 12.1, 10, "not met"},
		{Target{OfRatio: true, Limit: 0.8}, 8, 10, "met"},
		{Target{OfRatio: true, Limit: 0.8}, 7.9, 10, "not met"},
		{Target{AtMost: true, Limit: 80}, 80, 1, "met"},
		{Target{AtMost: true, Limit: 80}, 81, 1, "not met"},
		{Target{Limit: 5}, 5, 100, "met"},
		{Target{Limit: 5}, 4, 100, "not met"},
	} {
		if got := Evaluate([]Figure{fig(c.tg)}, res(c.v, c.b))[0].Met; got != c.want {
			t.Errorf("%+v on %v ÷ %v: %q, want %q", c.tg, c.v, c.b, got, c.want)
		}
	}
	// No baseline: a ratio target cannot be judged; a value target can.
	only := Results{{Name: "V", Values: []Value{{1, "u"}}}}
	if r := Evaluate([]Figure{fig(Target{OfRatio: true, Limit: 0.8})}, only)[0]; r.Met != "" || !math.IsNaN(r.Ratio) {
		t.Errorf("ratio target without a baseline: %+v", r)
	}
	if r := Evaluate([]Figure{fig(Target{AtMost: true, Limit: 2})}, only)[0]; r.Met != "met" {
		t.Errorf("value target without a baseline: %+v", r)
	}
	// A constant baseline (bytes ÷ raw bytes).
	f := Figure{Value: Metric{Bench: "V", Unit: "u"}, Const: 1, Target: &Target{OfRatio: true, AtMost: true, Limit: 1.05}}
	if r := Evaluate([]Figure{f}, Results{{Name: "V", Values: []Value{{1.06, "u"}}}})[0]; r.Ratio != 1.06 || r.Met != "not met" {
		t.Errorf("constant baseline: %+v", r)
	}
}

// TestFiguresNameRealBenchmarks: every figure's job exists, its -bench
// regex selects the figure's benchmarks, and those benchmarks exist in the
// job's package; every job's package exists unless it is optional.
func TestFiguresNameRealBenchmarks(t *testing.T) {
	byName := map[string]Job{}
	for _, j := range jobs {
		if _, dup := byName[j.Name]; dup {
			t.Errorf("two jobs named %s", j.Name)
		}
		byName[j.Name] = j
		if j.Needs == "" && !isDir(filepath.Join("..", "..", j.Pkg)) {
			t.Errorf("job %s: no package %s", j.Name, j.Pkg)
		}
	}
	check := func(f Figure, m Metric) {
		j, ok := byName[f.Job]
		if !ok {
			t.Errorf("figure %q: no job %q", f.Name, f.Job)
			return
		}
		top, _, _ := strings.Cut(m.Bench, "/")
		src := ""
		for _, job := range jobs { // a baseline may come from another job of the run
			if strings.HasPrefix(job.Pkg, "./") && job.Needs == "" {
				files, _ := filepath.Glob(filepath.Join("..", "..", job.Pkg, "*_test.go"))
				for _, p := range files {
					data, _ := os.ReadFile(p)
					if bytes.Contains(data, []byte("func Benchmark"+top+"(")) {
						src, j = p, job
					}
				}
			}
		}
		if src == "" {
			t.Errorf("figure %q: no func Benchmark%s in any job's package", f.Name, top)
			return
		}
		if !regexp.MustCompile(j.Bench).MatchString("Benchmark" + top) {
			t.Errorf("figure %q: job %s's -bench %q does not select Benchmark%s", f.Name, j.Name, j.Bench, top)
		}
	}
	for _, f := range figures {
		check(f, f.Value)
		if f.Baseline != nil {
			check(f, *f.Baseline)
		}
		if f.Baseline == nil && f.Const == 0 && f.BaselineName != "" {
			t.Errorf("figure %q names a baseline it does not measure", f.Name)
		}
	}
}

func TestRewriteKeepsNotes(t *testing.T) {
	notes := "\n\n## Notes and history\n\nWritten by hand. Ratios: 1.2×.\n"
	old := "# Performance\n\nold generated table\n\n" + Marker + notes
	got := Rewrite(old, "# Performance\n\nnew table\n")
	if want := "# Performance\n\nnew table\n\n" + Marker + notes; got != want {
		t.Fatalf("rewrite:\n%s\nwant:\n%s", got, want)
	}
	if again := Rewrite(got, "# Performance\n\nnewer\n"); !strings.HasSuffix(again, Marker+notes) || strings.Contains(again, "new table") {
		t.Fatalf("second rewrite:\n%s", again)
	}
	// A file without the marker is kept whole below it.
	handWritten := "# Performance\n\nAll by hand.\n"
	got = Rewrite(handWritten, "generated\n")
	if !strings.HasPrefix(got, "generated\n\n"+Marker) || !strings.HasSuffix(got, handWritten) {
		t.Fatalf("no marker:\n%s", got)
	}
	if got := Rewrite("", "generated"); got != "generated\n\n"+Marker+"\n" {
		t.Fatalf("new file: %q", got)
	}
	// The marker appears once: a generated part never contains it.
	if strings.Count(Rewrite(got, (Report{}).Markdown()), Marker) != 1 {
		t.Fatal("marker duplicated")
	}
}

func TestMarkdown(t *testing.T) {
	rs, notes := parseFile(t, "delegation.out")
	start := time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)
	var job Job
	for _, j := range jobs {
		if j.Name == "delegation" {
			job = j
		}
	}
	var figs []Figure
	for _, f := range figures {
		if f.Job == "delegation" {
			figs = append(figs, f)
		}
	}
	rep := Report{
		Machine: Machine{CPU: "Test CPU", Cores: 2, MemGiB: 24, Kernel: "Linux 6.1", GoVersion: "go1.26.8", OSArch: "linux/amd64",
			Start: start, End: start.Add(90 * time.Second), LoadStart: "2.10 1.50 1.00", LoadEnd: "1.00 1.20 1.00", LoadMax: 2.1},
		Command: "go run ./cmd/agora-bench",
		Runs: []JobRun{{Job: job, Cmd: displayCommand(job, false), Start: start, End: start.Add(time.Minute),
			LoadStart: "2.10 1.50 1.00", LoadEnd: "1.00 1.20 1.00", Results: rs, Notes: notes},
			{Job: Job{Title: "Scale simulation"}, Cmd: "go test ./testbed/sim/", Skipped: "`testbed/sim` does not exist yet"}},
		Rows:   Evaluate(figs, rs),
		Series: []Series{{Name: "delegation-latency", Values: []float64{0.5, 0.6, 0.7}}},
		Plots:  []Plot{{Group: plotGroups[2], Rel: "img/perf-delegation-latency.png", Caption: "CDF of every sample"}},
	}
	md := rep.Markdown()
	for _, want := range []string{
		"**Machine:** Test CPU, 2 cores, 24.0 GiB RAM, Linux 6.1, go1.26.8 linux/amd64",
		"2.10 1.50 1.00 at the start", "shared with other work",
		"| delegation latency p50, one at a time | 617 µs | 276 µs (signed echo, alternating on the same connection) | 2.232 | ratio ≤ 1.2 (issue 4) | **not met** |",
		"| delegation throughput, 64 at once, limits lifted | 2,084 /s | 5,424 /s",
		"go test -run '^$' -bench 'SignedEcho|Delegation|BaselineStreamEcho' -benchtime 2000x -benchmem -count 1 -timeout 60m ./node/tasks",
		"| `DelegationThroughput/tuned` | 100 |",
		"![Delegation latency, loopback, one at a time](img/perf-delegation-latency.png)",
		"Not run: `testbed/sim` does not exist yet.",
		"median time from Submit",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, Marker) {
		t.Error("the generated part holds the marker")
	}
}

func TestFmtNum(t *testing.T) {
	for v, want := range map[float64]string{
		1234567.8: "1,234,568", 251.4: "251", 58.82: "58.8", 1.0051: "1.005", 4.3: "4.3", 3: "3", 0.3842: "0.384",
		-4200: "-4,200", math.NaN(): "–",
	} {
		if got := fmtNum(v); got != want {
			t.Errorf("fmtNum(%v) = %q, want %q", v, got, want)
		}
	}
	if got := fmtLimit(2048) + " " + fmtLimit(1.05) + " " + fmtLimit(0.5); got != "2,048 1.05 0.5" {
		t.Errorf("fmtLimit = %q", got)
	}
	if got := fmtRatio(0.38421) + " " + fmtRatio(1.0049) + " " + fmtRatio(22.14); got != "0.384 1.005 22.1" {
		t.Errorf("fmtRatio = %q", got)
	}
}

func TestPlotWritesPNG(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, f func(i int) float64, n int) {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "%.3f\n", f(i))
		}
		if err := os.WriteFile(filepath.Join(dir, name+".samples"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("advert-propagation", func(i int) float64 { return 60 + float64(i%40) }, 495)
	write("gossipsub-propagation", func(i int) float64 { return 55 + float64(i%35) }, 495)
	write("sim-unknown-figure", func(i int) float64 { return float64(1 + i + i/99*10000) }, 100) // one far outlier
	series, err := readSamples(dir)
	if err != nil || len(series) != 3 {
		t.Fatalf("%d series, %v", len(series), err)
	}
	if q := series[0].Quantile(0.5); q < 70 || q > 90 {
		t.Errorf("advert p50 %v", q)
	}
	groups := groupsFor(series)
	if len(groups) != 2 || groups[0].File != "advert-propagation" || len(groups[0].Series) != 2 || groups[1].File != "sim-unknown-figure" || groups[1].Title != "sim-unknown-figure" {
		t.Fatalf("groups %+v", groups)
	}
	for _, g := range groups {
		path := imgPath(dir, g)
		os.MkdirAll(filepath.Dir(path), 0o755)
		caption, err := drawCDF(g, series, path)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 200 || len(data) < 10_000 {
			t.Errorf("%s: %dx%d, %d bytes", path, b.Dx(), b.Dy(), len(data))
		}
		if g.File == "sim-unknown-figure" && !strings.Contains(caption, "cut at the largest p99") {
			t.Errorf("long tail not cut: %q", caption)
		}
	}
}

func TestFlattenJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sim-summary.json")
	os.WriteFile(path, []byte(`{"nodes":300,"seed":13527734355410239488,"advert_propagation":{"p50_ms":997.25},"dir":"/dev/shm/x","ok":true,"list":[1,2]}`), 0o644)
	kv, err := flattenJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(kv)
	want := "[[advert_propagation.p50_ms 997] [dir /dev/shm/x] [list[0] 1] [list[1] 2] [nodes 300] [ok true] [seed 13527734355410239488]]"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
