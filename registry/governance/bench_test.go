package governance

import (
	"encoding/base32"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The benchmarks report a tally against its raw baseline, measured in the
// same run, on the same ballots:
//
//	go test -run '^$' -bench . -benchmem ./registry/governance/
//
// The baseline is what any tally must do at the least: look up each
// voter's weight and add it to a choice. Tally adds de-duplication, the
// window and eligibility checks, vote replacement, validation, sorting the
// counted IDs and the fingerprint; ranked adds the runoff rounds. The
// ballots sit in memory in input order, as a freshly read batch does;
// single-shuffled shows the cost of an input order unrelated to memory.

const benchVotes = 100_000

type benchSet struct {
	p       Proposal
	ballots []Ballot
}

var benchData = sync.OnceValues(func() (map[peer.ID]uint64, map[string]benchSet) {
	rng := rand.New(rand.NewPCG(9, 9))
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding)
	text := func(prefix string, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return prefix + strings.ToLower(b32.EncodeToString(b))
	}
	voters := make([]peer.ID, benchVotes)
	levels := make(map[peer.ID]int64, benchVotes)
	for i := range voters {
		voters[i] = peer.ID(text("\x00\x24\x08\x01\x12\x20", 32)) // an Ed25519 peer ID: identity multihash of the key
		levels[voters[i]] = 1
	}
	w := MemberWeights(levels, 0)
	sets := map[string]benchSet{}
	for _, method := range []string{MethodSingle, MethodRanked} {
		p := Proposal{ID: "bench", Choices: 5, Method: method, Weighting: WeightMember, Quorum: 200, Threshold: 500, Start: 0, End: 1 << 40}
		bs := make([]Ballot, benchVotes)
		for i := range bs {
			prefs := rng.Perm(5)
			// Skewed first preferences make the runoff go several rounds.
			if j := slices.Index(prefs, rng.IntN(1+rng.IntN(5))); j > 0 {
				prefs[0], prefs[j] = prefs[j], prefs[0]
			}
			if method == MethodSingle {
				prefs = prefs[:1]
			} else {
				prefs = prefs[:1+rng.IntN(5)]
			}
			bs[i] = Ballot{ID: text("bafyrei", 32), Voter: voters[i], Created: rng.Int64N(1 << 40), Choices: prefs}
		}
		sets[method] = benchSet{p, bs}
	}
	// The same ballots in an order unrelated to where they sit in memory.
	single := sets[MethodSingle]
	shuffled := slices.Clone(single.ballots)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	sets["single-shuffled"] = benchSet{single.p, shuffled}
	return w, sets
})

func BenchmarkTally100kVotes(b *testing.B) {
	w, sets := benchData()
	for _, method := range []string{MethodSingle, MethodRanked, "single-shuffled"} {
		b.Run(method, func(b *testing.B) {
			s := sets[method]
			var r Result
			for b.Loop() {
				r = Tally(s.p, s.ballots, w, nil, 1<<41)
			}
			if r.Voters != benchVotes {
				b.Fatalf("%d voters", r.Voters)
			}
			b.ReportMetric(float64(len(r.Rounds)), "rounds")
		})
	}
}

func BenchmarkBaselineSum100k(b *testing.B) {
	w, sets := benchData()
	bs := sets[MethodSingle].ballots
	counts := make([]uint64, 5)
	for b.Loop() {
		clear(counts)
		for i := range bs {
			counts[bs[i].Choices[0]] += w[bs[i].Voter]
		}
	}
	if counts[0]+counts[1]+counts[2]+counts[3]+counts[4] != benchVotes*MemberWeight {
		b.Fatal(counts)
	}
}
