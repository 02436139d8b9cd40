package reputation

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

const (
	pA = peer.ID("A")
	pB = peer.ID("B")
	pC = peer.ID("C")
	pD = peer.ID("D")
)

// exact makes the iteration run to the fixed point: the hand-computed
// vectors below are fixed points, and with damping 0.15 the error shrinks
// by about 0.85 a step.
func exact(mod func(*Params)) Params {
	p := Params{Damping: 0.15, Epsilon: 1e-15, MaxIterations: 2000, HalfLife: -1, RaterCap: 1}
	if mod != nil {
		mod(&p)
	}
	return p
}

var receiptSeq int

// rt is a rating on a fresh receipt.
func rt(rater, ratee peer.ID, score, created int64) Rating {
	receiptSeq++
	s := strconv.Itoa(receiptSeq)
	return Rating{Rater: rater, Ratee: ratee, Receipt: "r" + s, ID: "f" + s, Score: score, Created: created}
}

type want struct {
	trust, blame float64
	feedback     int
}

func TestComputeHandExamples(t *testing.T) {
	day := int64(24 * time.Hour / time.Millisecond)
	tests := []struct {
		name    string
		ratings []Rating
		seeds   []peer.ID
		params  Params
		want    map[peer.ID]want
	}{{
		// A→B (s=1). B is dangling, so its mass returns to A:
		// t_B = 0.85·t_A, t_A = 0.85·t_B + 0.15 ⇒ t_A = 0.15/0.2775 = 20/37, t_B = 17/37.
		name:    "seed and one ratee",
		ratings: []Rating{rt(pA, pB, 1000, 1)},
		seeds:   []peer.ID{pA},
		params:  exact(nil),
		want:    map[peer.ID]want{pA: {20. / 37, 0, 0}, pB: {17. / 37, 0, 1}},
	}, {
		// C rates A but nobody trusted rates C: C holds exactly 0 and its
		// rating of A carries nothing.
		name:    "newcomer at zero",
		ratings: []Rating{rt(pA, pB, 1000, 1), rt(pC, pA, 1000, 1)},
		seeds:   []peer.ID{pA},
		params:  exact(nil),
		want:    map[peer.ID]want{pA: {20. / 37, 0, 1}, pB: {17. / 37, 0, 1}, pC: {0, 0, 0}},
	}, {
		// B's only rating is negative: B passes nothing (same vector as
		// above) and C's blame is t_B·1/1.
		name:    "dangling rater and blame",
		ratings: []Rating{rt(pA, pB, 1000, 1), rt(pB, pC, 0, 1)},
		seeds:   []peer.ID{pA},
		params:  exact(nil),
		want:    map[peer.ID]want{pA: {20. / 37, 0, 0}, pB: {17. / 37, 0, 1}, pC: {0, 17. / 37, 1}},
	}, {
		// The later rating of receipt x (1000) supersedes the earlier (0);
		// on equal Created the greater ID wins (receipt y: 1000 over 0).
		// A→B s=1, A→C s=1: t_A = 20/37, t_B = t_C = 17/74.
		name: "de-duplication",
		ratings: []Rating{
			{Rater: pA, Ratee: pB, Receipt: "x", ID: "x2", Score: 1000, Created: 2},
			{Rater: pA, Ratee: pB, Receipt: "x", ID: "x1", Score: 0, Created: 1},
			{Rater: pA, Ratee: pC, Receipt: "y", ID: "b", Score: 1000, Created: 5},
			{Rater: pA, Ratee: pC, Receipt: "y", ID: "a", Score: 0, Created: 5},
		},
		seeds:  []peer.ID{pA},
		params: exact(nil),
		want:   map[peer.ID]want{pA: {20. / 37, 0, 0}, pB: {17. / 74, 0, 1}, pC: {17. / 74, 0, 1}},
	}, {
		// With Before = 2 only the 0 rating of x counts: A is dangling,
		// keeps everything, and blames B fully.
		name: "before cut",
		ratings: []Rating{
			{Rater: pA, Ratee: pB, Receipt: "x", ID: "x2", Score: 1000, Created: 2},
			{Rater: pA, Ratee: pB, Receipt: "x", ID: "x1", Score: 0, Created: 1},
			rt(pB, pC, 1000, 3),
		},
		seeds:  []peer.ID{pA},
		params: exact(func(p *Params) { p.Before = 2 }),
		want:   map[peer.ID]want{pA: {1, 0, 0}, pB: {0, 1, 1}},
	}, {
		// Now = newest Created = 90 days; A→B is one half-life old (w=½),
		// A→C new (w=1): c_AB = 1/3, c_AC = 2/3. B, C dangling:
		// t_A = 20/37, t_B = 0.85·t_A/3 = 17/111, t_C = 34/111.
		name:    "decay halves weight at one half-life",
		ratings: []Rating{rt(pA, pB, 1000, 0), rt(pA, pC, 1000, 90*day)},
		seeds:   []peer.ID{pA},
		params:  exact(func(p *Params) { p.HalfLife = 90 * 24 * time.Hour }),
		want:    map[peer.ID]want{pA: {20. / 37, 0, 0}, pB: {17. / 111, 0, 1}, pC: {34. / 111, 0, 1}},
	}, {
		// PairCap 2: five 1000s from A to B count as s = 5·2/5 = 2; one to
		// C as 1; three 1000s and a 0 to D as (3-1)·2/4 = 1 (a positive
		// balance, so no blame). c = 2/4, 1/4, 1/4: t_A = 20/37,
		// t_B = 0.85·t_A/2 = 8.5/37, t_C = t_D = 4.25/37.
		name: "pair cap",
		ratings: []Rating{
			rt(pA, pB, 1000, 1), rt(pA, pB, 1000, 1), rt(pA, pB, 1000, 1), rt(pA, pB, 1000, 1), rt(pA, pB, 1000, 1),
			rt(pA, pC, 1000, 1),
			rt(pA, pD, 1000, 1), rt(pA, pD, 1000, 1), rt(pA, pD, 1000, 1), rt(pA, pD, 0, 1),
		},
		seeds:  []peer.ID{pA},
		params: exact(func(p *Params) { p.PairCap = 2 }),
		want: map[peer.ID]want{
			pA: {20. / 37, 0, 0}, pB: {8.5 / 37, 0, 5}, pC: {4.25 / 37, 0, 1}, pD: {4.25 / 37, 0, 4},
		},
	}, {
		// A⇄B, RaterCap ¼. Guess t_A > ¼ ≥ t_B: o_A = ¼, o_B = t_B,
		// R = t_A - ¼. t_B = 0.85·¼ = 0.2125; t_A = 0.85·t_B + 0.85·(t_A-¼) + 0.15
		// = 0.85 - 0.0625 = 0.7875 (uncapped it would be 20/37 ≈ 0.54).
		name:    "rater cap",
		ratings: []Rating{rt(pA, pB, 1000, 1), rt(pB, pA, 1000, 1)},
		seeds:   []peer.ID{pA},
		params:  exact(func(p *Params) { p.RaterCap = 0.25 }),
		want:    map[peer.ID]want{pA: {0.7875, 0, 1}, pB: {0.2125, 0, 1}},
	}, {
		// The self-ratings are dropped, D (who only rates itself) is not a
		// peer; the vector is the first example's.
		name:    "self-rating ignored",
		ratings: []Rating{rt(pA, pB, 1000, 1), rt(pA, pA, 1000, 1), rt(pB, pB, 0, 1), rt(pD, pD, 1000, 1)},
		seeds:   []peer.ID{pA},
		params:  exact(nil),
		want:    map[peer.ID]want{pA: {20. / 37, 0, 0}, pB: {17. / 37, 0, 1}},
	}, {
		// 5000 → 1000 (s=1), -7 → 0 (s=-1). A's evidence is half positive,
		// so c_AB = ½ and the other half of what A passes returns to A:
		// t_B = 0.85·t_A/2, t_A = 1 - t_B ⇒ t_A = 40/57, t_B = 17/57.
		// Blame_C = t_A·½ = 20/57.
		name:    "scores clamped",
		ratings: []Rating{rt(pA, pB, 5000, 1), rt(pA, pC, -7, 1)},
		seeds:   []peer.ID{pA},
		params:  exact(nil),
		want:    map[peer.ID]want{pA: {40. / 57, 0, 0}, pB: {17. / 57, 0, 1}, pC: {0, 20. / 57, 1}},
	}, {
		// No seeds: p = ⅓ each. A→B, B→A, C→A, nobody dangling:
		// t_C = 0.05, t_B = 0.85·t_A + 0.05, t_A = 0.85·(t_B + t_C) + 0.05
		// ⇒ t_A = 0.135/0.2775 = 18/37, t_B = 17.15/37, t_C = 1.85/37.
		name:    "no seeds",
		ratings: []Rating{rt(pA, pB, 1000, 1), rt(pB, pA, 1000, 1), rt(pC, pA, 1000, 1)},
		params:  exact(nil),
		want:    map[peer.ID]want{pA: {18. / 37, 0, 2}, pB: {17.15 / 37, 0, 1}, pC: {1.85 / 37, 0, 0}},
	}, {
		// A score of 500 is no evidence: s = 0, A is dangling, B at zero.
		name:    "neutral score",
		ratings: []Rating{rt(pA, pB, 500, 1)},
		seeds:   []peer.ID{pA, pA},
		params:  exact(nil),
		want:    map[peer.ID]want{pA: {1, 0, 0}, pB: {0, 0, 1}},
	}, {
		name:   "seeds only",
		seeds:  []peer.ID{pB, pA, pB},
		params: exact(nil),
		want:   map[peer.ID]want{pA: {0.5, 0, 0}, pB: {0.5, 0, 0}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := Compute(tc.ratings, tc.seeds, tc.params)
			if len(res.Entries) != len(tc.want) {
				t.Fatalf("%d entries, want %d: %+v", len(res.Entries), len(tc.want), res.Entries)
			}
			for id, w := range tc.want {
				e, ok := res.Get(id)
				if !ok {
					t.Fatalf("no entry for %s", string(id))
				}
				if math.Abs(e.Trust-w.trust) > 1e-9 || math.Abs(e.Blame-w.blame) > 1e-9 || e.Feedback != w.feedback {
					t.Errorf("%s: trust %.12f blame %.12f feedback %d, want %.12f %.12f %d",
						string(id), e.Trust, e.Blame, e.Feedback, w.trust, w.blame, w.feedback)
				}
			}
			checkInvariants(t, res)
		})
	}
}

