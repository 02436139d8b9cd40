package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agora-p2p/agora/node/repo"
)

// TestMCPServesCommunitySkills runs `agora mcp` on node A as an MCP client
// would (the official SDK over the process's stdio) and calls a skill that
// only node B can run.
func TestMCPServesCommunitySkills(t *testing.T) {
	ds, _ := community(t, "a", "b")
	a, b := ds["a"], ds["b"]
	idA, idB := peerID(t, a), peerID(t, b)
	run(t, "agents", "disable", "builtin", "--repo", a.dir)
	a.waitFor(t, "text.stats offered by B alone", func() bool {
		offers, err := a.client.Skills(context.Background(), "", "text.stats")
		return err == nil && len(offers) == 1 && len(offers[0].Providers) == 1 && offers[0].Providers[0].PeerID == idB
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stderr strings.Builder
	cmd := exec.Command(agoraBin, "mcp", "--repo", a.dir)
	cmd.Env = os.Environ()
	cmd.Stderr = &stderr
	cl := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	cs, err := cl.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connect to agora mcp: %v", err)
	}
	closed := false
	defer func() {
		if !closed {
			cs.Close()
		}
	}()

	list, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var stats *mcp.Tool
	for _, tl := range list.Tools {
		if tl.Name == "text.stats" {
			stats = tl
		}
	}
	if stats == nil {
		t.Fatalf("text.stats not listed: %+v", list.Tools)
	}
	schema, _ := json.Marshal(stats.InputSchema)
	if !strings.Contains(string(schema), `"required":["text"]`) || !strings.Contains(stats.Description, "(1 member offers it)") {
		t.Fatalf("text.stats tool: %s %q", schema, stats.Description)
	}

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "text.stats", Arguments: map[string]any{"text": "one two\nthree"}})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(res.StructuredContent)
	all := contentText(res)
	if res.IsError || !sameJSON(out, `{"chars":13,"lines":2,"words":3}`) || !strings.Contains(all, "Ran on "+idB) {
		t.Fatalf("text.stats: error %v, structured %s, text %q\nagora mcp stderr: %s", res.IsError, out, all, stderr.String())
	}
	m := regexp.MustCompile(`as task (\S+?)[.,]`).FindStringSubmatch(all)
	if m == nil {
		t.Fatalf("no task ID in %q", all)
	}
	bt, err := b.client.Task(ctx, m[1])
	if err != nil || bt.Role != "executor" || bt.Status != "completed" || bt.Requester != idA {
		t.Fatalf("B's journal: %+v %v", bt, err)
	}

	// Bad arguments: a tool error naming the schema's complaint, and no task.
	before, err := a.client.Tasks(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "text.stats", Arguments: map[string]any{"txt": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || !strings.Contains(contentText(res), "input schema of text.stats") || !strings.Contains(contentText(res), "Nothing was run") {
		t.Fatalf("bad arguments: error %v, %q", res.IsError, contentText(res))
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "no.such.skill", Arguments: map[string]any{}}); err == nil {
		t.Fatal("an unknown tool was called")
	}
	after, err := a.client.Tasks(ctx, 1000)
	if err != nil || len(after) != len(before) {
		t.Fatalf("bad calls made tasks: %d before, %d after (%v)", len(before), len(after), err)
	}

	// Closing stdin ends it cleanly.
	closed = true
	if err := cs.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if cmd.ProcessState == nil || !cmd.ProcessState.Success() {
		t.Fatalf("agora mcp did not exit cleanly: %v\n%s", cmd.ProcessState, stderr.String())
	}
}

func TestMCPWithoutDaemon(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "n")
	initRepo(t, dir)
	stdout, stderr, code := run(t, "mcp", "--repo", dir)
	if code == 0 || stdout != "" || !strings.Contains(stderr, "not running") {
		t.Fatalf("mcp without a daemon: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// TestMCPOverTheDaemonsHTTP calls a tool through /mcp on a daemon's local
// API with the token. It skips while the node does not mount /mcp.
func TestMCPOverTheDaemonsHTTP(t *testing.T) {
	ds, _ := community(t, "a")
	a := ds["a"]
	addr, _ := os.ReadFile(filepath.Join(a.dir, repo.APIFile))
	tok, _ := os.ReadFile(filepath.Join(a.dir, repo.TokenFile))
	endpoint := "http://" + strings.TrimSpace(string(addr)) + "/mcp"
	resp, err := http.Post(endpoint, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST /mcp without the token: %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", endpoint, strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		t.Fatal("the daemon does not serve /mcp")
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	cs, err := cl.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint,
		HTTPClient: &http.Client{Transport: bearerTransport{strings.TrimSpace(string(tok))}}, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "text.stats", Arguments: map[string]any{"text": "a b"}})
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := json.Marshal(res.StructuredContent); res.IsError || !sameJSON(out, `{"chars":3,"lines":1,"words":2}`) {
		t.Fatalf("text.stats over /mcp: %s %q", out, contentText(res))
	}
}

func contentText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}
