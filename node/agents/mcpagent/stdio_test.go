//go:build unix

package mcpagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agora-p2p/agora/node/agents"
)

func stdioSpec(extraEnv ...string) *agents.Spec {
	return &agents.Spec{
		Name: "local", Backend: "mcp",
		MCP: &agents.MCPSpec{
			Command: []string{os.Args[0], "-test.run=^$"},
			Env:     append([]string{serverEnv + "=1"}, extraEnv...),
		},
	}
}

func runJSON(t *testing.T, b agents.Backend, skill string, input string, into any) {
	t.Helper()
	out, err := b.Run(context.Background(), skill, json.RawMessage(input), nil)
	if err != nil {
		t.Fatalf("%s: %v", skill, err)
	}
	if err := json.Unmarshal(out, into); err != nil {
		t.Fatalf("%s: %s: %v", skill, out, err)
	}
}

// processGone reports whether pid no longer runs: it is absent, or a zombie
// that only a container's PID 1 could still reap.
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && (fields[0] == "Z" || fields[0] == "X")
}

// gone waits for pid to be gone. SIGKILL takes effect asynchronously and
// there is no event to wait on for a process that is not our child, so it
// polls, up to a deadline.
func gone(pid int) bool {
	deadline := time.Now().Add(5 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

func TestStdioCallAndClose(t *testing.T) {
	b := startBackend(t, stdioSpec(), agents.Env{})
	if got := strings.Join(skillIDs(b), ","); got != "crash,echo,env,pid,spawn" {
		t.Fatalf("skills = %s", got)
	}
	var echo echoOut
	runJSON(t, b, "echo", `{"text":"over stdio"}`, &echo)
	if echo.Echo != "over stdio" {
		t.Errorf("echo = %+v", echo)
	}
	var server, child pidOut
	runJSON(t, b, "pid", `{}`, &server)
	runJSON(t, b, "spawn", `{}`, &child)
	if server.PID != b.conn.pid {
		t.Errorf("the server says pid %d, the backend started %d", server.PID, b.conn.pid)
	}
	if processGone(server.PID) || processGone(child.PID) {
		t.Fatal("the server or its child is not running before Close")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if !processGone(server.PID) { // our child: reaped by Close
		t.Errorf("the server (pid %d) outlived Close", server.PID)
	}
	if !gone(child.PID) {
		t.Errorf("the server's child (pid %d) outlived Close", child.PID)
	}
	if _, err := b.Run(context.Background(), "echo", json.RawMessage(`{"text":"x"}`), nil); agents.CodeOf(err) != agents.CodeDisabled {
		t.Errorf("Run after Close: err = %v", err)
	}
}

func TestStdioScrubbedEnv(t *testing.T) {
	node := map[string]string{
		"PATH": "/usr/bin:/bin", "HOME": "/home/agora", "LANG": "C.UTF-8",
		"AGORA_PASSED": "through", "AGORA_SECRET": "hidden",
	}
	env := agents.Env{Getenv: func(k string) string { return node[k] }}
	b := startBackend(t, stdioSpec("AGORA_SET=value", "AGORA_PASSED"), env)
	var got envOut
	runJSON(t, b, "env", `{}`, &got)
	want := []string{
		serverEnv + "=1", "AGORA_PASSED=through", "AGORA_SET=value",
		"HOME=/home/agora", "LANG=C.UTF-8", "PATH=/usr/bin:/bin",
	}
	if !slices.Equal(got.Env, want) {
		t.Errorf("server environment = %q, want %q", got.Env, want)
	}
}

func TestStdioServerDiesAndComesBack(t *testing.T) {
	b := startBackend(t, stdioSpec(), agents.Env{})
	var before pidOut
	runJSON(t, b, "pid", `{}`, &before)

	_, err := b.Run(context.Background(), "crash", json.RawMessage(`{}`), nil)
	var re *agents.RunError
	if !errors.As(err, &re) || re.Code != agents.CodeBackend {
		t.Fatalf("crash: err = %v, want %s", err, agents.CodeBackend)
	}
	t.Logf("crash: %v", err)

	var after pidOut
	runJSON(t, b, "pid", `{}`, &after)
	if after.PID == before.PID {
		t.Errorf("the server was not restarted (pid %d)", after.PID)
	}
	if !processGone(before.PID) {
		t.Errorf("the dead server (pid %d) was not reaped", before.PID)
	}
}
