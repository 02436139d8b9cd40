package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agora-p2p/agora/node/agents/llm/llmtest"
	"github.com/agora-p2p/agora/node/api"
)

type sumIn struct {
	A int `json:"a" jsonschema:"the first number"`
	B int `json:"b" jsonschema:"the second number"`
}

type sumOut struct {
	Sum int `json:"sum"`
}

// TestModelAndMCPAgentsAcrossProcesses runs an openai agent against a local
// OpenAI-compatible server that replays a recorded answer, and an mcp agent
// against a real MCP server (the official SDK, over streamable HTTP), each
// on node B, and asks them from node A.
func TestModelAndMCPAgentsAcrossProcesses(t *testing.T) {
	llm := llmtest.NewServer(t, []llmtest.Exchange{{
		Name:  "classify",
		Match: llmtest.Match{Model: "garden-7b", UserContains: "yellow"},
		Body:  llmtest.Answer("garden-7b", "```json\n{\"label\":\"soil\"}\n```"),
	}})
	srv := mcp.NewServer(&mcp.Implementation{Name: "calc", Version: "1"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "sum", Description: "Add two numbers."},
		func(_ context.Context, _ *mcp.CallToolRequest, in sumIn) (*mcp.CallToolResult, sumOut, error) {
			return nil, sumOut{Sum: in.A + in.B}, nil
		})
	mcpHTTP := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil))

	ds, _ := community(t, "a", "b")
	a, b := ds["a"], ds["b"]
	// The daemons hold streams to the MCP server; stop them before it.
	t.Cleanup(func() {
		for _, d := range ds {
			if d.cmd.ProcessState == nil {
				d.stop(t)
			}
		}
		mcpHTTP.Close()
	})
	idB := peerID(t, b)
	dir := t.TempDir()
	files := map[string]string{
		"gardener.toml": `name = "gardener"
description = "A small local model that knows about gardens"
backend = "openai"

[openai]
base_url = "` + llm.URL() + `"
model = "garden-7b"
persona = "You are the garden club's helper."
temperature = 0.2

[[skills]]
id = "text.classify"
description = "Classify a gardening question"
input_schema = '{"type":"object","properties":{"question":{"type":"string"}},"required":["question"]}'
output_schema = '{"type":"object","properties":{"label":{"enum":["pests","soil","planting","other"]}},"required":["label"]}'
`,
		"calc.toml": `name = "calc"
backend = "mcp"

[mcp]
url = "` + mcpHTTP.URL + `"
`,
	}
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		runJSON(t, &api.Agent{}, "agents", "add", path, "--repo", b.dir)
	}
	waitSkill(t, a, "text.classify", idB)
	waitSkill(t, a, "sum", idB)

	var got api.Task
	runJSON(t, &got, "ask", "text.classify", "--input", `{"question":"Why are my tomato leaves yellow?"}`, "--remote", "--repo", a.dir)
	if got.Status != "completed" || got.Executor != idB || got.Agent != "gardener" || !sameJSON(got.Output, `{"label":"soil"}`) {
		t.Fatalf("ask text.classify: %+v", got)
	}
	req := llm.LastRequest()
	if !strings.Contains(req.System(), "You are the garden club's helper.") || !strings.Contains(req.User(), "tomato") {
		t.Fatalf("the model got system %q, user %q", req.System(), req.User())
	}

	runJSON(t, &got, "ask", "sum", "--input", `{"a":2,"b":40}`, "--remote", "--repo", a.dir)
	if got.Status != "completed" || got.Executor != idB || got.Agent != "calc" || !sameJSON(got.Output, `{"sum":42}`) {
		t.Fatalf("ask sum: %+v", got)
	}
	// The tool's schema came from the server and is enforced by the executor.
	_, stderr, code := run(t, "ask", "sum", "--input", `{"a":"two","b":40}`, "--remote", "--repo", a.dir)
	if code == 0 {
		t.Fatalf("input failing the tool's schema completed: %s", stderr)
	}

	// The tool B shares from its MCP server can be called through
	// `agora mcp` on A: MCP in, delegation across, MCP out.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.Command(agoraBin, "mcp", "--repo", a.dir)
	cmd.Env = os.Environ()
	cl := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	cs, err := cl.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connect to agora mcp: %v", err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "sum", Arguments: map[string]any{"a": 20, "b": 22}})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(res.StructuredContent)
	if res.IsError || !sameJSON(out, `{"sum":42}`) || !strings.Contains(contentText(res), "Ran on "+idB) {
		t.Fatalf("sum through agora mcp: error %v, %s, %q", res.IsError, out, contentText(res))
	}

	// An agent file with a mistake is refused with its line and field.
	bad := filepath.Join(dir, "broken.toml")
	os.WriteFile(bad, []byte("name = \"broken\"\nbakend = \"exec\"\n"), 0o644)
	_, stderr, code = run(t, "agents", "add", bad, "--repo", b.dir)
	if code == 0 || !strings.Contains(stderr, "2") || !strings.Contains(stderr, "bakend") {
		t.Fatalf("a broken agent file: code %d, %s", code, stderr)
	}
}
