package reputation

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The simulation routes delegated tasks in a community of 1,000 peers, 10
// of them founders (the seeds, honest), a share of the rest a malicious
// collective. It is pure: no sockets, no clock, a seeded PRNG.
//
//   - Each step a random peer requests a task.
//   - An honest requester draws 5 random candidates offering the skill and
//     picks one by the routing policy under test. Honest providers serve
//     well; malicious ones serve badly or, under camouflage, serve honest
//     requesters well half of the time. The requester rates truthfully:
//     900..1000 for a good result, 0..100 for a bad one.
//   - A malicious requester files a 1000 for a random member of the
//     collective (80%) or badmouths a random honest peer with a 0 (20%).
//   - Trust (and the raw averages) are recomputed every 1,000 honest
//     tasks. After 20,000 honest tasks of warm-up, the next 20,000 are
//     measured: the share routed to malicious providers.

type simConfig struct {
	peers, founders int
	malicious       float64 // share of the peers
	camouflage      float64 // probability that a malicious provider serves an honest requester well
	candidates      int
	warmup, measure int // honest tasks
	recompute       int // honest tasks between recomputations
	explore         float64
	seed            uint64
}

func defaultSim(malicious, camouflage float64) simConfig {
	return simConfig{
		peers: 1000, founders: 10, malicious: malicious, camouflage: camouflage,
		candidates: 5, warmup: 20_000, measure: 20_000, recompute: 1000,
		explore: 0.05, seed: 42,
	}
}

// A policy picks one of the candidates.
type policy interface {
	refresh(ratings []Rating)
	pick(rng *rand.Rand, candidates []int) int
}

// trustPolicy routes by community trust (seeds: the founders): the
// candidate with the highest Standing (or Trust, if byTrust), ties at
// random. With probability explore it instead tries a newcomer among the
// candidates, if there is one: a peer nobody trusted has rated (Trust 0,
// Blame 0). A peer trusted raters found bad is no newcomer, so exploring
// does not return to it.
type trustPolicy struct {
	ids     []peer.ID
	seeds   []peer.ID
	explore float64
	byTrust bool
	trust   []float64
	blame   []float64
	score   []float64
}

func (p *trustPolicy) refresh(ratings []Rating) {
	res := Compute(ratings, p.seeds, DefaultParams())
	for k, id := range p.ids {
		e, _ := res.Get(id)
		p.trust[k], p.blame[k], p.score[k] = e.Trust, e.Blame, e.Standing
		if p.byTrust {
			p.score[k] = e.Trust
		}
	}
}

func (p *trustPolicy) pick(rng *rand.Rand, cands []int) int {
	if rng.Float64() < p.explore {
		var fresh []int
		for _, c := range cands {
			if p.trust[c] == 0 && p.blame[c] == 0 {
				fresh = append(fresh, c)
			}
		}
		if len(fresh) > 0 {
			return fresh[rng.IntN(len(fresh))]
		}
	}
	return best(rng, cands, p.score)
}

// averagePolicy routes by the raw mean score a candidate has received,
// over all ratings, unweighted; an unrated candidate counts as 500.
type averagePolicy struct {
	index map[peer.ID]int
	mean  []float64
}

func (p *averagePolicy) refresh(ratings []Rating) {
	sum := make([]float64, len(p.mean))
	cnt := make([]float64, len(p.mean))
	for _, r := range ratings {
		k := p.index[r.Ratee]
		sum[k] += float64(r.Score)
		cnt[k]++
	}
	for k := range p.mean {
		p.mean[k] = 500
		if cnt[k] > 0 {
			p.mean[k] = sum[k] / cnt[k]
		}
	}
}

func (p *averagePolicy) pick(rng *rand.Rand, cands []int) int {
	return best(rng, cands, p.mean)
}

// best returns the candidate with the highest score, ties at random.
func best(rng *rand.Rand, cands []int, score []float64) int {
	top, n := -1, 0
	for _, c := range cands {
		switch {
		case top < 0 || score[c] > score[top]:
			top, n = c, 1
		case score[c] == score[top]:
			n++
			if rng.IntN(n) == 0 {
				top = c
			}
		}
	}
	return top
}

