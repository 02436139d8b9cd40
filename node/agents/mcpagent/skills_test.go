package mcpagent

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agora-p2p/agora/node/agents"
)

func TestSkillID(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"search", "search"},
		{"Web_Search", "web_search"},
		{"get weather", "get-weather"},
		{"fs/read.file", "fs-read.file"},
		{"_private", "private"},
		{"--x", "x"},
		{"über", "ber"},
		{"日本", ""},
		{"...", ""},
		{strings.Repeat("a", 200), strings.Repeat("a", maxSkillID)},
	} {
		if got := skillID(tc.in); got != tc.want {
			t.Errorf("skillID(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzSkillID(f *testing.F) {
	for _, s := range []string{"search", "A B", "_x", "日本", "", strings.Repeat("Z", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		id := skillID(name)
		if id != "" && !agents.ValidSkillID(id) {
			t.Fatalf("skillID(%q) = %q, not a valid skill ID", name, id)
		}
	})
}

func TestOutput(t *testing.T) {
	text := func(s ...string) []mcp.Content {
		var out []mcp.Content
		for _, x := range s {
			out = append(out, &mcp.TextContent{Text: x})
		}
		return out
	}
	for _, tc := range []struct {
		name string
		res  *mcp.CallToolResult
		want string
		code string
	}{
		{"structured", &mcp.CallToolResult{StructuredContent: map[string]any{"a": 1}, Content: text(`{"a": 1}`)}, `{"a":1}`, ""},
		{"json text", &mcp.CallToolResult{Content: text(` {"a": [1, 2]} `)}, `{"a":[1,2]}`, ""},
		{"json array text", &mcp.CallToolResult{Content: text(`[1, 2]`)}, `{"text":"[1, 2]"}`, ""},
		{"plain text", &mcp.CallToolResult{Content: text("hello")}, `{"text":"hello"}`, ""},
		{"several texts", &mcp.CallToolResult{Content: text(`{"a":1}`, "b")}, `{"text":"{\"a\":1}\nb"}`, ""},
		{"image only", &mcp.CallToolResult{Content: []mcp.Content{&mcp.ImageContent{MIMEType: "image/png", Data: []byte{1}}}}, `{"text":""}`, ""},
		{"error", &mcp.CallToolResult{IsError: true, Content: text("disk full")}, "", agents.CodeBackend},
		{"error without text", &mcp.CallToolResult{IsError: true}, "", agents.CodeBackend},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := output(tc.res)
			if tc.code != "" {
				if agents.CodeOf(err) != tc.code {
					t.Fatalf("err = %v, want %s", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("output = %s, want %s", got, tc.want)
			}
		})
	}
}

func FuzzOutput(f *testing.F) {
	for _, s := range []string{`{"a":1}`, "plain", "[1]", "{", "\xff", `{"a":"\ud800"}`} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, isError bool) {
		out, err := output(&mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}, IsError: isError})
		if isError {
			if agents.CodeOf(err) != agents.CodeBackend {
				t.Fatalf("IsError gave %v", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		var obj map[string]any
		if err := json.Unmarshal(out, &obj); err != nil {
			t.Fatalf("output %q is not a JSON object: %v", out, err)
		}
	})
}

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		p, total float64
		want     int
	}{{1, 2, 50}, {2, 2, 100}, {3, 2, 100}, {-1, 2, 0}, {5, 0, -1}, {1, 3, 33}} {
		if got := percent(tc.p, tc.total); got != tc.want {
			t.Errorf("percent(%v, %v) = %d, want %d", tc.p, tc.total, got, tc.want)
		}
	}
}
