package node

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/governance"
	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/community"
	"github.com/agora-p2p/agora/protocol/record"
	gov "github.com/agora-p2p/agora/registry/governance"
)

// startGovernance brings up proposals, tallies and the derived policy.
// Called by startWork after startTrust.
func (n *Node) startGovernance() error {
	g, err := governance.New(governance.Config{
		Store: n.Store, DB: n.DB.DB, Self: n.Host.ID(), Communities: trustComms{n}, Trust: n.Trust,
		Publish: func(ctx context.Context, c cid.Cid, kind record.Kind, b any) (*record.Record, error) {
			return n.Repl.Publish(ctx, n.Repo.Key, c, kind, b)
		},
		Resync: func(ctx context.Context, p peer.ID, c cid.Cid) {
			if _, err := n.Repl.SyncWith(ctx, p, c); err != nil {
				n.log.Debug("resync after a disagreeing tally failed", "peer", p, "err", err)
			}
		},
		OnPolicy: func(c cid.Cid) {
			n.Trust.Changed() // certification thresholds, founders, bans
			n.Hub.Publish("policy.changed", map[string]string{"community": c.String()})
		},
		Log: n.log.With("subsystem", "governance"),
	})
	if err != nil {
		return err
	}
	n.Gov = g
	n.gov.Store(g)
	return nil
}

// banned reports whether the community banned p (false before governance
// is up).
func (n *Node) banned(c cid.Cid, p peer.ID) bool {
	g := n.gov.Load()
	return g != nil && g.Banned(c, p)
}

// admitRequester is the executor's policy check: banned requesters and
// requesters under the community's delegate.min_trust are refused.
func (n *Node) admitRequester(c cid.Cid, p peer.ID) (string, string) {
	g := n.gov.Load()
	if g == nil {
		return "", ""
	}
	if g.Banned(c, p) {
		return "banned", "the community banned your node"
	}
	if min := g.Policy(c).Policy.DelegateMinTrust; min > 0 {
		res, _, ok := n.Trust.Reputation(c, "community")
		if ok && res.Level(p) < min {
			return "untrusted", fmt.Sprintf("the community's policy asks for trust level %d to delegate; yours is %d", min, res.Level(p))
		}
	}
	return "", ""
}

// govAPI serves governance.
type govAPI struct{ n *Node }

var _ api.Governance = govAPI{}

func (g govAPI) Propose(ctx context.Context, req api.ProposeRequest) (api.Proposed, error) {
	c, err := g.n.communityFor(req.Community)
	if err != nil {
		return api.Proposed{}, err
	}
	pol := g.n.Gov.Policy(c).Policy
	now := time.Now()
	p := body.Proposal{Title: strings.TrimSpace(req.Title), Body: req.Body, Choices: req.Choices,
		Method: req.Method, Weighting: req.Weighting, Quorum: pol.VoteQuorum, Threshold: pol.VoteThreshold,
		Start: req.StartMS}
	if p.Method == "" {
		p.Method = body.MethodSingle
	}
	if p.Weighting == "" {
		p.Weighting = body.WeightMember
	}
	if req.Quorum != nil {
		p.Quorum = *req.Quorum
	}
	if req.Threshold != nil {
		p.Threshold = *req.Threshold
	}
	if p.Start == 0 {
		p.Start = now.UnixMilli()
	}
	dur := pol.VoteDuration()
	if req.DurationS > 0 {
		dur = time.Duration(req.DurationS) * time.Second
	}
	p.End = p.Start + dur.Milliseconds()
	if req.Action != "" {
		a, err := body.ParseAction(req.Action)
		if err != nil {
			return api.Proposed{}, badRequest("the action: %v", err)
		}
		p.Action = a
	}
	if err := p.Validate(now.UnixMilli()); err != nil {
		return api.Proposed{}, badRequest("%v", err)
	}
	if why := governance.BelowPolicy(p, pol); why != "" {
		return api.Proposed{}, badRequest("the proposal would never count: %s.", why)
	}
	if min := pol.ProposeMinTrust; min > 0 {
		res, _, _ := g.n.Trust.Reputation(c, "community")
		if res.Level(g.n.Host.ID()) < min && !slices.Contains(g.n.Gov.Founders(c), g.n.Host.ID()) {
			return api.Proposed{}, badRequest("the community's policy asks for trust level %d to propose; this node's is %d.", min, res.Level(g.n.Host.ID()))
		}
	}
	rec, err := g.n.Repl.Publish(ctx, g.n.Repo.Key, c, record.KindProposal, p)
	if err != nil {
		return api.Proposed{}, registryError(err)
	}
	return api.Proposed{ID: rec.CID().String()}, nil
}

