package governance

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

const (
	start  = int64(1000)
	end    = int64(2000)
	closed = int64(3000)
)

func proposal(method string, choices int) Proposal {
	return Proposal{ID: "prop", Choices: choices, Method: method, Weighting: WeightMember, Quorum: 0, Threshold: 500, Start: start, End: end}
}

// vote is a ballot by voter, created at the start, with its ID derived
// from the voter, so tests read as "who chose what".
func vote(voter string, choices ...int) Ballot {
	return Ballot{ID: "v-" + voter, Voter: peer.ID(voter), Created: start, Choices: choices}
}

func at(b Ballot, id string, created int64) Ballot {
	b.ID, b.Created = id, created
	return b
}

func credits(b Ballot, cs ...int64) Ballot {
	b.Credits = cs
	return b
}

// members gives every named peer one member vote (1000).
func members(names ...string) map[peer.ID]uint64 {
	w := make(map[peer.ID]uint64, len(names))
	for _, n := range names {
		w[peer.ID(n)] = MemberWeight
	}
	return w
}

func voters(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("m%02d", i)
	}
	return s
}

// k turns counts in member votes into weights.
func k(xs ...uint64) []uint64 {
	for i := range xs {
		xs[i] *= MemberWeight
	}
	return xs
}

type want struct {
	status         string
	winner, leader int
	counts         []uint64
	rounds         [][]uint64
	base, weight   uint64
	eligible       uint64
	ignored        map[string]string
}

func check(t *testing.T, r Result, w want) {
	t.Helper()
	if r.Status != w.status || r.Winner != w.winner || r.Leader != w.leader {
		t.Errorf("status %s winner %d leader %d, want %s %d %d", r.Status, r.Winner, r.Leader, w.status, w.winner, w.leader)
	}
	if !reflect.DeepEqual(r.Counts, w.counts) {
		t.Errorf("counts %v, want %v", r.Counts, w.counts)
	}
	if !reflect.DeepEqual(r.Rounds, w.rounds) {
		t.Errorf("rounds %v, want %v", r.Rounds, w.rounds)
	}
	if r.Base != w.base || r.Weight != w.weight || r.Eligible != w.eligible {
		t.Errorf("base %d weight %d eligible %d, want %d %d %d", r.Base, r.Weight, r.Eligible, w.base, w.weight, w.eligible)
	}
	if w.ignored == nil {
		w.ignored = map[string]string{}
	}
	if !reflect.DeepEqual(r.Ignored, w.ignored) {
		t.Errorf("ignored %v, want %v", r.Ignored, w.ignored)
	}
	if r.Voters != len(r.Counted) {
		t.Errorf("voters %d, counted %d", r.Voters, len(r.Counted))
	}
}

func TestSingle(t *testing.T) {
	abc := members("a", "b", "c")
	majority := []Ballot{vote("a", 0), vote("b", 0), vote("c", 1)}
	tests := []struct {
		name      string
		threshold int64
		quorum    int64
		ballots   []Ballot
		w         map[peer.ID]uint64
		want      want
	}{
		{"simple majority", 500, 0, majority, abc,
			want{StatusPassed, 0, 0, k(2, 1, 0), nil, 3000, 3000, 3000, nil}},
		// 2000·1000 = 2,000,000 ≥ 666·3000 = 1,998,000
		{"threshold 666 met", 666, 0, majority, abc,
			want{StatusPassed, 0, 0, k(2, 1, 0), nil, 3000, 3000, 3000, nil}},
		// 2,000,000 < 667·3000 = 2,001,000
		{"threshold 667 missed", 667, 0, majority, abc,
			want{StatusRejected, -1, 0, k(2, 1, 0), nil, 3000, 3000, 3000, nil}},
		{"tie", 500, 0, []Ballot{vote("a", 0), vote("b", 1)}, abc,
			want{StatusRejected, -1, -1, k(1, 1, 0), nil, 2000, 2000, 3000, nil}},
		{"no ballots", 500, 0, nil, abc,
			want{StatusRejected, -1, -1, k(0, 0, 0), nil, 0, 0, 3000, nil}},
		// 1000·1000 = 1,000,000 ≥ 200·5000 = 1,000,000
		{"quorum met exactly", 500, 200, []Ballot{vote("m00", 2)}, members(voters(5)...),
			want{StatusPassed, 2, 2, k(0, 0, 1), nil, 1000, 1000, 5000, nil}},
		// 1,000,000 < 201·5000 = 1,005,000
		{"no quorum", 500, 201, []Ballot{vote("m00", 2)}, members(voters(5)...),
			want{StatusNoQuorum, -1, 2, k(0, 0, 1), nil, 1000, 1000, 5000, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := proposal(MethodSingle, 3)
			p.Threshold, p.Quorum = tt.threshold, tt.quorum
			check(t, Tally(p, tt.ballots, tt.w, nil, closed), tt.want)
		})
	}
}

