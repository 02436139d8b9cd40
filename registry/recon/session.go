package recon

import (
	"bytes"
	"errors"
	"fmt"

	wire "github.com/agora-p2p/agora/protocol/recon"
)

// How ranges are split. These are the sender's choice, not part of the
// protocol: a receiver accepts any split.
const (
	// Buckets is how many ranges a differing range is split into.
	Buckets = 16
	// IDListThreshold: a differing range with fewer items than this is sent
	// as a list of IDs instead of being split.
	IDListThreshold = 2 * Buckets
)

// Config limits a Session. The zero value of each field means its default.
type Config struct {
	// Community is the binary CID of the community being synced. The
	// initiator names it in Open; a responder refuses an Open for another.
	// Required.
	Community []byte
	// FrameSizeLimit bounds the encoded size of every frame the session
	// produces. Default wire.MaxFrameSize, the most a peer accepts; at
	// least MinFrameSizeLimit. Smaller frames mean more round trips.
	FrameSizeLimit int
	// MaxRounds bounds the frames the session answers (responder) or the
	// frames it sends that expect an answer (initiator), so that a peer
	// cannot keep it busy forever. Default DefaultMaxRounds: 1,000 differing
	// items among 1,000,000 take about 10 rounds; a node catching up on
	// everything needs about one round per 2,000 items it lacks. An
	// initiator that reaches the limit ends with Done and Complete() false;
	// a new session continues.
	MaxRounds int
}

const (
	// DefaultMaxRounds is Config.MaxRounds by default.
	DefaultMaxRounds = 1024
	// MinFrameSizeLimit is the smallest Config.FrameSizeLimit: room for a
	// full split (16 fingerprints) or an ID list below IDListThreshold,
	// plus the ranges that close a frame.
	MinFrameSizeLimit = 4096
)

type role uint8

const (
	roleNone role = iota
	roleInitiator
	roleResponder
)

// Session is one side of one reconciliation. The initiator calls Initiate,
// sends the frame, and passes every answer to Reconcile until it returns
// done; the responder passes every frame it reads to Reconcile and sends
// back what it returns until done. A Session is not safe for concurrent use.
//
// Sessions keep no state that matters between rounds beyond counters: each
// frame is answered from its bounds alone, so an interrupted sync is simply
// run again, and what was already fetched makes its ranges match at once.
type Session struct {
	store Store
	cfg   Config

	role     role
	over     bool  // Done was sent (initiator) or received (responder)
	err      error // sticky: the session failed
	rounds   int
	reported map[[wire.IDSize]byte]struct{} // IDs reported in have or need
	scanned  int                            // our items diff has looked at
	complete bool
	differed bool
}

// NewSession returns a session over store, which must stay unchanged during
// each call (see Store).
func NewSession(store Store, cfg Config) (*Session, error) {
	if store == nil {
		return nil, errors.New("recon: new session: no store")
	}
	if _, err := wire.IDFromCID(cfg.Community); err != nil {
		return nil, fmt.Errorf("recon: new session: community: %w", err)
	}
	switch {
	case cfg.FrameSizeLimit == 0:
		cfg.FrameSizeLimit = wire.MaxFrameSize
	case cfg.FrameSizeLimit < MinFrameSizeLimit || cfg.FrameSizeLimit > wire.MaxFrameSize:
		return nil, fmt.Errorf("recon: new session: frame size limit %d is outside %d..%d", cfg.FrameSizeLimit, MinFrameSizeLimit, wire.MaxFrameSize)
	}
	switch {
	case cfg.MaxRounds == 0:
		cfg.MaxRounds = DefaultMaxRounds
	case cfg.MaxRounds < 0:
		return nil, fmt.Errorf("recon: new session: max rounds %d is negative", cfg.MaxRounds)
	}
	cfg.Community = bytes.Clone(cfg.Community)
	return &Session{store: store, cfg: cfg}, nil
}

// Initiate makes the session the initiator and returns its Open frame.
func (s *Session) Initiate() (wire.Frame, error) {
	if s.role != roleNone || s.err != nil {
		return nil, ErrSessionOver
	}
	s.role = roleInitiator
	s.rounds = 1
	ranges := s.split(0, s.store.Len(), wire.Infinity)
	return &wire.Open{Community: bytes.Clone(s.cfg.Community), Ranges: ranges}, nil
}