func TestDistrustFlowsBack(t *testing.T) {
	// A (seed) was served well by B and badly by C; B vouches for C and D.
	// Row weights: c_AB = ½, β_AC = ½; c_BC = c_BD = ½. With q = 0.85·½:
	//   C earns q·t_B but is blamed t_A/2 > q·t_B: C keeps nothing and its
	//   deficit δ_C = t_A/2 - q·t_B flows back to B, its voucher;
	//   B earns q·t_A and its distrust 0.85·½·δ_C cancels part of it:
	//   t_B = q·t_A - q·(t_A/2 - q·t_B) ⇒ t_B = (q/2)/(1-q²)·t_A;
	//   t_D = q·t_B; everything else returns to A.
	// With q = 17/40: t_A = 46/63 = 2622/3591, t_B = 680/3591,
	// t_D = 289/3591, Blame_C = Distrust_C = 1311/3591,
	// Distrust_B = q·δ_C = q·1022/3591.
	const d = 3591.
	q := 17. / 40
	rs := []Rating{rt(pA, pB, 1000, 1), rt(pA, pC, 0, 1), rt(pB, pC, 1000, 1), rt(pB, pD, 1000, 1)}
	res := Compute(rs, []peer.ID{pA}, exact(nil))
	checkInvariants(t, res)
	want := map[peer.ID]Entry{
		pA: {Trust: 2622 / d},
		pB: {Trust: 680 / d, Distrust: q * 1022 / d},
		pC: {Trust: 0, Blame: 1311 / d, Distrust: 1311 / d, Distrusted: true},
		pD: {Trust: 289 / d},
	}
	for id, w := range want {
		e, _ := res.Get(id)
		if math.Abs(e.Trust-w.Trust) > 1e-9 || math.Abs(e.Blame-w.Blame) > 1e-9 ||
			math.Abs(e.Distrust-w.Distrust) > 1e-9 || e.Distrusted != w.Distrusted ||
			math.Abs(e.Standing-(w.Trust-w.Blame/0.15)) > 1e-9 {
			t.Errorf("%s = %+v, want %+v", string(id), e, w)
		}
	}
	if e, _ := res.Get(pC); e.Trust != 0 {
		t.Errorf("distrusted C holds %v, want exactly 0", e.Trust)
	}
}

