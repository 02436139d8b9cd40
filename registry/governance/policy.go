package governance

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Action types a proposal can carry.
const (
	ActionSetPolicy     = "set-policy"
	ActionBan           = "ban"
	ActionUnban         = "unban"
	ActionAddFounder    = "add-founder"
	ActionRemoveFounder = "remove-founder"
	ActionAdoptCharter  = "adopt-charter"
	ActionCertify       = "certify"
	ActionDecertify     = "decertify"
)

// MaxFounders caps the founders, as the genesis does
// (protocol/community.MaxFounders).
const MaxFounders = 32

// Action is what a passed proposal changes. Key and Value serve set-policy,
// Peer the ban and founder actions, Target (the charter record's CID text)
// adopt-charter, and Subject certify and decertify.
type Action struct {
	Type, Key       string
	Value           int64
	Peer            peer.ID
	Target, Subject string
}

// Passed is a passed proposal that carries an action.
type Passed struct {
	Proposal string // record CID text
	End      int64  // unix ms
	Action   Action
}

// PolicyState is the community policy derived from the genesis and the
// passed proposals.
type PolicyState struct {
	Values      map[string]int64   // policy key → value
	SetBy       map[string]string  // policy key → proposal ID that set it ("" = genesis)
	Founders    []peer.ID          // sorted
	Banned      map[peer.ID]string // peer → proposal ID that banned it
	Charter     string             // record CID text of the adopted charter, "" none
	CharterBy   string             // proposal ID that adopted it
	Certified   map[string]string  // subject → proposal ID
	Decertified map[string]string  // subject → proposal ID
}

// Derive applies the passed proposals' actions to the genesis, in order of
// End, ties by proposal ID, and returns the resulting state and the actions
// it skipped, each as "proposal <ID>: <reason>". validKey judges set-policy
// (the protocol's range check); nil accepts any non-empty key. The package
// documentation gives the rules. Derive does not modify its arguments.
func Derive(genesis map[string]int64, founders []peer.ID, passed []Passed, validKey func(key string, value int64) error) (PolicyState, []string) {
	s := PolicyState{
		Values:      maps.Clone(genesis),
		SetBy:       make(map[string]string, len(genesis)),
		Founders:    slices.Compact(slices.Sorted(slices.Values(founders))),
		Banned:      map[peer.ID]string{},
		Certified:   map[string]string{},
		Decertified: map[string]string{},
	}
	if s.Values == nil {
		s.Values = map[string]int64{}
	}
	for k := range genesis {
		s.SetBy[k] = ""
	}

	order := slices.Clone(passed)
	slices.SortFunc(order, comparePassed)
	var skipped []string
	seen := make(map[string]bool, len(order))
	for _, p := range order {
		reason := "applied already"
		if !seen[p.Proposal] {
			seen[p.Proposal] = true
			reason = s.apply(p.Proposal, p.Action, validKey)
		}
		if reason != "" {
			skipped = append(skipped, fmt.Sprintf("proposal %s: %s", p.Proposal, reason))
		}
	}
	return s, skipped
}

// comparePassed orders by End, then proposal ID, then the action, so that
// even malformed input (one ID twice) has one order.
func comparePassed(a, b Passed) int {
	return cmp.Or(
		cmp.Compare(a.End, b.End),
		strings.Compare(a.Proposal, b.Proposal),
		strings.Compare(a.Action.Type, b.Action.Type),
		strings.Compare(a.Action.Key, b.Action.Key),
		cmp.Compare(a.Action.Value, b.Action.Value),
		strings.Compare(string(a.Action.Peer), string(b.Action.Peer)),
		strings.Compare(a.Action.Target, b.Action.Target),
		strings.Compare(a.Action.Subject, b.Action.Subject),
	)
}

// apply applies one action and returns why it did not, or "".
func (s *PolicyState) apply(id string, a Action, validKey func(string, int64) error) string {
	switch a.Type {
	case ActionSetPolicy:
		if a.Key == "" {
			return "the action names no policy key"
		}
		if validKey != nil {
			if err := validKey(a.Key, a.Value); err != nil {
				return err.Error()
			}
		}
		s.Values[a.Key] = a.Value
		s.SetBy[a.Key] = id
	case ActionBan:
		if a.Peer == "" {
			return "the action names no peer"
		}
		if _, ok := s.Banned[a.Peer]; ok {
			return fmt.Sprintf("peer %s is banned already", a.Peer)
		}
		s.Banned[a.Peer] = id
	case ActionUnban:
		if _, ok := s.Banned[a.Peer]; !ok {
			return fmt.Sprintf("peer %s is not banned", a.Peer)
		}
		delete(s.Banned, a.Peer)
	case ActionAddFounder:
		i, found := slices.BinarySearch(s.Founders, a.Peer)
		switch {
		case a.Peer == "":
			return "the action names no peer"
		case found:
			return fmt.Sprintf("peer %s is a founder already", a.Peer)
		case len(s.Founders) >= MaxFounders:
			return fmt.Sprintf("the community has %d founders, the most it can have", MaxFounders)
		}
		s.Founders = slices.Insert(s.Founders, i, a.Peer)
	case ActionRemoveFounder:
		i, found := slices.BinarySearch(s.Founders, a.Peer)
		switch {
		case !found:
			return fmt.Sprintf("peer %s is not a founder", a.Peer)
		case len(s.Founders) == 1:
			return fmt.Sprintf("peer %s is the last founder", a.Peer)
		}
		s.Founders = slices.Delete(s.Founders, i, i+1)
	case ActionAdoptCharter:
		if a.Target == "" {
			return "the action names no charter"
		}
		s.Charter, s.CharterBy = a.Target, id
	case ActionCertify:
		if a.Subject == "" {
			return "the action names no subject"
		}
		s.Certified[a.Subject] = id
		delete(s.Decertified, a.Subject)
	case ActionDecertify:
		if a.Subject == "" {
			return "the action names no subject"
		}
		s.Decertified[a.Subject] = id
		delete(s.Certified, a.Subject)
	default:
		return fmt.Sprintf("unknown action type %q", a.Type)
	}
	return ""
}
