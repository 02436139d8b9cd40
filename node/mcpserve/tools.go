package mcpserve

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agora-p2p/agora/node/agents"
	"github.com/agora-p2p/agora/node/api"
)

// anyObject is the input schema of a skill that names none, as in package
// agents.
var anyObject = json.RawMessage(`{"type":"object"}`)

// toolSpec is one tool: what MCP clients see and what a call needs.
type toolSpec struct {
	tool  *mcp.Tool
	input *agents.Schema // the skill's own input schema
	// wrapped: the skill's input is not an object, which MCP arguments
	// always are, so it travels as the one argument "input".
	wrapped bool
	key     string // the tool's JSON, to tell a changed tool
}

// candidate is a skill on its way to becoming a tool.
type candidate struct {
	id, description string
	in, out         json.RawMessage
	providers       int
	self            bool
}

// buildTools makes one tool per skill ID from the node's enabled agents
// and the advertised offers, sorted by name. A skill it cannot serve is
// left out, with the reason in skipped.
func buildTools(offers []api.SkillOffer, own []api.Agent) (specs []*toolSpec, skipped map[string]string) {
	cands := map[string]*candidate{}
	for _, a := range own {
		if !a.Enabled || a.Error != "" {
			continue
		}
		for _, sk := range a.Skills {
			if cands[sk.ID] == nil {
				cands[sk.ID] = &candidate{id: sk.ID, description: sk.Description, in: sk.InputSchema, out: sk.OutputSchema, providers: 1, self: true}
			}
		}
	}
	for _, o := range offers {
		if len(o.Providers) == 0 {
			continue
		}
		selfListed := false
		for _, p := range o.Providers {
			selfListed = selfListed || p.Self
		}
		if c := cands[o.Skill]; c != nil {
			// The local agent runs it first: its description and schemas
			// are the ones that apply.
			c.providers = len(o.Providers)
			if !selfListed {
				c.providers++
			}
			continue
		}
		cands[o.Skill] = &candidate{id: o.Skill, description: o.Description, in: o.InputSchema, out: o.OutputSchema,
			providers: len(o.Providers), self: selfListed}
	}

	skipped = map[string]string{}
	for _, c := range cands {
		sp, err := c.spec()
		if err != nil {
			skipped[c.id] = err.Error()
			continue
		}
		specs = append(specs, sp)
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].tool.Name < specs[j].tool.Name })
	return specs, skipped
}

func (c *candidate) spec() (*toolSpec, error) {
	if !agents.ValidSkillID(c.id) {
		return nil, errors.New("the skill ID is not a valid tool name")
	}
	in := c.in
	if len(in) == 0 {
		in = anyObject
	}
	sch, err := agents.CompileSchema(in)
	if err != nil {
		return nil, fmt.Errorf("input schema: %v", err)
	}
	sp := &toolSpec{input: sch, tool: &mcp.Tool{Name: c.id, Description: c.describe()}}
	if isObjectSchema(in) {
		sp.tool.InputSchema = in
	} else {
		sp.wrapped = true
		sp.tool.InputSchema = json.RawMessage(`{"type":"object","properties":{"input":` + string(in) + `},"required":["input"],"additionalProperties":false}`)
	}
	if len(c.out) > 0 && isObjectSchema(c.out) {
		sp.tool.OutputSchema = c.out
	}
	key, err := json.Marshal(sp.tool)
	if err != nil {
		return nil, fmt.Errorf("schemas: %v", err)
	}
	sp.key = string(key)
	return sp, nil
}

// describe is the skill's description and who offers it.
func (c *candidate) describe() string {
	who := fmt.Sprintf("%d members offer it", c.providers)
	switch {
	case c.providers == 1 && c.self:
		who = "this node runs it"
	case c.providers == 1:
		who = "1 member offers it"
	case c.self:
		who += ", this node among them"
	}
	d := c.description
	if d != "" {
		d += "\n\n"
	}
	return d + "Runs as an Agora task (" + who + ")."
}

// isObjectSchema tells a schema whose top-level type is "object", the only
// kind MCP takes as a tool's input.
func isObjectSchema(raw json.RawMessage) bool {
	var s struct {
		Type any `json:"type"`
	}
	return json.Unmarshal(raw, &s) == nil && s.Type == "object"
}

// arguments turns a call's arguments into the skill's input and checks it
// against the input schema.
func (sp *toolSpec) arguments(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 || string(raw) == "null" {
		raw = json.RawMessage(`{}`)
	}
	var args map[string]json.RawMessage
	if err := json.Unmarshal(raw, &args); err != nil {
		return nil, errors.New("the arguments must be a JSON object")
	}
	input := raw
	if sp.wrapped {
		v, ok := args["input"]
		if !ok || len(args) != 1 {
			return nil, errors.New(`this skill takes one argument, "input"`)
		}
		input = v
	}
	if err := sp.input.Validate(input); err != nil {
		return nil, err
	}
	return input, nil
}
