package mcpagent

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agora-p2p/agora/node/agents"
)

// anyObject is the output schema of a tool that declares none.
var anyObject = json.RawMessage(`{"type":"object"}`)

// toolSet is one listing of the server's tools, as skills.
type toolSet struct {
	skills []agents.Skill
	tools  map[string]string // skill ID -> the tool's real name
}

// maxSkillID is the longest skill ID agents.ValidSkillID accepts.
const maxSkillID = 128

// skillID turns a tool name into a skill ID (^[a-z0-9][a-z0-9._-]*$):
// lowercase, other characters become '-', leading punctuation goes, and it
// is cut at maxSkillID.
func skillID(name string) string {
	id := strings.Map(func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		default:
			return '-'
		}
	}, name)
	id = strings.TrimLeft(id, "._-")
	if len(id) > maxSkillID {
		id = id[:maxSkillID]
	}
	return id
}

// selection is what the agent file says about the tools: which to share
// (empty = all) and how to re-describe them.
type selection struct {
	tools     []string                // mcp.tools: real tool names
	overrides map[string]agents.Skill // [[skills]] by ID
	order     []string                // [[skills]] IDs in file order
}

func newSelection(spec *agents.Spec) (selection, error) {
	sel := selection{tools: spec.MCP.Tools, overrides: map[string]agents.Skill{}}
	skills, err := agents.SkillsFromSpec(spec)
	if err != nil {
		return sel, err
	}
	for _, sk := range skills {
		sel.overrides[sk.ID] = sk
		sel.order = append(sel.order, sk.ID)
	}
	return sel, nil
}

// build makes the skills of a tool list. With strict set (at start-up),
// tools and [[skills]] entries the server does not have are errors; later
// the server may legitimately drop tools.
func (sel selection) build(tools []*mcp.Tool, strict bool) (*toolSet, error) {
	ts := &toolSet{tools: map[string]string{}}
	seen := map[string]bool{}
	for _, t := range tools {
		seen[t.Name] = true
		if len(sel.tools) > 0 && !slices.Contains(sel.tools, t.Name) {
			continue
		}
		id := skillID(t.Name)
		if !agents.ValidSkillID(id) {
			return nil, fmt.Errorf("the MCP server's tool %q has no letter or digit to make a skill ID of", t.Name)
		}
		if other, dup := ts.tools[id]; dup {
			return nil, fmt.Errorf("the MCP server's tools %q and %q both become skill %q; list one of them in mcp.tools", other, t.Name, id)
		}
		sk := agents.Skill{ID: id, Description: t.Description, Output: anyObject}
		var err error
		if sk.Input, err = schemaJSON(t.InputSchema); err != nil {
			return nil, fmt.Errorf("the MCP server's tool %q: input schema: %w", t.Name, err)
		}
		if sk.Input == nil {
			sk.Input = anyObject
		}
		if t.OutputSchema != nil {
			if sk.Output, err = schemaJSON(t.OutputSchema); err != nil {
				return nil, fmt.Errorf("the MCP server's tool %q: output schema: %w", t.Name, err)
			}
		}
		if ov, ok := sel.overrides[id]; ok {
			if ov.Description != "" {
				sk.Description = ov.Description
			}
			sk.Tags = ov.Tags
			sk.Examples = ov.Examples
		}
		ts.tools[id] = t.Name
		ts.skills = append(ts.skills, sk)
	}
	if !strict {
		return ts, nil
	}
	for i, name := range sel.tools {
		if !seen[name] {
			return nil, fmt.Errorf("mcp.tools[%d]: the MCP server has no tool %q", i, name)
		}
	}
	for i, id := range sel.order {
		if _, ok := ts.tools[id]; !ok {
			return nil, fmt.Errorf("skills[%d].id: no shared tool of the MCP server becomes skill %q", i, id)
		}
	}
	return ts, nil
}

func schemaJSON(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if string(b) == "null" {
		return nil, nil
	}
	return b, nil
}