func TestApproval(t *testing.T) {
	w := members("a", "b", "c", "d")
	ballots := []Ballot{vote("a", 0, 1), vote("b", 1), vote("c", 2), vote("d", 1, 0)}
	// 0: a, d; 1: a, b, d; 2: c. Weight 4000 (each voter once).
	p := proposal(MethodApproval, 3)
	check(t, Tally(p, ballots, w, nil, closed), want{StatusPassed, 1, 1, k(2, 3, 1), nil, 4000, 4000, 4000, nil})
	// 3000·1000 < 800·4000: the threshold is against Weight, not Σ Counts.
	p.Threshold = 800
	check(t, Tally(p, ballots, w, nil, closed), want{StatusRejected, -1, 1, k(2, 3, 1), nil, 4000, 4000, 4000, nil})
	// A repeated approval is malformed.
	r := Tally(p, []Ballot{vote("a", 1, 1)}, w, nil, closed)
	if r.Ignored["v-a"] != ReasonInvalid {
		t.Errorf("repeated approval: ignored %v", r.Ignored)
	}
}

func TestRanked(t *testing.T) {
	p := proposal(MethodRanked, 4)
	tests := []struct {
		name      string
		threshold int64
		ballots   [][]int
		want      want
	}{
		// Round 1: A4 B3 C2 D2 of 11, no majority; C and D tie with no
		// previous round, the higher index D goes. Round 2: D's [3 2] to C
		// and [3 1] to B: A4 B4 C3, C goes. Round 3: [2 1] to B, [2] and
		// [3 2] exhausted: A4 B5 of 9, two left. 5·1000 ≥ 500·9.
		{"three rounds, index tie-break", 500,
			[][]int{{0}, {0}, {0}, {0}, {1}, {1}, {1}, {2, 1}, {2}, {3, 2}, {3, 1}},
			want{StatusPassed, 1, 1, k(4, 5, 0, 0), [][]uint64{k(4, 3, 2, 2), k(4, 4, 3, 0), k(4, 5, 0, 0)}, 9000, 11000, 11000, nil}},
		// Same count against the active weight: 5000·1000 < 600·9000.
		{"threshold against the final active weight", 600,
			[][]int{{0}, {0}, {0}, {0}, {1}, {1}, {1}, {2, 1}, {2}, {3, 2}, {3, 1}},
			want{StatusRejected, -1, 1, k(4, 5, 0, 0), [][]uint64{k(4, 3, 2, 2), k(4, 4, 3, 0), k(4, 5, 0, 0)}, 9000, 11000, 11000, nil}},
		// Round 1: A4 B2 C3 D1, D goes. Round 2: [3 1 0] to B: A4 B3 C3;
		// B and C tie, B had fewer in round 1 (2 < 3), so B goes though
		// C has the higher index. Round 3: [1 2] to C, [1] exhausted,
		// [3 1 0] to A: A5 C4 of 9.
		{"previous-round tie-break", 500,
			[][]int{{0}, {0}, {0}, {0}, {1, 2}, {1}, {2}, {2}, {2}, {3, 1, 0}},
			want{StatusPassed, 0, 0, k(5, 0, 4, 0), [][]uint64{k(4, 2, 3, 1), k(4, 3, 3, 0), k(5, 0, 4, 0)}, 9000, 10000, 10000, nil}},
		// A has 3 of 5 in round 1: a strict majority stops at once.
		{"majority in round 1", 500,
			[][]int{{0, 1}, {0}, {0}, {1, 0}, {2, 1}},
			want{StatusPassed, 0, 0, k(3, 1, 1, 0), [][]uint64{k(3, 1, 1, 0)}, 5000, 5000, 5000, nil}},
		// Exactly half is no majority: A2 B1 C1 of 4 → D (0) goes, then
		// A2 B1 C1 again, C and B tie at 1 and tied before, C (higher)
		// goes; [2] is exhausted: A2 B1 of 3, two left.
		{"half is not a majority; exhausted ballots", 500,
			[][]int{{0}, {0}, {1}, {2}},
			want{StatusPassed, 0, 0, k(2, 1, 0, 0), [][]uint64{k(2, 1, 1, 0), k(2, 1, 1, 0), k(2, 1, 0, 0)}, 3000, 4000, 4000, nil}},
		// Everything exhausts: the rounds stop at an active weight of 0.
		{"all exhausted", 500,
			[][]int{{3}},
			want{StatusPassed, 3, 3, k(0, 0, 0, 1), [][]uint64{k(0, 0, 0, 1)}, 1000, 1000, 1000, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := p
			p.Threshold = tt.threshold
			names := voters(len(tt.ballots))
			bs := make([]Ballot, len(tt.ballots))
			for i, prefs := range tt.ballots {
				bs[i] = vote(names[i], prefs...)
			}
			check(t, Tally(p, bs, members(names...), nil, closed), tt.want)
		})
	}
	// No ballots at all: one round of zeros.
	check(t, Tally(p, nil, members("a"), nil, closed), want{StatusRejected, -1, -1, k(0, 0, 0, 0), [][]uint64{k(0, 0, 0, 0)}, 0, 0, 1000, nil})
}

