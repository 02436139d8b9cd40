package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/agora-p2p/agora/node/agents"
	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/tasks"
)

// delegator runs subtasks for the backends that decompose work (workflows,
// planners) through the node's requester. It is set in agents.Env before
// the agents load, and reaches the requester once it exists.
type delegator struct{ n *Node }

var _ agents.Delegator = delegator{}

// Skills lists this node's enabled skills and those its communities
// advertise, one per ID, this node's first.
func (d delegator) Skills(context.Context) []agents.Skill {
	seen := map[string]bool{}
	var out []agents.Skill
	for _, ref := range d.n.Agents.Skills(false) {
		if !seen[ref.Skill.ID] {
			seen[ref.Skill.ID] = true
			out = append(out, ref.Skill)
		}
	}
	if d.n.Index != nil {
		for _, s := range d.n.Index.Skills(cid.Undef) {
			if seen[s.ID] || len(s.Providers) == 0 {
				continue
			}
			seen[s.ID] = true
			p := s.Providers[0].Skill
			out = append(out, agents.Skill{ID: s.ID, Description: s.Description, Tags: p.Tags, Input: p.Input, Output: p.Output})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Delegate submits a subtask as a child of the task ctx runs in (its
// lineage: parent, ancestry, one hop fewer) and waits for its end.
func (d delegator) Delegate(ctx context.Context, req agents.SubtaskRequest) (agents.SubtaskResult, error) {
	if d.n.Tasks == nil {
		return agents.SubtaskResult{}, errors.New("the node is not ready to delegate yet")
	}
	r := tasks.Request{Skill: req.Skill, Input: req.Input, Remote: req.Remote, Timeout: req.Timeout, Origin: req.Origin, HopsLeft: -1,
		CertifiedOnly: d.n.Repo.Config.Trust.CertifiedOnly}
	if req.Peer != "" {
		p, err := peer.Decode(req.Peer)
		if err != nil {
			return agents.SubtaskResult{}, fmt.Errorf("%q is not a peer ID: %w", req.Peer, err)
		}
		r.Peer = p
	}
	if l, ok := tasks.LineageFrom(ctx); ok {
		if l.HopsLeft <= 0 {
			return agents.SubtaskResult{}, agents.Errorf(agents.CodeBackend, "the task has no hops left to delegate %s", req.Skill)
		}
		r.Parent, r.Ancestry, r.HopsLeft = l.Task, l.Ancestry, l.HopsLeft-1
	}
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); r.Timeout <= 0 || left < r.Timeout {
			r.Timeout = left
		}
	}
	if r.Timeout <= 0 && ctx.Err() != nil {
		return agents.SubtaskResult{}, ctx.Err()
	}
	t, err := d.n.Tasks.Submit(ctx, r)
	if errors.Is(err, tasks.ErrPolicy) {
		return agents.SubtaskResult{}, &agents.RunError{Code: tasks.CodePolicy, Reason: err.Error()}
	}
	if err != nil {
		return agents.SubtaskResult{}, &agents.RunError{Code: agents.CodeInvalidInput, Reason: err.Error()}
	}
	done, err := d.n.Tasks.Wait(ctx, t.ID)
	if err != nil {
		return agents.SubtaskResult{}, err
	}
	if !tasks.Terminal(done.Status) {
		// ctx ended first: stop the subtask too.
		_ = d.n.Tasks.Cancel(t.ID)
	}
	return agents.SubtaskResult{TaskID: done.ID, Status: done.Status, Executor: done.Executor, Output: done.Output,
		Code: done.Code, Error: done.Error, DurationMS: done.DurationMS}, nil
}

// exitRule is tasks.Config.Exit: the data-exit rule of a subtask started by
// a local agent.
func (n *Node) exitRule(origin, skill string) agents.Exit {
	if origin == "" {
		return agents.ResolveExit("", false, agents.ExitSpec{}, skill)
	}
	info, ok := n.Agents.Agent(origin)
	if !ok {
		// An agent removed while its task runs: the strictest rule.
		return agents.Exit{Mode: agents.ExitNever, Rule: fmt.Sprintf("agent %q is gone", origin)}
	}
	return agents.ResolveExit(origin, !info.Shared, info.Exit, skill)
}

// policyError turns a refusal by the data-exit policy into an API answer.
func policyError(err error) error {
	if errors.Is(err, tasks.ErrPolicy) {
		return &api.Error{Code: http.StatusForbidden, Message: err.Error()}
	}
	return err
}