func proposalView(o *governance.Outcome) api.ProposalView {
	p := o.Proposal
	v := api.ProposalView{ID: o.ID.String(), Title: p.Title, Status: o.Status, Ends: p.End, Votes: o.Result.Voters,
		Start: p.Start, Proposer: o.Proposer.String(), Method: p.Method, Weighting: p.Weighting, Quorum: p.Quorum,
		Threshold: p.Threshold, Choices: p.Choices, Body: p.Body, Final: o.Final, Reason: o.Reason}
	if p.Action != nil {
		v.Action = p.Action.String()
	}
	return v
}

func (g govAPI) Proposals(_ context.Context, community, status string) ([]api.ProposalView, error) {
	c, err := g.n.communityFor(community)
	if err != nil {
		return nil, err
	}
	switch status {
	case "", gov.StatusPending, gov.StatusOpen, gov.StatusPassed, gov.StatusRejected, gov.StatusNoQuorum, governance.StatusInvalid:
	default:
		return nil, badRequest("status must be pending, open, passed, rejected, no-quorum or invalid, not %q.", status)
	}
	out := []api.ProposalView{}
	for _, o := range g.n.Gov.Outcomes(c) {
		if status == "" || o.Status == status {
			out = append(out, proposalView(o))
		}
	}
	return out, nil
}

// outcome finds a proposal by ID in community.
func (g govAPI) outcome(community, id string) (cid.Cid, *governance.Outcome, error) {
	c, err := g.n.communityFor(community)
	if err != nil {
		return cid.Undef, nil, err
	}
	pid, err := cid.Decode(strings.TrimSpace(id))
	if err != nil {
		return c, nil, badRequest("%q is not a proposal ID (a CID such as bafyrei...).", id)
	}
	o, ok := g.n.Gov.Outcome(c, pid)
	if !ok {
		// Stored but not computed yet, or not arrived.
		if err := g.n.Gov.Refresh(); err == nil {
			o, ok = g.n.Gov.Outcome(c, pid)
		}
	}
	if !ok {
		return c, nil, &api.Error{Code: http.StatusNotFound, Message: fmt.Sprintf("this node holds no proposal %s in community %s; it may not have arrived yet.", pid, c)}
	}
	return c, o, nil
}

func (g govAPI) Vote(ctx context.Context, id string, req api.VoteRequest) (api.Voted, error) {
	c, o, err := g.outcome(req.Community, id)
	if err != nil {
		return api.Voted{}, err
	}
	p := o.Proposal
	now := time.Now().UnixMilli()
	switch {
	case now < p.Start:
		return api.Voted{}, badRequest("the vote on %q opens at %s.", p.Title, time.UnixMilli(p.Start).Format(time.RFC3339))
	case now > p.End:
		return api.Voted{}, badRequest("the vote on %q closed at %s.", p.Title, time.UnixMilli(p.End).Format(time.RFC3339))
	}
	v := body.Vote{Proposal: o.ID, Reason: req.Reason}
	for _, name := range req.Choices {
		i := slices.Index(p.Choices, strings.TrimSpace(name))
		if i < 0 {
			n, err := strconv.Atoi(strings.TrimSpace(name))
			if err != nil || n < 0 || n >= len(p.Choices) {
				return api.Voted{}, badRequest("%q is not a choice of %q; the choices are %s (or their numbers 0 to %d).", name, p.Title, strings.Join(p.Choices, ", "), len(p.Choices)-1)
			}
			i = n
		}
		v.Choices = append(v.Choices, uint64(i))
	}
	for _, cr := range req.Credits {
		if cr < 0 {
			return api.Voted{}, badRequest("credits must not be negative.")
		}
		v.Credits = append(v.Credits, uint64(cr))
	}
	if err := v.Validate(now); err != nil {
		return api.Voted{}, badRequest("%v", err)
	}
	if err := v.CheckAgainst(p); err != nil {
		return api.Voted{}, badRequest("%v", err)
	}
	rec, err := g.n.Repl.Publish(ctx, g.n.Repo.Key, c, record.KindVote, v)
	if err != nil {
		return api.Voted{}, registryError(err)
	}
	g.n.Gov.Changed()
	return api.Voted{CID: rec.CID().String()}, nil
}

