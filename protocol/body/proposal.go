package body

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agora-p2p/agora/protocol/canon"
	"github.com/agora-p2p/agora/protocol/community"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Proposal limits. Text lengths are in characters unless the name says
// Bytes; periods are between a proposal's start and end.
const (
	MaxTitleLen          = 200
	MaxProposalBodyBytes = 16 << 10
	MinChoices           = 2
	MaxChoices           = 32
	MaxChoiceLen         = 64
	MinVotingPeriod      = 5 * time.Second // a floor for tests and quick polls; communities use days
	MaxVotingPeriod      = 366 * 24 * time.Hour
)

// Voting methods. The list is append-only; a value this node does not know
// is ErrUnknownField.
const (
	MethodSingle    = "single"    // one choice per voter
	MethodApproval  = "approval"  // any number of choices, each approved alike
	MethodRanked    = "ranked"    // choices in order of preference (instant runoff)
	MethodQuadratic = "quadratic" // a budget of credits spread over choices
)

// Weightings say what a vote weighs. The list is append-only.
const (
	// WeightMember gives one vote to every member whose community trust at
	// the proposal's start is above the policy's vote.member_floor.
	WeightMember = "member"
	// WeightTrust weighs each vote by the voter's community trust at the
	// proposal's start.
	WeightTrust = "trust"
)

// Action types. The list is append-only; a type this node does not know is
// ErrUnknownField.
const (
	ActionSetPolicy     = "set-policy"     // Key, Value
	ActionBan           = "ban"            // Peer
	ActionUnban         = "unban"          // Peer
	ActionAddFounder    = "add-founder"    // Peer
	ActionRemoveFounder = "remove-founder" // Peer
	ActionAdoptCharter  = "adopt-charter"  // Target
	ActionCertify       = "certify"        // Subject
	ActionDecertify     = "decertify"      // Subject
)

// actionUsage is each action type's CLI syntax, in the order users see it.
var actionUsage = []struct{ typ, usage string }{
	{ActionSetPolicy, "set-policy KEY=VALUE"},
	{ActionBan, "ban PEER"},
	{ActionUnban, "unban PEER"},
	{ActionAddFounder, "add-founder PEER"},
	{ActionRemoveFounder, "remove-founder PEER"},
	{ActionAdoptCharter, "adopt-charter CID"},
	{ActionCertify, "certify TYPE:ID"},
	{ActionDecertify, "decertify TYPE:ID"},
}

// Action is what a proposal does to the community when it passes: the
// action applies when choice 0 wins. Exactly the fields its Type needs are
// set.
type Action struct {
	Type string
	// Key is a policy key in its dotted form (community.PolicyKey.Name)
	// and Value its new value: set-policy.
	Key   string
	Value int64
	// Peer is the member concerned: ban, unban, add-founder,
	// remove-founder.
	Peer peer.ID
	// Target is the record ID of the record holding the charter text (by
	// convention a proposal without an action): adopt-charter.
	Target cid.Cid
	// Subject is "type:id" as Subject.String prints it: certify, decertify.
	Subject string
}

type actionWire struct {
	Key     string `cbor:"key,omitempty"`
	Peer    []byte `cbor:"peer,omitempty"`
	Type    string `cbor:"type"`
	Value   int64  `cbor:"value,omitempty"`
	Target  []byte `cbor:"target,omitempty"`
	Subject string `cbor:"subject,omitempty"`
}

func (a Action) toWire() *actionWire {
	return &actionWire{Key: a.Key, Peer: []byte(a.Peer), Type: a.Type, Value: a.Value, Target: cidBytes(a.Target), Subject: a.Subject}
}

func (w *actionWire) fromWire() (*Action, error) {
	target, err := recordIDFromWire("action target", w.Target)
	if err != nil {
		return nil, err
	}
	return &Action{Type: w.Type, Key: w.Key, Value: w.Value, Peer: peer.ID(w.Peer), Target: target, Subject: w.Subject}, nil
}