// Reconcile takes the peer's frame and returns the frame to send back.
//
// The initiator passes the responder's answers (Reconcile frames). It gets
// the next Reconcile to send, or Done with done set once nothing is left to
// settle (or MaxRounds is reached; see Complete). have and need are the
// CIDs, learned from this frame, that only we hold and that only the peer
// holds; over the whole session each CID is reported at most once, and
// when it completes they are exactly the two set differences.
//
// The responder passes the initiator's Open, Reconcile and Done frames. It
// gets the Reconcile to send back, or done and no frame after Done. It
// learns no have or need (see Differed).
//
// On error the session is over; ErrorFrame gives the frame to send before
// closing the stream, and IsPeerFault says whether to score the peer down.
// A peer's Error frame comes back as a *wire.Error.
func (s *Session) Reconcile(in wire.Frame) (out wire.Frame, have, need [][]byte, done bool, err error) {
	if s.err != nil || s.over {
		return nil, nil, nil, false, ErrSessionOver
	}
	defer func() {
		if err != nil {
			s.err = err
			out, have, need, done = nil, nil, nil, false
		}
	}()
	if e, ok := in.(*wire.Error); ok {
		return nil, nil, nil, false, e
	}
	var ranges []wire.Range
	switch s.role {
	case roleNone:
		open, ok := in.(*wire.Open)
		if !ok {
			return nil, nil, nil, false, unexpected(in, "open")
		}
		if !bytes.Equal(open.Community, s.cfg.Community) {
			return nil, nil, nil, false, fmt.Errorf("%w: %x", ErrUnknownCommunity, open.Community)
		}
		s.role = roleResponder
		ranges = open.Ranges
	case roleResponder:
		switch f := in.(type) {
		case *wire.Reconcile:
			ranges = f.Ranges
		case *wire.Done:
			s.over = true
			return nil, nil, nil, true, nil
		default:
			return nil, nil, nil, false, unexpected(in, "reconcile or done")
		}
	case roleInitiator:
		f, ok := in.(*wire.Reconcile)
		if !ok {
			return nil, nil, nil, false, unexpected(in, "reconcile")
		}
		ranges = f.Ranges
	}
	if err := wire.ValidateRanges(ranges); err != nil {
		return nil, nil, nil, false, err
	}
	if s.role == roleResponder {
		s.rounds++
		if s.rounds > s.cfg.MaxRounds {
			return nil, nil, nil, false, fmt.Errorf("%w (%d)", ErrTooManyRounds, s.cfg.MaxRounds)
		}
	}
	outRanges, have, need, err := s.process(ranges)
	if err != nil {
		return nil, nil, nil, false, err
	}
	if s.role == roleResponder {
		return &wire.Reconcile{Ranges: outRanges}, nil, nil, false, nil
	}
	if len(outRanges) == 0 || s.rounds >= s.cfg.MaxRounds {
		s.over = true
		s.complete = len(outRanges) == 0
		return &wire.Done{}, have, need, true, nil
	}
	s.rounds++
	return &wire.Reconcile{Ranges: outRanges}, have, need, false, nil
}

func unexpected(f wire.Frame, want string) error {
	if f == nil {
		return fmt.Errorf("%w: no frame where %s was due", wire.ErrBadFrame, want)
	}
	return fmt.Errorf("%w: a %s frame where %s was due", wire.ErrBadFrame, f.Type(), want)
}

// Rounds returns the frames sent that expect an answer (initiator) or the
// frames answered (responder).
func (s *Session) Rounds() int { return s.rounds }

// Complete reports whether the initiator ended because the sets were fully
// reconciled, rather than at MaxRounds.
func (s *Session) Complete() bool { return s.complete }

// Differed reports whether the session saw any sign that the sets differ:
// a fingerprint or an ID list that did not match. Only the initiator learns
// the differences; a responder that wants what the initiator has runs its
// own session as initiator, and Differed says that it is worth doing.
func (s *Session) Differed() bool { return s.differed }

// closeReserve is room kept in every frame for the two ranges that close it
// when the budget runs out: a skip up to the current range and a
// fingerprint of everything after it.
var closeReserve = wire.RangeSize(wire.Bound{}, wire.Range{Upper: wire.Bound{Created: 1<<64 - 2, Prefix: make([]byte, wire.IDSize)}}) +
	wire.RangeSize(wire.Bound{}, wire.Range{Upper: wire.Infinity, Mode: wire.ModeFingerprint})

// output accumulates the ranges of a frame within its budget.
type output struct {
	ranges []wire.Range
	last   wire.Bound // upper bound of the last range added
	size   int        // bytes of the ranges added
	budget int        // bytes for ranges, closeReserve excluded
}

func (s *Session) newOutput() *output {
	return &output{budget: s.cfg.FrameSizeLimit - wire.RangesOverhead - closeReserve}
}

// cost is the bytes rs would add.
func (o *output) cost(rs ...wire.Range) int {
	n, prev := 0, o.last
	for _, r := range rs {
		n += wire.RangeSize(prev, r)
		prev = r.Upper
	}
	return n
}

func (o *output) fits(extraRanges, extraBytes int) bool {
	return len(o.ranges)+extraRanges <= wire.MaxRanges-2 && o.size+extraBytes <= o.budget
}

