package workflow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/agora-p2p/agora/node/agents"
)

// helperEnv makes the test binary an exec agent's command, so the tests
// need no shell utilities.
const helperEnv = "AGORA_WORKFLOW_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helper(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func helper(args []string) int {
	io.Copy(io.Discard, os.Stdin)
	switch args[0] {
	case "meet":
		// Say we are here, then wait for the other step: both finish only
		// if they run at the same time.
		dir := os.Getenv("MEETDIR")
		if err := os.WriteFile(filepath.Join(dir, os.Getenv("AGORA_SKILL")), nil, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(filepath.Join(dir, args[1])); err == nil {
				fmt.Println(`{"met":true}`)
				return 0
			}
		}
		fmt.Fprintln(os.Stderr, "the other step never started")
		return 1
	case "fail":
		fmt.Fprintln(os.Stderr, "boom")
		return 3
	}
	return 2
}

// testAgents is an agents directory with the builtin agent and an exec
// agent of this test binary: test.meet-a and test.meet-b (which finish
// only when both run at once) and test.fail (which always fails).
func testAgents(t *testing.T) *agents.Manager {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	m, err := agents.NewManager(t.TempDir(), map[string]agents.Factory{"builtin": agents.BuiltinFactory, "exec": agents.ExecFactory}, agents.Env{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ctx := context.Background()
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = m.Add(ctx, []byte(fmt.Sprintf(`name = "helper"
backend = "exec"
[exec]
command = [%q]
env = ["%s=1", "MEETDIR=%s"]
[limits]
timeout = "30s"
[[skills]]
id = "test.meet-a"
args = ["meet", "test.meet-b"]
[[skills]]
id = "test.meet-b"
args = ["meet", "test.meet-a"]
[[skills]]
id = "test.fail"
args = ["fail"]
`, exe, helperEnv, t.TempDir())), false)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// localDelegator runs subtasks on a Manager, as the node's requester does
// for a local agent, and records them. flaky makes a skill's next
// attempts fail before they reach the Manager.
type localDelegator struct {
	m *agents.Manager

	mu    sync.Mutex
	reqs  []agents.SubtaskRequest
	flaky map[string]int
}

func newDelegator(t *testing.T) *localDelegator {
	return &localDelegator{m: testAgents(t), flaky: map[string]int{}}
}

func (d *localDelegator) Skills(context.Context) []agents.Skill {
	var out []agents.Skill
	for _, ref := range d.m.Skills(false) {
		out = append(out, ref.Skill)
	}
	return out
}

func (d *localDelegator) Delegate(ctx context.Context, req agents.SubtaskRequest) (agents.SubtaskResult, error) {
	d.mu.Lock()
	d.reqs = append(d.reqs, req)
	res := agents.SubtaskResult{TaskID: fmt.Sprintf("task-%d", len(d.reqs)), Executor: "local"}
	flaky := d.flaky[req.Skill] > 0
	if flaky {
		d.flaky[req.Skill]--
	}
	d.mu.Unlock()
	if flaky {
		res.Status, res.Code, res.Error = "failed", agents.CodeBackend, "flaky: try again"
		return res, nil
	}
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Timeout)
		defer cancel()
	}
	start := time.Now()
	out, err := d.m.Run(ctx, req.Skill, req.Input, nil)
	res.DurationMS = time.Since(start).Milliseconds()
	if err != nil {
		code := agents.CodeOf(err)
		if code == agents.CodeUnknownSkill {
			return agents.SubtaskResult{}, err // nobody to submit it to
		}
		res.Status, res.Code, res.Error = "failed", code, err.Error()
		var re *agents.RunError
		if errors.As(err, &re) {
			res.Error = re.Reason
		}
		if code == agents.CodeInvalidInput || code == agents.CodeBusy {
			res.Status = "rejected"
		}
		return res, nil
	}
	res.Status, res.Output = "completed", out
	return res, nil
}

// requests returns the skills of the subtasks so far, in order.
func (d *localDelegator) requests() []agents.SubtaskRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]agents.SubtaskRequest(nil), d.reqs...)
}
