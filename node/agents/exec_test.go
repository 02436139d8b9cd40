package agents

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// helperSpec is an exec agent running this test binary in a helper mode.
func helperSpec(t *testing.T, mode, pidfile, extra string) *Spec {
	t.Helper()
	data := fmt.Sprintf(`name = "helper"
backend = "exec"
%s
[exec]
command = [%q]
env = ["%s=%s", "PIDFILE=%s"]

[[skills]]
id = "run"
args = ["one", "two words"]
`, extra, testExe(t), helperEnv, mode, pidfile)
	spec, err := ParseSpec("", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func startHelper(t *testing.T, mode, pidfile, extra string, env Env) Backend {
	t.Helper()
	b, err := ExecFactory(context.Background(), helperSpec(t, mode, pidfile, extra), env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestExecEchoAndProgress(t *testing.T) {
	b := startHelper(t, "progress", "", "", Env{})
	var got []string
	out, err := b.Run(context.Background(), "run", json.RawMessage(`{"text": "hi"}`), func(msg string, pct int) {
		got = append(got, fmt.Sprintf("%d %s", pct, msg))
	})
	if err != nil || string(out) != `{"text": "hi"}` {
		t.Fatalf("%s %v", out, err)
	}
	if strings.Join(got, "|") != "10 reading|99 almost" {
		t.Errorf("progress %q", got)
	}
	if _, err := b.Run(context.Background(), "other", nil, nil); CodeOf(err) != CodeUnknownSkill {
		t.Errorf("unknown skill: %v", err)
	}
}

func TestExecArgsAndScrubbedEnv(t *testing.T) {
	node := map[string]string{
		"PATH": os.Getenv("PATH"), "HOME": "/home/agora", "LANG": "C.UTF-8",
		"SECRET_TOKEN": "must not leak", "PASSED": "through",
	}
	b, err := ExecFactory(context.Background(), helperSpecEnv(t, `"PASSED", "FIXED=a=b", "UNSET"`), Env{Getenv: func(k string) string { return node[k] }})
	if err != nil {
		t.Fatal(err)
	}
	out, err := b.Run(context.Background(), "run", json.RawMessage(`{"x":1}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Args  []string          `json:"args"`
		Env   map[string]string `json:"env"`
		Input json.RawMessage   `json:"input"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Args, "|") != "one|two words" || string(got.Input) != `{"x":1}` {
		t.Errorf("args %q input %s", got.Args, got.Input)
	}
	want := map[string]string{
		"PATH": os.Getenv("PATH"), "HOME": "/home/agora", "LANG": "C.UTF-8",
		helperEnv: "args", "PASSED": "through", "FIXED": "a=b", "UNSET": "", "AGORA_SKILL": "run",
	}
	for k, v := range want {
		if got.Env[k] != v {
			t.Errorf("env %s = %q, want %q", k, got.Env[k], v)
		}
	}
	for k := range got.Env {
		if _, ok := want[k]; !ok {
			t.Errorf("env has %s", k)
		}
	}
}

func helperSpecEnv(t *testing.T, env string) *Spec {
	data := fmt.Sprintf(`name = "helper"
backend = "exec"
[exec]
command = [%q]
env = ["%s=args", %s]
[[skills]]
id = "run"
args = ["one", "two words"]
`, testExe(t), helperEnv, env)
	spec, err := ParseSpec("", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func TestExecFailures(t *testing.T) {
	for _, tt := range []struct {
		mode, extra, code, want string
	}{
		{"fail", "", CodeBackend, "backend-error: the command exited with status 3; stderr: something went wrong\nboom"},
		{"badjson", "", CodeBackend, `backend-error: the command's output is not one JSON value; it starts with "this is not JSON"`},
		{"nosuchmode", "", CodeBackend, "backend-error: the command exited with status 2; stderr: unknown helper mode nosuchmode"},
		{"flood", "[limits]\nmax_output = 65536\n", CodeOutputTooBig, "output-too-large: the command wrote more than 65536 bytes on stdout and was stopped"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			b := startHelper(t, tt.mode, "", tt.extra, Env{})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := b.Run(ctx, "run", json.RawMessage(`{}`), nil)
			if CodeOf(err) != tt.code || err.Error() != tt.want {
				t.Errorf("%s %v\nwant %s", out, err, tt.want)
			}
		})
	}
}

// TestExecKillsEverything stops hanging commands, and what they started,
// on timeout, on cancel, and when the command exits leaving a child
// holding its stdout.
func TestExecKillsEverything(t *testing.T) {
	for _, tt := range []struct {
		name, mode string
		cancel     bool // cancel on "started" rather than pass the deadline
		code       string
	}{
		{"timeout", "hang", false, CodeTimeout},
		{"cancel", "hang", true, CodeCanceled},
		{"grandchild timeout", "grandchild", false, CodeTimeout},
		{"grandchild cancel", "grandchild", true, CodeCanceled},
		{"grandchild holds stdout", "grandchild-exit", false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pidfile := filepath.Join(t.TempDir(), "pid")
			b := startHelper(t, tt.mode, pidfile, "", Env{})
			// The deadline passes, or the task is canceled, once the
			// command (and its child) started, not at some wall-clock time.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			expiring := newExpireOnDemand(ctx)
			start := time.Now()
			out, err := b.Run(expiring, "run", json.RawMessage(`{}`), func(msg string, _ int) {
				switch {
				case msg != "started":
				case tt.cancel:
					cancel()
				case tt.code == CodeTimeout:
					expiring.expire()
				}
			})
			if CodeOf(err) != tt.code {
				t.Fatalf("%s %v, want code %q", out, err, tt.code)
			}
			if tt.code == "" && string(out) != `{"ok":true}` {
				t.Errorf("output %s", out)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("Run took %v", d)
			}
			pid := readPid(t, pidfile)
			if !processGone(t, pid) {
				t.Errorf("process %d still running after Run returned", pid)
			}
		})
	}
}

// TestExecEscapedGrandchild: a process that left the command's group
// keeps its stdout open; Run still returns, after a bounded grace.
func TestExecEscapedGrandchild(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	b := startHelper(t, "escape", pidfile, "", Env{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	out, err := b.Run(ctx, "run", json.RawMessage(`{}`), nil)
	d := time.Since(start)
	pid := readPid(t, pidfile)
	syscall.Kill(pid, syscall.SIGKILL) // ours to clean up: it escaped on purpose
	if err != nil || string(out) != `{"ok":true}` {
		t.Fatalf("%s %v", out, err)
	}
	if d > 10*time.Second {
		t.Errorf("Run took %v", d)
	}
}

func TestExecFactoryErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "plain.txt"), []byte("x"), 0o600)
	for _, tt := range []struct{ file, want string }{
		{"[exec]\ncommand = []\n[[skills]]\nid = \"a\"\n", "exec.command: an exec agent needs a command (argv, no shell)"},
		{"[[skills]]\nid = \"a\"\n", "exec.command: an exec agent needs a command (argv, no shell)"},
		{"[exec]\ncommand = [\"no-such-command-agora\"]\n[[skills]]\nid = \"a\"\n", `exec.command: "no-such-command-agora" is not in PATH`},
		{"[exec]\ncommand = [\"./plain.txt\"]\n[[skills]]\nid = \"a\"\n", "exec.command: " + filepath.Join(dir, "plain.txt") + " is not an executable file"},
		{fmt.Sprintf("[exec]\ncommand = [%q]\nenv = [\"=x\"]\n[[skills]]\nid = \"a\"\n", testExe(t)), `exec.env[0]: "=x" is neither NAME=VALUE nor NAME`},
		{fmt.Sprintf("[exec]\ncommand = [%q]\nenv = [\"AGORA_SKILL=x\"]\n[[skills]]\nid = \"a\"\n", testExe(t)), `exec.env[0]: AGORA_SKILL is set by agora`},
		{fmt.Sprintf("[exec]\ncommand = [%q]\n", testExe(t)), "skills: an exec agent needs at least one [[skills]]"},
	} {
		spec, err := ParseSpec("", []byte("name = \"e\"\nbackend = \"exec\"\n"+tt.file))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ExecFactory(context.Background(), spec, Env{Dir: dir}); err == nil || err.Error() != tt.want {
			t.Errorf("%v\nwant %s", err, tt.want)
		}
	}
}

func TestParseProgress(t *testing.T) {
	for _, tt := range []struct {
		line, msg string
		pct       int
		ok        bool
	}{
		{"progress: 50 half way", "half way", 50, true},
		{"progress: 0", "", 0, true},
		{"progress:100 done", "done", 100, true},
		{"progress: -1 thinking", "thinking", -1, true},
		{"progress: 12.7 a", "a", 12, true},
		{"progress: 101 over", "", 0, false},
		{"progress: NaN x", "", 0, false},
		{"progress: half", "", 0, false},
		{"error: progress: 5", "", 0, false},
	} {
		msg, pct, ok := parseProgress([]byte(tt.line))
		if msg != tt.msg || pct != tt.pct || ok != tt.ok {
			t.Errorf("%q: %q %d %v", tt.line, msg, pct, ok)
		}
	}
}

// expireOnDemand is a context whose deadline passes when the test says
// (or that is done when its parent is).
type expireOnDemand struct {
	context.Context
	once sync.Once
	done chan struct{}
}

func newExpireOnDemand(parent context.Context) *expireOnDemand {
	c := &expireOnDemand{Context: parent, done: make(chan struct{})}
	context.AfterFunc(parent, c.expire)
	return c
}

func (c *expireOnDemand) expire() { c.once.Do(func() { close(c.done) }) }

func (c *expireOnDemand) Done() <-chan struct{} { return c.done }

func (c *expireOnDemand) Err() error {
	select {
	case <-c.done:
		if err := c.Context.Err(); err != nil {
			return err
		}
		return context.DeadlineExceeded
	default:
		return nil
	}
}
