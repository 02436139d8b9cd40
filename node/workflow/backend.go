package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/agora-p2p/agora/node/agents"
)

// Factory builds the "workflow" backend: the agent's [workflow] file,
// parsed and planned when the agent starts, offered as one skill. Its ID
// is the agent's skills[0].id, or the workflow's name when the agent file
// has no [[skills]]; its input schema is the [[skills]] one or the
// workflow's, its output schema the [[skills]] one or any object. The
// skills the steps name are checked when a task runs, against what
// Env.Delegator offers then, since the community's skills may not be
// known when the agent starts.
var Factory agents.Factory = func(ctx context.Context, spec *agents.Spec, env agents.Env) (agents.Backend, error) {
	if spec.Workflow == nil || strings.TrimSpace(spec.Workflow.File) == "" {
		return nil, errors.New(`workflow.file: a workflow agent needs [workflow] file = "NAME.yaml" (relative to the agents directory)`)
	}
	path := spec.Workflow.File
	if !filepath.IsAbs(path) {
		path = filepath.Join(env.Dir, path)
	}
	st, err := os.Stat(path)
	if err == nil && st.Size() > MaxFileSize {
		err = fmt.Errorf("%s is %d bytes; a workflow may have at most %d", path, st.Size(), MaxFileSize)
	}
	var data []byte
	if err == nil {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("workflow.file: %w", err)
	}
	f, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	g, err := Plan(f, nil)
	if err != nil {
		return nil, err
	}
	skill := agents.Skill{ID: f.Name, Description: f.Description, Input: f.InputSchema, Output: defaultInputSchema}
	switch len(spec.Skills) {
	case 0:
	case 1:
		sks, err := agents.SkillsFromSpec(spec)
		if err != nil {
			return nil, err
		}
		ss, sk := spec.Skills[0], sks[0]
		skill.ID, skill.Tags, skill.Examples = sk.ID, sk.Tags, sk.Examples
		if ss.Description != "" {
			skill.Description = ss.Description
		}
		if strings.TrimSpace(ss.InputSchema) != "" {
			skill.Input = sk.Input
		}
		if strings.TrimSpace(ss.OutputSchema) != "" {
			skill.Output = sk.Output
		}
		if len(ss.Args) > 0 || ss.Prompt != "" {
			return nil, errors.New("skills[0]: a workflow skill takes no args or prompt")
		}
	default:
		return nil, fmt.Errorf("skills[1]: a workflow agent offers one skill, the workflow; use one agent per workflow")
	}
	if skill.Description == "" {
		skill.Description = spec.Description
	}
	for i, s := range f.Steps {
		if s.Skill == skill.ID {
			return nil, f.errorf(fmt.Sprintf("steps[%d].skill", i), s.ID, "the step would run the workflow itself (skill %q)", skill.ID)
		}
	}
	return &backend{name: spec.Name, flow: f, graph: g, skill: skill, delegator: env.Delegator}, nil
}

type backend struct {
	name      string
	flow      *Flow
	graph     *Graph
	skill     agents.Skill
	delegator agents.Delegator
}

func (b *backend) Skills() []agents.Skill { return []agents.Skill{b.skill} }

func (b *backend) Close() error { return nil }

func (b *backend) Run(ctx context.Context, skill string, input json.RawMessage, progress agents.Progress) (json.RawMessage, error) {
	if skill != b.skill.ID {
		return nil, agents.Errorf(agents.CodeUnknownSkill, "agent %s runs workflow skill %s, not %s", b.name, b.skill.ID, skill)
	}
	if b.delegator == nil {
		return nil, agents.Errorf(agents.CodeBackend, "agent %s is a workflow, and this node has no delegator to run its steps", b.name)
	}
	// The steps' skills must be on offer now; better refuse the task than
	// run half of it.
	offered := map[string]bool{}
	for _, sk := range b.delegator.Skills(ctx) {
		offered[sk.ID] = true
	}
	if _, err := Plan(b.flow, func(id string) bool { return offered[id] }); err != nil {
		return nil, agents.Errorf(agents.CodeUnknownSkill, "%v", err)
	}
	res := Run(ctx, b.flow, b.graph, input, b.delegator, RunOptions{
		Origin: b.name,
		Observer: func(ev StepEvent) {
			if progress == nil {
				return
			}
			progress(progressMessage(ev), ev.Done*100/max(ev.Total, 1))
		},
	})
	if res.Status == StatusCompleted {
		return res.Output, nil
	}
	switch res.Code {
	case agents.CodeInvalidInput, agents.CodeCanceled:
		return nil, agents.Errorf(res.Code, "%s", res.Error)
	}
	return nil, agents.Errorf(agents.CodeBackend, "%s", res.Error)
}

// progressMessage is a step's event for people: "step fetch completed on
// 12D3KooW...".
func progressMessage(ev StepEvent) string {
	s := ev.Step
	switch ev.Kind {
	case EventStarted:
		return fmt.Sprintf("step %s started (%s)", s.ID, s.Skill)
	case EventRetrying:
		return fmt.Sprintf("step %s: attempt %d, after: %s", s.ID, s.Attempts, s.Error)
	}
	switch s.Status {
	case StatusCompleted:
		if s.Executor != "" {
			return fmt.Sprintf("step %s completed on %s", s.ID, s.Executor)
		}
		return fmt.Sprintf("step %s completed", s.ID)
	case StatusSkipped:
		return fmt.Sprintf("step %s skipped", s.ID)
	}
	return fmt.Sprintf("step %s failed: %s", s.ID, s.Error)
}