func (g govAPI) Tally(_ context.Context, community, id string) (api.TallyView, error) {
	_, o, err := g.outcome(community, id)
	if err != nil {
		return api.TallyView{}, err
	}
	r := o.Result
	name := func(i int) string {
		if i >= 0 && i < len(o.Proposal.Choices) {
			return o.Proposal.Choices[i]
		}
		return strconv.Itoa(i)
	}
	v := api.TallyView{ID: o.ID.String(), Status: o.Status, Counts: map[string]uint64{}, Voters: r.Voters,
		Weight: float64(r.Weight), Eligible: float64(r.Eligible), Fingerprint: hex.EncodeToString(r.Fingerprint[:]),
		Final: o.Final, Tallies: len(o.Tallies)}
	for i, c := range r.Counts {
		v.Counts[name(i)] = c
	}
	if r.Winner >= 0 {
		v.Winner = name(r.Winner)
	}
	for _, round := range r.Rounds {
		m := map[string]uint64{}
		for i, c := range round {
			m[name(i)] = c
		}
		v.Rounds = append(v.Rounds, m)
	}
	for _, d := range o.Disagreements {
		v.Disagreements = append(v.Disagreements, api.Disagreement{PeerID: d.Peer.String(), Fingerprint: hex.EncodeToString(d.Fingerprint),
			Status: d.Status, Voters: d.Voters})
	}
	return v, nil
}

func (g govAPI) Policy(_ context.Context, community string) (api.PolicyView, error) {
	c, err := g.n.communityFor(community)
	if err != nil {
		return api.PolicyView{}, err
	}
	p := g.n.Gov.Policy(c)
	v := api.PolicyView{Community: c.String(), Skipped: p.Skipped}
	for _, k := range policyKeys() {
		val, _ := p.Policy.Get(k.Name)
		v.Keys = append(v.Keys, api.PolicyKeyValue{Key: k.Name, Value: val, SetBy: p.State.SetBy[k.Name], Help: k.Help})
	}
	for _, f := range p.State.Founders {
		v.Founders = append(v.Founders, f.String())
	}
	for who, by := range p.State.Banned {
		v.Banned = append(v.Banned, api.SetBy{ID: who.String(), SetBy: by})
	}
	slices.SortFunc(v.Banned, func(a, b api.SetBy) int { return strings.Compare(a.ID, b.ID) })
	if p.State.Charter != "" {
		v.Charter = &api.SetBy{ID: p.State.Charter, SetBy: p.State.CharterBy}
	}
	for subj, by := range p.State.Certified {
		v.Certified = append(v.Certified, api.SetBy{ID: subj, SetBy: by})
	}
	slices.SortFunc(v.Certified, func(a, b api.SetBy) int { return strings.Compare(a.ID, b.ID) })
	return v, nil
}

func policyKeys() []community.PolicyKey { return community.PolicyKeys() }

// banFilter is the records topic's replicator with the community's bans
// applied first: a banned author's records are neither stored from gossip
// nor relayed (sync still carries them, so every node holds the same set).
type banFilter struct{ n *Node }

func (b banFilter) ValidateDecoded(ctx context.Context, c cid.Cid, from peer.ID, rec *record.Record) pubsub.ValidationResult {
	if b.n.banned(c, from) || b.n.banned(c, rec.Author) {
		return pubsub.ValidationIgnore
	}
	return b.n.Repl.ValidateDecoded(ctx, c, from, rec)
}

func (b banFilter) MemberJoined(c cid.Cid, p peer.ID) { b.n.Repl.MemberJoined(c, p) }
