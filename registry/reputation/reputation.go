package reputation

import (
	"cmp"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Rating is one feedback record, already verified by the registry.
type Rating struct {
	Rater, Ratee peer.ID
	Receipt      string // the rated receipt's CID (text); one rating per (Rater, Receipt) counts: the latest by (Created, ID)
	ID           string // the feedback record's CID (text), tie-break
	Score        int64  // 0..1000 (thousandths); values outside are clamped
	Created      int64  // unix ms
}

// Params tunes Compute. Zero fields take the defaults of DefaultParams.
type Params struct {
	Damping       float64       // weight of the seed vector p in t = (1-a)·Cᵀt + a·p; default 0.15
	Epsilon       float64       // stop when the L1 change is below it; default 1e-6
	MaxIterations int           // default 50
	HalfLife      time.Duration // a rating's weight halves every HalfLife of age (age = Now - Created); default 90 days; negative = no decay
	Now           int64         // unix ms at which ages are measured; 0 = the newest Created among the ratings counted
	Before        int64         // only ratings with Created < Before count; 0 = all
	RaterCap      float64       // the most trust one rater passes on, as a share of the total (default 0.25); the excess goes to the seeds
	PairCap       float64       // the most (decayed) rating weight one rater→ratee pair counts, positive or negative (default 20)
}

// DefaultParams returns the parameters of the community trust vector:
//
//   - Damping 0.15: a walk restarts at the seeds one step in about seven,
//     which bounds what a closed group can amplify (see the package doc).
//   - Epsilon 1e-6 and MaxIterations 50: trust levels are used in
//     thousandths, far coarser than the residual.
//   - HalfLife 90 days: a quarter-old rating counts half; peers must keep
//     serving well to keep their standing.
//   - RaterCap 0.25: no single rater, a founder included, decides where more
//     than a quarter of the community's trust goes.
//   - PairCap 20: one requester cannot make (or break) a provider by rating
//     it more than about twenty times.
func DefaultParams() Params {
	return Params{
		Damping:       0.15,
		Epsilon:       1e-6,
		MaxIterations: 50,
		HalfLife:      90 * 24 * time.Hour,
		RaterCap:      0.25,
		PairCap:       20,
	}
}

// withDefaults fills zero (and meaningless) fields with the defaults.
func (p Params) withDefaults() Params {
	d := DefaultParams()
	if !(p.Damping > 0) { // also NaN
		p.Damping = d.Damping
	}
	if p.Damping > 1 {
		p.Damping = 1
	}
	if !(p.Epsilon > 0) {
		p.Epsilon = d.Epsilon
	}
	if p.MaxIterations <= 0 {
		p.MaxIterations = d.MaxIterations
	}
	if p.HalfLife == 0 {
		p.HalfLife = d.HalfLife
	}
	if !(p.RaterCap > 0) {
		p.RaterCap = d.RaterCap
	}
	if !(p.PairCap > 0) {
		p.PairCap = d.PairCap
	}
	return p
}

// Entry is one peer's standing.
type Entry struct {
	Peer     peer.ID
	Trust    float64 // share of the total, vector sums to 1 over all peers (seeds included)
	Rank     int     // 1-based, by Trust desc, ties by peer ID ascending (byte order)
	Feedback int     // ratings received that counted (after de-duplication and the Before cut)
	Blame    float64 // trust-weighted share of negative evidence about this peer, 0..1

	// Distrust is the peer's blame plus the deficits, inherited back, of
	// the peers it vouches for (package doc, step 5), at most 1/Damping.
	// It cancels trust the peer earned. A peer whose distrust exceeds what
	// it earned is Distrusted and holds no trust, seeds excepted.
	Distrust   float64
	Distrusted bool

	// Standing is Trust - Blame/Damping: trust net of the evidence against
	// the peer, scaled to the amplification the iteration gives trust.
	// Rank providers by Standing; below 0, the community's trusted raters
	// speak more against the peer than for it.
	Standing float64
	// Seed says the peer is one of the seeds: pre-trusted, never
	// Distrusted (whatever its Standing).
	Seed bool
}

// Result is a computed trust vector. It is read-only after Compute and safe
// for concurrent use.
type Result struct {
	Entries    []Entry // every peer that is a seed, a rater or a ratee; sorted by Rank
	Iterations int
	Residual   float64 // L1 change in the last iteration

	byPeer   []int32 // positions in Entries, ordered by peer ID
	maxTrust float64
}

// Get returns p's entry.
func (r Result) Get(p peer.ID) (Entry, bool) {
	if r.byPeer == nil || len(r.byPeer) != len(r.Entries) {
		// A Result built by hand, not by Compute.
		for _, e := range r.Entries {
			if e.Peer == p {
				return e, true
			}
		}
		return Entry{}, false
	}
	i := sort.Search(len(r.byPeer), func(i int) bool { return r.Entries[r.byPeer[i]].Peer >= p })
	if i < len(r.byPeer) && r.Entries[r.byPeer[i]].Peer == p {
		return r.Entries[r.byPeer[i]], true
	}
	return Entry{}, false
}

// Trust returns p's share of the total, 0 for an unknown peer.
func (r Result) Trust(p peer.ID) float64 {
	e, _ := r.Get(p)
	return e.Trust
}

// Level returns p's trust relative to the most trusted peer, in thousandths
// (round(1000·Trust(p)/max Trust)), 0 when the vector is empty or p unknown.
// Policy thresholds compare against Level, so they do not depend on the
// size of the community.
func (r Result) Level(p peer.ID) int64 {
	m := r.maxTrust
	if r.byPeer == nil && len(r.Entries) > 0 {
		m = r.Entries[0].Trust
	}
	if !(m > 0) {
		return 0
	}
	l := int64(math.Round(1000 * r.Trust(p) / m))
	return min(max(l, 0), 1000)
}

// rec is a counted rating, compact for sorting. The rater is implied by the
// bucket the rec sits in.
type rec struct {
	created int64
	key     uint32 // receiptKey(Receipt): groups equal receipts, compared first
	i       int32  // index in the caller's ratings
	ratee   int32
	score   int32 // clamped
}

// receiptKey is a cheap deterministic key of a receipt CID: its length and
// last bytes (the random part of a CID). Equal receipts get equal keys;
// unequal ones that collide are told apart by comparing the full strings.
func receiptKey(s string) uint32 {
	h := uint32(2166136261) ^ uint32(len(s))
	for k := max(0, len(s)-8); k < len(s); k++ {
		h ^= uint32(s[k])
		h *= 16777619
	}
	return h
}

// parallelMin is the number of ratings below which Compute uses one
// goroutine: spawning costs more than it saves.
const parallelMin = 1 << 16

// Compute returns the trust vector of ratings seeded by seeds. It is a pure
// function: the same ratings, in any order, and the same seeds and params
// give the same result, bit for bit. The package doc states the algorithm.
//
// Compute uses up to GOMAXPROCS goroutines on large inputs. Each computes
// whole raters (or, in the iteration, whole peers) and every sum runs in a
// fixed order, so the result does not depend on their number or timing.
func Compute(ratings []Rating, seeds []peer.ID, p Params) Result {
	p = p.withDefaults()
	if len(ratings) > math.MaxInt32 {
		ratings = ratings[:math.MaxInt32] // indices are int32; no registry holds that many
	}
	workers := 1
	if len(ratings) >= parallelMin {
		workers = max(1, runtime.GOMAXPROCS(0))
	}

	// Intern the peers. Each worker numbers the peers of its range of
	// ratings in order of appearance; then all get final indices in peer ID
	// order. pair[x] is rating x's rater and ratee, rater -1 if it does not
	// count.
	chunk := (len(ratings) + workers - 1) / workers
	pair := make([][2]int32, len(ratings))
	localIDs := make([][]peer.ID, workers)
	newest := make([]int64, workers) // the newest counted rating is always kept
	parallel(workers, func(w int) {
		index := make(map[peer.ID]int32, 1024)
		var ids []peer.ID
		intern := func(id peer.ID) int32 {
			if k, ok := index[id]; ok {
				return k
			}
			k := int32(len(ids))
			index[id] = k
			ids = append(ids, id)
			return k
		}
		var lastRater, lastRatee peer.ID
		var lastRaterK, lastRateeK int32 = -1, -1
		now := int64(math.MinInt64)
		for x := w * chunk; x < min((w+1)*chunk, len(ratings)); x++ {
			r := &ratings[x]
			if p.Before != 0 && r.Created >= p.Before || r.Rater == r.Ratee {
				pair[x][0] = -1
				continue
			}
			if lastRaterK < 0 || r.Rater != lastRater {
				lastRater, lastRaterK = r.Rater, intern(r.Rater)
			}
			if lastRateeK < 0 || r.Ratee != lastRatee {
				lastRatee, lastRateeK = r.Ratee, intern(r.Ratee)
			}
			pair[x] = [2]int32{lastRaterK, lastRateeK}
			now = max(now, r.Created)
		}
		localIDs[w], newest[w] = ids, now
	})
	now := slices.Max(newest)
	if p.Now != 0 {
		now = p.Now
	}
	peers := slices.Clone(seeds)
	for _, ids := range localIDs {
		peers = append(peers, ids...)
	}
	slices.Sort(peers)
	peers = slices.Compact(peers)
	n := len(peers)
	if n == 0 {
		return Result{}
	}
	index := make(map[peer.ID]int32, n)
	for f, id := range peers {
		index[id] = int32(f)
	}
	seedIdx := make([]int32, 0, len(seeds))
	for _, s := range seeds {
		seedIdx = append(seedIdx, index[s])
	}
	slices.Sort(seedIdx)
	seedIdx = slices.Compact(seedIdx)

	// Bucket the ratings by rater (a counting sort). Worker w fills its
	// own slots of each bucket from its own range of ratings.
	slot := make([][]int, workers) // slot[w][f]: where w puts its next rating by f
	parallel(workers, func(w int) {
		final := make([]int32, len(localIDs[w]))
		for k, id := range localIDs[w] {
			final[k] = index[id]
		}
		count := make([]int, n+1)
		for x := w * chunk; x < min((w+1)*chunk, len(ratings)); x++ {
			if pr := pair[x]; pr[0] >= 0 {
				pair[x] = [2]int32{final[pr[0]], final[pr[1]]}
				count[final[pr[0]]+1]++
			}
		}
		slot[w] = count
	})
	localIDs, index = nil, nil
	start := make([]int, n+1) // bucket f is bucketed[start[f]:start[f+1]]
	for f := range n {
		start[f+1] = start[f]
		for w := range workers {
			c := slot[w][f+1]
			slot[w][f] = start[f+1]
			start[f+1] += c
		}
	}
	bucketed := make([]rec, start[n])
	parallel(workers, func(w int) {
		next := slot[w]
		for x := w * chunk; x < min((w+1)*chunk, len(pair)); x++ {
			pr := pair[x]
			if pr[0] < 0 {
				continue
			}
			r := &ratings[x]
			bucketed[next[pr[0]]] = rec{
				created: r.Created,
				key:     receiptKey(r.Receipt),
				i:       int32(x),
				ratee:   pr[1],
				score:   int32(min(max(r.Score, 0), 1000)),
			}
			next[pr[0]]++
		}
	})
	pair, slot = nil, nil

	// Per rater: sort the bucket canonically (by receipt, then Created,
	// then ID, with the ratee and score as a last resort for malformed
	// duplicates), keep the last rating of each receipt, and sum the
	// evidence per ratee in that order. Row f of the evidence matrix is
	// cols/vals[start[f]:rowEnd[f]].
	byReceipt := func(a, b rec) int {
		if c := cmp.Compare(a.key, b.key); c != 0 {
			return c
		}
		return cmp.Compare(ratings[a.i].Receipt, ratings[b.i].Receipt)
	}
	canonical := func(a, b rec) int {
		if c := byReceipt(a, b); c != 0 {
			return c
		}
		if c := cmp.Compare(a.created, b.created); c != 0 {
			return c
		}
		if c := cmp.Compare(ratings[a.i].ID, ratings[b.i].ID); c != 0 {
			return c
		}
		if c := cmp.Compare(a.ratee, b.ratee); c != 0 {
			return c
		}
		return cmp.Compare(a.score, b.score)
	}
	halfLifeMs := float64(p.HalfLife) / float64(time.Millisecond)
	cols := make([]int32, len(bucketed))
	vals := make([]float64, len(bucketed))
	rowEnd := make([]int, n)
	absSum := make([]float64, n) // Σ_k |s_ik|
	feedback := make([][]int, workers)
	var nextRater atomic.Int64
	const raterBlock = 64
	parallel(workers, func(w int) {
		fb := make([]int, n)
		feedback[w] = fb
		wsum := make([]float64, n)
		ssum := make([]float64, n)
		seen := make([]int32, n) // rater+1 that last touched the ratee
		var touched []int32
		for {
			lo := int(nextRater.Add(raterBlock)) - raterBlock
			if lo >= n {
				return
			}
			for f := lo; f < min(lo+raterBlock, n); f++ {
				b := bucketed[start[f]:start[f+1]]
				slices.SortFunc(b, canonical)
				touched = touched[:0]
				for x, r := range b {
					if x+1 < len(b) && byReceipt(r, b[x+1]) == 0 {
						continue // superseded
					}
					j := r.ratee
					if seen[j] != int32(f)+1 {
						seen[j] = int32(f) + 1
						wsum[j], ssum[j] = 0, 0
						touched = append(touched, j)
					}
					wt := 1.0
					if p.HalfLife > 0 && r.created < now {
						age := float64(now) - float64(r.created) // cannot overflow
						wt = decay(age, halfLifeMs)
					}
					wsum[j] += wt
					ssum[j] += float64(wt * float64(r.score-500) / 500)
					fb[j]++
				}
				// touched is in order of first appearance in the
				// canonical order, so the row sums are deterministic.
				k := start[f]
				var as float64
				for _, j := range touched {
					s := ssum[j]
					if wsum[j] > p.PairCap {
						s *= p.PairCap / wsum[j]
					}
					cols[k], vals[k] = j, s
					k++
					as += math.Abs(s)
				}
				rowEnd[f], absSum[f] = k, as
			}
		}
	})
	bucketed = nil
	for w := 1; w < workers; w++ {
		for j, c := range feedback[w] {
			feedback[0][j] += c
		}
	}

	// Transpose (by ratee, raters ascending), so that each step pulls and
	// sums every peer's inflow in a fixed order and peers can be computed
	// in parallel. w[k] = s_ij/Σ_k|s_ik|: c_ij when positive, -β_ij when
	// negative.
	colStart := make([]int, n+1)
	for i := range n {
		for k := start[i]; k < rowEnd[i]; k++ {
			if vals[k] != 0 {
				colStart[cols[k]+1]++
			}
		}
	}
	for j := 1; j <= n; j++ {
		colStart[j] += colStart[j-1]
	}
	fill := slices.Clone(colStart[:n])
	inRow := make([]int32, colStart[n])
	inW := make([]float64, colStart[n])
	for i := range n {
		for k := start[i]; k < rowEnd[i]; k++ {
			if s := vals[k]; s != 0 {
				j := cols[k]
				inRow[fill[j]] = int32(i)
				inW[fill[j]] = s / absSum[i]
				fill[j]++
			}
		}
	}
	fill = nil

	seed := make([]float64, n)
	if len(seedIdx) == 0 {
		for j := range seed {
			seed[j] = 1 / float64(n)
		}
	} else {
		for _, j := range seedIdx {
			seed[j] = 1 / float64(len(seedIdx))
		}
	}

	// The iteration. Step k reads t, out (what each rater passes on) and
	// deficit of step k-1 and writes, per peer j independently, its blame,
	// distrust, new deficit and the trust it keeps (tn, before the mass
	// returned to the seeds).
	a := p.Damping
	t := slices.Clone(seed)
	tn := make([]float64, n)
	out := make([]float64, n)
	blame := make([]float64, n)
	dist := make([]float64, n)
	deficit := make([]float64, n)
	deficitN := make([]float64, n)
	step := func(lo, hi int) {
		for j := lo; j < hi; j++ {
			var in, b float64
			for k := colStart[j]; k < colStart[j+1]; k++ {
				if w := inW[k]; w > 0 {
					in += float64(out[inRow[k]] * w)
				} else {
					b -= float64(out[inRow[k]] * w)
				}
			}
			var inherited float64
			for k := start[j]; k < rowEnd[j]; k++ {
				if s := vals[k]; s > 0 && deficit[cols[k]] > 0 {
					inherited += float64(s * deficit[cols[k]])
				}
			}
			d := b
			if inherited > 0 {
				d += float64((1 - a) * inherited / absSum[j])
			}
			earned := float64((1 - a) * in) // rounded: never fused with the subtraction below
			cut := 0.0
			if seed[j] == 0 || len(seedIdx) == 0 {
				cut = min(earned, d)
			}
			blame[j], dist[j], deficitN[j], tn[j] = b, d, d-cut, earned-cut
		}
	}
	chunks := workers
	if n < 4096 {
		chunks = 1
	}
	res := Result{}
	for it := 1; it <= p.MaxIterations; it++ {
		var total float64
		for i := range n {
			total += t[i]
			out[i] = min(t[i], p.RaterCap)
		}
		parallel(chunks, func(w int) { step(w*n/chunks, (w+1)*n/chunks) })
		var kept float64
		for j := range n {
			kept += tn[j]
		}
		// Dangling and capped mass, the negative shares, the cut and the
		// restart all return to the seeds.
		back := total - kept
		var sum float64
		for j := range n {
			tn[j] += float64(back * seed[j])
			sum += tn[j]
		}
		var diff float64
		for j := range n {
			tn[j] /= sum
			diff += math.Abs(tn[j] - t[j])
		}
		t, tn = tn, t
		deficit, deficitN = deficitN, deficit
		res.Iterations, res.Residual = it, diff
		if diff < p.Epsilon {
			break
		}
	}
	// Blame of the final vector.
	parallel(chunks, func(w int) {
		for j := w * n / chunks; j < (w+1)*n/chunks; j++ {
			var b float64
			for k := colStart[j]; k < colStart[j+1]; k++ {
				if w := inW[k]; w < 0 {
					b -= float64(min(t[inRow[k]], p.RaterCap) * w)
				}
			}
			blame[j] = b
		}
	})

	rank := make([]int32, n)
	for j := range rank {
		rank[j] = int32(j)
	}
	slices.SortFunc(rank, func(x, y int32) int {
		if c := cmp.Compare(t[y], t[x]); c != 0 {
			return c
		}
		return cmp.Compare(x, y) // index order is peer ID order
	})
	res.Entries = make([]Entry, n)
	res.byPeer = make([]int32, n)
	for r, j := range rank {
		isSeed := len(seedIdx) > 0 && seed[j] > 0
		res.Entries[r] = Entry{
			Peer:       peers[j],
			Trust:      t[j],
			Rank:       r + 1,
			Feedback:   feedback[0][j],
			Blame:      min(max(blame[j], 0), 1),
			Distrust:   dist[j],
			Distrusted: deficit[j] > 0 && !isSeed,
			Standing:   t[j] - min(max(blame[j], 0), 1)/a,
			Seed:       isSeed,
		}
		res.byPeer[j] = int32(r)
	}
	res.maxTrust = res.Entries[0].Trust
	return res
}

// parallel runs f(0..workers-1), each on its own goroutine but the last,
// and waits.
func parallel(workers int, f func(w int)) {
	var wg sync.WaitGroup
	for w := range workers - 1 {
		wg.Go(func() { f(w) })
	}
	f(workers - 1)
	wg.Wait()
}

// decay is 2^(-age/halfLife), computed alike on every architecture: the age
// is counted in 64ths of a half-life (rounded down, so a weight is at most
// about 1.1% above the exact curve) and the fraction is looked up in a
// table of constants, scaled by an exact power of two. math.Exp2 is
// assembly on some architectures (arm64 fuses multiply-adds in it), and
// every node must compute the same bits.
func decay(age, halfLife float64) float64 {
	steps := age / halfLife * 64
	if !(steps < 64*1100) { // beyond 2^-1100 every float64 is 0
		return 0
	}
	k := int64(steps)
	return math.Ldexp(decayTable[k%64], -int(k/64))
}

// decayTable[i] is 2^(-i/64).
var decayTable = [64]float64{
	1.0, 0.9892280131939755, 0.9785720620877001, 0.9680308967461472,
	0.9576032806985737, 0.9472879907934828, 0.93708381705515, 0.9269895625416927,
	0.9170040432046712, 0.9071260877501994, 0.8973545375015536, 0.8876882462632606,
	0.8781260801866497, 0.8686669176368531, 0.859309649061239, 0.8500531768592617,
	0.8408964152537145, 0.8318382901633682, 0.8228777390769825, 0.8140137109286739,
	0.8052451659746271, 0.7965710756711335, 0.7879904225539432, 0.7795022001189185,
	0.7711054127039704, 0.7627990753722692, 0.7545822137967114, 0.7464538641456324,
	0.7384130729697497, 0.7304588970903235, 0.7225904034885233, 0.714806669195985,
	0.7071067811865476, 0.6994898362691556, 0.691954940981916, 0.6845012114872953,
	0.6771277734684463, 0.6698337620266515, 0.6626183215798707, 0.6554806057623822,
	0.6484197773255048, 0.6414350080393891, 0.6345254785958666, 0.6276903785123455,
	0.620928906036742, 0.614240268053435, 0.6076236799902345, 0.6010783657263515,
	0.5946035575013605, 0.5881984958251406, 0.5818624293887887, 0.5755946149764913,
	0.5693943173783458, 0.5632608093041209, 0.5571933712979462, 0.5511912916539204,
	0.5452538663326288, 0.5393803988785599, 0.5335702003384118, 0.5278225891802786,
	0.5221368912137069, 0.5165124395106142, 0.5109485743270583, 0.5054446430258502,
}
