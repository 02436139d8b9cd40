package sim

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

// The default size is what finishes in well under three minutes on a
// 2-core machine while `go test ./...` runs other packages beside it. The
// issue's figure is -sim.nodes=300 -sim.records=10000 -sim.delegations=1000;
// see docs/testing.md for how far this machine gets.
var (
	simNodes       = flag.Int("sim.nodes", 20, "nodes in the scale simulation")
	simRecords     = flag.Int("sim.records", 2000, "attestations published in the records phase")
	simDelegations = flag.Int("sim.delegations", 200, "text.stats delegations")
	simRate        = flag.Float64("sim.rate", 0, "records per second over all publishers (0: as fast as they go)")
	simSeed        = flag.Uint64("sim.seed", 0, "seed of the topology and choices (0: random)")
	simTimeout     = flag.Duration("sim.timeout", 3*time.Minute, "bound of each phase")
	simDir         = flag.String("sim.dir", "", "where the repos go (default: /dev/shm where there is one, else the test's temporary directory)")
)

// TestScale runs a community of full nodes on mocknet with 20 ms links and
// checks what Agora promises at that size: every advert reaches every
// index, every delegation ends completed or with a reason, every node
// converges to the same records, and restarted nodes catch up.
func TestScale(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6**simTimeout)
	defer cancel()
	if dl, ok := t.Deadline(); ok {
		// End with a report and a clear error, not go test's panic.
		var c2 context.CancelFunc
		ctx, c2 = context.WithDeadline(ctx, dl.Add(-30*time.Second))
		defer c2()
	}
	dir := repoDir(t, *simDir)
	rep, err := Run(ctx, Config{
		Nodes: *simNodes, Records: *simRecords, Delegations: *simDelegations, RecordRate: *simRate,
		Seed: *simSeed, PhaseTimeout: *simTimeout, Dir: dir, Logf: t.Logf,
	})
	t.Log("\n" + rep.Table())
	if dir := os.Getenv("AGORA_BENCH_SAMPLES"); dir != "" {
		if werr := rep.WriteSamples(dir); werr != nil {
			t.Errorf("write the samples to %s: %v", dir, werr)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Delegations
	if d.Lost != 0 || d.Completed+d.EndedWithReason != d.Requested {
		t.Errorf("delegations: %d requested, %d completed, %d ended with a reason, %d lost", d.Requested, d.Completed, d.EndedWithReason, d.Lost)
	}
	if d.Completed == 0 {
		t.Errorf("no delegation completed: %v", d.Reasons)
	}
	if r := rep.Records; r.Convergence.Count != r.Published {
		t.Errorf("%d of %d records converged on every node", r.Convergence.Count, r.Published)
	}
	if c := rep.Churn; c.CatchUp.Count != c.Restarted || c.Relisted.Count != c.Restarted {
		t.Errorf("of %d restarted nodes, %d caught up and %d were listed again", c.Restarted, c.CatchUp.Count, c.Relisted.Count)
	}
	if rep.AdvertPropagation.Count != rep.Nodes {
		t.Errorf("%d of %d adverts reached every index", rep.AdvertPropagation.Count, rep.Nodes)
	}
}

// repoDir is where the nodes' repos go. Hundreds of nodes sharing one
// disk would measure that disk's fsyncs (each node's registry syncs every
// commit, as a home node's own disk would), so the repos go to tmpfs when
// the machine has one: badger runs unchanged, its syncs cost nothing.
func repoDir(t *testing.T, want string) string {
	if want == "" {
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			want = "/dev/shm"
		}
	}
	if want == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp(want, "agora-sim-")
	if err != nil {
		t.Logf("cannot use %s for the repos (%v); using the test's temporary directory", want, err)
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Table renders the report for a test log.
func (r *Report) Table() string {
	var b strings.Builder
	row := func(k, format string, a ...any) { fmt.Fprintf(&b, "  %-34s %s\n", k, fmt.Sprintf(format, a...)) }
	fmt.Fprintf(&b, "scale simulation: %d nodes, %.0f ms links, degree %d, seed %d, GOMAXPROCS %d, repos in %s, %.0f s in all\n",
		r.Nodes, r.LinkLatencyMS, r.Degree, r.Seed, r.GoMaxProcs, r.Dir, r.DurationS)
	row("setup (start → every index full)", "%.1f s, %d adverts republished by the harness", r.SetupS, r.AdvertsForced)
	row("connections per node", "%.1f after setup, %.1f at the end", r.Connections, r.ConnectionsEnd)
	row("advert propagation", "%s", r.AdvertPropagation)
	d := r.Delegations
	row("delegations", "%d requested: %d completed, %d ended with a reason, %d lost; %.1f/s, %.2f attempts each",
		d.Requested, d.Completed, d.EndedWithReason, d.Lost, d.PerSecond, d.MeanAttempts)
	row("delegation latency", "%s", d.Latency)
	for _, k := range sortedKeys(d.Reasons) {
		row("  reason", "%d × %s", d.Reasons[k], k)
	}
	rc := r.Records
	row("records", "%d from %d publishers, published in %.1f s", rc.Published, rc.Publishers, rc.PublishS)
	row("record convergence (per record)", "%s", rc.Convergence)
	row("all stored / equal fingerprints", "%.1f s / %.1f s after the first publish (%d records)", rc.AllStoredS, rc.EqualFingerprintS, rc.Total)
	row("store notifications dropped", "%d", rc.NotifyDropped)
	c := r.Churn
	row("churn", "%d restarted, %d records published while away", c.Restarted, c.RecordsWhileAway)
	row("churn catch-up (same fingerprint)", "%s", c.CatchUp)
	row("churn relisted (new advert everywhere)", "%s", c.Relisted)
	row("restarted index lists everyone", "%s; %d not within %.0f s (they listed %.0f%% of members)", c.IndexComplete, c.IndexIncomplete, c.IndexWaitS, 100*c.IndexListedShare)
	for _, m := range []struct {
		name string
		m    Memory
	}{{"memory after setup", r.MemorySetup}, {"memory at end", r.MemoryEnd}} {
		row(m.name, "%.2f MB heap, %.2f MB RSS, %.0f goroutines, %.2f MB disk per node (%d nodes; %.0f MB heap, %.0f MB RSS in all)",
			m.m.HeapPerNodeMB, m.m.RSSPerNodeMB, m.m.GoroutinesPerNode, m.m.DiskPerNodeMB, m.m.Nodes, m.m.HeapInuseMB, m.m.RSSMB)
	}
	for _, k := range sortedKeys(r.Warnings) {
		row("  node log", "%d × %s", r.Warnings[k], k)
	}
	return b.String()
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return m[ks[i]] > m[ks[j]] || (m[ks[i]] == m[ks[j]] && ks[i] < ks[j]) })
	return ks
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		in   []time.Duration
		want Dist
	}{
		{nil, Dist{}},
		{[]time.Duration{5 * time.Millisecond}, Dist{Count: 1, P50: 5, P90: 5, P99: 5, Max: 5}},
		{ds, Dist{Count: 100, P50: 50, P90: 90, P99: 99, Max: 100}},
		{[]time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond}, Dist{Count: 3, P50: 2, P90: 3, P99: 3, Max: 3}},
	} {
		if got := Summarize(c.in); got != c.want {
			t.Errorf("Summarize(%v) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestConfigRefusesWhatCannotRun(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"too few nodes", Config{Nodes: 2, Dir: dir}},
		{"no directory", Config{Nodes: 10}},
		{"degree over the size", Config{Nodes: 5, Degree: 5, Dir: dir}},
		{"over the per-author burst", Config{Nodes: 10, Records: 10_000, Dir: dir}},
		{"churn over half", Config{Nodes: 10, ChurnShare: 0.6, Dir: dir}},
		{"negative rate", Config{Nodes: 10, RecordRate: -1, Dir: dir}},
	} {
		if _, err := c.cfg.withDefaults(); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	if _, err := (Config{Nodes: 300, Dir: dir}).withDefaults(); err != nil {
		t.Errorf("the bench's configuration: %v", err)
	}
}
