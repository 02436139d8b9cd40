// Command agora-bench runs every benchmark of the project, one `go test`
// child process after another, and writes docs/perf.md: the machine, a
// summary of each figure beside its raw baseline from the same run with
// their ratio and the target, the distributions of the
// propagation and convergence benchmarks as PNG plots (docs/img/perf-*.png),
// and a table per benchmark with its exact command. Everything below the
// marker line of docs/perf.md is kept as written.
//
//	go run ./cmd/agora-bench                   # everything (make bench)
//	go run ./cmd/agora-bench -skip scale-sim   # the benchmarks alone: 4-10 minutes on 2 cores
//	go run ./cmd/agora-bench -short            # smoke run
//	go run ./cmd/agora-bench -only 'delegation|advert' -out /tmp/perf.md
//	go run ./cmd/agora-bench -list             # the jobs
//
// Each job is a `go test -run '^$' -bench REGEX -benchtime N -benchmem
// -count 1` of one package (jobs.go); the summary's figures, baselines and
// targets are in figures.go. With AGORA_BENCH_SAMPLES set to a directory
// (agora-bench sets it to -samples or a temporary directory) the
// propagation, convergence and latency benchmarks and the scale simulation
// write their raw samples there as <figure>.samples, one value in ms a
// line; every samples file becomes a CDF plot. Run it from the module's
// root (make bench does).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

func main() {
	out := flag.String("out", "docs/perf.md", "the report to write; its plots go to img/ beside it")
	short := flag.Bool("short", false, "a quick smoke run: smaller benchtimes and node counts, the slowest jobs skipped")
	only := flag.String("only", "", "run only the jobs whose name matches this regex (see -list)")
	skip := flag.String("skip", "", "leave out the jobs whose name matches this regex (they are listed as not run)")
	samples := flag.String("samples", "", "directory for the benchmarks' raw samples and outputs (kept); default a temporary directory, removed")
	verbose := flag.Bool("v", false, "copy the benchmarks' output to stderr as they run")
	list := flag.Bool("list", false, "list the jobs and exit")
	flag.Parse()
	if *list {
		for _, j := range jobs {
			fmt.Printf("%-20s %s\n", j.Name, j.Title)
		}
		return
	}
	if err := run(*out, *short, *only, *skip, *samples, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "agora-bench:", err)
		os.Exit(1)
	}
}

