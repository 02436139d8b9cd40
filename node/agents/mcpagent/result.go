package mcpagent

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agora-p2p/agora/node/agents"
)

// output turns a tool's result into a skill's output: the structured
// content if any; else the one text content when it is a JSON object (the
// way servers without an output schema return JSON); else {"text": ...}
// with all text contents.
func output(res *mcp.CallToolResult) (json.RawMessage, error) {
	texts := textContents(res)
	if res.IsError {
		msg := strings.TrimSpace(strings.Join(texts, "\n"))
		if msg == "" {
			msg = "(no message)"
		}
		return nil, agents.Errorf(agents.CodeBackend, "the tool failed: %s", snippet(msg, 1000))
	}
	if res.StructuredContent != nil {
		out, err := json.Marshal(res.StructuredContent)
		if err != nil {
			return nil, agents.Errorf(agents.CodeInvalidOutput, "the tool's structured content: %v", err)
		}
		return out, nil
	}
	if len(res.Content) == 1 && len(texts) == 1 {
		if out, ok := jsonObject(texts[0]); ok {
			return out, nil
		}
	}
	return json.Marshal(map[string]string{"text": strings.Join(texts, "\n")})
}

func textContents(res *mcp.CallToolResult) []string {
	var texts []string
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			texts = append(texts, t.Text)
		}
	}
	return texts
}

// jsonObject returns s compacted if it is one JSON object.
func jsonObject(s string) (json.RawMessage, bool) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") || !json.Valid([]byte(s)) {
		return nil, false
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		return nil, false
	}
	return buf.Bytes(), true
}

func snippet(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "..."
}
