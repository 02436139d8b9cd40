package body

import (
	"fmt"
	"slices"

	"github.com/agora-p2p/agora/protocol/canon"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/ipfs/go-cid"
)

// Vote limits.
const (
	// MaxCredits is a quadratic voter's budget, in thousandths: the credits
	// of one vote sum to at most this.
	MaxCredits         = 1000
	MaxVoteReasonBytes = 1 << 10
)

// Vote is the body of a vote record: a member's answer to a proposal. Of
// one author's votes on a proposal, the latest before the proposal's end
// counts.
type Vote struct {
	// Proposal is the record ID of the proposal.
	Proposal cid.Cid
	// Choices are indices into the proposal's choices, distinct: exactly
	// one for single; the approved ones for approval; in order of
	// preference, most preferred first, for ranked; those given credits
	// for quadratic.
	Choices []uint64
	// Credits are, for quadratic voting only, the thousandths of the
	// voter's budget spent on each of Choices: one entry per choice, each
	// at least 1, summing to at most MaxCredits. Empty otherwise.
	Credits []uint64
	// Reason is optional free text for people.
	Reason string
}

type voteWire struct {
	Reason   string   `cbor:"reason,omitempty"`
	Choices  []uint64 `cbor:"choices"`
	Credits  []uint64 `cbor:"credits,omitempty"`
	Proposal []byte   `cbor:"proposal"`
}

func (v Vote) toWire() voteWire {
	return voteWire{Reason: v.Reason, Choices: v.Choices, Credits: v.Credits, Proposal: cidBytes(v.Proposal)}
}

func (w voteWire) fromWire() (Vote, error) {
	p, err := recordIDFromWire("vote's proposal", w.Proposal)
	if err != nil {
		return Vote{}, err
	}
	return Vote{Proposal: p, Choices: w.Choices, Credits: w.Credits, Reason: w.Reason}, nil
}

// Kind implements Body.
func (Vote) Kind() record.Kind { return record.KindVote }

// Validate implements Body. It checks what needs no proposal; CheckAgainst
// checks the vote against the proposal it names, and the registry that the
// vote is dated within the voting period.
func (v Vote) Validate(created int64) error {
	if !v.Proposal.Defined() {
		return fmt.Errorf("%w: the vote names no proposal", ErrInvalid)
	}
	if !isRecordID(v.Proposal) {
		return fmt.Errorf("%w: the vote's proposal %s is not a record ID (CIDv1 dag-cbor sha2-256)", ErrInvalid, clip(v.Proposal.String()))
	}
	if n := len(v.Choices); n < 1 || n > MaxChoices {
		return fmt.Errorf("%w: a vote names 1 to %d choices, not %d", ErrInvalid, MaxChoices, n)
	}
	for i, c := range v.Choices {
		if c >= MaxChoices {
			return fmt.Errorf("%w: the vote names choice %d, but no proposal has more than %d", ErrInvalid, c, MaxChoices)
		}
		if slices.Contains(v.Choices[:i], c) {
			return fmt.Errorf("%w: the vote names choice %d twice", ErrInvalid, c)
		}
	}
	if len(v.Credits) > 0 {
		if len(v.Credits) != len(v.Choices) {
			return fmt.Errorf("%w: the vote gives credits to %d choices but names %d", ErrInvalid, len(v.Credits), len(v.Choices))
		}
		var sum uint64
		for _, c := range v.Credits {
			if c < 1 || c > MaxCredits {
				return fmt.Errorf("%w: each choice's credits must be 1 to %d thousandths of the budget, not %d", ErrInvalid, MaxCredits, c)
			}
			sum += c // at most MaxChoices × MaxCredits
		}
		if sum > MaxCredits {
			return fmt.Errorf("%w: the vote spends %d thousandths of the budget, more than %d", ErrInvalid, sum, MaxCredits)
		}
	}
	return checkText("vote reason", v.Reason, textRule{max: MaxVoteReasonBytes, bytes: true, multiline: true})
}

// CheckAgainst checks the vote's form against the proposal's method and
// choices: single takes exactly one choice, approval and ranked take no
// credits, quadratic needs them, and every index names a choice. v and p
// are assumed valid on their own.
func (v Vote) CheckAgainst(p Proposal) error {
	for _, c := range v.Choices {
		if c >= uint64(len(p.Choices)) {
			return fmt.Errorf("%w: the vote names choice %d, but the proposal has %d choices", ErrInvalid, c, len(p.Choices))
		}
	}
	switch p.Method {
	case MethodSingle:
		if len(v.Choices) != 1 {
			return fmt.Errorf("%w: a single-choice vote names exactly one choice, not %d", ErrInvalid, len(v.Choices))
		}
	case MethodApproval, MethodRanked:
	case MethodQuadratic:
		if len(v.Credits) == 0 {
			return fmt.Errorf("%w: a quadratic vote gives credits to each choice it names", ErrInvalid)
		}
		return nil
	default:
		return fmt.Errorf("%w: voting method %q", ErrUnknownField, clip(p.Method))
	}
	if len(v.Credits) > 0 {
		return fmt.Errorf("%w: only quadratic votes give credits, and the proposal's method is %s", ErrInvalid, p.Method)
	}
	return nil
}

// MarshalCBOR encodes the vote in its canonical wire form. It does not
// validate.
func (v Vote) MarshalCBOR() ([]byte, error) {
	return canon.Marshal(v.toWire())
}

// UnmarshalCBOR decodes with the strictness of DecodeVote.
func (v *Vote) UnmarshalCBOR(b []byte) error {
	d, err := DecodeVote(b)
	if err != nil {
		return err
	}
	*v = d
	return nil
}

// DecodeVote reads a vote body and checks it on its own.
func DecodeVote(raw []byte) (Vote, error) {
	return decodeVote(raw, 0)
}

func decodeVote(raw []byte, created int64) (Vote, error) {
	var w voteWire
	if err := decodeWire(record.KindVote, raw, &w); err != nil {
		return Vote{}, err
	}
	v, err := w.fromWire()
	if err != nil {
		return Vote{}, err
	}
	if err := v.Validate(created); err != nil {
		return Vote{}, err
	}
	if err := checkReencodes(record.KindVote, raw, w); err != nil {
		return Vote{}, err
	}
	return v, nil
}