func TestQuadratic(t *testing.T) {
	p := proposal(MethodQuadratic, 3)
	ballots := []Ballot{
		credits(vote("a", 0), 1000),        // isqrt(1000·1000 = 1,000,000) = 1000
		credits(vote("b", 1), 1000),        // 1000
		credits(vote("c", 1, 2), 500, 500), // isqrt(500,000) = 707 (707² = 499,849; 708² = 501,264), twice
		// isqrt(400,000) = 632 (632² = 399,424; 633² = 400,689) twice;
		// isqrt(100,000) = 316 (316² = 99,856; 317² = 100,489)
		credits(vote("d", 0, 1, 2), 400, 400, 100),
	}
	// 0: 1000+632 = 1632; 1: 1000+707+632 = 2339; 2: 707+316 = 1023;
	// Σ = 4994. 2339·1000 = 2,339,000 < 500·4994 = 2,497,000.
	w := members("a", "b", "c", "d")
	check(t, Tally(p, ballots, w, nil, closed), want{StatusRejected, -1, 1, []uint64{1632, 2339, 1023}, nil, 4994, 4000, 4000, nil})
	// 2,339,000 ≥ 400·4994 = 1,997,600.
	p.Threshold = 400
	check(t, Tally(p, ballots, w, nil, closed), want{StatusPassed, 1, 1, []uint64{1632, 2339, 1023}, nil, 4994, 4000, 4000, nil})

	// Trust weights: a has 500,000, all on 0: isqrt(5e8) = 22360
	// (22360² = 499,969,600; 22361² = 500,014,321). b has 300,000 split
	// 250/750 on 1 and 2: isqrt(75e6) = 8660 (8660² = 74,995,600;
	// 8661² = 75,012,921) and isqrt(225e6) = 15000.
	tw := TrustWeights(map[peer.ID]float64{"a": 0.5, "b": 0.3, "c": 0.2})
	r := Tally(p, []Ballot{credits(vote("a", 0), 1000), credits(vote("b", 1, 2), 250, 750)}, tw, nil, closed)
	check(t, r, want{StatusPassed, 0, 0, []uint64{22360, 8660, 15000}, nil, 46020, 800000, 1000000, nil})

	// Malformed: credits over budget, length mismatch, negative credit.
	for _, b := range []Ballot{credits(vote("a", 0, 1), 600, 401), credits(vote("a", 0, 1), 1000), credits(vote("a", 0), -1)} {
		if r := Tally(p, []Ballot{b}, w, nil, closed); r.Ignored["v-a"] != ReasonInvalid {
			t.Errorf("%v: ignored %v", b, r.Ignored)
		}
	}
	// A ballot with zero credits counts toward turnout but casts no votes.
	check(t, Tally(p, []Ballot{credits(vote("a", 0), 0)}, w, nil, closed), want{StatusRejected, -1, -1, []uint64{0, 0, 0}, nil, 0, 1000, 4000, nil})
}

