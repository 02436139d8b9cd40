package mcpserve

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/api/apitest"
)

// bearer adds the API token to every request, as an MCP client configured
// with an Authorization header does.
type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// TestStreamableHTTPBehindTheAPI mounts Handler as /mcp on the real local
// API server and talks to it with the SDK's streamable client.
func TestStreamableHTTPBehindTheAPI(t *testing.T) {
	src := newNodeSource(t)
	srv := New(src, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Watch(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	as := apitest.Start(t, func(c *api.ServerConfig) { c.MCP = srv.Handler() })

	// No token, a wrong one, or a foreign Host: refused before MCP.
	for _, tc := range []struct {
		token, host string
		want        int
	}{{"", "", 401}, {"wrong", "", 401}, {as.Token, "evil.example", 403}} {
		req, _ := http.NewRequest("POST", as.URL+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		if tc.host != "" {
			req.Host = tc.host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("token %q host %q: %d, want %d", tc.token, tc.host, resp.StatusCode, tc.want)
		}
	}
	if n := src.runCount(); n != 0 {
		t.Fatalf("refused requests ran %d tasks", n)
	}

	cl := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	cs, err := cl.Connect(context.Background(), &mcp.StreamableClientTransport{
		Endpoint: as.URL + "/mcp", HTTPClient: &http.Client{Transport: bearer{as.Token}}, MaxRetries: -1,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if toolsByName(t, cs)["math.eval"] == nil {
		t.Fatal("math.eval missing")
	}
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "math.eval", Arguments: map[string]any{"expr": "(1 + 2) * 4"}})
	if err != nil {
		t.Fatal(err)
	}
	if sc, _ := json.Marshal(res.StructuredContent); res.IsError || string(sc) != `{"value":12}` {
		t.Fatalf("math.eval: %s %q", sc, text(res))
	}
	res, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "math.eval", Arguments: map[string]any{"expr": 12}})
	if err != nil || !res.IsError || !strings.Contains(text(res), "Nothing was run") {
		t.Fatalf("bad arguments over HTTP: %v %q", err, text(res))
	}
	if n := src.runCount(); n != 1 {
		t.Fatalf("%d tasks ran, want 1", n)
	}
}
