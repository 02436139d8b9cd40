package governance

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Voting methods.
const (
	MethodSingle    = "single"
	MethodApproval  = "approval"
	MethodRanked    = "ranked"
	MethodQuadratic = "quadratic"
)

// Weightings: one member one vote above a trust floor, or community trust.
const (
	WeightMember = "member"
	WeightTrust  = "trust"
)

// Statuses of a tally.
const (
	StatusPending  = "pending"
	StatusOpen     = "open"
	StatusPassed   = "passed"
	StatusRejected = "rejected"
	StatusNoQuorum = "no-quorum"
	// StatusInvalid reports a proposal (or weights) Tally cannot count;
	// Proposal.Validate says why.
	StatusInvalid = "invalid"
)

// Reasons a ballot is ignored, the values of Result.Ignored.
const (
	ReasonSuperseded  = "superseded"
	ReasonAfterEnd    = "after end"
	ReasonBeforeStart = "before start"
	ReasonNotEligible = "not eligible"
	ReasonExcluded    = "excluded as late"
	ReasonInvalid     = "invalid"
)

// reasons indexes the reasons by a compact code; 0 means counted.
var reasons = [...]string{1: ReasonBeforeStart, 2: ReasonAfterEnd, 3: ReasonExcluded, 4: ReasonNotEligible, 5: ReasonInvalid}

// Limits.
const (
	MinChoices = 2
	MaxChoices = 32
	// MaxTotalWeight bounds the sum of all weights, so that every sum and
	// weight·credits product in the tally fits in a uint64. MemberWeights
	// (1000 per member) and TrustWeights (about 1e6 in all) stay far below.
	MaxTotalWeight = 1 << 53
	// MaxCredits is a quadratic voter's whole budget, in thousandths.
	MaxCredits = 1000
)

// ErrInvalidProposal reports a proposal Tally cannot count.
var ErrInvalidProposal = errors.New("the proposal cannot be tallied")

// Proposal is what Tally needs of a proposal record.
type Proposal struct {
	ID                string // record CID text
	Choices           int    // number of choices (2..32)
	Method, Weighting string
	Quorum, Threshold int64 // thousandths
	Start, End        int64 // unix ms
}

// Validate reports why Tally would return StatusInvalid for p, or nil.
func (p Proposal) Validate() error {
	switch {
	case p.Choices < MinChoices || p.Choices > MaxChoices:
		return fmt.Errorf("%w: it must offer %d to %d choices, not %d", ErrInvalidProposal, MinChoices, MaxChoices, p.Choices)
	case p.Method != MethodSingle && p.Method != MethodApproval && p.Method != MethodRanked && p.Method != MethodQuadratic:
		return fmt.Errorf("%w: unknown voting method %q", ErrInvalidProposal, p.Method)
	case p.Weighting != WeightMember && p.Weighting != WeightTrust:
		return fmt.Errorf("%w: unknown weighting %q", ErrInvalidProposal, p.Weighting)
	case p.Quorum < 0 || p.Quorum > 1000:
		return fmt.Errorf("%w: the quorum must be between 0 and 1000 thousandths, not %d", ErrInvalidProposal, p.Quorum)
	case p.Threshold < 0 || p.Threshold > 1000:
		return fmt.Errorf("%w: the threshold must be between 0 and 1000 thousandths, not %d", ErrInvalidProposal, p.Threshold)
	case p.Start > p.End:
		return fmt.Errorf("%w: it starts (%d) after it ends (%d)", ErrInvalidProposal, p.Start, p.End)
	}
	return nil
}

// Ballot is what Tally needs of a vote record.
type Ballot struct {
	ID      string // vote record CID text (tie-break, fingerprint)
	Voter   peer.ID
	Created int64   // unix ms
	Choices []int   // choice indices; ranked: most preferred first
	Credits []int64 // quadratic: thousandths of the voter's budget per listed choice
}

