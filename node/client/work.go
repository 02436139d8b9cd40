package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/agora-p2p/agora/node/api"
)

func need(what, v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("a " + what + " is needed")
	}
	return nil
}

// Agents is GET /api/v1/agents.
func (c *Client) Agents(ctx context.Context) ([]api.Agent, error) {
	var out []api.Agent
	return out, c.Do(ctx, http.MethodGet, "/api/v1/agents", nil, &out)
}

// AddAgent is POST /api/v1/agents.
func (c *Client) AddAgent(ctx context.Context, req api.AddAgentRequest) (api.Agent, error) {
	var v api.Agent
	return v, c.Do(ctx, http.MethodPost, "/api/v1/agents", req, &v)
}

// RemoveAgent is DELETE /api/v1/agents/{name}.
func (c *Client) RemoveAgent(ctx context.Context, name string) error {
	if err := need("agent name", name); err != nil {
		return err
	}
	return c.Do(ctx, http.MethodDelete, "/api/v1/agents/"+url.PathEscape(name), nil, nil)
}

// EnableAgent is POST /api/v1/agents/{name}/enable (or /disable).
func (c *Client) EnableAgent(ctx context.Context, name string, enable bool) (api.Agent, error) {
	var v api.Agent
	if err := need("agent name", name); err != nil {
		return v, err
	}
	verb := "/disable"
	if enable {
		verb = "/enable"
	}
	return v, c.Do(ctx, http.MethodPost, "/api/v1/agents/"+url.PathEscape(name)+verb, nil, &v)
}

// Skills is GET /api/v1/skills.
func (c *Client) Skills(ctx context.Context, community, skill string) ([]api.SkillOffer, error) {
	v := url.Values{}
	if community != "" {
		v.Set("community", community)
	}
	if skill != "" {
		v.Set("skill", skill)
	}
	path := "/api/v1/skills"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out []api.SkillOffer
	return out, c.Do(ctx, http.MethodGet, path, nil, &out)
}

// SubmitTask is POST /api/v1/tasks.
func (c *Client) SubmitTask(ctx context.Context, req api.TaskRequest) (api.Task, error) {
	var v api.Task
	return v, c.Do(ctx, http.MethodPost, "/api/v1/tasks", req, &v)
}

// Tasks is GET /api/v1/tasks.
func (c *Client) Tasks(ctx context.Context, limit int) ([]api.Task, error) {
	path := "/api/v1/tasks"
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	var out []api.Task
	return out, c.Do(ctx, http.MethodGet, path, nil, &out)
}

// Task is GET /api/v1/tasks/{id}.
func (c *Client) Task(ctx context.Context, id string) (api.Task, error) {
	var v api.Task
	if err := need("task ID", id); err != nil {
		return v, err
	}
	return v, c.Do(ctx, http.MethodGet, "/api/v1/tasks/"+url.PathEscape(id), nil, &v)
}

// CancelTask is POST /api/v1/tasks/{id}/cancel.
func (c *Client) CancelTask(ctx context.Context, id string) (api.Task, error) {
	var v api.Task
	if err := need("task ID", id); err != nil {
		return v, err
	}
	return v, c.Do(ctx, http.MethodPost, "/api/v1/tasks/"+url.PathEscape(id)+"/cancel", nil, &v)
}

// LocalPolicy is GET /api/v1/policy/local.
func (c *Client) LocalPolicy(ctx context.Context) ([]api.ExitPolicy, error) {
	var out []api.ExitPolicy
	return out, c.Do(ctx, http.MethodGet, "/api/v1/policy/local", nil, &out)
}

// Metrics is GET /metrics: the Prometheus text exposition.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", replyError(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
	return string(b), err
}

// RunWorkflow is POST /api/v1/workflows/run; it returns when the workflow
// has ended.
func (c *Client) RunWorkflow(ctx context.Context, req api.WorkflowRun) (api.WorkflowResult, error) {
	var v api.WorkflowResult
	return v, c.Do(ctx, http.MethodPost, "/api/v1/workflows/run", req, &v)
}