func TestIsqrt(t *testing.T) {
	for x := uint64(0); x < 100_000; x++ {
		r := isqrt(x)
		if r*r > x || (r+1)*(r+1) <= x {
			t.Fatalf("isqrt(%d) = %d", x, r)
		}
	}
	for _, x := range []uint64{1<<63 - 1, 1 << 63, 1<<64 - 1, MaxTotalWeight * MaxCredits, 4294967295 * 4294967295} {
		r := isqrt(x)
		if hi, lo := mul(r, r); hi != 0 || lo > x {
			t.Errorf("isqrt(%d) = %d is too big", x, r)
		}
		if hi, lo := mul(r+1, r+1); hi == 0 && lo <= x {
			t.Errorf("isqrt(%d) = %d is too small", x, r)
		}
	}
}

func mul(a, b uint64) (uint64, uint64) {
	if a == 0 || b <= (1<<64-1)/a {
		return 0, a * b
	}
	return 1, 0
}

func TestWeightings(t *testing.T) {
	levels := map[peer.ID]int64{"a": 5, "b": 5, "c": 1, "d": 2}
	mw := MemberWeights(levels, 2)
	if want := members("a", "b"); !reflect.DeepEqual(mw, want) {
		t.Fatalf("member weights %v, want %v", mw, want)
	}
	trust := map[peer.ID]float64{"a": 0.1, "b": 0.1, "c": 0.8}
	tw := TrustWeights(trust)
	if want := (map[peer.ID]uint64{"a": 100000, "b": 100000, "c": 800000}); !reflect.DeepEqual(tw, want) {
		t.Fatalf("trust weights %v, want %v", tw, want)
	}
	ballots := []Ballot{vote("a", 0), vote("b", 0), vote("c", 1)}
	p := proposal(MethodSingle, 2)
	check(t, Tally(p, ballots, mw, nil, closed),
		want{StatusPassed, 0, 0, k(2, 0), nil, 2000, 2000, 2000, map[string]string{"v-c": ReasonNotEligible}})
	p.Weighting = WeightTrust
	check(t, Tally(p, ballots, tw, nil, closed),
		want{StatusPassed, 1, 1, []uint64{200000, 800000}, nil, 1000000, 1000000, 1000000, nil})
}

func TestTrustWeightsRounding(t *testing.T) {
	got := TrustWeights(map[peer.ID]float64{
		"quarter": 0.25, "third": 1.0 / 3, "two-thirds": 2.0 / 3, "tiny": 4e-7, "half-unit": 5e-7,
		"over": 1.5, "zero": 0, "neg": -0.1, "nan": nanValue(),
	})
	want := map[peer.ID]uint64{"quarter": 250000, "third": 333333, "two-thirds": 666667, "half-unit": 1, "over": 1000000}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}

