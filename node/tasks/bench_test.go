package tasks_test

// Delegation benchmarks (issue 4). Each figure is a ratio to a raw
// baseline measured in the same run on the same two hosts: a signed echo
// (one stream, ~22-byte request, ~150-byte reply signed with Ed25519 and
// verified). Nothing here is a timed assertion; see docs/perf.md.
//
//	go test -run '^$' -bench 'SignedEcho|Delegation|BaselineStreamEcho' -benchtime 2000x ./node/tasks
//
// BenchmarkBaselineStreamEcho is the rawer baseline: the same round trip
// with no signature. With AGORA_BENCH_SAMPLES naming a directory, the
// latency benchmarks write each latency (ms, one a line) there as
// <figure>.samples, for cmd/agora-bench's plots.
//
// The ns/op of BenchmarkDelegation and BenchmarkDelegationThroughput
// covers an echo and a delegation together; read the custom metrics.

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/agora-p2p/agora/internal/benchsamples"
	"github.com/agora-p2p/agora/node/tasks"
)

// unlimited lifts the per-peer rate limits, the executor's (tasks.Config,
// 50 tasks/s, burst 100 by default) and the builtin agent's
// (limits.rate_per_peer), which would reject most of a benchmark's tasks,
// and gives the builtin agent 64 slots.
var unlimited = sideOptions{Tuned: true, Concurrency: 64, AgentRate: 1e9, RatePerPeer: 1e9, Burst: 1 << 30}

// completed is how delegate reports a completed task.
const completed = tasks.StatusCompleted + "/"

// BenchmarkSignedEcho is the raw baseline alone: sequential signed echoes
// between two loopback hosts.
func BenchmarkSignedEcho(b *testing.B) {
	a, _ := loopbackHost(b)
	h, key := loopbackHost(b)
	defer a.Close()
	defer h.Close()
	serveEcho(h, key)
	ctx := context.Background()
	if err := a.Connect(ctx, h.Peerstore().PeerInfo(h.ID())); err != nil {
		b.Fatal(err)
	}
	for range 50 {
		if err := echo(ctx, a, h.ID(), key.GetPublic(), benchInput); err != nil {
			b.Fatal(err)
		}
	}
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := echo(ctx, a, h.ID(), key.GetPublic(), benchInput); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	b.StopTimer()
	p50, p99 := latencies(ds)
	b.ReportMetric(micros(p50), "p50_us")
	b.ReportMetric(micros(p99), "p99_us")
}

// BenchmarkDelegation measures one text.stats task at a time from a to b
// (Submit with Request.Peer = b, then Wait), and the signed echo between
// the same hosts, alternating (which goes first alternates too) so that
// both see the same machine. It reports both latencies at p50 and p99 and
// their ratios; target: delegation ÷ echo ≤ 1.2 at p50.
func BenchmarkDelegation(b *testing.B) {
	p := newPair(b, unlimited)
	ctx := context.Background()
	pub := p.b.key.GetPublic()
	st := &stages{at: map[string]map[string]time.Time{}}
	p.a.ends.stages, p.b.ends.stages = st, st
	for range 50 {
		if err := echo(ctx, p.a.h, p.b.h.ID(), pub, benchInput); err != nil {
			b.Fatal(err)
		}
		if end, err := p.delegate(ctx); err != nil || end != completed {
			b.Fatalf("warm-up task: %v %s", err, end)
		}
	}
	echoes := make([]time.Duration, 0, b.N)
	tasksDone := make([]time.Duration, 0, b.N)
	failed := map[string]int{}
	doEcho := func() {
		start := time.Now()
		if err := echo(ctx, p.a.h, p.b.h.ID(), pub, benchInput); err != nil {
			b.Fatal(err)
		}
		echoes = append(echoes, time.Since(start))
	}
	type span struct {
		id         string
		start, end time.Time
	}
	spans := make([]span, 0, b.N)
	doTask := func() {
		start := time.Now()
		end, id, err := p.delegateID(ctx)
		stop := time.Now()
		d := stop.Sub(start)
		spans = append(spans, span{id, start, stop})
		switch {
		case err != nil:
			b.Fatal(err)
		case end != completed:
			failed[end]++
		default:
			tasksDone = append(tasksDone, d)
		}
	}
	p.a.ends.races.Store(0)
	st.mu.Lock()
	clear(st.at)
	st.mu.Unlock()
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			doEcho()
			doTask()
		} else {
			doTask()
			doEcho()
		}
	}
	b.StopTimer()
	reportFailures(b, failed, p.a.ends.races.Load())
	time.Sleep(50 * time.Millisecond) // the executor's last events
	// Where the time goes: the median time from Submit's call to each step.
	offsets := make([][]time.Duration, len(stageNames)+1)
	for _, sp := range spans {
		at := st.take(sp.id)
		for i, name := range stageNames {
			if t, ok := at[name]; ok {
				offsets[i] = append(offsets[i], t.Sub(sp.start))
			}
		}
		offsets[len(stageNames)] = append(offsets[len(stageNames)], sp.end.Sub(sp.start))
	}
	var steps strings.Builder
	for i, name := range append(stageNames, "Wait returned") {
		p50, _ := latencies(offsets[i])
		fmt.Fprintf(&steps, " %s %.0f µs;", name, micros(p50))
	}
	b.Logf("median time from Submit to:%s", strings.TrimSuffix(steps.String(), ";"))
	benchsamples.Write(b, "signed-echo-latency", echoes)
	benchsamples.Write(b, "delegation-latency", tasksDone)
	e50, e99 := latencies(echoes)
	d50, d99 := latencies(tasksDone)
	b.ReportMetric(micros(e50), "echo_p50_us")
	b.ReportMetric(micros(e99), "echo_p99_us")
	b.ReportMetric(micros(d50), "deleg_p50_us")
	b.ReportMetric(micros(d99), "deleg_p99_us")
	if e50 > 0 && e99 > 0 {
		b.ReportMetric(float64(d50)/float64(e50), "p50_ratio")
		b.ReportMetric(float64(d99)/float64(e99), "p99_ratio")
	}
}