// Result is the outcome of a tally.
type Result struct {
	Proposal string
	Status   string
	Winner   int // the passing choice; -1 unless Status is passed
	// Leader is the choice ahead by the method's rule, -1 on a tie or with
	// nothing counted; set whatever the status, so an open tally shows who
	// leads and a rejected one who missed the threshold.
	Leader int
	Counts []uint64   // per choice; ranked: the last round's; quadratic: the quadratic votes
	Rounds [][]uint64 // ranked: every round's counts (eliminated choices 0); nil otherwise
	// Base is the threshold's denominator: Weight for single and approval,
	// the last round's active weight for ranked, Σ Counts for quadratic.
	Base        uint64
	Voters      int      // ballots counted
	Weight      uint64   // cast weight: the sum of the counted voters' weights
	Eligible    uint64   // the sum of all weights
	Fingerprint [32]byte // SHA-256 of Counted joined with "\n"
	Counted     []string // IDs of the counted ballots, sorted
	Ignored     map[string]string
}

// counted is a counted ballot with its voter's weight.
type counted struct {
	w uint64
	b *Ballot
}

// idKey points at a ballot, for sorting by ID. hi and lo hold the ID's
// first 16 bytes, big-endian and zero-padded, which order as the text does
// and settle nearly every comparison without reading the text: IDs share
// only the "bafyrei" prefix, and the text is scattered over the heap.
type idKey struct {
	hi, lo uint64
	i      int
}

func newIDKey(id string, i int) idKey {
	var b [16]byte
	copy(b[:], id)
	return idKey{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]), i}
}

// compareIDs orders the ballots a.i and b.i by ID.
func compareIDs(ballots []Ballot, a, b idKey) int {
	switch {
	case a.hi != b.hi:
		return cmp.Compare(a.hi, b.hi)
	case a.lo != b.lo:
		return cmp.Compare(a.lo, b.lo)
	}
	return strings.Compare(ballots[a.i].ID, ballots[b.i].ID)
}

// Tally counts ballots for p at time now (unix ms) with the voters' weights
// w. exclude names ballot IDs to ignore (votes first seen too late). The
// package documentation gives the rules. Tally does not modify its
// arguments.
func Tally(p Proposal, ballots []Ballot, w map[peer.ID]uint64, exclude map[string]bool, now int64) Result {
	r := Result{Proposal: p.ID, Winner: -1, Leader: -1, Counted: []string{}, Ignored: map[string]string{}}
	eligible, ok := totalWeight(w)
	if p.Validate() != nil || !ok {
		r.Status = StatusInvalid
		r.Fingerprint = fingerprint(nil)
		return r
	}
	r.Eligible = eligible

	cs, ok := selectBallots(p, ballots, w, exclude, &r)
	if !ok {
		cs, _ = selectBallots(p, canonical(ballots), w, exclude, &r)
	}
	r.Voters = len(cs)
	for _, c := range cs {
		r.Weight += c.w
	}
	r.Fingerprint = fingerprint(r.Counted)

	switch p.Method {
	case MethodSingle:
		r.Counts = make([]uint64, p.Choices)
		for _, c := range cs {
			r.Counts[c.b.Choices[0]] += c.w
		}
		r.Base = r.Weight
	case MethodApproval:
		r.Counts = make([]uint64, p.Choices)
		for _, c := range cs {
			for _, ch := range c.b.Choices {
				r.Counts[ch] += c.w
			}
		}
		r.Base = r.Weight
	case MethodRanked:
		r.Rounds, r.Base = runoff(p.Choices, cs)
		r.Counts = slices.Clone(r.Rounds[len(r.Rounds)-1])
	case MethodQuadratic:
		r.Counts = make([]uint64, p.Choices)
		for _, c := range cs {
			for k, ch := range c.b.Choices {
				votes := isqrt(c.w * uint64(c.b.Credits[k]))
				r.Counts[ch] += votes
				r.Base += votes
			}
		}
	}
	r.Leader = leader(r.Counts)

	switch {
	case now < p.Start:
		r.Status = StatusPending
	case now <= p.End:
		r.Status = StatusOpen
	case !atLeast(r.Weight, 1000, uint64(p.Quorum), r.Eligible):
		r.Status = StatusNoQuorum
	case r.Leader >= 0 && atLeast(r.Counts[r.Leader], 1000, uint64(p.Threshold), r.Base):
		r.Status = StatusPassed
		r.Winner = r.Leader
	default:
		r.Status = StatusRejected
	}
	return r
}

