package community

import (
	"errors"
	"fmt"
	"strings"
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

	// The keys below were added later: they are omitted when zero, so a
	// genesis written before them keeps its encoding and its ID, and zero
	// means what the community had before the key existed.

	// ProposeMinTrust is the community trust level, in thousandths of the
	// most trusted peer's, a member needs to make a proposal. 0: anyone.
	ProposeMinTrust int64 `cbor:"propose_min_trust,omitempty"`
	// VoteMemberFloor is, under member weighting, the community trust level
	// at a proposal's start a voter must be above to count. 0: any positive
	// trust.
	VoteMemberFloor int64 `cbor:"vote_member_floor,omitempty"`
	// DelegateMinProviderTrust is the personal trust level, in thousandths
	// of the most trusted peer's, a provider needs for this community's
	// members to delegate to it. 0: no minimum.
	DelegateMinProviderTrust int64 `cbor:"delegate_min_provider_trust,omitempty"`
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

// PolicyKey describes one policy key for governance. Name is the dotted
// form users type ("certify.min_attestations"), Wire the key in the genesis
// and in set-policy actions' CBOR ("certify_min_attestations"); Min and Max
// bound the value, inclusive.
type PolicyKey struct {
	Name, Wire, Help string
	Min, Max         int64
}

// ErrUnknownPolicyKey reports a policy key this version does not define.
var ErrUnknownPolicyKey = errors.New("the community policy has no such key")

type policyKey struct {
	PolicyKey
	field func(*Policy) *int64
}

// policyKeys has one entry per Policy field, kept sorted by Name (a test
// checks both).
var policyKeys = []policyKey{
	{PolicyKey{"certify.min_attestations", "certify_min_attestations", "Passing attestations from distinct qualifying auditors a subject needs to be certified (a count).", 1, 1000},
		func(p *Policy) *int64 { return &p.CertifyMinAttestations }},
	{PolicyKey{"certify.min_auditor_trust", "certify_min_auditor_trust", "Community trust level an auditor needs for its attestations to count, in thousandths of the most trusted peer's.", 0, 1000},
		func(p *Policy) *int64 { return &p.CertifyMinAuditorTrust }},
	{PolicyKey{"delegate.min_provider_trust", "delegate_min_provider_trust", "Personal trust level a provider needs for members to delegate to it, in thousandths of the most trusted peer's; 0 for none.", 0, 1000},
		func(p *Policy) *int64 { return &p.DelegateMinProviderTrust }},
	{PolicyKey{"delegate.min_trust", "delegate_min_trust", "Trust level a requester needs before members accept its tasks, in thousandths; 0 lets newcomers delegate.", 0, 1000},
		func(p *Policy) *int64 { return &p.DelegateMinTrust }},
	{PolicyKey{"propose.min_trust", "propose_min_trust", "Community trust level a member needs to make a proposal, in thousandths of the most trusted peer's; 0 for anyone.", 0, 1000},
		func(p *Policy) *int64 { return &p.ProposeMinTrust }},
	{PolicyKey{"vote.duration_s", "vote_duration_s", "Default and shortest voting period of a proposal, in seconds.", 5, 365 * 24 * 60 * 60},
		func(p *Policy) *int64 { return &p.VoteDurationSeconds }},
	{PolicyKey{"vote.grace_s", "vote_grace_s", "How long after a proposal's end a late-arriving vote still counts, in seconds.", 0, 24 * 60 * 60},
		func(p *Policy) *int64 { return &p.VoteGraceSeconds }},
	{PolicyKey{"vote.member_floor", "vote_member_floor", "Under member weighting, the community trust level at a proposal's start, in thousandths, a voter must be above to count; 0 for any positive trust.", 0, 1000},
		func(p *Policy) *int64 { return &p.VoteMemberFloor }},
	{PolicyKey{"vote.quorum", "vote_quorum", "Share of the total eligible weight that must vote for a result to count, in thousandths; a proposal may ask for more, not less.", 0, 1000},
		func(p *Policy) *int64 { return &p.VoteQuorum }},
	{PolicyKey{"vote.threshold", "vote_threshold", "Share of the cast weight a choice needs to pass, in thousandths; a proposal may ask for more, not less.", 1, 1000},
		func(p *Policy) *int64 { return &p.VoteThreshold }},
}

// PolicyKeys returns every policy key, sorted by Name.
func PolicyKeys() []PolicyKey {
	keys := make([]PolicyKey, len(policyKeys))
	for i, k := range policyKeys {
		keys[i] = k.PolicyKey
	}
	return keys
}

// LookupPolicyKey finds a key by its dotted Name or its Wire form.
func LookupPolicyKey(name string) (PolicyKey, error) {
	k, err := lookupPolicyKey(name)
	return k.PolicyKey, err
}

func lookupPolicyKey(name string) (policyKey, error) {
	for _, k := range policyKeys {
		if name == k.Name || name == k.Wire {
			return k, nil
		}
	}
	names := make([]string, len(policyKeys))
	for i, k := range policyKeys {
		names[i] = k.Name
	}
	return policyKey{}, fmt.Errorf("%w: %q; the keys are %s", ErrUnknownPolicyKey, clip(name), strings.Join(names, ", "))
}

// Get returns the value of the key with the dotted or wire name.
func (p Policy) Get(name string) (int64, error) {
	k, err := lookupPolicyKey(name)
	if err != nil {
		return 0, err
	}
	return *k.field(&p), nil
}

// With returns a copy of p with the key set to value, or an error if the
// key is unknown (ErrUnknownPolicyKey) or the value out of its range
// (ErrInvalidPolicy). p itself is not changed.
func (p Policy) With(name string, value int64) (Policy, error) {
	k, err := lookupPolicyKey(name)
	if err != nil {
		return Policy{}, err
	}
	if value < k.Min || value > k.Max {
		return Policy{}, fmt.Errorf("%w: %s must be between %d and %d, not %d", ErrInvalidPolicy, k.Name, k.Min, k.Max, value)
	}
	*k.field(&p) = value
	return p, nil
}

// Validate reports the first policy key outside its allowed range.
func (p Policy) Validate() error {
	for _, k := range policyKeys {
		if v := *k.field(&p); v < k.Min || v > k.Max {
			return fmt.Errorf("%w: %s must be between %d and %d, not %d", ErrInvalidPolicy, k.Wire, k.Min, k.Max, v)
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
