package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agora-p2p/agora/node/agents/llm/llmtest"
	"github.com/agora-p2p/agora/node/api"
)

// TestPlannerDelegatesAcrossProcesses runs a planner (an openai agent with
// delegate = true) on node A against a local OpenAI-compatible server that
// replays a recorded conversation with a tool call; the call runs as a
// subtask on node B and the final answer uses its output.
func TestPlannerDelegatesAcrossProcesses(t *testing.T) {
	const model = "planner-8b"
	llm := llmtest.NewServer(t, []llmtest.Exchange{
		{
			Name:  "final answer, after the tool result",
			Match: llmtest.Match{Model: model, ToolContains: `"words":5`},
			Body:  llmtest.Answer(model, `{"summary":"The note has 5 words on 2 lines."}`),
		},
		{
			Name:  "first turn: count the words",
			Match: llmtest.Match{Model: model, UserContains: "Plant garlic"},
			Body: llmtest.AnswerToolCalls(model, llmtest.ToolCall{
				ID: "call_1", Name: "text_stats", Arguments: `{"text":"Plant garlic\nin October please"}`,
			}),
		},
	})
	ds, _ := community(t, "a", "b")
	a, b := ds["a"], ds["b"]
	idB := peerID(t, b)
	// A's own text.stats is off, so the planner's tool call must go to B.
	run(t, "agents", "disable", "builtin", "--repo", a.dir)
	waitSkill(t, a, "text.stats", idB)

	path := filepath.Join(t.TempDir(), "planner.toml")
	os.WriteFile(path, []byte(`name = "planner"
description = "Plans with the community's skills"
backend = "openai"

[openai]
base_url = "`+llm.URL()+`"
model = "`+model+`"
persona = "You help the garden club."
delegate = true
max_tool_calls = 4

[[skills]]
id = "note.summarize"
description = "Summarise a note, counting its words with the community's tools"
input_schema = '{"type":"object","properties":{"note":{"type":"string"}},"required":["note"]}'
output_schema = '{"type":"object","properties":{"summary":{"type":"string"}},"required":["summary"]}'
`), 0o644)
	runJSON(t, &api.Agent{}, "agents", "add", path, "--repo", a.dir)

	var got api.Task
	runJSON(t, &got, "ask", "note.summarize", "--input", `{"note":"Plant garlic\nin October please"}`, "--repo", a.dir)
	if got.Status != "completed" || got.Agent != "planner" || !sameJSON(got.Output, `{"summary":"The note has 5 words on 2 lines."}`) {
		t.Fatalf("planner task: %+v", got)
	}
	// The model was offered the community's skill as a tool and got B's output.
	first := llm.Requests()[0]
	if _, ok := first.Tool("text_stats"); !ok {
		t.Fatalf("text.stats was not offered as a tool: %+v", first.Tools)
	}
	if last := llm.LastRequest().LastTool(); !strings.Contains(last, `"words":5`) {
		t.Fatalf("the tool result sent to the model: %q", last)
	}
	// The subtask is a child of the planner's task, and ran on B.
	full, err := a.client.Task(context.Background(), got.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Children) != 1 || full.Children[0].Skill != "text.stats" || full.Children[0].Executor != idB || full.Children[0].Status != "completed" {
		t.Fatalf("children of the planner's task: %+v", full.Children)
	}
	bt, err := b.client.Task(context.Background(), full.Children[0].ID)
	if err != nil || bt.Role != "executor" {
		t.Fatalf("B's journal: %+v %v", bt, err)
	}
	out, stderr, code := run(t, "task", got.ID, "--repo", a.dir)
	if code != 0 || !strings.Contains(out, "subtasks:") || !strings.Contains(out, full.Children[0].ID) {
		t.Fatalf("agora task does not show the tree (exit %d):\n%s\n%s", code, out, stderr)
	}
}