// selectBallots applies rule 2: it sets r.Counted and r.Ignored and returns
// the counted ballots, in input order. Most of the work runs in input order,
// which is usually allocation order and so cache-friendly; only the IDs are
// sorted. It reports false, having set nothing, if two different ballots
// share an ID: Tally then selects again among canonical copies.
func selectBallots(p Proposal, ballots []Ballot, w map[peer.ID]uint64, exclude map[string]bool, r *Result) ([]counted, bool) {
	keys := make([]idKey, len(ballots))
	why := make([]uint8, len(ballots))
	weights := make([]uint64, len(ballots))
	latest := make(map[peer.ID]int, len(ballots)) // voter → index of its latest ballot
	for i := range ballots {
		b := &ballots[i]
		keys[i] = newIDKey(b.ID, i)
		weights[i] = w[b.Voter]
		if why[i] = ignoreReason(p, b, weights[i], exclude); why[i] != 0 {
			continue
		}
		// Identical copies tie; the first stays, and they are one ballot.
		if j, seen := latest[b.Voter]; !seen || later(b, &ballots[j]) {
			latest[b.Voter] = i
		}
	}
	isLatest := make([]bool, len(ballots))
	for _, i := range latest {
		isLatest[i] = true
	}

	slices.SortFunc(keys, func(a, b idKey) int { return compareIDs(ballots, a, b) })
	ids := make([]string, 0, len(latest))
	ignored := map[string]string{}
	for k := 0; k < len(keys); {
		i, last, isCounted := keys[k].i, k+1, isLatest[keys[k].i]
		for ; last < len(keys) && compareIDs(ballots, keys[last], keys[k]) == 0; last++ {
			if compareCopies(&ballots[keys[last].i], &ballots[i]) != 0 {
				return nil, false
			}
			isCounted = isCounted || isLatest[keys[last].i]
		}
		k = last
		switch {
		case why[i] != 0:
			ignored[ballots[i].ID] = reasons[why[i]]
		case isCounted:
			ids = append(ids, ballots[i].ID)
		default:
			ignored[ballots[i].ID] = ReasonSuperseded
		}
	}

	cs := make([]counted, 0, len(latest))
	for i := range ballots {
		if isLatest[i] {
			cs = append(cs, counted{w: weights[i], b: &ballots[i]})
		}
	}
	r.Counted, r.Ignored = ids, ignored
	return cs, true
}

// fingerprint hashes the IDs joined with "\n", through a small buffer.
func fingerprint(ids []string) [32]byte {
	h := sha256.New()
	buf := make([]byte, 0, 32<<10)
	for i, id := range ids {
		if len(buf)+len(id)+1 > cap(buf) {
			h.Write(buf)
			buf = buf[:0]
		}
		if i > 0 {
			buf = append(buf, '\n')
		}
		buf = append(buf, id...)
	}
	h.Write(buf)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// canonical keeps one copy of the ballots that share an ID: the least by
// content, so that the choice does not depend on the input order.
func canonical(ballots []Ballot) []Ballot {
	idx := make([]int, len(ballots))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		return cmp.Or(strings.Compare(ballots[a].ID, ballots[b].ID), compareCopies(&ballots[a], &ballots[b]))
	})
	out := make([]Ballot, 0, len(ballots))
	for k, i := range idx {
		if k == 0 || ballots[i].ID != out[len(out)-1].ID {
			out = append(out, ballots[i])
		}
	}
	return out
}

// totalWeight sums w, reporting false past MaxTotalWeight.
func totalWeight(w map[peer.ID]uint64) (uint64, bool) {
	var sum uint64
	for _, x := range w {
		if x > MaxTotalWeight || sum+x > MaxTotalWeight {
			return 0, false
		}
		sum += x
	}
	return sum, true
}

// ignoreReason returns why b does not take part, as an index into
// reasons, or 0.
func ignoreReason(p Proposal, b *Ballot, weight uint64, exclude map[string]bool) uint8 {
	switch {
	case b.Created < p.Start:
		return 1
	case b.Created > p.End:
		return 2
	case exclude[b.ID]:
		return 3
	case weight == 0:
		return 4
	case !wellFormed(p, b):
		return 5
	}
	return 0
}

