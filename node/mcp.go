package node

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/agora-p2p/agora/node/api"
)

// mcpSource is the node as the /mcp server sees it: its skills and its
// requester.
type mcpSource struct{ n *Node }

func (s mcpSource) ready() error {
	if s.n.Index == nil || s.n.Tasks == nil || s.n.Agents == nil {
		return errors.New("the node is still starting; try again in a moment")
	}
	return nil
}

func (s mcpSource) Skills(ctx context.Context) ([]api.SkillOffer, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	return workAPI{s.n}.Skills(ctx, "", "")
}

func (s mcpSource) Agents(ctx context.Context) ([]api.Agent, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	return workAPI{s.n}.Agents(ctx), nil
}

func (s mcpSource) Run(ctx context.Context, skill string, input json.RawMessage) (api.Task, error) {
	if err := s.ready(); err != nil {
		return api.Task{}, err
	}
	return workAPI{s.n}.SubmitTask(ctx, api.TaskRequest{Skill: skill, Input: input, Wait: true})
}

// Watch signals changed whenever the skills may have changed: the local
// agents, or the adverts of the communities.
func (s mcpSource) Watch(ctx context.Context, changed func()) error {
	if err := s.ready(); err != nil {
		return err
	}
	_, evs, cancel, _ := s.n.Hub.Subscribe(0)
	defer cancel()
	agentsCh, stop := s.n.Agents.Subscribe()
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-agentsCh:
			changed()
		case e, ok := <-evs:
			if !ok {
				return errors.New("fell behind the event hub")
			}
			if e.Type == "skills.changed" {
				changed()
			}
		}
	}
}