func run(out string, short bool, only, skip, samplesDir string, verbose bool) error {
	var onlyRE, skipRE *regexp.Regexp
	if only != "" {
		var err error
		if onlyRE, err = regexp.Compile(only); err != nil {
			return fmt.Errorf("-only: %w", err)
		}
	}
	if skip != "" {
		var err error
		if skipRE, err = regexp.Compile(skip); err != nil {
			return fmt.Errorf("-skip: %w", err)
		}
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if samplesDir == "" {
		if samplesDir, err = os.MkdirTemp("", "agora-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(samplesDir)
	} else {
		if samplesDir, err = filepath.Abs(samplesDir); err != nil {
			return err
		}
		if err := os.MkdirAll(samplesDir, 0o755); err != nil {
			return err
		}
		old, _ := filepath.Glob(filepath.Join(samplesDir, "*.samples"))
		for _, p := range append(old, filepath.Join(samplesDir, "sim-summary.json")) {
			os.Remove(p) // a previous run's, which must not be plotted as this one's
		}
	}

	cmdLine := "go run ./cmd/agora-bench"
	if len(os.Args) > 1 {
		cmdLine += " " + strings.Join(os.Args[1:], " ")
	}
	rep := Report{Machine: describeMachine(), Command: cmdLine, Short: short, Only: only}
	var all Results
	var selected []Job
	for _, j := range jobs {
		if onlyRE == nil || onlyRE.MatchString(j.Name) {
			selected = append(selected, j)
		}
	}
	for i, j := range selected {
		jr := JobRun{Job: j, Cmd: displayCommand(j, short)}
		switch {
		case skipRE != nil && skipRE.MatchString(j.Name):
			jr.Skipped = "left out by -skip"
		case short && j.SkipShort:
			jr.Skipped = "skipped by -short"
		case j.Needs != "" && !isDir(filepath.Join(root, j.Needs)):
			jr.Skipped = fmt.Sprintf("`%s` does not exist yet", j.Needs)
		}
		if jr.Skipped != "" {
			fmt.Fprintf(os.Stderr, "[%d/%d] %s: %s\n", i+1, len(selected), j.Name, jr.Skipped)
			rep.Runs = append(rep.Runs, jr)
			continue
		}
		fmt.Fprintf(os.Stderr, "[%d/%d] %s: %s\n", i+1, len(selected), j.Name, jr.Cmd)
		jr.LoadStart, jr.Start = loadAvg(), time.Now().UTC()
		output, runErr := runJob(root, j, short, samplesDir, verbose)
		jr.End, jr.LoadEnd = time.Now().UTC(), loadAvg()
		rep.Machine.LoadMax = max(rep.Machine.LoadMax, load1(jr.LoadEnd))
		os.WriteFile(filepath.Join(samplesDir, j.Name+".out"), output, 0o644)
		if rep.Machine.GoCPU == "" {
			rep.Machine.GoCPU = cpuLine(output)
		}
		res, notes, perr := Parse(bytes.NewReader(output))
		jr.Results, jr.Notes = res, notes
		if runErr != nil {
			jr.Err = fmt.Sprintf("%v; the end of its output:\n\n```\n%s\n```\n", runErr, tail(output, 15))
		} else if perr != nil {
			jr.Err = "reading its output: " + perr.Error()
		}
		if j.Test != "" {
			if kv, err := flattenJSON(filepath.Join(samplesDir, "sim-summary.json")); err == nil {
				jr.Summary = kv
			}
			if runErr == nil {
				jr.Notes = nil // a passing test's output says nothing the summary does not
			}
		}
		all = append(all, res...)
		status := "ok"
		if runErr != nil {
			status = "FAILED: " + runErr.Error()
		}
		fmt.Fprintf(os.Stderr, "      %s in %s, %d results\n", status, jr.End.Sub(jr.Start).Round(time.Second), len(res))
		rep.Runs = append(rep.Runs, jr)
	}
	rep.Machine.End, rep.Machine.LoadEnd = time.Now().UTC(), loadAvg()
	rep.Machine.LoadMax = max(rep.Machine.LoadMax, load1(rep.Machine.LoadEnd))

	ran := map[string]bool{}
	for _, j := range selected {
		ran[j.Name] = true
	}
	var figs []Figure
	for _, f := range figures {
		if ran[f.Job] {
			figs = append(figs, f)
		}
	}
	rep.Rows = Evaluate(figs, all)

	if rep.Series, err = readSamples(samplesDir); err != nil {
		return err
	}
	outDir := filepath.Dir(out)
	if len(rep.Series) > 0 {
		if err := os.MkdirAll(filepath.Join(outDir, "img"), 0o755); err != nil {
			return err
		}
	}
	for _, g := range groupsFor(rep.Series) {
		path := imgPath(outDir, g)
		caption, err := drawCDF(g, rep.Series, path)
		if err != nil {
			return fmt.Errorf("plotting %s: %w", g.File, err)
		}
		rel, _ := filepath.Rel(outDir, path)
		rep.Plots = append(rep.Plots, Plot{Group: g, Rel: filepath.ToSlash(rel), Caption: caption})
	}

	old, err := os.ReadFile(out)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.WriteFile(out, []byte(Rewrite(string(old), rep.Markdown())), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s (%d figures, %d plots) in %s\n", out, len(rep.Rows), len(rep.Plots),
		rep.Machine.End.Sub(rep.Machine.Start).Round(time.Second))
	return nil
}

// args returns go test's arguments for the job.
func args(j Job, short bool) []string {
	a := []string{"test"}
	if j.Test != "" {
		a = append(a, "-run", j.Test)
	} else {
		a = append(a, "-run", "^$", "-bench", j.Bench)
		bt := j.Benchtime
		if short && j.ShortBenchtime != "" {
			bt = j.ShortBenchtime
		}
		if bt != "" {
			a = append(a, "-benchtime", bt)
		}
		a = append(a, "-benchmem")
	}
	a = append(a, "-count", "1", "-timeout", "60m", j.Pkg)
	if short && j.ShortArgs != nil {
		return append(a, j.ShortArgs...)
	}
	return append(a, j.Args...)
}

func env(j Job, short bool) map[string]string {
	e := map[string]string{}
	for k, v := range j.Env {
		e[k] = v
	}
	if short {
		for k, v := range j.ShortEnv {
			e[k] = v
		}
	}
	return e
}

// displayCommand is the job's command as a shell takes it.
func displayCommand(j Job, short bool) string {
	var parts []string
	e := env(j, short)
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		parts = append(parts, k+"="+shellQuote(e[k]))
	}
	parts = append(parts, "go")
	for _, a := range args(j, short) {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// runJob runs the job's go test in root with AGORA_BENCH_SAMPLES set and
// returns its combined output.
func runJob(root string, j Job, short bool, samplesDir string, verbose bool) ([]byte, error) {
	cmd := exec.Command("go", args(j, short)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "AGORA_BENCH_SAMPLES="+samplesDir)
	for k, v := range env(j, short) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var buf bytes.Buffer
	var w io.Writer = &buf
	if verbose {
		w = io.MultiWriter(&buf, os.Stderr)
	}
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Run()
	return buf.Bytes(), err
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not in a Go module: run agora-bench from the repository")
	}
	return filepath.Dir(gomod), nil
}

// cpuLine is the "cpu:" line of go test's benchmark output: the CPU as Go
// reads it (CPUID's brand string), which can say more than /proc/cpuinfo.
func cpuLine(out []byte) string {
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "cpu: "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