func (o *output) add(rs ...wire.Range) {
	o.size += o.cost(rs...)
	o.ranges = append(o.ranges, rs...)
	if len(rs) > 0 {
		o.last = rs[len(rs)-1].Upper
	}
}

// process answers the peer's ranges. It walks them in order keeping lower,
// the position of the first of our items in the current range, and emits
// only the ranges that need something from the peer; a run of settled
// ranges becomes one skip, and trailing ones are left out.
//
// When the frame budget runs out, process keeps settling what it can answer
// without output (matching fingerprints, ID lists) and defers the rest: each
// run of unsettled ranges goes back as one fingerprint, for the peer to split
// again next round, while settled ranges stay skipped. Only if even those
// fingerprints do not fit does one fingerprint up to Infinity close the
// frame.
func (s *Session) process(in []wire.Range) (ranges []wire.Range, have, need [][]byte, err error) {
	n := s.store.Len()
	o := s.newOutput()
	lower := 0
	var prev wire.Bound // upper bound of the previous incoming range

	// A run of settled ranges, ending at skipTo, not emitted yet.
	skip, skipTo := false, wire.Bound{}
	pending := func() []wire.Range {
		if skip {
			return []wire.Range{{Upper: skipTo, Mode: wire.ModeSkip}}
		}
		return nil
	}
	settle := func(b wire.Bound) { skip, skipTo = true, b }

	deferring := false // the budget ran out
	runOpen := false   // deferred ranges start at runLower and end at prev
	runLower := 0
	// closeRun emits the deferred run as one fingerprint. If it does not
	// fit, it closes the frame with a fingerprint of everything from the
	// run on and reports false.
	closeRun := func() bool {
		runOpen = false
		rs := append(pending(), wire.Range{Upper: prev, Mode: wire.ModeFingerprint, Fingerprint: s.store.Fingerprint(runLower, lower)})
		if o.fits(len(rs), o.cost(rs...)) {
			o.add(rs...)
			skip = false
			return true
		}
		o.add(pending()...)
		o.add(wire.Range{Upper: wire.Infinity, Mode: wire.ModeFingerprint, Fingerprint: s.store.Fingerprint(runLower, n)})
		return false
	}

	for _, r := range in {
		upper := s.store.FindLowerBound(lower, n, r.Upper)
		settled := true
		switch r.Mode {
		case wire.ModeFingerprint:
			settled = s.store.Fingerprint(lower, upper) == r.Fingerprint
		case wire.ModeIDList:
			if s.role == roleInitiator {
				h, nd, err := s.diff(lower, upper, r.IDs)
				if err != nil {
					return nil, nil, nil, err
				}
				have, need = append(have, h...), append(need, nd...)
				break
			}
			if settled, err = s.same(lower, upper, r.IDs); err != nil {
				return nil, nil, nil, err
			}
		}
		if !settled {
			s.differed = true
		}
		switch {
		case settled:
			if runOpen && !closeRun() {
				return o.ranges, have, need, nil
			}
			settle(r.Upper)
		case deferring:
			if !runOpen {
				runOpen, runLower = true, lower
			}
		case r.Mode == wire.ModeFingerprint:
			rs := append(pending(), s.split(lower, upper, r.Upper)...)
			if o.fits(len(rs), o.cost(rs...)) {
				o.add(rs...)
				skip = false
			} else {
				deferring, runOpen, runLower = true, true, lower
			}
		default: // a responder answers an ID list with its own
			k := s.fitIDs(o, pending(), r.Upper, upper-lower)
			if k == upper-lower {
				o.add(pending()...)
				o.add(wire.Range{Upper: r.Upper, Mode: wire.ModeIDList, IDs: s.ids(lower, upper)})
				skip = false
				break
			}
			// Send the IDs that fit, up to a bound between the last sent
			// and the first held back, and defer the rest.
			deferring, runOpen, runLower = true, true, lower
			if k > 0 {
				o.add(pending()...)
				o.add(wire.Range{Upper: s.boundAt(lower + k), Mode: wire.ModeIDList, IDs: s.ids(lower, lower+k)})
				skip = false
				runLower = lower + k
			}
		}
		lower, prev = upper, r.Upper
	}
	if runOpen {
		closeRun()
	}
	return o.ranges, have, need, nil
}

// fitIDs returns how many of count IDs an ID list range after pre can carry
// within the budget: count if all fit, else as many as fit with a cut bound
// in place of upper (possibly 0).
func (s *Session) fitIDs(o *output, pre []wire.Range, upper wire.Bound, count int) int {
	// An ID list header grows by at most 2 bytes below MaxFrameSize.
	room := o.budget - o.size - o.cost(append(pre, wire.Range{Upper: upper, Mode: wire.ModeIDList})...) - 2
	if !o.fits(len(pre)+1, 0) {
		return 0
	}
	if count*wire.IDSize <= room {
		return count
	}
	return max(0, min((room-maxBoundGrowth)/wire.IDSize, count-1))
}

