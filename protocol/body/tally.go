package body

import (
	"fmt"
	"slices"

	"github.com/agora-p2p/agora/protocol/canon"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// MaxLate bounds the late votes a tally lists.
const MaxLate = 256

// Tally statuses. The list is append-only; a value this node does not know
// is ErrUnknownField.
const (
	StatusPassed   = "passed"    // quorum met and a choice reached the threshold
	StatusRejected = "rejected"  // quorum met, but no choice reached the threshold
	StatusNoQuorum = "no-quorum" // too little of the eligible weight voted
)

// Tally is the body of a tally record: its author's count of a proposal's
// votes after the voting period. Tallies by different nodes that saw the
// same votes are identical but for Late; a different Fingerprint shows a
// different view of the votes.
type Tally struct {
	// Proposal is the record ID of the proposal.
	Proposal cid.Cid
	Status   string
	// Winner is the index of the winning choice when Status is passed, -1
	// otherwise.
	Winner int64
	// Counts are per choice, in the weight units of the proposal's
	// weighting; for ranked voting, those of the final round.
	Counts []uint64
	// Voters is how many votes counted, Weight their total weight and
	// Eligible the total weight of everyone who could vote.
	Voters   uint64
	Weight   uint64
	Eligible uint64
	// Fingerprint is the sha2-256 multihash of the set of votes counted.
	Fingerprint []byte
	// Late are the record IDs of votes the author excluded because it
	// first saw them after the end plus the grace period; at most MaxLate.
	Late []cid.Cid
}

type tallyWire struct {
	Late        [][]byte `cbor:"late,omitempty"`
	Counts      []uint64 `cbor:"counts"`
	Status      string   `cbor:"status"`
	Voters      uint64   `cbor:"voters"`
	Weight      uint64   `cbor:"weight"`
	Winner      int64    `cbor:"winner"`
	Eligible    uint64   `cbor:"eligible"`
	Proposal    []byte   `cbor:"proposal"`
	Fingerprint []byte   `cbor:"fingerprint"`
}

func (t Tally) toWire() tallyWire {
	w := tallyWire{
		Counts: t.Counts, Status: t.Status, Voters: t.Voters, Weight: t.Weight, Winner: t.Winner,
		Eligible: t.Eligible, Proposal: cidBytes(t.Proposal), Fingerprint: t.Fingerprint,
	}
	if len(t.Late) > 0 {
		w.Late = make([][]byte, len(t.Late))
		for i, c := range t.Late {
			w.Late[i] = cidBytes(c)
		}
	}
	return w
}

func (w tallyWire) fromWire() (Tally, error) {
	p, err := recordIDFromWire("tally's proposal", w.Proposal)
	if err != nil {
		return Tally{}, err
	}
	t := Tally{
		Proposal: p, Status: w.Status, Winner: w.Winner, Counts: w.Counts, Voters: w.Voters,
		Weight: w.Weight, Eligible: w.Eligible, Fingerprint: w.Fingerprint,
	}
	if len(w.Late) > MaxLate {
		return Tally{}, fmt.Errorf("%w: a tally lists at most %d late votes, not %d", ErrInvalid, MaxLate, len(w.Late))
	}
	if len(w.Late) > 0 {
		t.Late = make([]cid.Cid, len(w.Late))
		for i, b := range w.Late {
			if t.Late[i], err = recordIDFromWire("late vote", b); err != nil {
				return Tally{}, err
			}
		}
	}
	return t, nil
}

// Kind implements Body.
func (Tally) Kind() record.Kind { return record.KindTally }

// Validate implements Body. That Counts has one entry per choice of the
// proposal, and that the tally is dated after its end, is the registry's
// to check.
func (t Tally) Validate(created int64) error {
	if !t.Proposal.Defined() {
		return fmt.Errorf("%w: the tally names no proposal", ErrInvalid)
	}
	if !isRecordID(t.Proposal) {
		return fmt.Errorf("%w: the tally's proposal %s is not a record ID (CIDv1 dag-cbor sha2-256)", ErrInvalid, clip(t.Proposal.String()))
	}
	switch t.Status {
	case StatusPassed, StatusRejected, StatusNoQuorum:
	case "":
		return fmt.Errorf("%w: the tally has no status; use passed, rejected or no-quorum", ErrInvalid)
	default:
		return fmt.Errorf("%w: tally status %q", ErrUnknownField, clip(t.Status))
	}
	if n := len(t.Counts); n < MinChoices || n > MaxChoices {
		return fmt.Errorf("%w: a tally counts %d to %d choices, not %d", ErrInvalid, MinChoices, MaxChoices, n)
	}
	if t.Winner < -1 || t.Winner >= int64(len(t.Counts)) {
		return fmt.Errorf("%w: the winner %d is not -1 or one of the %d choices", ErrInvalid, t.Winner, len(t.Counts))
	}
	switch {
	case t.Status == StatusPassed && t.Winner < 0:
		return fmt.Errorf("%w: a passed tally names its winning choice", ErrInvalid)
	case t.Status != StatusPassed && t.Winner >= 0:
		return fmt.Errorf("%w: a %s tally has no winner (-1), not %d", ErrInvalid, t.Status, t.Winner)
	}
	if d, err := mh.Decode(t.Fingerprint); err != nil || d.Code != mh.SHA2_256 || d.Length != 32 {
		return fmt.Errorf("%w: the tally's fingerprint is not a sha2-256 multihash", ErrInvalid)
	}
	if len(t.Late) > MaxLate {
		return fmt.Errorf("%w: a tally lists at most %d late votes, not %d", ErrInvalid, MaxLate, len(t.Late))
	}
	for i, c := range t.Late {
		if !isRecordID(c) {
			return fmt.Errorf("%w: late vote %d is not a record ID (CIDv1 dag-cbor sha2-256)", ErrInvalid, i)
		}
		if slices.Contains(t.Late[:i], c) {
			return fmt.Errorf("%w: the late vote %s is listed twice", ErrInvalid, c)
		}
	}
	return nil
}

// MarshalCBOR encodes the tally in its canonical wire form. It does not
// validate.
func (t Tally) MarshalCBOR() ([]byte, error) {
	return canon.Marshal(t.toWire())
}

// UnmarshalCBOR decodes with the strictness of DecodeTally.
func (t *Tally) UnmarshalCBOR(b []byte) error {
	v, err := DecodeTally(b)
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// DecodeTally reads a tally body and checks it on its own.
func DecodeTally(raw []byte) (Tally, error) {
	return decodeTally(raw, 0)
}

func decodeTally(raw []byte, created int64) (Tally, error) {
	var w tallyWire
	if err := decodeWire(record.KindTally, raw, &w); err != nil {
		return Tally{}, err
	}
	t, err := w.fromWire()
	if err != nil {
		return Tally{}, err
	}
	if err := t.Validate(created); err != nil {
		return Tally{}, err
	}
	if err := checkReencodes(record.KindTally, raw, w); err != nil {
		return Tally{}, err
	}
	return t, nil
}