// ParseAction reads an action in its CLI syntax, one of "set-policy
// KEY=VALUE", "ban PEER", "unban PEER", "add-founder PEER", "remove-founder
// PEER", "adopt-charter CID", "certify TYPE:ID" and "decertify TYPE:ID". A
// policy key may be given in its dotted or its wire form; it is stored
// dotted. The result is valid.
func ParseAction(s string) (*Action, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return nil, fmt.Errorf("no action given; write one of: %s", actionUsages())
	}
	i := slices.IndexFunc(actionUsage, func(u struct{ typ, usage string }) bool { return u.typ == f[0] })
	if i < 0 {
		return nil, fmt.Errorf("unknown action %q; write one of: %s", clip(f[0]), actionUsages())
	}
	if len(f) != 2 {
		return nil, fmt.Errorf("write the action as %q", actionUsage[i].usage)
	}
	a, arg := &Action{Type: f[0]}, f[1]
	switch a.Type {
	case ActionSetPolicy:
		name, value, ok := strings.Cut(arg, "=")
		if !ok {
			return nil, fmt.Errorf("write the action as %q, e.g. \"set-policy vote.quorum=300\"", actionUsage[i].usage)
		}
		k, err := community.LookupPolicyKey(name)
		if err != nil {
			return nil, err
		}
		v, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("the value of %s must be a whole number, not %q", k.Name, clip(value))
		}
		if _, err := community.DefaultPolicy().With(k.Name, v); err != nil {
			return nil, err
		}
		a.Key, a.Value = k.Name, v
	case ActionBan, ActionUnban, ActionAddFounder, ActionRemoveFounder:
		id, err := peer.Decode(arg)
		if err != nil {
			return nil, fmt.Errorf("%q is not a peer ID: %w", clip(arg), err)
		}
		a.Peer = id
	case ActionAdoptCharter:
		c, err := cid.Decode(arg)
		if err != nil {
			return nil, fmt.Errorf("%q is not a record ID: %w", clip(arg), err)
		}
		a.Target = c
	case ActionCertify, ActionDecertify:
		a.Subject = arg
	}
	if err := a.Validate(); err != nil {
		if errors.Is(err, ErrUnknownField) && a.Subject != "" {
			return nil, fmt.Errorf("the subject %q has an unknown type; write it as TYPE:ID with TYPE one of peer, agent, skill, code, receipt or record", clip(arg))
		}
		return nil, fmt.Errorf("the action %q is not valid: %s", clip(strings.Join(f, " ")), userReason(err))
	}
	return a, nil
}

func actionUsages() string {
	u := make([]string, len(actionUsage))
	for i, a := range actionUsage {
		u[i] = a.usage
	}
	return strings.Join(u, ", ")
}

// userReason is a validation error's own reason, without the sentence of
// its sentinel, for a user who typed the value rather than received it.
func userReason(err error) string {
	s := err.Error()
	for _, sentinel := range []error{ErrInvalid, ErrUnknownField} {
		s = strings.TrimPrefix(s, sentinel.Error()+": ")
	}
	return s
}

// String returns the action in the syntax ParseAction reads.
func (a Action) String() string {
	switch a.Type {
	case ActionSetPolicy:
		return a.Type + " " + a.Key + "=" + strconv.FormatInt(a.Value, 10)
	case ActionBan, ActionUnban, ActionAddFounder, ActionRemoveFounder:
		return a.Type + " " + a.Peer.String()
	case ActionAdoptCharter:
		if !a.Target.Defined() {
			return a.Type + " "
		}
		return a.Type + " " + a.Target.String()
	case ActionCertify, ActionDecertify:
		return a.Type + " " + a.Subject
	}
	return a.Type
}