type simOutcome struct {
	tasks, toMalicious int
	collectiveTrust    float64 // the collective's share of community trust at the end
}

func (o simOutcome) share() float64 { return float64(o.toMalicious) / float64(o.tasks) }

type routing int

const (
	byStanding routing = iota
	byTrust
	byAverage
)

func simulate(cfg simConfig, route routing) simOutcome {
	rng := rand.New(rand.NewPCG(cfg.seed, 0x5eed))
	ids := make([]peer.ID, cfg.peers)
	index := make(map[peer.ID]int, cfg.peers)
	for k := range ids {
		ids[k] = peer.ID(fmt.Sprintf("12D3KooW-sim-peer-%04d", k))
		index[ids[k]] = k
	}
	bad := make([]bool, cfg.peers)
	var collective, honest []int
	for _, k := range rng.Perm(cfg.peers - cfg.founders)[:int(cfg.malicious*float64(cfg.peers))] {
		bad[cfg.founders+k] = true
	}
	for k := range ids {
		if bad[k] {
			collective = append(collective, k)
		} else {
			honest = append(honest, k)
		}
	}
	var pol policy = &averagePolicy{index: index, mean: make([]float64, cfg.peers)}
	if route != byAverage {
		pol = &trustPolicy{
			ids: ids, seeds: ids[:cfg.founders], explore: cfg.explore, byTrust: route == byTrust,
			trust: make([]float64, cfg.peers), blame: make([]float64, cfg.peers), score: make([]float64, cfg.peers),
		}
	}

	var ratings []Rating
	rate := func(rater, ratee, score int) {
		n := len(ratings)
		ratings = append(ratings, Rating{
			Rater: ids[rater], Ratee: ids[ratee],
			Receipt: fmt.Sprintf("receipt-%d", n), ID: fmt.Sprintf("feedback-%d", n),
			Score: int64(score), Created: 1_700_000_000_000 + int64(n)*10_000, // a task every 10 s
		})
	}
	pol.refresh(nil)
	var out simOutcome
	cands := make([]int, 0, cfg.candidates)
	for done := 0; done < cfg.warmup+cfg.measure; {
		req := rng.IntN(cfg.peers)
		if bad[req] {
			if rng.Float64() < 0.8 {
				if m := collective[rng.IntN(len(collective))]; m != req {
					rate(req, m, 1000)
				}
			} else {
				rate(req, honest[rng.IntN(len(honest))], 0)
			}
			continue
		}
		cands = cands[:0]
		for len(cands) < cfg.candidates {
			if c := rng.IntN(cfg.peers); c != req && !slices.Contains(cands, c) {
				cands = append(cands, c)
			}
		}
		prov := pol.pick(rng, cands)
		if !bad[prov] || rng.Float64() < cfg.camouflage {
			rate(req, prov, 900+rng.IntN(101))
		} else {
			rate(req, prov, rng.IntN(101))
		}
		done++
		if done > cfg.warmup {
			out.tasks++
			if bad[prov] {
				out.toMalicious++
			}
		}
		if done%cfg.recompute == 0 {
			pol.refresh(ratings)
		}
	}
	res := Compute(ratings, ids[:cfg.founders], DefaultParams())
	for _, k := range collective {
		out.collectiveTrust += res.Trust(ids[k])
	}
	return out
}

