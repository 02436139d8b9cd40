package mcpserve

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/client"
)

// Source is the node as the MCP server sees it. Methods are called
// concurrently, from MCP requests and from the refresh loop.
//
// Skills lists the skills advertised in the node's communities, best
// provider first (this node's shared ones included). Agents lists the
// node's own agents: the skills of the enabled, running ones are tools
// too, shared or not. Run submits skill with input as a task, waits for its
// end and returns it; err is for a task that could not be submitted (no
// provider, refused by policy, the daemon unreachable), while a task that
// ran and failed is a Task whose Status says so.
type Source interface {
	Skills(ctx context.Context) ([]api.SkillOffer, error)
	Agents(ctx context.Context) ([]api.Agent, error)
	Run(ctx context.Context, skill string, input json.RawMessage) (api.Task, error)
}

// Watcher is implemented by a Source that can tell when its skills may
// have changed. Watch calls changed (which never blocks) each time, until
// ctx ends or the source fails; the Server then retries later.
type Watcher interface {
	Watch(ctx context.Context, changed func()) error
}

// ClientSource is a Source backed by a daemon's local API: what `agora mcp`
// uses. It is safe for concurrent use.
type ClientSource struct {
	Client *client.Client
	// Community restricts the tools to the skills offered in that
	// community (this node's included where it shares them there) and runs
	// every task in it. Empty: every community, and the node's own agents.
	Community string
	// Timeout is each task's deadline (0: the node's default). The client's
	// per-request timeout must be longer.
	Timeout time.Duration
}

// FromClient returns a Source for the daemon c talks to.
func FromClient(c *client.Client) *ClientSource { return &ClientSource{Client: c} }

func (s *ClientSource) Skills(ctx context.Context) ([]api.SkillOffer, error) {
	return s.Client.Skills(ctx, s.Community, "")
}

func (s *ClientSource) Agents(ctx context.Context) ([]api.Agent, error) {
	if s.Community != "" {
		// Own agents count only as far as they are shared in the
		// community, and those are among Skills already.
		return nil, nil
	}
	return s.Client.Agents(ctx)
}

func (s *ClientSource) Run(ctx context.Context, skill string, input json.RawMessage) (api.Task, error) {
	return s.Client.SubmitTask(ctx, api.TaskRequest{Skill: skill, Input: input, Community: s.Community,
		TimeoutMS: s.Timeout.Milliseconds(), Wait: true})
}

// Watch follows the daemon's events: a change in the capability index, a
// change of agents, or lost events.
func (s *ClientSource) Watch(ctx context.Context, changed func()) error {
	return s.Client.Events(ctx, 0, func(e api.Event) error {
		if e.Type == "skills.changed" || e.Type == api.GapEventType || strings.HasPrefix(e.Type, "agent") {
			changed()
		}
		return nil
	})
}