func TestReplacementAndWindow(t *testing.T) {
	p := proposal(MethodSingle, 2)
	w := members("a", "b", "c")
	tests := []struct {
		name    string
		ballots []Ballot
		exclude map[string]bool
		want    want
	}{
		{"the later vote replaces", []Ballot{at(vote("a", 0), "x1", 1100), at(vote("a", 1), "x2", 1500)}, nil,
			want{StatusPassed, 1, 1, k(0, 1), nil, 1000, 1000, 3000, map[string]string{"x1": ReasonSuperseded}}},
		{"same time: the greater ID", []Ballot{at(vote("a", 1), "x9", 1100), at(vote("a", 0), "x1", 1100)}, nil,
			want{StatusPassed, 1, 1, k(0, 1), nil, 1000, 1000, 3000, map[string]string{"x1": ReasonSuperseded}}},
		{"a vote after the end replaces nothing", []Ballot{at(vote("a", 0), "x1", 1500), at(vote("a", 1), "x2", 2001)}, nil,
			want{StatusPassed, 0, 0, k(1, 0), nil, 1000, 1000, 3000, map[string]string{"x2": ReasonAfterEnd}}},
		{"start and end are inclusive", []Ballot{at(vote("a", 0), "x1", start), at(vote("b", 0), "x2", end), at(vote("c", 1), "x3", start-1)}, nil,
			want{StatusPassed, 0, 0, k(2, 0), nil, 2000, 2000, 3000, map[string]string{"x3": ReasonBeforeStart}}},
		{"an excluded vote gives way to the earlier one", []Ballot{at(vote("a", 0), "x1", 1100), at(vote("a", 1), "x2", 1900)}, map[string]bool{"x2": true},
			want{StatusPassed, 0, 0, k(1, 0), nil, 1000, 1000, 3000, map[string]string{"x2": ReasonExcluded}}},
		{"an invalid vote gives way to the earlier one", []Ballot{at(vote("a", 0), "x1", 1100), at(vote("a", 2), "x2", 1900), at(vote("b", 0, 1), "x3", 1100)}, nil,
			want{StatusPassed, 0, 0, k(1, 0), nil, 1000, 1000, 3000, map[string]string{"x2": ReasonInvalid, "x3": ReasonInvalid}}},
		{"a stranger is not eligible", []Ballot{at(vote("z", 0), "x1", 1100)}, nil,
			want{StatusRejected, -1, -1, k(0, 0), nil, 0, 0, 3000, map[string]string{"x1": ReasonNotEligible}}},
		{"a repeated ballot counts once", []Ballot{vote("a", 1), vote("a", 1)}, nil,
			want{StatusPassed, 1, 1, k(0, 1), nil, 1000, 1000, 3000, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, Tally(p, tt.ballots, w, tt.exclude, closed), tt.want)
		})
	}
}

func TestStatusOverTime(t *testing.T) {
	p := proposal(MethodSingle, 2)
	ballots := []Ballot{vote("a", 1)}
	for _, c := range []struct {
		now  int64
		want string
	}{{start - 1, StatusPending}, {start, StatusOpen}, {end, StatusOpen}, {end + 1, StatusPassed}} {
		r := Tally(p, ballots, members("a"), nil, c.now)
		if r.Status != c.want {
			t.Errorf("at %d: %s, want %s", c.now, r.Status, c.want)
		}
		if c.want != StatusPassed && (r.Winner != -1 || r.Leader != 1 || r.Counts[1] != 1000) {
			t.Errorf("at %d: winner %d leader %d counts %v", c.now, r.Winner, r.Leader, r.Counts)
		}
	}
}

func TestFingerprint(t *testing.T) {
	p := proposal(MethodSingle, 2)
	ballots := []Ballot{at(vote("b", 0), "id-b", 1100), at(vote("a", 1), "id-a", 1100), at(vote("a", 0), "id-old", 1000), at(vote("c", 0), "id-late", 1500)}
	r := Tally(p, ballots, members("a", "b", "c"), map[string]bool{"id-late": true}, closed)
	if !reflect.DeepEqual(r.Counted, []string{"id-a", "id-b"}) {
		t.Fatalf("counted %v", r.Counted)
	}
	if want := sha256.Sum256([]byte("id-a\nid-b")); r.Fingerprint != want {
		t.Errorf("fingerprint %x, want %x", r.Fingerprint, want)
	}
	if r := Tally(p, nil, nil, nil, closed); r.Fingerprint != sha256.Sum256(nil) {
		t.Errorf("empty fingerprint %x", r.Fingerprint)
	}
}