// maxBoundGrowth is how many more bytes a cut bound can take than the bound
// it replaces: a full prefix and the widest time delta.
const maxBoundGrowth = wire.IDSize + 1 + 8

// split describes our items at [lower, upper), which end at bound upperBound:
// as an ID list if they are few, else as Buckets fingerprints of about equal
// counts, each ending at the minimal bound before the next bucket.
func (s *Session) split(lower, upper int, upperBound wire.Bound) []wire.Range {
	count := upper - lower
	if count < IDListThreshold {
		return []wire.Range{{Upper: upperBound, Mode: wire.ModeIDList, IDs: s.ids(lower, upper)}}
	}
	out := make([]wire.Range, 0, Buckets)
	per, extra := count/Buckets, count%Buckets
	cur := lower
	for i := range Buckets {
		size := per
		if i < extra {
			size++
		}
		r := wire.Range{Mode: wire.ModeFingerprint, Fingerprint: s.store.Fingerprint(cur, cur+size)}
		cur += size
		if cur == upper {
			r.Upper = upperBound
		} else {
			r.Upper = s.boundAt(cur)
		}
		out = append(out, r)
	}
	return out
}

// boundAt returns the minimal bound between the items at i-1 and i.
func (s *Session) boundAt(i int) wire.Bound {
	var pair [2]Item
	j := 0
	for it := range s.store.Items(i-1, i+1) {
		pair[j] = Item{Created: it.Created, ID: bytes.Clone(it.ID)}
		j++
	}
	return minimalBound(pair[0], pair[1])
}

// ids returns copies of the wire IDs of our items at [lower, upper).
func (s *Session) ids(lower, upper int) [][]byte {
	out := make([][]byte, 0, upper-lower)
	for it := range s.store.Items(lower, upper) {
		out = append(out, bytes.Clone(it.digest()))
	}
	return out
}

// idSet indexes a peer's ID list, refusing repeats.
func idSet(ids [][]byte) (map[[wire.IDSize]byte]bool, error) {
	set := make(map[[wire.IDSize]byte]bool, len(ids))
	for _, id := range ids {
		k := [wire.IDSize]byte(id)
		if set[k] {
			return nil, fmt.Errorf("%w: an ID list names %x twice", wire.ErrBadFrame, id)
		}
		set[k] = true
	}
	return set, nil
}

// diff settles a range for the initiator from the peer's full ID list.
func (s *Session) diff(lower, upper int, theirs [][]byte) (have, need [][]byte, err error) {
	// An honest peer has each of our items listed about once; one that
	// keeps reopening ranges must not make us scan the store every round.
	s.scanned += upper - lower
	if s.scanned > 8*s.store.Len()+1<<20 {
		return nil, nil, fmt.Errorf("%w: the peer keeps reopening ranges that were already settled", wire.ErrBadFrame)
	}
	set, err := idSet(theirs)
	if err != nil {
		return nil, nil, err
	}
	if s.reported == nil {
		s.reported = make(map[[wire.IDSize]byte]struct{})
	}
	// firstReport is false for an ID already reported: a frame that ran out
	// of room may hand back a settled range, which is then settled again.
	firstReport := func(k [wire.IDSize]byte) bool {
		if _, ok := s.reported[k]; ok {
			return false
		}
		s.reported[k] = struct{}{}
		return true
	}
	for it := range s.store.Items(lower, upper) {
		k := [wire.IDSize]byte(it.digest())
		if _, ok := set[k]; ok {
			set[k] = false
			continue
		}
		if firstReport(k) {
			have = append(have, bytes.Clone(it.ID))
		}
	}
	for _, id := range theirs {
		k := [wire.IDSize]byte(id)
		if set[k] && firstReport(k) {
			c, _ := wire.CIDFromID(id) // IDSize bytes: checked by ValidateRanges
			need = append(need, c)
		}
	}
	if len(have) > 0 || len(need) > 0 {
		s.differed = true
	}
	return have, need, nil
}

// same reports whether the peer's ID list is exactly our items at
// [lower, upper), so that the responder can skip the range instead of
// sending its own list.
func (s *Session) same(lower, upper int, theirs [][]byte) (bool, error) {
	set, err := idSet(theirs)
	if err != nil {
		return false, err
	}
	if len(set) != upper-lower {
		return false, nil
	}
	for it := range s.store.Items(lower, upper) {
		if !set[[wire.IDSize]byte(it.digest())] {
			return false, nil
		}
	}
	return true, nil
}
