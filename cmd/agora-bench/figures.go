package main

import (
	"fmt"
	"math"
)

// A Metric is one value of one benchmark result, converted for display.
type Metric struct {
	Bench string // benchmark name without "Benchmark" and the GOMAXPROCS suffix
	Unit  string // the unit as the benchmark printed it ("ns/op", "p50_us")
	// Rate turns a time per op into ops per second: the value shown is
	// Scale ÷ the raw value (Scale 1e9 for ns/op).
	Rate bool
	// Scale multiplies the raw value (or divides, with Rate); 0 is 1.
	Scale float64
}

func (m Metric) of(rs Results) (float64, bool) {
	v, ok := rs.Value(m.Bench, m.Unit)
	if !ok {
		return 0, false
	}
	s := m.Scale
	if s == 0 {
		s = 1
	}
	if m.Rate {
		if v == 0 {
			return 0, false
		}
		return s / v, true
	}
	return v * s, true
}

// A Target is what an issue asks of a figure: its value, or its ratio to
// the baseline, at most or at least Limit.
type Target struct {
	OfRatio bool    // the ratio, else the value
	AtMost  bool    // ≤ Limit, else ≥ Limit
	Limit   float64 // in the figure's unit for a value
	Issue   int
}

func (t Target) String(unit string) string {
	op := "≥"
	if t.AtMost {
		op = "≤"
	}
	if t.OfRatio {
		return fmt.Sprintf("ratio %s %s (issue %d)", op, fmtLimit(t.Limit), t.Issue)
	}
	return fmt.Sprintf("%s %s %s (issue %d)", op, fmtLimit(t.Limit), unit, t.Issue)
}

func (t Target) met(value, ratio float64) bool {
	x := value
	if t.OfRatio {
		x = ratio
	}
	if t.AtMost {
		return x <= t.Limit
	}
	return x >= t.Limit
}

// A Figure is one line of the summary: a measured value beside its raw
// baseline from the same run, their ratio, and the target if an issue set
// one.
type Figure struct {
	Job  string // the job that measures it
	Name string
	Unit string // of the value and the baseline
	// Value is the measured figure.
	Value Metric
	// Baseline is its raw baseline, named BaselineName; with no Baseline
	// metric, Const (if not 0) is a fixed baseline (the raw record bytes
	// of a bytes ratio).
	Baseline     *Metric
	BaselineName string
	Const        float64
	Target       *Target
}

// A Row is a figure evaluated on one run's results.
type Row struct {
	Figure
	Value, Base, Ratio float64
	HasValue, HasBase  bool
	// Met is "met", "not met", or "" when there is no target or no value.
	Met string
}

// Evaluate computes every figure's row from the results of the run.
func Evaluate(figs []Figure, rs Results) []Row {
	rows := make([]Row, 0, len(figs))
	for _, f := range figs {
		r := Row{Figure: f}
		r.Value, r.HasValue = f.Value.of(rs)
		switch {
		case f.Baseline != nil:
			r.Base, r.HasBase = f.Baseline.of(rs)
		case f.Const != 0:
			r.Base, r.HasBase = f.Const, true
		}
		if r.HasValue && r.HasBase && r.Base != 0 {
			r.Ratio = r.Value / r.Base
		} else {
			r.Ratio = math.NaN()
		}
		if t := f.Target; t != nil && r.HasValue && (!t.OfRatio || !math.IsNaN(r.Ratio)) {
			if t.met(r.Value, r.Ratio) {
				r.Met = "met"
			} else {
				r.Met = "not met"
			}
		}
		rows = append(rows, r)
	}
	return rows
}

func ptr(m Metric) *Metric { return &m }