// BenchmarkDelegationThroughput runs 64 goroutines, each doing operations
// in a loop, first signed echoes, then delegations (two rounds of b.N/2
// each, alternating), and reports the rate of each and their ratio
// (target: delegation ÷ echo ≥ 0.8).
//
// "tuned" lifts the limits that would refuse tasks at 64 at once (see
// unlimited: the builtin agent gets 64 slots, the per-peer rate limits of
// the executor and of the agent are lifted). "defaults" runs the node's
// defaults (the builtin file Load writes, tasks.Config's rate limit), to
// show what they do to the figure: deleg_ops/s counts only completed
// tasks, and rejected counts the others.
func BenchmarkDelegationThroughput(b *testing.B) {
	const workers = 64
	for _, bc := range []struct {
		name string
		o    sideOptions
	}{
		{"tuned", unlimited},
		{"defaults", sideOptions{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := newPair(b, bc.o)
			ctx := context.Background()
			pub := p.b.key.GetPublic()
			var mu sync.Mutex
			failed := map[string]int{}
			echoErrs := map[string]int{}
			// run has the workers do n operations in all and returns how
			// long that took and how many succeeded.
			run := func(n int, op func() (bool, string)) (time.Duration, int) {
				var next, ok atomic.Int64
				var wg sync.WaitGroup
				start := time.Now()
				for range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for next.Add(1) <= int64(n) {
							good, why := op()
							if good {
								ok.Add(1)
								continue
							}
							mu.Lock()
							if strings.HasPrefix(why, "echo: ") {
								echoErrs[why]++
							} else {
								failed[why]++
							}
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				return time.Since(start), int(ok.Load())
			}
			echoOp := func() (bool, string) {
				if err := echo(ctx, p.a.h, p.b.h.ID(), pub, benchInput); err != nil {
					return false, "echo: " + err.Error()
				}
				return true, ""
			}
			taskOp := func() (bool, string) {
				end, err := p.delegate(ctx)
				if err != nil {
					return false, "submit: " + err.Error()
				}
				return end == completed, end
			}
			// Warm up the connection, the streams and the agent.
			run(workers, echoOp)
			if _, ok := run(8, taskOp); ok != 8 {
				b.Fatalf("warm-up tasks failed: %v", failed)
			}
			clear(failed)
			clear(echoErrs)
			p.a.ends.races.Store(0)

			var echoTime, taskTime time.Duration
			var echoOK, taskOK int
			batches0, sigs0 := p.a.svc.ReceiptChecks()
			b.ResetTimer()
			for round := range 2 {
				n := b.N / 2
				if round == 1 {
					n = b.N - n
				}
				d, ok := run(n, echoOp)
				echoTime, echoOK = echoTime+d, echoOK+ok
				d, ok = run(n, taskOp)
				taskTime, taskOK = taskTime+d, taskOK+ok
			}
			b.StopTimer()
			reportFailures(b, failed, p.a.ends.races.Load())
			for _, k := range slices.Sorted(maps.Keys(echoErrs)) {
				b.Logf("%d echoes failed: %s", echoErrs[k], k)
			}
			echoRate := float64(echoOK) / echoTime.Seconds()
			taskRate := float64(taskOK) / taskTime.Seconds()
			b.ReportMetric(echoRate, "echo_ops/s")
			b.ReportMetric(taskRate, "deleg_ops/s")
			b.ReportMetric(taskRate/echoRate, "ratio")
			b.ReportMetric(float64(b.N-echoOK), "echo_errors")
			// The requester checks the receipts of tasks that end together
			// in one batch (docs/perf.md).
			if batches, sigs := p.a.svc.ReceiptChecks(); batches > batches0 {
				b.ReportMetric(float64(sigs-sigs0)/float64(batches-batches0), "receipts/batch")
			}
		})
	}
}

// reportFailures logs the tasks that did not complete, by status and
// code, and reports how many were rejected and how many failed otherwise
// (a reset stream is failed/provider-vanished), so that such a run is
// visible.
func reportFailures(b *testing.B, failed map[string]int, races int64) {
	rejected, other := 0, 0
	for _, k := range slices.Sorted(maps.Keys(failed)) {
		b.Logf("%d tasks did not complete: %s", failed[k], k)
		if strings.HasPrefix(k, tasks.StatusRejected+"/") {
			rejected += failed[k]
		} else {
			other += failed[k]
		}
	}
	b.ReportMetric(float64(rejected), "rejected")
	b.ReportMetric(float64(other), "failed")
	b.ReportMetric(float64(races), "wait_races")
}

// The raw stream echo: the signed echo's round trip (a new stream, the
// same request, a reply of the same text) with no signature and no
// verification.
const rawEchoProtocol = "/agora-bench/raw-echo/1.0.0"

func serveRawEcho(h host.Host) {
	h.SetStreamHandler(rawEchoProtocol, func(st network.Stream) {
		defer st.Close()
		_ = st.SetDeadline(time.Now().Add(10 * time.Second))
		in, err := io.ReadAll(io.LimitReader(st, maxEcho))
		if err != nil {
			_ = st.Reset()
			return
		}
		reply := fmt.Sprintf(`{"words":2,"lines":1,"chars":11,"input_bytes":%d,"agent":"builtin","skill":"text.stats","status":"completed","task":"Xq3v9kLmNp2RsTuW","ended":%d}`,
			len(in), time.Now().UnixMilli())
		if _, err := st.Write([]byte(reply)); err != nil {
			_ = st.Reset()
		}
	})
}

func rawEcho(ctx context.Context, h host.Host, p peer.ID, payload []byte) error {
	in, err := roundTrip(ctx, h, p, rawEchoProtocol, payload)
	if err != nil {
		return err
	}
	if len(in) < 100 {
		return errBadEcho
	}
	return nil
}

// BenchmarkBaselineStreamEcho is the raw libp2p baseline of the delegation
// benchmarks: a stream echo without a signature between two loopback
// hosts, "sequential" (p50 and p99, against BenchmarkSignedEcho and
// BenchmarkDelegation) and "parallel-64" (64 goroutines, echo_ops/s,
// against BenchmarkDelegationThroughput).
func BenchmarkBaselineStreamEcho(b *testing.B) {
	a, _ := loopbackHost(b)
	h, _ := loopbackHost(b)
	defer a.Close()
	defer h.Close()
	serveRawEcho(h)
	ctx := context.Background()
	if err := a.Connect(ctx, h.Peerstore().PeerInfo(h.ID())); err != nil {
		b.Fatal(err)
	}
	for range 50 {
		if err := rawEcho(ctx, a, h.ID(), benchInput); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("sequential", func(b *testing.B) {
		ds := make([]time.Duration, 0, b.N)
		for range b.N {
			start := time.Now()
			if err := rawEcho(ctx, a, h.ID(), benchInput); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(start))
		}
		b.StopTimer()
		benchsamples.Write(b, "stream-echo-latency", ds)
		p50, p99 := latencies(ds)
		b.ReportMetric(micros(p50), "p50_us")
		b.ReportMetric(micros(p99), "p99_us")
	})
	b.Run("parallel-64", func(b *testing.B) {
		const workers = 64
		var next, failed atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(b.N) {
					if rawEcho(ctx, a, h.ID(), benchInput) != nil {
						failed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		d := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(int64(b.N)-failed.Load())/d.Seconds(), "echo_ops/s")
		b.ReportMetric(float64(failed.Load()), "echo_errors")
	})
}
