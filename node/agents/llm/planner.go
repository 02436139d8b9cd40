package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"

	"github.com/agora-p2p/agora/node/agents"
)

// defaultMaxToolCalls bounds a planner's tool calls per task when
// openai.max_tool_calls is 0.
const defaultMaxToolCalls = 8

// planner is what an openai agent with delegate = true adds: the community's
// skills are the model's function tools, and each call is a subtask run by
// the Delegator with the task's ctx (so it is the task's child in the
// journal, inside its deadline and hop budget).
type planner struct {
	delegator agents.Delegator
	origin    string          // the agent's name: its data-exit policy applies
	maxCalls  int             // tool calls per task, failed ones included
	only      map[string]bool // openai.tools; nil offers every skill
	own       map[string]bool // the agent's own skills, never offered
}

func newPlanner(spec *agents.Spec, env agents.Env, own []agents.Skill) (*planner, error) {
	o := spec.OpenAI
	if o.MaxToolCalls < 0 {
		return nil, fmt.Errorf("openai.max_tool_calls: %d is negative", o.MaxToolCalls)
	}
	if !o.Delegate {
		switch {
		case o.MaxToolCalls != 0:
			return nil, errors.New("openai.max_tool_calls: only a planner calls tools; set delegate = true or remove it")
		case len(o.Tools) > 0:
			return nil, errors.New("openai.tools: only a planner calls tools; set delegate = true or remove it")
		}
		return nil, nil
	}
	if env.Delegator == nil {
		return nil, errors.New("openai.delegate: this node does not let its agents start subtasks, so the agent cannot be a planner")
	}
	p := &planner{
		delegator: env.Delegator,
		origin:    spec.Name,
		maxCalls:  o.MaxToolCalls,
		own:       make(map[string]bool, len(own)),
	}
	if p.maxCalls == 0 {
		p.maxCalls = defaultMaxToolCalls
	}
	for _, s := range own {
		p.own[s.ID] = true
	}
	for i, id := range o.Tools {
		switch {
		case !agents.ValidSkillID(id):
			return nil, fmt.Errorf("openai.tools[%d]: %q is not a skill ID", i, id)
		case p.own[id]:
			return nil, fmt.Errorf("openai.tools[%d]: %q is this agent's own skill, and a planner does not call itself", i, id)
		}
		if p.only == nil {
			p.only = make(map[string]bool, len(o.Tools))
		}
		p.only[id] = true
	}
	return p, nil
}

// toolset is what one Run offers the model.
type toolset struct {
	params []openai.ChatCompletionToolUnionParam
	byName map[string]tool // function name -> skill
}

type tool struct {
	skill  agents.Skill
	schema *agents.Schema
}

// tools lists the skills the model may call now, in skill ID order. A skill
// whose input schema is not a JSON object or does not compile is left out:
// it could be neither described to the model nor checked.
func (p *planner) tools(ctx context.Context) (toolset, error) {
	offered := map[string]agents.Skill{}
	for _, s := range p.delegator.Skills(ctx) {
		if _, dup := offered[s.ID]; dup || p.own[s.ID] || p.only != nil && !p.only[s.ID] {
			continue
		}
		offered[s.ID] = s
	}
	names := toolNames(slices.Collect(maps.Keys(offered)))
	ordered := slices.SortedFunc(maps.Keys(names), func(a, b string) int { return strings.Compare(names[a], names[b]) })
	ts := toolset{byName: make(map[string]tool, len(names))}
	for _, name := range ordered {
		sk := offered[names[name]]
		input := sk.Input
		if len(input) == 0 {
			input = json.RawMessage(`{"type":"object"}`)
		}
		params, ok := schemaParams(input)
		if !ok {
			continue
		}
		schema, err := agents.CompileSchema(input)
		if err != nil {
			continue
		}
		fn := shared.FunctionDefinitionParam{Name: name, Parameters: params}
		if d := strings.TrimSpace(sk.Description); d != "" {
			fn.Description = openai.String(d)
		}
		ts.params = append(ts.params, openai.ChatCompletionFunctionTool(fn))
		ts.byName[name] = tool{skill: sk, schema: schema}
	}
	if len(ts.params) == 0 {
		if p.only != nil {
			return ts, agents.Errorf(agents.CodeBackend, "none of the skills in openai.tools is offered by this node or its communities now")
		}
		return ts, agents.Errorf(agents.CodeBackend, "no skill of this node or its communities can be offered to the model as a tool")
	}
	return ts, nil
}

// schemaParams is a JSON Schema object as the SDK's FunctionParameters.
// Values stay raw JSON, so the schema reaches the server as written (numbers
// are not turned into float64).
func schemaParams(schema json.RawMessage) (shared.FunctionParameters, bool) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(schema, &top); err != nil || top == nil {
		return nil, false
	}
	params := make(shared.FunctionParameters, len(top))
	for k, v := range top {
		params[k] = v
	}
	return params, true
}