func TestNewcomerExactlyZero(t *testing.T) {
	// Newcomers rated only by untrusted peers stay at exactly 0, with the
	// default parameters (which stop early).
	rs := []Rating{rt(pA, pB, 900, 1), rt(pB, pA, 900, 2), rt(pC, pD, 1000, 3), rt(pD, pC, 1000, 4)}
	res := Compute(rs, []peer.ID{pA}, DefaultParams())
	for _, id := range []peer.ID{pC, pD} {
		if e, _ := res.Get(id); e.Trust != 0 {
			t.Errorf("%s: trust %v, want exactly 0", string(id), e.Trust)
		}
	}
}

func TestRankLevelGet(t *testing.T) {
	// A seeds, rates B and C equally: B and C tie, ranked by peer ID.
	rs := []Rating{rt(pA, pC, 1000, 1), rt(pA, pB, 1000, 1)}
	res := Compute(rs, []peer.ID{pA}, exact(nil))
	want := []peer.ID{pA, pB, pC}
	for r, e := range res.Entries {
		if e.Peer != want[r] || e.Rank != r+1 {
			t.Fatalf("entry %d = %s rank %d, want %s rank %d", r, string(e.Peer), e.Rank, string(want[r]), r+1)
		}
	}
	// t_A = 20/37, t_B = t_C = 17/74: Level = round(1000·17/40) = 425.
	if l := res.Level(pA); l != 1000 {
		t.Errorf("Level(A) = %d, want 1000", l)
	}
	if l := res.Level(pB); l != 425 {
		t.Errorf("Level(B) = %d, want 425", l)
	}
	if l := res.Level(pD); l != 0 {
		t.Errorf("Level(unknown) = %d, want 0", l)
	}
	if tr := res.Trust(pD); tr != 0 {
		t.Errorf("Trust(unknown) = %v", tr)
	}
	var empty Result
	if _, ok := empty.Get(pA); ok || empty.Level(pA) != 0 || empty.Trust(pA) != 0 {
		t.Error("empty result answers for A")
	}
	if r := Compute(nil, nil, Params{}); len(r.Entries) != 0 {
		t.Errorf("nothing in, %d entries out", len(r.Entries))
	}
	// A Result built by hand still answers.
	hand := Result{Entries: []Entry{{Peer: pB, Trust: 0.8, Rank: 1}, {Peer: pA, Trust: 0.2, Rank: 2}}}
	if l := hand.Level(pA); l != 250 {
		t.Errorf("hand-built Level(A) = %d, want 250", l)
	}
	// Concurrent readers (run with -race).
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				res.Get(pB)
				res.Level(pC)
			}
		})
	}
	wg.Wait()
}

