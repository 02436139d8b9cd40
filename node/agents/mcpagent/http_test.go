package mcpagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agora-p2p/agora/node/agents"
)

type addIn struct {
	A int `json:"a" jsonschema:"the first number"`
	B int `json:"b" jsonschema:"the second number"`
}

type addOut struct {
	Sum int `json:"sum"`
}

type slowIn struct {
	Steps int `json:"steps"`
}

// progressSeen is how the slow tool waits until the client saw each of its
// progress notifications: the client may handle a notification after the
// result (and then drops it), so only a handshake makes the test exact.
var progressSeen = make(chan struct{})

// httpServer is an MCP server on streamable HTTP with a few tools.
func httpServer(t *testing.T) (*mcp.Server, string) {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "http-test", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "Add_Numbers", Description: "Add two numbers."},
		func(_ context.Context, _ *mcp.CallToolRequest, in addIn) (*mcp.CallToolResult, addOut, error) {
			return nil, addOut{Sum: in.A + in.B}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "fail", Description: "Always fails."},
		func(context.Context, *mcp.CallToolRequest, empty) (*mcp.CallToolResult, empty, error) {
			return nil, empty{}, errors.New("the widget is broken")
		})
	mcp.AddTool(s, &mcp.Tool{Name: "slow", Description: "Reports progress."},
		func(ctx context.Context, req *mcp.CallToolRequest, in slowIn) (*mcp.CallToolResult, addOut, error) {
			if token := req.Params.GetProgressToken(); token != nil {
				for i := 1; i <= in.Steps; i++ {
					_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
						ProgressToken: token, Message: fmt.Sprintf("step %d", i),
						Progress: float64(i), Total: float64(in.Steps),
					})
					select {
					case <-progressSeen:
					case <-ctx.Done():
						return nil, addOut{}, ctx.Err()
					}
				}
			}
			return nil, addOut{Sum: in.Steps}, nil
		})
	ts := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(ts.Close)
	return s, ts.URL
}

func startBackend(t *testing.T, spec *agents.Spec, env agents.Env) *backend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := Factory(ctx, spec, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b.(*backend)
}