// plan is Run for a planner: it offers the tools, runs the calls the model
// makes and sends back their results until the model answers.
func (b *backend) plan(ctx context.Context, params openai.ChatCompletionNewParams, progress agents.Progress) (json.RawMessage, error) {
	p := b.planner
	ts, err := p.tools(ctx)
	if err != nil {
		return nil, err
	}
	params.Tools = ts.params
	calls := 0
	for {
		report(progress, "waiting for the model")
		res, err := b.send(ctx, params)
		if err != nil {
			return nil, err
		}
		if len(res.Choices) == 0 || len(res.Choices[0].Message.ToolCalls) == 0 {
			// Not finish_reason: some servers (Ollama) say "stop" with tool calls.
			return readAnswer(res)
		}
		msg := res.Choices[0].Message
		first := calls
		if calls += len(msg.ToolCalls); calls > p.maxCalls {
			return nil, agents.Errorf(agents.CodeBackend, "the model made more than %d tool calls", p.maxCalls)
		}
		asst := openai.ChatCompletionAssistantMessageParam{}
		if msg.Content != "" {
			asst.Content.OfString = openai.String(msg.Content)
		}
		ids := make([]string, len(msg.ToolCalls))
		for i, tc := range msg.ToolCalls {
			// A tool message must name its call; a server that gave no ID
			// gets one that is unique in the conversation.
			if ids[i] = tc.ID; ids[i] == "" {
				ids[i] = "call_" + strconv.Itoa(first+i+1)
			}
			asst.ToolCalls = append(asst.ToolCalls, openai.ChatCompletionMessageToolCallUnionParam{
				OfFunction: &openai.ChatCompletionMessageFunctionToolCallParam{
					ID:       ids[i],
					Function: openai.ChatCompletionMessageFunctionToolCallFunctionParam{Name: tc.Function.Name, Arguments: tc.Function.Arguments},
				},
			})
		}
		params.Messages = append(params.Messages, openai.ChatCompletionMessageParamUnion{OfAssistant: &asst})
		for i, tc := range msg.ToolCalls {
			content, err := p.call(ctx, ts, tc, progress)
			if err != nil {
				return nil, err
			}
			params.Messages = append(params.Messages, openai.ToolMessage(content, ids[i]))
		}
	}
}

// call runs one tool call and returns the tool message for the model: the
// subtask's output, or an error it can correct (unknown tool, bad
// arguments) or work around (refused, failed). The error is for a task
// whose ctx is done.
func (p *planner) call(ctx context.Context, ts toolset, tc openai.ChatCompletionMessageToolCallUnion, progress agents.Progress) (string, error) {
	name := tc.Function.Name
	t, ok := ts.byName[name]
	if !ok || tc.Type != "" && tc.Type != "function" {
		return toolError(agents.CodeUnknownSkill, fmt.Sprintf("there is no tool %q; call only the tools you were given", snippet(name, 80))), nil
	}
	args := strings.TrimSpace(tc.Function.Arguments)
	if args == "" {
		args = "{}" // some models send nothing for a call without arguments
	}
	input, ok := compact(args)
	if !ok {
		return toolError(agents.CodeInvalidInput, "the arguments are not a JSON value: "+strconv.Quote(snippet(args, 200))), nil
	}
	if err := t.schema.Validate(input); err != nil {
		return toolError(agents.CodeInvalidInput, "the arguments do not match the tool's input schema: "+err.Error()), nil
	}
	id := t.skill.ID
	report(progress, "calling "+id)
	res, err := p.delegator.Delegate(ctx, agents.SubtaskRequest{Skill: id, Input: input, Origin: p.origin})
	if cerr := ctx.Err(); cerr != nil {
		return "", fmt.Errorf("calling %s: %w", id, cerr)
	}
	if err != nil {
		report(progress, id+" was refused")
		return toolError(agents.CodeOf(err), "the subtask could not be started: "+err.Error()), nil
	}
	if res.Status != "completed" {
		report(progress, id+" "+res.Status)
		code := res.Code
		if code == "" {
			code = res.Status
		}
		reason := res.Error
		if reason == "" {
			reason = "no reason given"
		}
		return toolError(code, fmt.Sprintf("the subtask ended %s: %s", res.Status, reason)), nil
	}
	if len(res.Output) == 0 {
		return "null", nil
	}
	return string(res.Output), nil
}

// toolError is a tool message that tells the model its call failed.
func toolError(code, reason string) string {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}{reason, code})
	return string(b)
}

func report(progress agents.Progress, msg string) {
	if progress != nil {
		progress(msg, -1)
	}
}