func TestDeterminism(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	peers := make([]peer.ID, 60)
	for i := range peers {
		peers[i] = peer.ID("peer-" + strconv.Itoa(rng.IntN(1e9)))
	}
	var rs []Rating
	for x := range 3000 {
		i, j := rng.IntN(len(peers)), rng.IntN(len(peers))
		// Few receipts per pair, so de-duplication and ties matter.
		rec := "rcpt-" + strconv.Itoa(i) + "-" + strconv.Itoa(j) + "-" + strconv.Itoa(rng.IntN(3))
		rs = append(rs, Rating{
			Rater: peers[i], Ratee: peers[j], Receipt: rec, ID: "id-" + strconv.Itoa(x%500),
			Score: rng.Int64N(1200) - 100, Created: rng.Int64N(1e10),
		})
	}
	seeds := peers[:5]
	p := Params{HalfLife: 24 * time.Hour, PairCap: 3, RaterCap: 0.1}
	first := Compute(rs, seeds, p)
	checkInvariants(t, first)
	for k := range 20 {
		rng.Shuffle(len(rs), func(a, b int) { rs[a], rs[b] = rs[b], rs[a] })
		got := Compute(rs, seeds, p)
		if got.Iterations != first.Iterations || math.Float64bits(got.Residual) != math.Float64bits(first.Residual) {
			t.Fatalf("shuffle %d: iterations/residual differ", k)
		}
		for x, e := range got.Entries {
			f := first.Entries[x]
			if e.Peer != f.Peer || e.Rank != f.Rank || e.Feedback != f.Feedback ||
				math.Float64bits(e.Trust) != math.Float64bits(f.Trust) ||
				math.Float64bits(e.Blame) != math.Float64bits(f.Blame) {
				t.Fatalf("shuffle %d: entry %d = %+v, want %+v", k, x, e, f)
			}
		}
	}
}

