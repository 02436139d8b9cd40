package community

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidPolicy reports a policy value outside its allowed range.
var ErrInvalidPolicy = errors.New("the community policy is invalid")

// Policy holds the community rules that governance can change. Every value
// is an integer so signed records never carry floats: trust and vote shares
// are in thousandths (1000 = 100%), durations in seconds. Keys are
// append-only; a new key needs a default that keeps old genesis records
// meaning what they meant.
type Policy struct {
	// CertifyMinAttestations is how many passing attestations from distinct
	// qualifying auditors a subject needs to be certified.
	CertifyMinAttestations int64 `cbor:"certify_min_attestations"`
	// CertifyMinAuditorTrust is the community trust, in thousandths, an
	// auditor needs for its attestations to count toward certification.
	CertifyMinAuditorTrust int64 `cbor:"certify_min_auditor_trust"`
	// DelegateMinTrust is the trust, in thousandths, a requester needs
	// before members' executors accept its tasks. 0 lets newcomers delegate.
	DelegateMinTrust int64 `cbor:"delegate_min_trust"`
	// VoteQuorum is the share of total voting weight, in thousandths, that
	// must take part for a proposal's result to count.
	VoteQuorum int64 `cbor:"vote_quorum"`
	// VoteThreshold is the share of the cast weight, in thousandths, a
	// choice needs to pass.
	VoteThreshold int64 `cbor:"vote_threshold"`
	// VoteDurationSeconds is a proposal's default voting period.
	VoteDurationSeconds int64 `cbor:"vote_duration_s"`
	// VoteGraceSeconds is how long after a vote's end a late-arriving vote
	// still counts, to absorb gossip delay and clock skew.
	VoteGraceSeconds int64 `cbor:"vote_grace_s"`
}

// DefaultPolicy returns the policy a new community starts with unless its
// founders choose otherwise.
func DefaultPolicy() Policy {
	return Policy{
		CertifyMinAttestations: 2,                // one auditor alone cannot certify
		CertifyMinAuditorTrust: 100,              // 0.1 community trust
		DelegateMinTrust:       0,                // newcomers can ask for help
		VoteQuorum:             200,              // a fifth of the weight must vote
		VoteThreshold:          500,              // simple majority of cast weight
		VoteDurationSeconds:    7 * 24 * 60 * 60, // a week: members are people
		VoteGraceSeconds:       120,              // gossip delay plus clock skew
	}
}

// policyRange is the allowed range of one policy key, inclusive.
type policyRange struct {
	key      string
	min, max int64
	value    func(Policy) int64
}

var policyRanges = []policyRange{
	{"certify_min_attestations", 1, 1000, func(p Policy) int64 { return p.CertifyMinAttestations }},
	{"certify_min_auditor_trust", 0, 1000, func(p Policy) int64 { return p.CertifyMinAuditorTrust }},
	{"delegate_min_trust", 0, 1000, func(p Policy) int64 { return p.DelegateMinTrust }},
	{"vote_quorum", 0, 1000, func(p Policy) int64 { return p.VoteQuorum }},
	{"vote_threshold", 1, 1000, func(p Policy) int64 { return p.VoteThreshold }},
	{"vote_duration_s", 60, 365 * 24 * 60 * 60, func(p Policy) int64 { return p.VoteDurationSeconds }},
	{"vote_grace_s", 0, 24 * 60 * 60, func(p Policy) int64 { return p.VoteGraceSeconds }},
}

// Validate reports the first policy key outside its allowed range.
func (p Policy) Validate() error {
	for _, r := range policyRanges {
		if v := r.value(p); v < r.min || v > r.max {
			return fmt.Errorf("%w: %s must be between %d and %d, not %d", ErrInvalidPolicy, r.key, r.min, r.max, v)
		}
	}
	return nil
}

// VoteDuration returns VoteDurationSeconds as a time.Duration.
func (p Policy) VoteDuration() time.Duration {
	return time.Duration(p.VoteDurationSeconds) * time.Second
}

// VoteGrace returns VoteGraceSeconds as a time.Duration.
func (p Policy) VoteGrace() time.Duration {
	return time.Duration(p.VoteGraceSeconds) * time.Second
}
