package reputation

import (
	"encoding/base32"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The benchmarks report a full recomputation against its raw baseline, as
// docs/perf.md wants: the ratio of BenchmarkCompute10kPeers1MRatings to
// BenchmarkBaselineSpMV, measured in the same run, on the same ratings.
//
//	go test -run '^$' -bench . -benchtime 3x ./registry/reputation/
//
// The baseline is what any EigenTrust must do at the least: 50 plain CSR
// sparse matrix-vector products over the rating graph, prebuilt. Compute
// adds parsing the ratings, de-duplication, decay, the per-pair evidence,
// the transposition, caps, blame and ranking.

const (
	benchPeers   = 10_000
	benchRatings = 1_000_000
)

var benchSet = sync.OnceValues(func() ([]Rating, []peer.ID) {
	rng := rand.New(rand.NewPCG(7, 7))
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding)
	text := func(prefix string, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return prefix + b32.EncodeToString(b)
	}
	peers := make([]peer.ID, benchPeers)
	for i := range peers {
		peers[i] = peer.ID(text("", 38)) // the size of an Ed25519 peer ID
	}
	const now = int64(1_800_000_000_000)
	rs := make([]Rating, benchRatings)
	for x := range rs {
		i := rng.IntN(benchPeers)
		// Some providers are far more popular than others.
		j := int(float64(benchPeers) * rng.Float64() * rng.Float64())
		if j == i {
			j = (j + 1) % benchPeers
		}
		score := int64(900 + rng.IntN(101))
		if rng.IntN(10) == 0 {
			score = int64(rng.IntN(101))
		}
		rs[x] = Rating{
			Rater: peers[i], Ratee: peers[j],
			Receipt: text("bafyrei", 32), ID: text("bafyrei", 32), // like CIDv1 base32 text
			Score: score, Created: now - rng.Int64N(365*24*3600*1000),
		}
	}
	return rs, peers[:10]
})

func BenchmarkCompute10kPeers1MRatings(b *testing.B) {
	rs, seeds := benchSet()
	b.ResetTimer()
	var res Result
	for b.Loop() {
		res = Compute(rs, seeds, DefaultParams())
	}
	b.ReportMetric(float64(res.Iterations), "iterations")
	b.ReportMetric(float64(len(res.Entries)), "peers")
}

func BenchmarkBaselineSpMV(b *testing.B) {
	rs, _ := benchSet()
	// Build a CSR over peer indices outside the timer: one entry per
	// rating, rows of equal weights (the baseline does not aggregate).
	index := make(map[peer.ID]int32)
	id := func(p peer.ID) int32 {
		k, ok := index[p]
		if !ok {
			k = int32(len(index))
			index[p] = k
		}
		return k
	}
	rowLen := make([]int, benchPeers+1)
	pairs := make([][2]int32, len(rs))
	for x, r := range rs {
		pairs[x] = [2]int32{id(r.Rater), id(r.Ratee)}
		rowLen[pairs[x][0]+1]++
	}
	n := len(index)
	start := rowLen[:n+1]
	for i := 1; i <= n; i++ {
		start[i] += start[i-1]
	}
	cols := make([]int32, len(rs))
	vals := make([]float64, len(rs))
	fill := append([]int(nil), start[:n]...)
	for _, pr := range pairs {
		i := pr[0]
		cols[fill[i]] = pr[1]
		vals[fill[i]] = 1 / float64(start[i+1]-start[i])
		fill[i]++
	}
	t := make([]float64, n)
	tn := make([]float64, n)
	b.ResetTimer()
	for b.Loop() {
		for i := range t {
			t[i] = 1 / float64(n)
		}
		for range 50 {
			for j := range tn {
				tn[j] = 0
			}
			for i := range n {
				ti := t[i]
				for k := start[i]; k < start[i+1]; k++ {
					tn[cols[k]] += ti * vals[k]
				}
			}
			for j := range tn {
				tn[j] = 0.85*tn[j] + 0.15/float64(n)
			}
			t, tn = tn, t
		}
	}
	b.ReportMetric(50, "iterations")
}
