package main

// A job is one `go test` child process: one package, one -bench regex (or
// one test, for the scale simulation), one -benchtime.
type Job struct {
	Name  string // short name, matched by -only
	Title string // section heading in docs/perf.md
	Pkg   string // package path, as go test takes it ("./registry")
	Bench string // -bench regex; empty for a test job
	Test  string // -run regex of a test job (the scale simulation)
	// Benchtime and ShortBenchtime are -benchtime for a full and a -short
	// run ("" leaves go test's default).
	Benchtime, ShortBenchtime string
	// Args and ShortArgs are extra test flags, after the package.
	Args, ShortArgs []string
	// Env and ShortEnv are extra environment variables.
	Env, ShortEnv map[string]string
	// SkipShort leaves the job out of a -short run.
	SkipShort bool
	// Needs is a directory, relative to the module root, that must exist
	// for the job to run (a package another change adds).
	Needs string
	// About says in a few sentences what the job measures and what its
	// raw baseline is.
	About string
}

// jobs is every benchmark of the project, in the order they run. The idle
// footprint goes first: it is the most sensitive to other work.
var jobs = []Job{
	{
		Name: "idle-footprint", Title: "Idle footprint of one daemon (issue 2)",
		Pkg: "./cmd/agora", Bench: "IdleFootprint", Benchtime: "1x",
		ShortEnv: map[string]string{"AGORA_BENCH_IDLE": "10s"},
		About: "Three processes idle side by side for 60 s (10 s with -short) after 5 s of settling: the raw baseline " +
			"(a bare go-libp2p host with a `/agora` Kademlia DHT and gossipsub on one topic), an `agora daemon` in one " +
			"community with an empty datastore, and one whose datastore holds 10,000 signed attestations. CPU is " +
			"utime+stime from `/proc/PID/stat` over the window, RSS is `VmRSS` at its end, ready is the time from " +
			"`exec` to the daemon's ready line.",
	},
	{
		Name: "registry-ingest", Title: "Registry ingest (issue 3)",
		Pkg: "./registry", Bench: "Ingest$|VerifyBaseline|VerifyBatchBaseline|BaselineBadgerWrite", Benchtime: "50000x", ShortBenchtime: "5000x",
		About: "`BenchmarkIngest` ingests pre-signed attestations (about 600 bytes, 64 authors) from 64 goroutines per " +
			"core into a real badger opened with the node's options; each op is a record made durable. Raw baselines " +
			"on the same records with the same goroutines: `BenchmarkVerifyBaseline` (Ed25519 verify alone, Go's " +
			"crypto/ed25519, one at a time: the issue's baseline), `BenchmarkVerifyBatchBaseline` (the same signatures " +
			"checked the fastest way the registry checks them: curve25519-voi batches of 64 under ZIP-215, keys expanded " +
			"beforehand; ingest batches only the records that wait together, `sigs/batch`) and " +
			"`BenchmarkBaselineBadgerWrite` (the records written to a badger with the same options and SyncWrites, " +
			"`txn-each`: one transaction per record; `group-commit`: one committer writing all waiting records in one " +
			"transaction, as the registry's committer does). `cpu-ns/op` is the process CPU time per record.",
	},
	{
		Name: "recon", Title: "Reconciliation (issue 3)",
		Pkg: "./registry/recon/", Bench: ".", ShortBenchtime: "1x",
		About: "In memory, a full sync through `WriteFrame`/`ReadFrame` per iteration between two sets of about " +
			"1,000,000 items that differ by 1 or by 1,000 items; bytes include the length prefixes. There is no raw " +
			"baseline: the target is absolute (≤ 4 round trips and ≤ 2 KB each way for one difference, in line with " +
			"Negentropy's published figures).",
	},
	{
		Name: "catch-up", Title: "Catch-up of a new member (issue 3)",
		Pkg: "./node/replicate/", Bench: "CatchUp", Benchtime: "1x", SkipShort: true,
		About: "Two nodes on libp2p's mocknet in one process (both sides share the cores), real badger stores, the " +
			"source holding 100,000 signed attestations. `wire/raw` is the bytes on the member's sync streams over the " +
			"raw bytes of the records fetched (the baseline: the records themselves); `session/raw` counts only the " +
			"member's own session.",
	},
	{
		Name: "delegation", Title: "Delegation (issue 4)",
		Pkg: "./node/tasks", Bench: "SignedEcho|Delegation|BaselineStreamEcho", Benchtime: "2000x", ShortBenchtime: "200x",
		About: "Two real libp2p hosts in one process on loopback TCP, each wired as `node/work.go` wires delegation. A " +
			"delegation is `Service.Submit` of `text.stats` on 22 bytes of JSON, then `Service.Wait`. Baselines on the " +
			"same connection in the same benchmark: the signed echo (a new stream, the same request, a ~150-byte reply " +
			"signed with Ed25519 and verified), alternating with the delegations; and in its own benchmark the raw " +
			"libp2p stream echo (`BaselineStreamEcho`: the same round trip with no signature). ns/op of " +
			"`Delegation` and `DelegationThroughput` covers an echo and a delegation together: read the metrics. " +
			"Throughput runs 64 at once, `tuned` with the rate limits lifted, `defaults` with the node's.",
	},
	{
		Name: "advert-propagation", Title: "Advert propagation (issue 4)",
		Pkg: "./node/capindex", Bench: "AdvertPropagation", Benchtime: "5x", ShortBenchtime: "1x",
		About: "100 mocknet hosts with 20 ms links, about 6 connections each, gossipsub configured as the node configures " +
			"it (flood publishing, peer scoring, the community topics' unsigned messages with content IDs). Per " +
			"iteration one node publishes a raw gossipsub message of the size of an encoded advert (the baseline: " +
			"timed until the 99 others' subscriptions deliver it), then its signed advert through " +
			"`capindex.Advertiser` on a topic whose validator decodes, verifies and indexes it (timed until the 99 " +
			"indexes hold it).",
	},
	{
		Name: "tally-convergence", Title: "Tally convergence on a 50-node mocknet (issue 7)",
		Pkg: "./node/governance/", Bench: "TallyConvergence", Benchtime: "1x",
		About: "Fifty in-process nodes (mocknet, 20 ms links, gossipsub, a real badger, registry, trust and governance " +
			"service each). The founder proposes a policy change (5 s vote, 1 s grace) and ten members " +
			"vote; measured from end + grace until each node's result is final and identical to the founder's. The " +
			"raw baseline is the median time for one gossipsub message to reach all 49 other nodes on the same " +
			"network in the same run.",
	},
	{
		Name: "governance-tally", Title: "Governance tally (issue 7)",
		Pkg: "./registry/governance/", Bench: ".", ShortBenchtime: "3x",
		About: "`BenchmarkTally100kVotes` is a full `governance.Tally` of 100,000 ballots from distinct voters on a " +
			"5-choice proposal (`single`, `ranked` with a 3-round runoff, `single-shuffled` in an order unrelated to " +
			"memory). The raw baseline `BenchmarkBaselineSum100k` looks up each voter's weight and adds it to a " +
			"choice, on the same ballots.",
	},
	{
		Name: "reputation", Title: "Reputation (issue 6)",
		Pkg: "./registry/reputation/", Bench: ".", Benchtime: "3x", ShortBenchtime: "1x",
		About: "`BenchmarkCompute10kPeers1MRatings` is a full `reputation.Compute` over 1,000,000 ratings among 10,000 " +
			"peers. The raw baseline `BenchmarkBaselineSpMV` is 50 plain CSR sparse matrix-vector products over the " +
			"same rating graph, built outside the timer: the least any EigenTrust must do.",
	},
	{
		Name: "scale-sim", Title: "Scale simulation (issue 9)",
		Pkg: "./testbed/sim/", Test: "TestScale", Needs: "testbed/sim",
		// The issue asks for 300 nodes; on the 2-core machine 100 pass in
		// about 5 minutes and 300 take over 90 (docs/testing.md, "the
		// limit"), so the report runs 30 to keep make bench short.
		Args: []string{"-sim.nodes", "30", "-sim.records", "3000", "-sim.delegations", "300", "-sim.timeout", "10m"}, ShortArgs: []string{"-sim.nodes", "30", "-sim.records", "1000", "-sim.delegations", "100"},
		About: "The in-process scale simulation (mocknet, 20 ms links) at 30 full nodes, to keep this report short " +
			"(100 nodes pass in about 5 minutes and 300 run but take over 90 on this machine; see docs/testing.md for " +
			"their figures): adverts, delegations, records, then churn. It " +
			"writes its distributions (`sim-*.samples`) and `sim-summary.json` into the samples directory.",
	},
}