// Validate checks that the action has a known type and exactly the fields
// that type needs, each well formed. A set-policy value must be in its
// key's range; whether the policy that results is sensible is the voters'
// call.
func (a Action) Validate() error {
	// The fields each type takes; Key and Value go together.
	var takes struct{ key, peer, target, subject bool }
	switch a.Type {
	case "":
		return fmt.Errorf("%w: the proposal's action has no type", ErrInvalid)
	case ActionSetPolicy:
		takes.key = true
	case ActionBan, ActionUnban, ActionAddFounder, ActionRemoveFounder:
		takes.peer = true
	case ActionAdoptCharter:
		takes.target = true
	case ActionCertify, ActionDecertify:
		takes.subject = true
	default:
		return fmt.Errorf("%w: action type %q", ErrUnknownField, clip(a.Type))
	}
	for _, f := range []struct {
		name       string
		set, takes bool
	}{
		{"key", a.Key != "", takes.key}, {"value", a.Value != 0, takes.key}, {"peer", a.Peer != "", takes.peer},
		{"target", a.Target.Defined(), takes.target}, {"subject", a.Subject != "", takes.subject},
	} {
		if f.set && !f.takes {
			return fmt.Errorf("%w: a %s action takes no %s", ErrInvalid, a.Type, f.name)
		}
	}
	switch {
	case takes.key:
		k, err := community.LookupPolicyKey(a.Key)
		switch {
		case a.Key == "":
			return fmt.Errorf("%w: the set-policy action names no policy key", ErrInvalid)
		case errors.Is(err, community.ErrUnknownPolicyKey):
			// A newer node may have added the key.
			return fmt.Errorf("%w: policy key %q", ErrUnknownField, clip(a.Key))
		case err != nil:
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		case k.Name != a.Key:
			return fmt.Errorf("%w: write the policy key %q as %q", ErrInvalid, clip(a.Key), k.Name)
		}
		if _, err := community.DefaultPolicy().With(a.Key, a.Value); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	case takes.peer:
		if a.Peer == "" {
			return fmt.Errorf("%w: the %s action names no peer", ErrInvalid, a.Type)
		}
		if _, err := record.AuthorKey(a.Peer); err != nil {
			return fmt.Errorf("%w: the %s action's peer %s is not an Agora peer ID (one that inlines an Ed25519 key)", ErrInvalid, a.Type, clip(a.Peer.String()))
		}
	case takes.target:
		if !a.Target.Defined() {
			return fmt.Errorf("%w: the adopt-charter action names no record", ErrInvalid)
		}
		if !isRecordID(a.Target) {
			return fmt.Errorf("%w: the charter %s is not a record ID (CIDv1 dag-cbor sha2-256)", ErrInvalid, clip(a.Target.String()))
		}
	case takes.subject:
		typ, id, ok := strings.Cut(a.Subject, ":")
		if !ok || typ == "" {
			return fmt.Errorf("%w: the %s action's subject %q is not TYPE:ID, e.g. skill:text.summarize", ErrInvalid, a.Type, clip(a.Subject))
		}
		if err := (Subject{Type: SubjectType(typ), ID: id}).Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Proposal is the body of a proposal record: a question put to the
// community's members, who answer with votes until End. When it passes
// and has an Action, the action applies if choice 0 wins.
type Proposal struct {
	// Title is one line: 1 to MaxTitleLen printable characters, trimmed.
	Title string
	// Body is the full text in Markdown, at most MaxProposalBodyBytes.
	Body string
	// Choices are what voters pick from: MinChoices to MaxChoices
	// distinct one-line texts. With an action, choice 0 applies it.
	Choices   []string
	Method    string // MethodSingle, MethodApproval, ...
	Weighting string // WeightMember or WeightTrust
	// Quorum is the share of the total eligible weight that must vote, in
	// thousandths (0 to 1000).
	Quorum int64
	// Threshold is the share of the cast weight the winning choice needs,
	// in thousandths (1 to 1000).
	Threshold int64
	// Start and End bound the voting period, in unix ms.
	Start, End int64
	// Action is applied when the proposal passes with choice 0; nil for a
	// proposal that only asks.
	Action *Action
}

type proposalWire struct {
	End       int64       `cbor:"end"`
	Body      string      `cbor:"body,omitempty"`
	Start     int64       `cbor:"start"`
	Title     string      `cbor:"title"`
	Action    *actionWire `cbor:"action,omitempty"`
	Method    string      `cbor:"method"`
	Quorum    int64       `cbor:"quorum"`
	Choices   []string    `cbor:"choices"`
	Threshold int64       `cbor:"threshold"`
	Weighting string      `cbor:"weighting"`
}

func (p Proposal) toWire() proposalWire {
	w := proposalWire{
		End: p.End, Body: p.Body, Start: p.Start, Title: p.Title, Method: p.Method,
		Quorum: p.Quorum, Choices: p.Choices, Threshold: p.Threshold, Weighting: p.Weighting,
	}
	if p.Action != nil {
		w.Action = p.Action.toWire()
	}
	return w
}

func (w proposalWire) fromWire() (Proposal, error) {
	p := Proposal{
		Title: w.Title, Body: w.Body, Choices: w.Choices, Method: w.Method, Weighting: w.Weighting,
		Quorum: w.Quorum, Threshold: w.Threshold, Start: w.Start, End: w.End,
	}
	if w.Action != nil {
		a, err := w.Action.fromWire()
		if err != nil {
			return Proposal{}, err
		}
		p.Action = a
	}
	return p, nil
}

// Kind implements Body.
func (Proposal) Kind() record.Kind { return record.KindProposal }

// Validate implements Body. A proposal may not open in the past: its start
// is at most record.MaxClockSkew before the record's creation. Whether its
// author may propose, and its quorum and threshold against the policy, are
// the registry's to check.
func (p Proposal) Validate(created int64) error {
	if err := checkText("proposal title", p.Title, textRule{min: 1, max: MaxTitleLen, trimmed: true}); err != nil {
		return err
	}
	if err := checkText("proposal body", p.Body, textRule{max: MaxProposalBodyBytes, bytes: true, multiline: true}); err != nil {
		return err
	}
	if n := len(p.Choices); n < MinChoices || n > MaxChoices {
		return fmt.Errorf("%w: a proposal needs %d to %d choices, not %d", ErrInvalid, MinChoices, MaxChoices, n)
	}
	for i, c := range p.Choices {
		if err := checkText("choice", c, textRule{min: 1, max: MaxChoiceLen, trimmed: true}); err != nil {
			return fmt.Errorf("%w (choice %d)", err, i)
		}
		if slices.Contains(p.Choices[:i], c) {
			return fmt.Errorf("%w: the choice %q is listed twice", ErrInvalid, clip(c))
		}
	}
	switch p.Method {
	case MethodSingle, MethodApproval, MethodRanked, MethodQuadratic:
	case "":
		return fmt.Errorf("%w: the proposal has no voting method; use single, approval, ranked or quadratic", ErrInvalid)
	default:
		return fmt.Errorf("%w: voting method %q", ErrUnknownField, clip(p.Method))
	}
	switch p.Weighting {
	case WeightMember, WeightTrust:
	case "":
		return fmt.Errorf("%w: the proposal has no weighting; use member or trust", ErrInvalid)
	default:
		return fmt.Errorf("%w: weighting %q", ErrUnknownField, clip(p.Weighting))
	}
	if p.Quorum < 0 || p.Quorum > 1000 {
		return fmt.Errorf("%w: the quorum must be between 0 and 1000 thousandths, not %d", ErrInvalid, p.Quorum)
	}
	if p.Threshold < 1 || p.Threshold > 1000 {
		return fmt.Errorf("%w: the threshold must be between 1 and 1000 thousandths, not %d", ErrInvalid, p.Threshold)
	}
	if p.Start <= 0 {
		return fmt.Errorf("%w: the proposal's start %d is not a time after 1970", ErrInvalid, p.Start)
	}
	// End > Start > 0, so End-Start cannot overflow.
	if p.End <= p.Start || p.End-p.Start < MinVotingPeriod.Milliseconds() || p.End-p.Start > MaxVotingPeriod.Milliseconds() {
		return fmt.Errorf("%w: the voting period must be %d seconds to %d days long, not %d ms", ErrInvalid,
			MinVotingPeriod/time.Second, MaxVotingPeriod/(24*time.Hour), p.End-p.Start)
	}
	if created != 0 && p.Start < created-record.MaxClockSkew.Milliseconds() {
		return fmt.Errorf("%w: the proposal opens (%d) before it was created (%d)", ErrInvalid, p.Start, created)
	}
	if p.Action != nil {
		return p.Action.Validate()
	}
	return nil
}

// MarshalCBOR encodes the proposal in its canonical wire form. It does not
// validate.
func (p Proposal) MarshalCBOR() ([]byte, error) {
	return canon.Marshal(p.toWire())
}

// UnmarshalCBOR decodes with the strictness of DecodeProposal.
func (p *Proposal) UnmarshalCBOR(b []byte) error {
	v, err := DecodeProposal(b)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// DecodeProposal reads a proposal body and checks it on its own.
func DecodeProposal(raw []byte) (Proposal, error) {
	return decodeProposal(raw, 0)
}

func decodeProposal(raw []byte, created int64) (Proposal, error) {
	var w proposalWire
	if err := decodeWire(record.KindProposal, raw, &w); err != nil {
		return Proposal{}, err
	}
	p, err := w.fromWire()
	if err != nil {
		return Proposal{}, err
	}
	if err := p.Validate(created); err != nil {
		return Proposal{}, err
	}
	if err := checkReencodes(record.KindProposal, raw, w); err != nil {
		return Proposal{}, err
	}
	return p, nil
}

// ProposalSubject is the subject key of a vote or a tally in the registry's
// index: "proposal:<proposal record ID>".
func ProposalSubject(c cid.Cid) string {
	return "proposal:" + c.String()
}

// cidBytes is c's binary form, nil when undefined (absent on the wire).
func cidBytes(c cid.Cid) []byte {
	if !c.Defined() {
		return nil
	}
	return c.Bytes()
}

// recordIDFromWire reads a CID carried as bytes; empty bytes are cid.Undef,
// for Validate to report. That it is a record ID is Validate's to check.
func recordIDFromWire(field string, b []byte) (cid.Cid, error) {
	if len(b) == 0 {
		return cid.Undef, nil
	}
	c, err := cid.Cast(b)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: the %s is not a record ID: %w", ErrInvalid, field, err)
	}
	if !bytes.Equal(c.Bytes(), b) {
		return cid.Undef, fmt.Errorf("%w: the %s is not in canonical binary form", ErrInvalid, field)
	}
	return c, nil
}