func TestDeterminismParallel(t *testing.T) {
	// Large enough for the parallel paths (ratings ≥ parallelMin, peers ≥
	// 4096): the result must not depend on GOMAXPROCS or on the order.
	rng := rand.New(rand.NewPCG(3, 4))
	const peers = 5000
	var rs []Rating
	for x := range parallelMin + 5000 {
		i, j := rng.IntN(peers), int(peers*rng.Float64()*rng.Float64())
		score := int64(800 + rng.IntN(201))
		if rng.IntN(8) == 0 {
			score = int64(rng.IntN(200))
		}
		rs = append(rs, Rating{
			Rater: peer.ID("p" + strconv.Itoa(i)), Ratee: peer.ID("p" + strconv.Itoa(j)),
			Receipt: "r" + strconv.Itoa(x%(parallelMin-100)), ID: "f" + strconv.Itoa(x),
			Score: score, Created: rng.Int64N(1e11),
		})
	}
	seeds := []peer.ID{"p1", "p2", "p3"}
	first := Compute(rs, seeds, Params{})
	checkInvariants(t, first)
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	for k, procs := range []int{1, 2, 3} {
		runtime.GOMAXPROCS(procs)
		rng.Shuffle(len(rs), func(a, b int) { rs[a], rs[b] = rs[b], rs[a] })
		got := Compute(rs, seeds, Params{})
		if got.Iterations != first.Iterations || len(got.Entries) != len(first.Entries) {
			t.Fatalf("run %d: %d iterations, %d entries; want %d, %d", k, got.Iterations, len(got.Entries), first.Iterations, len(first.Entries))
		}
		for x, e := range got.Entries {
			f := first.Entries[x]
			if e.Peer != f.Peer || e.Feedback != f.Feedback || e.Distrusted != f.Distrusted ||
				math.Float64bits(e.Trust) != math.Float64bits(f.Trust) ||
				math.Float64bits(e.Blame) != math.Float64bits(f.Blame) ||
				math.Float64bits(e.Distrust) != math.Float64bits(f.Distrust) {
				t.Fatalf("GOMAXPROCS %d: entry %d = %+v, want %+v", procs, x, e, f)
			}
		}
	}
}

// checkInvariants holds for every result.
func checkInvariants(t testing.TB, res Result) {
	t.Helper()
	var sum float64
	for x, e := range res.Entries {
		if math.IsNaN(e.Trust) || e.Trust < 0 || e.Trust > 1 || math.IsNaN(e.Blame) || e.Blame < 0 || e.Blame > 1 ||
			math.IsNaN(e.Distrust) || math.IsInf(e.Distrust, 0) || e.Distrust < 0 || math.IsNaN(e.Standing) || e.Standing > e.Trust {
			t.Fatalf("entry %+v out of range", e)
		}
		if e.Rank != x+1 {
			t.Fatalf("entry %d has rank %d", x, e.Rank)
		}
		if x > 0 {
			prev := res.Entries[x-1]
			if prev.Trust < e.Trust || prev.Trust == e.Trust && prev.Peer >= e.Peer {
				t.Fatalf("entries %d and %d out of order", x-1, x)
			}
		}
		if got, ok := res.Get(e.Peer); !ok || got != e {
			t.Fatalf("Get(%q) = %+v, %v", string(e.Peer), got, ok)
		}
		if l := res.Level(e.Peer); l < 0 || l > 1000 {
			t.Fatalf("level %d", l)
		}
		sum += e.Trust
	}
	if len(res.Entries) > 0 && math.Abs(sum-1) > 1e-9 {
		t.Fatalf("trust sums to %v", sum)
	}
}
