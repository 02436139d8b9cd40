package mcpagent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The test binary doubles as a stdio MCP server (serverEnv=1) and as a
// process that only waits to be killed (sleeperEnv=1).
const (
	serverEnv  = "AGORA_MCPAGENT_TEST_SERVER"
	sleeperEnv = "AGORA_MCPAGENT_TEST_SLEEPER"
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(sleeperEnv) == "1":
		select {}
	case os.Getenv(serverEnv) == "1":
		if err := newStdioServer().Run(context.Background(), &mcp.StdioTransport{}); err != nil {
			fmt.Fprintln(os.Stderr, "test server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type echoIn struct {
	Text string `json:"text" jsonschema:"what to echo"`
}

type echoOut struct {
	Echo string `json:"echo"`
}

type empty struct{}

type pidOut struct {
	PID int `json:"pid"`
}

type envOut struct {
	Env []string `json:"env"`
}

func newStdioServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "stdio-test", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Echo a text."},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, echoOut, error) {
			return nil, echoOut{Echo: in.Text}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "pid", Description: "The server's process ID."},
		func(context.Context, *mcp.CallToolRequest, empty) (*mcp.CallToolResult, pidOut, error) {
			return nil, pidOut{PID: os.Getpid()}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "env", Description: "The server's environment."},
		func(context.Context, *mcp.CallToolRequest, empty) (*mcp.CallToolResult, envOut, error) {
			env := os.Environ()
			sort.Strings(env)
			return nil, envOut{Env: env}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "spawn", Description: "Start a process that never ends."},
		func(context.Context, *mcp.CallToolRequest, empty) (*mcp.CallToolResult, pidOut, error) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), sleeperEnv+"=1")
			if err := cmd.Start(); err != nil {
				return nil, pidOut{}, err
			}
			return nil, pidOut{PID: cmd.Process.Pid}, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "crash", Description: "Exit at once."},
		func(context.Context, *mcp.CallToolRequest, empty) (*mcp.CallToolResult, empty, error) {
			fmt.Fprintln(os.Stderr, "crash: exiting as asked")
			os.Exit(3)
			return nil, empty{}, nil
		})
	return s
}