// TestMaliciousCollective asserts that routing by community standing sends
// at most 5% of honest tasks to a malicious collective of up to 30% of the
// peers, with or without camouflage. Routing by Trust alone, and by raw
// average score, are reported for comparison.
func TestMaliciousCollective(t *testing.T) {
	type row struct {
		malicious, camouflage    float64
		standing, trust, average simOutcome
	}
	var rows []row
	for _, camo := range []float64{0, 0.5} {
		for _, f := range []float64{0.1, 0.2, 0.3, 0.4} {
			if raceEnabled && f != 0.3 {
				continue // the race detector makes Compute ~10x slower
			}
			cfg := defaultSim(f, camo)
			rows = append(rows, row{f, camo, simulate(cfg, byStanding), simulate(cfg, byTrust), simulate(cfg, byAverage)})
		}
	}
	t.Logf("share of honest tasks routed to malicious providers (%d measured tasks each)", rows[0].standing.tasks)
	t.Logf("%-9s %-10s %10s %10s %11s %16s", "malicious", "camouflage", "standing", "trust", "raw average", "collective trust")
	for _, r := range rows {
		t.Logf("%8.0f%% %9.0f%% %9.2f%% %9.2f%% %10.2f%% %15.2f%%", 100*r.malicious, 100*r.camouflage,
			100*r.standing.share(), 100*r.trust.share(), 100*r.average.share(), 100*r.standing.collectiveTrust)
	}
	for _, r := range rows {
		if r.malicious <= 0.3 && r.standing.share() > 0.05 {
			t.Errorf("%.0f%% malicious, camouflage %.0f%%: EigenTrust routes %.2f%% of tasks to them, want ≤ 5%%",
				100*r.malicious, 100*r.camouflage, 100*r.standing.share())
		}
	}
}

// TestSybilFlood: 1,000 fresh identities praise each other and some honest
// peers; no honest peer rates any of them. Seeded by the founders alone,
// they must hold at most 1% of the community trust (in fact exactly 0).
func TestSybilFlood(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	const honestN, founders, sybilN = 200, 5, 1000
	id := func(kind string, k int) peer.ID { return peer.ID(fmt.Sprintf("12D3KooW-%s-%04d", kind, k)) }
	var rs []Rating
	add := func(rater, ratee peer.ID, score int) {
		n := len(rs)
		rs = append(rs, Rating{Rater: rater, Ratee: ratee, Receipt: fmt.Sprint("r", n), ID: fmt.Sprint("f", n),
			Score: int64(score), Created: int64(n) * 1000})
	}
	for range 20 * honestN {
		i, j := rng.IntN(honestN), rng.IntN(honestN)
		if i != j {
			add(id("honest", i), id("honest", j), 800+rng.IntN(201))
		}
	}
	seeds := make([]peer.ID, founders)
	for k := range seeds {
		seeds[k] = id("honest", k)
	}
	p := DefaultParams()
	p.Now = 1 << 40 // ages must not move with the flood's later ratings
	before := Compute(rs, seeds, p)
	for s := range sybilN {
		for range 20 {
			add(id("sybil", s), id("sybil", rng.IntN(sybilN)), 1000)
		}
		add(id("sybil", s), id("honest", rng.IntN(honestN)), 1000)
	}
	res := Compute(rs, seeds, p)
	checkInvariants(t, res)
	var sybilTrust float64
	for s := range sybilN {
		sybilTrust += res.Trust(id("sybil", s))
	}
	t.Logf("%d sybils, %d ratings: community trust of the sybils %.4f%%", sybilN, len(rs), 100*sybilTrust)
	if sybilTrust > 0.01 {
		t.Errorf("sybils hold %.4f%% of the trust, want ≤ 1%%", 100*sybilTrust)
	}
	// The flood changes nothing for the honest peers, bit for bit.
	for k := range honestN {
		if a, b := before.Trust(id("honest", k)), res.Trust(id("honest", k)); a != b {
			t.Fatalf("honest %d: trust %v before the flood, %v after", k, a, b)
		}
	}

	// One attack edge: an honest peer (not a founder) was served well by a
	// sybil once. The sybils now share what that edge carries, amplified
	// by at most 1/Damping.
	add(id("honest", honestN-1), id("sybil", 0), 1000)
	res = Compute(rs, seeds, p)
	sybilTrust = 0
	for s := range sybilN {
		sybilTrust += res.Trust(id("sybil", s))
	}
	t.Logf("with one attack edge: %.4f%%", 100*sybilTrust)
	if sybilTrust > 0.01 {
		t.Errorf("with one attack edge, sybils hold %.4f%% of the trust, want ≤ 1%%", 100*sybilTrust)
	}
}