func TestInvalidProposal(t *testing.T) {
	good := proposal(MethodSingle, 2)
	for name, mut := range map[string]func(*Proposal){
		"one choice": func(p *Proposal) { p.Choices = 1 }, "33 choices": func(p *Proposal) { p.Choices = 33 },
		"method": func(p *Proposal) { p.Method = "borda" }, "weighting": func(p *Proposal) { p.Weighting = "" },
		"quorum": func(p *Proposal) { p.Quorum = 1001 }, "threshold": func(p *Proposal) { p.Threshold = -1 },
		"ends first": func(p *Proposal) { p.End = p.Start - 1 },
	} {
		p := good
		mut(&p)
		if p.Validate() == nil {
			t.Errorf("%s: valid", name)
		}
		if r := Tally(p, []Ballot{vote("a", 0)}, members("a"), nil, closed); r.Status != StatusInvalid || r.Voters != 0 {
			t.Errorf("%s: %+v", name, r)
		}
	}
	heavy := map[peer.ID]uint64{"a": MaxTotalWeight, "b": 1}
	if r := Tally(good, nil, heavy, nil, closed); r.Status != StatusInvalid {
		t.Errorf("over MaxTotalWeight: %s", r.Status)
	}
	if r := Tally(good, nil, map[peer.ID]uint64{"a": MaxTotalWeight}, nil, closed); r.Status != StatusRejected {
		t.Errorf("at MaxTotalWeight: %s", r.Status)
	}
}

// randomSet builds a messy ballot set: replacements, repeats, duplicated
// records, strangers, votes outside the window and malformed ballots; with
// conflicts, different ballots that share an ID as well.
func randomSet(rng *rand.Rand, p Proposal, n int, conflicts bool) ([]Ballot, map[peer.ID]uint64, map[string]bool) {
	w := map[peer.ID]uint64{}
	for i := range n / 2 {
		w[peer.ID(fmt.Sprintf("p%03d", i))] = uint64(1 + rng.IntN(5000))
	}
	exclude := map[string]bool{}
	var bs []Ballot
	for i := range n {
		b := Ballot{
			ID:      fmt.Sprintf("bafyrei%04d", i),
			Voter:   peer.ID(fmt.Sprintf("p%03d", rng.IntN(n/2+5))),
			Created: start - 50 + rng.Int64N(end-start+100),
		}
		if rng.IntN(5) == 0 {
			b.Created = start + int64(rng.IntN(3)) // Created ties
		}
		for _, ch := range rng.Perm(p.Choices)[:1+rng.IntN(p.Choices)] {
			b.Choices = append(b.Choices, ch)
			b.Credits = append(b.Credits, rng.Int64N(400))
		}
		if rng.IntN(20) == 0 {
			b.Choices = append(b.Choices, p.Choices) // out of range
		}
		if conflicts && rng.IntN(4) == 0 {
			b.ID = fmt.Sprintf("bafyrei%04d", rng.IntN(n))
		}
		if p.Method == MethodSingle && rng.IntN(10) != 0 {
			b.Choices, b.Credits = b.Choices[:1], b.Credits[:1]
		}
		if rng.IntN(30) == 0 {
			exclude[b.ID] = true
		}
		bs = append(bs, b)
		if i%17 == 0 {
			bs = append(bs, b) // the same record twice
		}
	}
	return bs, w, exclude
}

func TestDeterminism(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, method := range []string{MethodSingle, MethodApproval, MethodRanked, MethodQuadratic} {
		for _, conflicts := range []bool{false, true} {
			testDeterminism(t, rng, method, conflicts)
		}
	}
}