// wellFormed checks b against p's method (rule 3).
func wellFormed(p Proposal, b *Ballot) bool {
	n := len(b.Choices)
	if n == 0 || n > p.Choices || (p.Method == MethodSingle && n != 1) {
		return false
	}
	var seen uint64 // Choices ≤ 32
	for _, ch := range b.Choices {
		if ch < 0 || ch >= p.Choices || seen&(1<<ch) != 0 {
			return false
		}
		seen |= 1 << ch
	}
	if p.Method != MethodQuadratic {
		return true
	}
	if len(b.Credits) != n {
		return false
	}
	var sum int64
	for _, c := range b.Credits {
		if c < 0 || c > MaxCredits {
			return false
		}
		sum += c
	}
	return sum <= MaxCredits
}

// later reports whether a replaces b: later by (Created, ID).
func later(a, b *Ballot) bool {
	if a.Created != b.Created {
		return a.Created > b.Created
	}
	return a.ID > b.ID
}

// compareCopies orders two ballots that share an ID, to keep one of them
// whatever the input order.
func compareCopies(a, b *Ballot) int {
	if c := strings.Compare(string(a.Voter), string(b.Voter)); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Created, b.Created); c != 0 {
		return c
	}
	if c := slices.Compare(a.Choices, b.Choices); c != 0 {
		return c
	}
	return slices.Compare(a.Credits, b.Credits)
}

// runoff runs the instant runoff (rule 6) and returns every round's counts
// and the last round's active weight.
func runoff(n int, cs []counted) ([][]uint64, uint64) {
	out := make([]bool, n)
	pos := make([]int, len(cs)) // each ballot's current preference
	remaining := n
	var rounds [][]uint64
	for {
		counts := make([]uint64, n)
		var active uint64
		for i, c := range cs {
			prefs := c.b.Choices
			for pos[i] < len(prefs) && out[prefs[pos[i]]] {
				pos[i]++
			}
			if pos[i] < len(prefs) {
				counts[prefs[pos[i]]] += c.w
				active += c.w
			}
		}
		rounds = append(rounds, counts)
		if active == 0 || remaining <= 2 || 2*slices.Max(counts) > active {
			return rounds, active
		}
		var prev []uint64
		if len(rounds) > 1 {
			prev = rounds[len(rounds)-2]
		}
		loser := -1
		for ch := range n {
			if !out[ch] && (loser < 0 || eliminateBefore(ch, loser, counts, prev)) {
				loser = ch
			}
		}
		out[loser] = true
		remaining--
	}
}

// eliminateBefore reports whether choice a goes before choice b: a lower
// count, then a lower count in the previous round, then a higher index.
func eliminateBefore(a, b int, counts, prev []uint64) bool {
	if counts[a] != counts[b] {
		return counts[a] < counts[b]
	}
	if prev != nil && prev[a] != prev[b] {
		return prev[a] < prev[b]
	}
	return a > b
}

// leader returns the index of the unique greatest count, or -1 on a tie or
// when every count is 0.
func leader(counts []uint64) int {
	best, tied := -1, false
	for i, c := range counts {
		switch {
		case c == 0:
		case best < 0 || c > counts[best]:
			best, tied = i, false
		case c == counts[best]:
			tied = true
		}
	}
	if tied {
		return -1
	}
	return best
}

// atLeast reports whether a·x ≥ b·y, in 128 bits so nothing overflows.
func atLeast(a, x, b, y uint64) bool {
	ahi, alo := bits.Mul64(a, x)
	bhi, blo := bits.Mul64(b, y)
	return ahi > bhi || (ahi == bhi && alo >= blo)
}

// isqrt returns ⌊√x⌋, digit by digit, in integers only.
func isqrt(x uint64) uint64 {
	var r uint64
	bit := uint64(1) << 62
	for bit > x {
		bit >>= 2
	}
	for bit != 0 {
		if x >= r+bit {
			x -= r + bit
			r = r>>1 + bit
		} else {
			r >>= 1
		}
		bit >>= 2
	}
	return r
}