// figures is the summary of docs/perf.md, in order.
var figures = []Figure{
	// Issue 2: idle footprint.
	{Job: "idle-footprint", Name: "idle RSS, daemon with an empty datastore", Unit: "MiB",
		Value: Metric{Bench: "IdleFootprint", Unit: "empty-RSS-MiB"}, Baseline: ptr(Metric{Bench: "IdleFootprint", Unit: "baseline-RSS-MiB"}),
		BaselineName: "bare libp2p host + DHT + gossipsub", Target: &Target{AtMost: true, Limit: 80, Issue: 2}},
	{Job: "idle-footprint", Name: "idle RSS, daemon with 10,000 records", Unit: "MiB",
		Value: Metric{Bench: "IdleFootprint", Unit: "10k-records-RSS-MiB"}, Baseline: ptr(Metric{Bench: "IdleFootprint", Unit: "baseline-RSS-MiB"}),
		BaselineName: "bare libp2p host + DHT + gossipsub", Target: &Target{AtMost: true, Limit: 80, Issue: 2}},
	{Job: "idle-footprint", Name: "idle anonymous memory (RssAnon: heap, stacks), daemon with an empty datastore", Unit: "MiB",
		Value: Metric{Bench: "IdleFootprint", Unit: "empty-anon-MiB"}, Baseline: ptr(Metric{Bench: "IdleFootprint", Unit: "baseline-anon-MiB"}),
		BaselineName: "bare libp2p host + DHT + gossipsub"},
	{Job: "idle-footprint", Name: "idle anonymous memory (RssAnon: heap, stacks), daemon with 10,000 records", Unit: "MiB",
		Value: Metric{Bench: "IdleFootprint", Unit: "10k-records-anon-MiB"}, Baseline: ptr(Metric{Bench: "IdleFootprint", Unit: "baseline-anon-MiB"}),
		BaselineName: "bare libp2p host + DHT + gossipsub"},
	{Job: "idle-footprint", Name: "idle CPU, daemon with an empty datastore", Unit: "% of a core",
		Value: Metric{Bench: "IdleFootprint", Unit: "empty-CPU-%core"}, Baseline: ptr(Metric{Bench: "IdleFootprint", Unit: "baseline-CPU-%core"}),
		BaselineName: "bare libp2p host + DHT + gossipsub", Target: &Target{AtMost: true, Limit: 0.5, Issue: 2}},
	{Job: "idle-footprint", Name: "idle CPU, daemon with 10,000 records", Unit: "% of a core",
		Value: Metric{Bench: "IdleFootprint", Unit: "10k-records-CPU-%core"}, Baseline: ptr(Metric{Bench: "IdleFootprint", Unit: "baseline-CPU-%core"}),
		BaselineName: "bare libp2p host + DHT + gossipsub", Target: &Target{AtMost: true, Limit: 0.5, Issue: 2}},
	{Job: "idle-footprint", Name: "time to ready, daemon with 10,000 records", Unit: "ms",
		Value: Metric{Bench: "IdleFootprint", Unit: "10k-records-ready-ms"}, Baseline: ptr(Metric{Bench: "IdleFootprint", Unit: "baseline-ready-ms"}),
		BaselineName: "bare libp2p host + DHT + gossipsub"},

	// Issue 3: registry.
	{Job: "registry-ingest", Name: "ingest rate, 2 cores", Unit: "records/s",
		Value: Metric{Bench: "Ingest", Unit: "ns/op", Rate: true, Scale: 1e9}, Baseline: ptr(Metric{Bench: "VerifyBaseline", Unit: "ns/op", Rate: true, Scale: 1e9}),
		BaselineName: "raw Ed25519 verify, same records and goroutines", Target: &Target{OfRatio: true, Limit: 0.7, Issue: 3}},
	{Job: "registry-ingest", Name: "ingest CPU per record", Unit: "µs",
		Value: Metric{Bench: "Ingest", Unit: "cpu-ns/op", Scale: 1e-3}, Baseline: ptr(Metric{Bench: "VerifyBaseline", Unit: "cpu-ns/op", Scale: 1e-3}),
		BaselineName: "raw Ed25519 verify"},
	{Job: "registry-ingest", Name: "ingest rate against batch verification", Unit: "records/s",
		Value: Metric{Bench: "Ingest", Unit: "ns/op", Rate: true, Scale: 1e9}, Baseline: ptr(Metric{Bench: "VerifyBatchBaseline", Unit: "ns/op", Rate: true, Scale: 1e9}),
		BaselineName: "raw batch verification (curve25519-voi, 64 a batch, expanded keys), same records"},
	{Job: "registry-ingest", Name: "ingest rate against a raw durable write", Unit: "records/s",
		Value: Metric{Bench: "Ingest", Unit: "ns/op", Rate: true, Scale: 1e9}, Baseline: ptr(Metric{Bench: "BaselineBadgerWrite/group-commit", Unit: "ns/op", Rate: true, Scale: 1e9}),
		BaselineName: "raw badger write, group commit, SyncWrites"},
	{Job: "registry-ingest", Name: "ingest rate against one transaction per record", Unit: "records/s",
		Value: Metric{Bench: "Ingest", Unit: "ns/op", Rate: true, Scale: 1e9}, Baseline: ptr(Metric{Bench: "BaselineBadgerWrite/txn-each", Unit: "ns/op", Rate: true, Scale: 1e9}),
		BaselineName: "raw badger write, one transaction each, SyncWrites"},
	{Job: "recon", Name: "reconcile 1 difference among 1,000,000: round trips", Unit: "round trips",
		Value: Metric{Bench: "Reconcile/items=1M/diffs=1", Unit: "roundtrips/op"}, Target: &Target{AtMost: true, Limit: 4, Issue: 3}},
	{Job: "recon", Name: "reconcile 1 difference among 1,000,000: bytes initiator → responder", Unit: "bytes",
		Value: Metric{Bench: "Reconcile/items=1M/diffs=1", Unit: "bytes-up/op"}, Target: &Target{AtMost: true, Limit: 2048, Issue: 3}},
	{Job: "recon", Name: "reconcile 1 difference among 1,000,000: bytes responder → initiator", Unit: "bytes",
		Value: Metric{Bench: "Reconcile/items=1M/diffs=1", Unit: "bytes-down/op"}, Target: &Target{AtMost: true, Limit: 2048, Issue: 3}},
	{Job: "recon", Name: "reconcile 1,000 differences among 1,000,000: round trips", Unit: "round trips",
		Value: Metric{Bench: "Reconcile/items=1M/diffs=1000", Unit: "roundtrips/op"}},
	{Job: "catch-up", Name: "catch-up of a new member, 100,000 records: bytes on the wire", Unit: "× raw",
		Value: Metric{Bench: "CatchUp/new-member", Unit: "wire/raw"}, Const: 1,
		BaselineName: "the records' raw bytes", Target: &Target{OfRatio: true, AtMost: true, Limit: 1.05, Issue: 3}},
	{Job: "catch-up", Name: "catch-up of a new member, 100,000 records: rate", Unit: "records/s",
		Value: Metric{Bench: "CatchUp/new-member", Unit: "records/s"}, Baseline: ptr(Metric{Bench: "Ingest", Unit: "ns/op", Rate: true, Scale: 1e9}),
		BaselineName: "registry ingest rate (above)"},
	{Job: "catch-up", Name: "1,000 missing among 100,000, spread: bytes on the wire", Unit: "× raw",
		Value: Metric{Bench: "CatchUp/missing-1000-spread", Unit: "wire/raw"}, Const: 1, BaselineName: "the records' raw bytes"},

	// Issue 4: delegation and adverts.
	{Job: "delegation", Name: "delegation latency p50, one at a time", Unit: "µs",
		Value: Metric{Bench: "Delegation", Unit: "deleg_p50_us"}, Baseline: ptr(Metric{Bench: "Delegation", Unit: "echo_p50_us"}),
		BaselineName: "signed echo, alternating on the same connection", Target: &Target{OfRatio: true, AtMost: true, Limit: 1.2, Issue: 4}},
	{Job: "delegation", Name: "delegation latency p99, one at a time", Unit: "µs",
		Value: Metric{Bench: "Delegation", Unit: "deleg_p99_us"}, Baseline: ptr(Metric{Bench: "Delegation", Unit: "echo_p99_us"}),
		BaselineName: "signed echo, alternating on the same connection"},
	{Job: "delegation", Name: "delegation throughput, 64 at once, limits lifted", Unit: "/s",
		Value: Metric{Bench: "DelegationThroughput/tuned", Unit: "deleg_ops/s"}, Baseline: ptr(Metric{Bench: "DelegationThroughput/tuned", Unit: "echo_ops/s"}),
		BaselineName: "signed echo, 64 at once, same connection", Target: &Target{OfRatio: true, Limit: 0.8, Issue: 4}},
	{Job: "delegation", Name: "delegation throughput, 64 at once, node defaults (completed)", Unit: "/s",
		Value: Metric{Bench: "DelegationThroughput/defaults", Unit: "deleg_ops/s"}, Baseline: ptr(Metric{Bench: "DelegationThroughput/defaults", Unit: "echo_ops/s"}),
		BaselineName: "signed echo, 64 at once, same connection"},
	{Job: "delegation", Name: "delegation latency p50 against the raw stream", Unit: "µs",
		Value: Metric{Bench: "Delegation", Unit: "deleg_p50_us"}, Baseline: ptr(Metric{Bench: "BaselineStreamEcho/sequential", Unit: "p50_us"}),
		BaselineName: "raw libp2p stream echo, no signature"},
	{Job: "delegation", Name: "signed echo latency p50", Unit: "µs",
		Value: Metric{Bench: "SignedEcho", Unit: "p50_us"}, Baseline: ptr(Metric{Bench: "BaselineStreamEcho/sequential", Unit: "p50_us"}),
		BaselineName: "raw libp2p stream echo, no signature"},
	{Job: "delegation", Name: "delegation throughput against the raw stream, 64 at once", Unit: "/s",
		Value: Metric{Bench: "DelegationThroughput/tuned", Unit: "deleg_ops/s"}, Baseline: ptr(Metric{Bench: "BaselineStreamEcho/parallel-64", Unit: "echo_ops/s"}),
		BaselineName: "raw libp2p stream echo, 64 at once"},
	{Job: "advert-propagation", Name: "advert propagation to all 99 nodes (median of iterations)", Unit: "ms",
		Value: Metric{Bench: "AdvertPropagation", Unit: "adv_all_ms"}, Baseline: ptr(Metric{Bench: "AdvertPropagation", Unit: "raw_all_ms"}),
		BaselineName: "raw gossipsub publish, same size, same network", Target: &Target{OfRatio: true, AtMost: true, Limit: 1.1, Issue: 4}},
	{Job: "advert-propagation", Name: "advert arrival p50 across nodes", Unit: "ms",
		Value: Metric{Bench: "AdvertPropagation", Unit: "adv_p50_ms"}, Baseline: ptr(Metric{Bench: "AdvertPropagation", Unit: "raw_p50_ms"}),
		BaselineName: "raw gossipsub publish"},
	{Job: "advert-propagation", Name: "advert arrival p99 across nodes", Unit: "ms",
		Value: Metric{Bench: "AdvertPropagation", Unit: "adv_p99_ms"}, Baseline: ptr(Metric{Bench: "AdvertPropagation", Unit: "raw_p99_ms"}),
		BaselineName: "raw gossipsub publish"},

	// Issue 6: reputation.
	{Job: "reputation", Name: "reputation recomputation, 10,000 peers, 1,000,000 ratings", Unit: "ms",
		Value: Metric{Bench: "Compute10kPeers1MRatings", Unit: "ns/op", Scale: 1e-6}, Baseline: ptr(Metric{Bench: "BaselineSpMV", Unit: "ns/op", Scale: 1e-6}),
		BaselineName: "50 raw CSR sparse matrix-vector products", Target: &Target{AtMost: true, Limit: 500, Issue: 6}},

	// Issue 7: governance.
	{Job: "governance-tally", Name: "tally of 100,000 votes, single choice", Unit: "ms",
		Value: Metric{Bench: "Tally100kVotes/single", Unit: "ns/op", Scale: 1e-6}, Baseline: ptr(Metric{Bench: "BaselineSum100k", Unit: "ns/op", Scale: 1e-6}),
		BaselineName: "raw weighted sum of the same ballots", Target: &Target{AtMost: true, Limit: 100, Issue: 7}},
	{Job: "governance-tally", Name: "tally of 100,000 votes, ranked", Unit: "ms",
		Value: Metric{Bench: "Tally100kVotes/ranked", Unit: "ns/op", Scale: 1e-6}, Baseline: ptr(Metric{Bench: "BaselineSum100k", Unit: "ns/op", Scale: 1e-6}),
		BaselineName: "raw weighted sum of the same ballots", Target: &Target{AtMost: true, Limit: 100, Issue: 7}},
	{Job: "governance-tally", Name: "tally of 100,000 votes, single, shuffled", Unit: "ms",
		Value: Metric{Bench: "Tally100kVotes/single-shuffled", Unit: "ns/op", Scale: 1e-6}, Baseline: ptr(Metric{Bench: "BaselineSum100k", Unit: "ns/op", Scale: 1e-6}),
		BaselineName: "raw weighted sum of the same ballots", Target: &Target{AtMost: true, Limit: 100, Issue: 7}},
	{Job: "tally-convergence", Name: "tally convergence on 50 nodes, last node", Unit: "ms",
		Value: Metric{Bench: "TallyConvergence", Unit: "ms-to-identical-max"}, Baseline: ptr(Metric{Bench: "TallyConvergence", Unit: "ms-gossip-all"}),
		BaselineName: "one raw gossipsub message to all 49 others"},
	{Job: "tally-convergence", Name: "tally convergence on 50 nodes, median node", Unit: "ms",
		Value: Metric{Bench: "TallyConvergence", Unit: "ms-to-identical-p50"}, Baseline: ptr(Metric{Bench: "TallyConvergence", Unit: "ms-gossip-all"}),
		BaselineName: "one raw gossipsub message to all 49 others"},
}
