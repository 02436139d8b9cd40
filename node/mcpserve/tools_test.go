package mcpserve

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/agora-p2p/agora/node/api"
)

func TestBuildTools(t *testing.T) {
	obj := json.RawMessage(`{"type":"object","properties":{"a":{"type":"string"}}}`)
	own := []api.Agent{
		{Name: "on", Enabled: true, Skills: []api.Skill{{ID: "own.private", Description: "Mine", InputSchema: obj, OutputSchema: json.RawMessage(`{"type":"array"}`)}}},
		{Name: "off", Enabled: false, Skills: []api.Skill{{ID: "own.off"}}},
		{Name: "broken", Enabled: true, Error: "exec: not found", Skills: []api.Skill{{ID: "own.broken"}}},
	}
	offers := []api.SkillOffer{
		{Skill: "own.private", Description: "theirs", Providers: []api.Provider{{PeerID: "B"}, {PeerID: "C"}}, InputSchema: json.RawMessage(`{"type":"string"}`)},
		{Skill: "shared.self", Description: "Both", Providers: []api.Provider{{PeerID: "A", Self: true}, {PeerID: "B"}}},
		{Skill: "only.self", Providers: []api.Provider{{PeerID: "A", Self: true}}},
		{Skill: "nobody", Providers: nil},
		{Skill: "Bad/ID", Providers: []api.Provider{{PeerID: "B"}}},
		{Skill: "bad.schema", Providers: []api.Provider{{PeerID: "B"}}, InputSchema: json.RawMessage(`{"type":12}`)},
		{Skill: "remote.scalar", Providers: []api.Provider{{PeerID: "B"}}, InputSchema: json.RawMessage(`{"type":"integer"}`)},
	}
	specs, skipped := buildTools(offers, own)
	var names []string
	got := map[string]*toolSpec{}
	for _, sp := range specs {
		names = append(names, sp.tool.Name)
		got[sp.tool.Name] = sp
	}
	if strings.Join(names, " ") != "only.self own.private remote.scalar shared.self" {
		t.Fatalf("tools %v", names)
	}
	if len(skipped) != 2 || skipped["Bad/ID"] == "" || !strings.Contains(skipped["bad.schema"], "input schema") {
		t.Fatalf("skipped %v", skipped)
	}
	for _, tc := range []struct {
		name, desc string
		wrapped    bool
		out        bool
	}{
		// The local agent's schemas win; providers: B, C and this node.
		{"own.private", "Mine\n\nRuns as an Agora task (3 members offer it, this node among them).", false, false},
		{"shared.self", "Both\n\nRuns as an Agora task (2 members offer it, this node among them).", false, false},
		{"only.self", "Runs as an Agora task (this node runs it).", false, false},
		{"remote.scalar", "Runs as an Agora task (1 member offers it).", true, false},
	} {
		sp := got[tc.name]
		if sp.tool.Description != tc.desc || sp.wrapped != tc.wrapped || (sp.tool.OutputSchema != nil) != tc.out {
			t.Errorf("%s: %q wrapped %v output %v", tc.name, sp.tool.Description, sp.wrapped, sp.tool.OutputSchema)
		}
	}

	for _, tc := range []struct {
		tool, args, input, err string
	}{
		{"own.private", `{"a":"x"}`, `{"a":"x"}`, ""},
		{"own.private", ``, `{}`, ""},
		{"own.private", `null`, `{}`, ""},
		{"own.private", `{"a":1}`, "", "want string"},
		{"own.private", `"a"`, "", "JSON object"},
		{"remote.scalar", `{"input":3}`, `3`, ""},
		{"remote.scalar", `{"input":"3"}`, "", "want integer"},
		{"remote.scalar", `{"input":3,"more":1}`, "", `one argument, "input"`},
		{"remote.scalar", `{}`, "", `one argument, "input"`},
	} {
		in, err := got[tc.tool].arguments(json.RawMessage(tc.args))
		switch {
		case tc.err == "" && (err != nil || string(in) != tc.input):
			t.Errorf("%s %s: %s, %v", tc.tool, tc.args, in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s %s: err %v, want %q", tc.tool, tc.args, err, tc.err)
		}
	}
}