func testDeterminism(t *testing.T, rng *rand.Rand, method string, conflicts bool) {
	p := proposal(method, 5)
	p.Threshold = 300
	bs, w, exclude := randomSet(rng, p, 400, conflicts)
	first := Tally(p, bs, w, exclude, closed)
	if first.Voters < 50 || len(first.Ignored) < 50 {
		t.Fatalf("%s: a weak test set: %d counted, %d ignored", method, first.Voters, len(first.Ignored))
	}
	reasons := map[string]int{}
	for _, why := range first.Ignored {
		reasons[why]++
	}
	if len(reasons) != 6 {
		t.Fatalf("%s: not every reason occurs: %v", method, reasons)
	}
	for range 20 {
		shuffled := append([]Ballot(nil), bs...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if r := Tally(p, shuffled, w, exclude, closed); !reflect.DeepEqual(r, first) {
			t.Fatalf("%s (conflicts %v): a shuffle changed the result:\n%+v\n%+v", method, conflicts, r, first)
		}
	}
}

// A copy that differs under one ID must not make the result depend on order.
func TestConflictingCopies(t *testing.T) {
	p := proposal(MethodSingle, 2)
	a, b := at(vote("a", 0), "same", 1100), at(vote("b", 1), "same", 1100)
	w := members("a", "b")
	r1, r2 := Tally(p, []Ballot{a, b}, w, nil, closed), Tally(p, []Ballot{b, a}, w, nil, closed)
	if !reflect.DeepEqual(r1, r2) || r1.Voters != 1 || r1.Counts[0] != 1000 {
		t.Errorf("%+v\n%+v", r1, r2)
	}
}

func TestTallyDoesNotModifyInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	p := proposal(MethodRanked, 4)
	bs, w, ex := randomSet(rng, p, 100, true)
	before := fmt.Sprint(bs)
	Tally(p, bs, w, ex, closed)
	if after := fmt.Sprint(bs); after != before {
		t.Error("Tally modified its ballots")
	}
}

// referenceSelect is rule 2 written plainly, to check selectBallots' fast
// path against.
func referenceSelect(p Proposal, ballots []Ballot, w map[peer.ID]uint64, exclude map[string]bool) ([]string, map[string]string) {
	one := map[string]Ballot{}
	for _, b := range ballots {
		if c, ok := one[b.ID]; !ok || compareCopies(&b, &c) < 0 {
			one[b.ID] = b
		}
	}
	ignored := map[string]string{}
	best := map[peer.ID]Ballot{}
	for id, b := range one {
		why := ""
		switch {
		case b.Created < p.Start:
			why = ReasonBeforeStart
		case b.Created > p.End:
			why = ReasonAfterEnd
		case exclude[id]:
			why = ReasonExcluded
		case w[b.Voter] == 0:
			why = ReasonNotEligible
		case !wellFormed(p, &b):
			why = ReasonInvalid
		}
		if why != "" {
			ignored[id] = why
			continue
		}
		if c, ok := best[b.Voter]; !ok || later(&b, &c) {
			best[b.Voter] = b
		}
	}
	var counted []string
	for id, b := range one {
		if _, bad := ignored[id]; bad {
			continue
		}
		if best[b.Voter].ID == id {
			counted = append(counted, id)
		} else {
			ignored[id] = ReasonSuperseded
		}
	}
	slices.Sort(counted)
	return counted, ignored
}

func TestSelectionAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 50 {
		for _, conflicts := range []bool{false, true} {
			p := proposal([]string{MethodSingle, MethodApproval, MethodRanked, MethodQuadratic}[rng.IntN(4)], 2+rng.IntN(5))
			bs, w, ex := randomSet(rng, p, 20+rng.IntN(200), conflicts)
			r := Tally(p, bs, w, ex, closed)
			counted, ignored := referenceSelect(p, bs, w, ex)
			if !slices.Equal(r.Counted, counted) || !reflect.DeepEqual(r.Ignored, ignored) {
				t.Fatalf("selection differs from the reference:\n%v %v\n%v %v", r.Counted, r.Ignored, counted, ignored)
			}
		}
	}
}
