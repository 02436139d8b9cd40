package workflow

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/agora-p2p/agora/node/agents"
)

// workflowAgents is an agents directory whose agents may be workflows,
// their steps run by d.
func workflowAgents(t *testing.T, d agents.Delegator) (*agents.Manager, string) {
	t.Helper()
	dir := t.TempDir()
	m, err := agents.NewManager(dir, map[string]agents.Factory{"builtin": agents.BuiltinFactory, "workflow": Factory}, agents.Env{Delegator: d}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	// A state file but no agents: Load does not write the builtin agent,
	// so the workflow's skills come from d alone.
	if err := os.WriteFile(filepath.Join(dir, agents.StateFile), []byte(`{"disabled":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m, dir
}

func TestFactory(t *testing.T) {
	d := newDelegator(t)
	m, dir := workflowAgents(t, d)
	data, err := os.ReadFile("testdata/digest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "digest.yaml"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	info, err := m.Add(ctx, []byte(`name = "digest"
backend = "workflow"
description = "A composite skill"
[workflow]
file = "digest.yaml"
`), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Skills) != 1 || info.Skills[0].ID != "text.digest" || info.Skills[0].Description != "Counts a text's words and doubles the count." ||
		!strings.Contains(string(info.Skills[0].Input), `"required":["text"]`) || string(info.Skills[0].Output) != `{"type":"object"}` {
		t.Fatalf("%+v", info)
	}

	var mu sync.Mutex
	var progress []string
	out, err := m.Run(ctx, "text.digest", json.RawMessage(`{"text":"one two three four"}`), func(msg string, pct int) {
		mu.Lock()
		defer mu.Unlock()
		progress = append(progress, msg+" "+itoa(pct))
	})
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, out, `{"words":4,"doubled":8}`)
	want := []string{"step stats started (text.stats) 0", "step stats completed on local 50", "step double started (math.eval) 50", "step double completed on local 100"}
	if strings.Join(progress, "|") != strings.Join(want, "|") {
		t.Errorf("progress\n %q\nwant\n %q", progress, want)
	}
	for _, r := range d.requests() {
		if r.Origin != "digest" {
			t.Errorf("origin %q, want the agent's name", r.Origin)
		}
	}

	// The input schema is the workflow's: checked before anything runs.
	n := len(d.requests())
	if _, err := m.Run(ctx, "text.digest", json.RawMessage(`{"txt":"x"}`), nil); agents.CodeOf(err) != agents.CodeInvalidInput {
		t.Errorf("%v", err)
	}
	if len(d.requests()) != n {
		t.Error("a step ran on invalid input")
	}
}

func TestFactorySkillsSection(t *testing.T) {
	d := newDelegator(t)
	m, dir := workflowAgents(t, d)
	if err := os.WriteFile(filepath.Join(dir, "digest.yaml"), mustRead(t, "testdata/digest.yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := m.Add(context.Background(), []byte(`name = "digest"
backend = "workflow"
[workflow]
file = "digest.yaml"
[[skills]]
id = "text.count-twice"
description = "Counts twice"
tags = ["text"]
output_schema = '{"type":"object","required":["doubled"]}'
`), false)
	if err != nil {
		t.Fatal(err)
	}
	sk := info.Skills[0]
	if sk.ID != "text.count-twice" || sk.Description != "Counts twice" || len(sk.Tags) != 1 ||
		!strings.Contains(string(sk.Input), `"required":["text"]`) || !strings.Contains(string(sk.Output), "doubled") {
		t.Fatalf("%+v", sk)
	}
	out, err := m.Run(context.Background(), "text.count-twice", json.RawMessage(`{"text":"a b"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, out, `{"words":2,"doubled":4}`)
}

func TestFactoryRunErrors(t *testing.T) {
	ctx := context.Background()
	wf := "name: wf\nsteps:\n  - id: a\n    skill: no.such-skill\n    input: '{}'\n  - id: b\n    skill: test.fail\n    input: '{}'\noutput: $steps.a\n"

	// Unknown skills are refused at run time, before any step runs.
	d := newDelegator(t)
	m, dir := workflowAgents(t, d)
	os.WriteFile(filepath.Join(dir, "wf.yaml"), []byte(wf), 0o600)
	if _, err := m.Add(ctx, []byte("name = \"wf\"\nbackend = \"workflow\"\n[workflow]\nfile = \"wf.yaml\"\n"), false); err != nil {
		t.Fatal(err)
	}
	_, err := m.Run(ctx, "wf", json.RawMessage(`{}`), nil)
	if agents.CodeOf(err) != agents.CodeUnknownSkill || !strings.Contains(err.Error(), `steps[0] (a).skill: no agent here or in the communities offers skill "no.such-skill"`) {
		t.Errorf("%v", err)
	}
	if len(d.requests()) != 0 {
		t.Errorf("steps ran: %v", d.requests())
	}

	// A failed step is a backend error naming it.
	wf2 := strings.Replace(strings.Replace(wf, "no.such-skill", "text.stats", 1), "name: wf", "name: wf2", 1)
	os.WriteFile(filepath.Join(dir, "wf2.yaml"), []byte(strings.Replace(wf2, "input: '{}'", "input: '{text: \"x\"}'", 1)), 0o600)
	if _, err := m.Add(ctx, []byte("name = \"wf2\"\nbackend = \"workflow\"\n[workflow]\nfile = \"wf2.yaml\"\n"), false); err != nil {
		t.Fatal(err)
	}
	_, err = m.Run(ctx, "wf2", json.RawMessage(`{}`), nil)
	if agents.CodeOf(err) != agents.CodeBackend || !strings.Contains(err.Error(), "step b failed: ") {
		t.Errorf("%v", err)
	}

	// No delegator: a clear error.
	m2, dir2 := workflowAgents(t, nil)
	os.WriteFile(filepath.Join(dir2, "wf.yaml"), []byte(wf), 0o600)
	if _, err := m2.Add(ctx, []byte("name = \"wf\"\nbackend = \"workflow\"\n[workflow]\nfile = \"wf.yaml\"\n"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Run(ctx, "wf", json.RawMessage(`{}`), nil); agents.CodeOf(err) != agents.CodeBackend || !strings.Contains(err.Error(), "no delegator") {
		t.Errorf("%v", err)
	}
}

func TestFactoryErrors(t *testing.T) {
	m, dir := workflowAgents(t, newDelegator(t))
	os.WriteFile(filepath.Join(dir, "good.yaml"), mustRead(t, "testdata/digest.yaml"), 0o600)
	os.WriteFile(filepath.Join(dir, "cycle.yaml"), []byte("name: wf\nsteps:\n  - id: a\n    skill: s\n    input: '{x: $steps.a}'\noutput: 1\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "self.yaml"), []byte("name: wf\nsteps:\n  - id: a\n    skill: wf\n    input: '{}'\noutput: 1\n"), 0o600)
	for _, tc := range []struct{ name, file, want string }{
		{"no section", "name = \"x\"\nbackend = \"workflow\"\n", "workflow.file: a workflow agent needs [workflow] file"},
		{"no file", "name = \"x\"\nbackend = \"workflow\"\n[workflow]\nfile = \"missing.yaml\"\n", "workflow.file: stat " + filepath.Join(dir, "missing.yaml") + ": no such file"},
		{"bad workflow", "name = \"x\"\nbackend = \"workflow\"\n[workflow]\nfile = \"cycle.yaml\"\n", "cycle.yaml:3: steps[0] (a): the steps form a cycle: a -> a"},
		{"calls itself", "name = \"x\"\nbackend = \"workflow\"\n[workflow]\nfile = \"self.yaml\"\n", `self.yaml:4: steps[0] (a).skill: the step would run the workflow itself (skill "wf")`},
		{"two skills", "name = \"x\"\nbackend = \"workflow\"\n[workflow]\nfile = \"good.yaml\"\n[[skills]]\nid = \"a\"\n[[skills]]\nid = \"b\"\n", "skills[1]: a workflow agent offers one skill"},
		{"args", "name = \"x\"\nbackend = \"workflow\"\n[workflow]\nfile = \"good.yaml\"\n[[skills]]\nid = \"a\"\nargs = [\"x\"]\n", "skills[0]: a workflow skill takes no args"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Add(context.Background(), []byte(tc.file), false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v\nwant %s", err, tc.want)
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