func skillIDs(b agents.Backend) []string {
	var ids []string
	for _, s := range b.Skills() {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestHTTPToolsCallsAndChanges(t *testing.T) {
	srv, url := httpServer(t)
	spec := &agents.Spec{
		Name: "calc", Backend: "mcp",
		MCP:    &agents.MCPSpec{URL: url},
		Skills: []agents.SkillSpec{{ID: "add_numbers", Description: "Adds.", Tags: []string{"math"}}},
	}
	b := startBackend(t, spec, agents.Env{})

	if got, want := strings.Join(skillIDs(b), ","), "add_numbers,fail,slow"; got != want {
		t.Fatalf("skills = %s, want %s", got, want)
	}
	add := b.Skills()[slices.IndexFunc(b.Skills(), func(s agents.Skill) bool { return s.ID == "add_numbers" })]
	if add.Description != "Adds." || !slices.Equal(add.Tags, []string{"math"}) {
		t.Errorf("the [[skills]] entry did not re-describe the tool: %+v", add)
	}
	var in struct {
		Type       string         `json:"type"`
		Properties map[string]any `json:"properties"`
	}
	if err := json.Unmarshal(add.Input, &in); err != nil || in.Type != "object" || in.Properties["a"] == nil || in.Properties["b"] == nil {
		t.Errorf("input schema = %s", add.Input)
	}
	if !strings.Contains(string(add.Output), `"sum"`) {
		t.Errorf("output schema = %s", add.Output)
	}

	ctx := context.Background()
	out, err := b.Run(ctx, "add_numbers", json.RawMessage(`{"a":2,"b":3}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"sum":5}` {
		t.Errorf("add_numbers = %s", out)
	}

	_, err = b.Run(ctx, "fail", json.RawMessage(`{}`), nil)
	var re *agents.RunError
	if !errors.As(err, &re) || re.Code != agents.CodeBackend || !strings.Contains(re.Reason, "the widget is broken") {
		t.Errorf("fail: err = %v", err)
	}
	if _, err := b.Run(ctx, "add_numbers", json.RawMessage(`{"a":"two"}`), nil); agents.CodeOf(err) != agents.CodeBackend {
		t.Errorf("input the server rejects: err = %v", err)
	} else {
		t.Logf("input the server rejects: %v", err)
	}
	if _, err := b.Run(ctx, "add_numbers", json.RawMessage(`[1,2]`), nil); agents.CodeOf(err) != agents.CodeInvalidInput {
		t.Errorf("array input: err = %v", err)
	}
	if _, err := b.Run(ctx, "nope", json.RawMessage(`{}`), nil); agents.CodeOf(err) != agents.CodeUnknownSkill {
		t.Errorf("unknown skill: err = %v", err)
	}

	// A tool added while the session is up shows up as a skill.
	mcp.AddTool(srv, &mcp.Tool{Name: "greet", Description: "Say hello."},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, echoOut, error) {
			return nil, echoOut{Echo: "hello " + in.Text}, nil
		})
	select {
	case <-b.Changed():
	case <-time.After(10 * time.Second): // a failsafe, not a wait for correctness
		t.Fatal("no Changed signal after a tool was added")
	}
	if got, want := strings.Join(skillIDs(b), ","), "add_numbers,fail,greet,slow"; got != want {
		t.Fatalf("skills after the change = %s, want %s", got, want)
	}
	out, err = b.Run(ctx, "greet", json.RawMessage(`{"text":"agora"}`), nil)
	if err != nil || string(out) != `{"echo":"hello agora"}` {
		t.Errorf("greet = %s, %v", out, err)
	}
}

func TestHTTPProgress(t *testing.T) {
	_, url := httpServer(t)
	b := startBackend(t, &agents.Spec{Name: "p", Backend: "mcp", MCP: &agents.MCPSpec{URL: url, Tools: []string{"slow"}}}, agents.Env{})
	if got := strings.Join(skillIDs(b), ","); got != "slow" {
		t.Fatalf("mcp.tools did not restrict the skills: %s", got)
	}
	var mu sync.Mutex
	var got []string
	out, err := b.Run(context.Background(), "slow", json.RawMessage(`{"steps":2}`), func(msg string, pct int) {
		mu.Lock()
		got = append(got, fmt.Sprintf("%s %d", msg, pct))
		mu.Unlock()
		progressSeen <- struct{}{}
	})
	if err != nil || string(out) != `{"sum":2}` {
		t.Fatalf("slow = %s, %v", out, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"step 1 50", "step 2 100"}; !slices.Equal(got, want) {
		t.Errorf("progress = %q, want %q", got, want)
	}
}

func TestFactoryErrors(t *testing.T) {
	_, url := httpServer(t)
	for _, tc := range []struct {
		name string
		mcp  *agents.MCPSpec
		sk   []agents.SkillSpec
		want string
	}{
		{"no section", nil, nil, "mcp:"},
		{"neither", &agents.MCPSpec{}, nil, "mcp:"},
		{"both", &agents.MCPSpec{URL: url, Command: []string{"true"}}, nil, "not both"},
		{"bad url", &agents.MCPSpec{URL: "localhost:8080/mcp"}, nil, "mcp.url:"},
		{"no such command", &agents.MCPSpec{Command: []string{"./no-such-server"}}, nil, "mcp.command:"},
		{"command not in PATH", &agents.MCPSpec{Command: []string{"agora-no-such-mcp-server"}}, nil, "mcp.command:"},
		{"bad env", &agents.MCPSpec{Command: []string{"true"}, Env: []string{"=x"}}, nil, "mcp.env[0]:"},
		{"unknown tool", &agents.MCPSpec{URL: url, Tools: []string{"slow", "nope"}}, nil, "mcp.tools[1]:"},
		{"unknown skill", &agents.MCPSpec{URL: url}, []agents.SkillSpec{{ID: "nope"}}, "skills[0].id:"},
		{"server down", &agents.MCPSpec{URL: "http://127.0.0.1:1/mcp"}, nil, "connecting to the MCP server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			b, err := Factory(ctx, &agents.Spec{Name: "x", Backend: "mcp", MCP: tc.mcp, Skills: tc.sk}, agents.Env{Dir: t.TempDir()})
			if err == nil {
				_ = b.Close()
				t.Fatalf("no error, want one with %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one with %q", err, tc.want)
			}
		})
	}
}

func TestDuplicateSkillIDs(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "dup", Version: "1"}, nil)
	for _, name := range []string{"Search", "search"} {
		mcp.AddTool(s, &mcp.Tool{Name: name}, func(context.Context, *mcp.CallToolRequest, empty) (*mcp.CallToolResult, empty, error) {
			return nil, empty{}, nil
		})
	}
	ts := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(ts.Close) // after the backend's Close: the session holds a stream open
	_, err := Factory(context.Background(), &agents.Spec{Name: "d", Backend: "mcp", MCP: &agents.MCPSpec{URL: ts.URL}}, agents.Env{})
	if err == nil || !strings.Contains(err.Error(), `both become skill "search"`) {
		t.Fatalf("err = %v", err)
	}
	b := startBackend(t, &agents.Spec{Name: "d", Backend: "mcp", MCP: &agents.MCPSpec{URL: ts.URL, Tools: []string{"Search"}}}, agents.Env{})
	if got := strings.Join(skillIDs(b), ","); got != "search" {
		t.Errorf("skills = %s", got)
	}
}
