package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var testFactories = map[string]Factory{"builtin": BuiltinFactory, "exec": ExecFactory}

func newTestManager(t *testing.T, dir string) *Manager {
	t.Helper()
	m, err := NewManager(dir, testFactories, Env{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// helperAgent is an agent file for this test binary in a helper mode.
func helperAgent(t *testing.T, name, mode, skill, extra string) []byte {
	return []byte(fmt.Sprintf(`name = %q
backend = "exec"
%s
[exec]
command = [%q]
env = ["%s=%s", "PIDFILE=%s"]

[[skills]]
id = %q
input_schema = '{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}'
output_schema = '{"type":"object","required":["text"]}'
`, name, extra, testExe(t), helperEnv, mode, filepath.Join(t.TempDir(), "pid"), skill))
}

func code(err error) string { return CodeOf(err) }

func TestManagerFirstLoadWritesBuiltin(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "agents")
	m := newTestManager(t, dir)
	list := m.List()
	if len(list) != 1 || list[0].Name != "builtin" || !list[0].Enabled || !list[0].Shared || len(list[0].Skills) != 3 || list[0].Error != "" {
		t.Fatalf("list %+v", list)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "builtin.toml")); err != nil || string(data) != BuiltinAgentFile {
		t.Fatalf("builtin.toml: %v", err)
	}
	out, err := m.Run(context.Background(), "math.eval", json.RawMessage(`{"expr":"6*7"}`), nil)
	if err != nil || string(out) != `{"value":42}` {
		t.Fatalf("%s %v", out, err)
	}
	if agent, sk, ok := m.Skill("json.query"); !ok || agent != "builtin" || sk.ID != "json.query" || len(sk.Input) == 0 {
		t.Errorf("Skill: %s %+v %v", agent, sk, ok)
	}

	// Removing it sticks: the next Load does not write it again.
	if err := m.Remove("builtin"); err != nil {
		t.Fatal(err)
	}
	m2 := newTestManager(t, dir)
	if len(m2.List()) != 0 {
		t.Errorf("builtin came back: %+v", m2.List())
	}

	// An existing empty directory (as `agora init` makes) is seeded too.
	dir3 := t.TempDir()
	if m3 := newTestManager(t, dir3); len(m3.List()) != 1 {
		t.Errorf("empty dir not seeded: %+v", m3.List())
	}
}

func TestManagerRunChecks(t *testing.T) {
	m := newTestManager(t, t.TempDir())
	ctx := context.Background()
	if _, err := m.Add(ctx, helperAgent(t, "echo", "echo", "test.echo", "[limits]\nmax_input = 100\n"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Add(ctx, helperAgent(t, "tiny", "echo", "test.tiny", "[limits]\nmax_output = 20\n"), false); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		skill, input, code, want string
	}{
		{"test.echo", `{"text":"hi"}`, "", ""},
		{"test.nope", `{}`, CodeUnknownSkill, "unknown-skill: no agent here offers skill test.nope"},
		{"test.echo", `{"text":"` + strings.Repeat("x", 100) + `"}`, CodeInputTooBig, "input-too-large: the input is 111 bytes; skill test.echo takes at most 100"},
		{"test.echo", `{"text":1}`, CodeInvalidInput, "invalid-input: at '/text': got number, want string"},
		{"test.echo", `{"text":`, CodeInvalidInput, "invalid-input: invalid JSON"},
		{"test.echo", `{"other":"x","text2":1}`, CodeInvalidInput, "invalid-input: at '': missing property 'text'"},
		{"test.tiny", `{"text":"a long enough text"}`, CodeOutputTooBig, "output-too-large: the command wrote more than 20 bytes"},
		{"math.eval", `{"expr":"1/0"}`, CodeInvalidInput, "invalid-input: the expression's value is +Inf"},
	} {
		out, err := m.Run(ctx, tt.skill, json.RawMessage(tt.input), nil)
		if code(err) != tt.code || (err != nil && !strings.HasPrefix(err.Error(), tt.want)) {
			t.Errorf("%s %.30s: %s %v, want %s", tt.skill, tt.input, out, err, tt.want)
		}
		var re *RunError
		if err != nil && !errors.As(err, &re) {
			t.Errorf("%s: %T is not a *RunError", tt.skill, err)
		}
	}
	// Output that fails the output schema.
	if _, err := m.Add(ctx, helperAgent(t, "liar", "args", "test.liar", ""), false); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Run(ctx, "test.liar", json.RawMessage(`{"text":"x"}`), nil); code(err) != CodeInvalidOutput || !strings.Contains(err.Error(), "missing property 'text'") {
		t.Errorf("invalid output: %v", err)
	}
}

func TestManagerConcurrencyTimeoutCancel(t *testing.T) {
	m := newTestManager(t, t.TempDir())
	ctx := context.Background()
	// The limit must outlast a process start on a busy machine, or the
	// cancel below loses the race to it.
	if _, err := m.Add(ctx, helperAgent(t, "slow", "hang", "test.hang", "[limits]\nconcurrency = 1\ntimeout = \"2s\"\n"), false); err != nil {
		t.Fatal(err)
	}
	in := json.RawMessage(`{"text":""}`)

	// TryAcquire takes the one slot; Run and a second TryAcquire are busy.
	release, err := m.TryAcquire("test.hang")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.TryAcquire("test.hang"); code(err) != CodeBusy {
		t.Errorf("second acquire: %v", err)
	}
	if _, err := m.Run(ctx, "test.hang", in, nil); code(err) != CodeBusy {
		t.Errorf("run while busy: %v", err)
	}
	if _, err := m.TryAcquire("test.nope"); code(err) != CodeUnknownSkill {
		t.Errorf("acquire unknown: %v", err)
	}
	if err := m.Check("test.hang", json.RawMessage(`{}`)); code(err) != CodeInvalidInput {
		t.Errorf("check: %v", err)
	}
	// RunAcquired uses the slot held; the agent's timeout applies.
	start := time.Now()
	if _, err := m.RunAcquired(ctx, "test.hang", in, nil); code(err) != CodeTimeout || !strings.Contains(err.Error(), "2s") {
		t.Errorf("timeout: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("timeout took %v", d)
	}
	release()
	release() // idempotent

	// The slot is free again; cancel the task once it started.
	cctx, cancel := context.WithCancel(ctx)
	_, err = m.Run(cctx, "test.hang", in, func(msg string, _ int) {
		if msg == "started" {
			cancel()
		}
	})
	if code(err) != CodeCanceled {
		t.Errorf("cancel: %v", err)
	}
	// A caller's deadline is a timeout too.
	dctx, dcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer dcancel()
	if _, err := m.Run(dctx, "test.hang", in, nil); code(err) != CodeTimeout {
		t.Errorf("deadline: %v", err)
	}
}

func TestManagerAddReplaceRemove(t *testing.T) {
	dir := t.TempDir()
	m := newTestManager(t, dir)
	ctx := context.Background()
	events, unsubscribe := m.Subscribe()
	defer unsubscribe()
	drain := func() bool {
		select {
		case <-events:
			return true
		default:
			return false
		}
	}
	drain()

	file := helperAgent(t, "echo", "echo", "test.echo", "# a comment kept as written\n")
	info, err := m.Add(ctx, file, false)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "echo" || !info.Enabled || len(info.Skills) != 1 || info.Path != filepath.Join(dir, "echo.toml") {
		t.Errorf("info %+v", info)
	}
	if data, _ := os.ReadFile(info.Path); string(data) != string(file) {
		t.Error("agent file not written as given")
	}
	if !drain() {
		t.Error("no change signal after Add")
	}
	if _, err := m.Add(ctx, file, false); !errors.Is(err, ErrAgentExists) {
		t.Errorf("add twice: %v", err)
	}
	// A broken file or a backend that cannot start writes nothing.
	if _, err := m.Add(ctx, []byte("name = \"bad\"\nbackend = \"exec\"\nbakend = 1\n"), false); err == nil || !strings.Contains(err.Error(), `line 3: unknown field "bakend"`) {
		t.Errorf("bad file: %v", err)
	}
	if _, err := m.Add(ctx, []byte("name = \"nocmd\"\nbackend = \"exec\"\n[exec]\ncommand = [\"no-such-command-agora\"]\n[[skills]]\nid = \"x\"\n"), false); err == nil {
		t.Error("agent with a missing command added")
	}
	if _, err := m.Add(ctx, []byte("name = \"llm\"\nbackend = \"openai\"\n"), false); err == nil || !strings.Contains(err.Error(), `backend: backend "openai" is not available here; this node has builtin, exec`) {
		t.Errorf("unregistered backend: %v", err)
	}
	// A skill ID belongs to one agent.
	if _, err := m.Add(ctx, helperAgent(t, "echo2", "echo", "test.echo", ""), false); err == nil || !strings.Contains(err.Error(), "skill test.echo is already offered by agent echo") {
		t.Errorf("conflict: %v", err)
	}
	for _, name := range []string{"bad", "nocmd", "llm", "echo2"} {
		if _, err := os.Stat(filepath.Join(dir, name+".toml")); err == nil {
			t.Errorf("%s.toml written", name)
		}
	}

	// Replace swaps the skill set.
	if _, err := m.Add(ctx, helperAgent(t, "echo", "echo", "test.echo2", ""), true); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := m.Skill("test.echo"); ok {
		t.Error("old skill survived replace")
	}
	if _, err := m.Run(ctx, "test.echo2", json.RawMessage(`{"text":"x"}`), nil); err != nil {
		t.Error(err)
	}
	drain()

	if err := m.Remove("echo"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "echo.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file left: %v", err)
	}
	if _, err := m.Run(ctx, "test.echo2", json.RawMessage(`{"text":"x"}`), nil); code(err) != CodeUnknownSkill {
		t.Errorf("removed agent ran: %v", err)
	}
	if !drain() {
		t.Error("no change signal after Remove")
	}
	if err := m.Remove("echo"); !errors.Is(err, ErrNoAgent) {
		t.Errorf("remove twice: %v", err)
	}
	// No temp files are left behind.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("left %s", e.Name())
		}
	}
}

func TestManagerEnableDisablePersist(t *testing.T) {
	dir := t.TempDir()
	m := newTestManager(t, dir)
	ctx := context.Background()
	if _, err := m.Add(ctx, helperAgent(t, "echo", "echo", "test.echo", ""), false); err != nil {
		t.Fatal(err)
	}
	if err := m.Disable("builtin"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Run(ctx, "math.eval", json.RawMessage(`{"expr":"1"}`), nil); code(err) != CodeDisabled {
		t.Errorf("disabled agent ran: %v", err)
	}
	if err := m.Disable("nope"); !errors.Is(err, ErrNoAgent) {
		t.Errorf("disable unknown: %v", err)
	}
	state, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil || !strings.Contains(string(state), `"builtin"`) {
		t.Fatalf("state %s %v", state, err)
	}

	// A new Manager on the directory remembers.
	m.Close()
	m2 := newTestManager(t, dir)
	list := m2.List()
	if len(list) != 2 || list[0].Name != "builtin" || list[0].Enabled || len(list[0].Skills) != 3 || !list[1].Enabled {
		t.Fatalf("after restart %+v", list)
	}
	if got := m2.Skills(false); len(got) != 1 || got[0].Agent != "echo" {
		t.Errorf("skills %+v", got)
	}
	if err := m2.Enable(ctx, "builtin"); err != nil {
		t.Fatal(err)
	}
	if err := m2.Enable(ctx, "builtin"); err != nil {
		t.Errorf("enable twice: %v", err)
	}
	if _, err := m2.Run(ctx, "math.eval", json.RawMessage(`{"expr":"1"}`), nil); err != nil {
		t.Error(err)
	}
	m2.Close()
	if m3 := newTestManager(t, dir); !m3.List()[0].Enabled {
		t.Error("enable not persisted")
	}
	if _, err := m2.Run(ctx, "math.eval", json.RawMessage(`{"expr":"1"}`), nil); err == nil {
		t.Error("closed manager ran a skill")
	}
	if _, err := m2.Add(ctx, helperAgent(t, "x", "echo", "test.x", ""), false); !errors.Is(err, ErrClosed) {
		t.Errorf("add after close: %v", err)
	}
}

func TestManagerBrokenFiles(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"bad.toml":      "name = \"bad\"\nbackend = \"exec\"\nbakend = 1\n",
		"misnamed.toml": "name = \"other\"\nbackend = \"builtin\"\n",
		"nocmd.toml":    "name = \"nocmd\"\nbackend = \"exec\"\n[exec]\ncommand = [\"no-such-command-agora\"]\n[[skills]]\nid = \"x.y\"\n",
		"llm.toml":      "name = \"llm\"\nbackend = \"openai\"\n",
		"good.toml":     "name = \"good\"\nbackend = \"builtin\"\n[[skills]]\nid = \"text.stats\"\n",
		".hidden.toml":  "not even toml",
		"notes.txt":     "ignored",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m := newTestManager(t, dir)
	got := map[string]string{}
	for _, a := range m.List() {
		got[a.Name] = a.Error
	}
	want := map[string]string{
		"bad":      filepath.Join(dir, "bad.toml") + `:3: unknown field "bakend"`,
		"misnamed": filepath.Join(dir, "misnamed.toml") + `:1: name: the agent in misnamed.toml must be named "misnamed", not "other"`,
		"nocmd":    filepath.Join(dir, "nocmd.toml") + `: exec.command: "no-such-command-agora" is not in PATH`,
		"llm":      filepath.Join(dir, "llm.toml") + `: backend: backend "openai" is not available here; this node has builtin, exec`,
		"good":     "",
	}
	if len(got) != len(want) {
		t.Errorf("agents %v", got)
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: %q\nwant %q", name, got[name], w)
		}
	}
	if _, err := m.Run(context.Background(), "text.stats", json.RawMessage(`{"text":"a b"}`), nil); err != nil {
		t.Error(err)
	}
	if _, err := m.Run(context.Background(), "x.y", json.RawMessage(`{}`), nil); code(err) != CodeDisabled || !strings.Contains(err.Error(), "not running") {
		t.Errorf("broken agent's skill: %v", err)
	}
	// Fix a file and Enable picks it up.
	os.WriteFile(filepath.Join(dir, "bad.toml"), []byte("name = \"bad\"\nbackend = \"builtin\"\n[[skills]]\nid = \"json.query\"\n"), 0o600)
	if err := m.Enable(context.Background(), "bad"); err != nil {
		t.Fatal(err)
	}
	if a, ok := m.Agent("bad"); !ok || a.Error != "" || len(a.Skills) != 1 {
		t.Errorf("fixed agent %+v", a)
	}
	// A broken state file is an error, not a silent re-enable.
	os.WriteFile(filepath.Join(dir, StateFile), []byte("{"), 0o600)
	m2, _ := NewManager(dir, testFactories, Env{}, nil)
	if err := m2.Load(context.Background()); err == nil || !strings.Contains(err.Error(), StateFile) {
		t.Errorf("broken state: %v", err)
	}
}

func TestManagerSharing(t *testing.T) {
	m := newTestManager(t, t.TempDir())
	ctx := context.Background()
	add := func(name, skill, sharing string) {
		t.Helper()
		if _, err := m.Add(ctx, helperAgent(t, name, "echo", skill, sharing), false); err != nil {
			t.Fatal(err)
		}
	}
	add("mine", "test.mine", "[sharing]\nmode = \"private\"\n")
	add("club", "test.club", "[sharing]\ncommunities = [\"c1\"]\n")
	add("off", "test.off", "")
	if err := m.Disable("off"); err != nil {
		t.Fatal(err)
	}
	ids := func(refs []SkillRef) string {
		var s []string
		for _, r := range refs {
			s = append(s, r.Agent+"/"+r.Skill.ID)
		}
		return strings.Join(s, " ")
	}
	if got := ids(m.Skills(false)); got != "builtin/text.stats builtin/json.query builtin/math.eval club/test.club mine/test.mine" {
		t.Errorf("all: %s", got)
	}
	if got := ids(m.Skills(true)); got != "builtin/text.stats builtin/json.query builtin/math.eval club/test.club" {
		t.Errorf("shared: %s", got)
	}
	if got := ids(m.SharedIn("c1")); got != "builtin/text.stats builtin/json.query builtin/math.eval club/test.club" {
		t.Errorf("c1: %s", got)
	}
	if got := ids(m.SharedIn("c2")); got != "builtin/text.stats builtin/json.query builtin/math.eval" {
		t.Errorf("c2: %s", got)
	}
	for _, a := range m.List() {
		if a.Name == "mine" && a.Shared || a.Name == "club" && (!a.Shared || len(a.Communities) != 1) {
			t.Errorf("%+v", a)
		}
	}
}

// TestManagerStopCancelsTasks disables an agent while a task runs.
func TestManagerStopCancelsTasks(t *testing.T) {
	m := newTestManager(t, t.TempDir())
	ctx := context.Background()
	if _, err := m.Add(ctx, helperAgent(t, "slow", "hang", "test.hang", ""), false); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		_, err := m.Run(ctx, "test.hang", json.RawMessage(`{"text":""}`), func(msg string, _ int) {
			once.Do(func() { close(started) })
		})
		done <- err
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("task ended early: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("task did not start")
	}
	if err := m.Disable("slow"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; code(err) != CodeDisabled {
		t.Errorf("task: %v", err)
	}
}

// watchBackend is a Backend whose skills change, as an MCP server's do.
type watchBackend struct {
	mu      sync.Mutex
	skills  []Skill
	changed chan struct{}
}

func (w *watchBackend) Skills() []Skill {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Skill(nil), w.skills...)
}

func (w *watchBackend) Run(ctx context.Context, skill string, input json.RawMessage, p Progress) (json.RawMessage, error) {
	return json.RawMessage(`{"skill":"` + skill + `"}`), nil
}
func (w *watchBackend) Close() error             { return nil }
func (w *watchBackend) Changed() <-chan struct{} { return w.changed }

// managerOf returns a loaded Manager whose one agent, name, is b (an
// "mcp" agent file whose factory returns b).
func managerOf(t *testing.T, name string, b Backend) *Manager {
	t.Helper()
	fac := map[string]Factory{"mcp": func(context.Context, *Spec, Env) (Backend, error) { return b, nil }}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, StateFile), []byte(`{"disabled":[]}`), 0o600)
	os.WriteFile(filepath.Join(dir, name+".toml"), []byte("name = \""+name+"\"\nbackend = \"mcp\"\n[mcp]\ncommand = [\"x\"]\n"), 0o600)
	m, err := NewManager(dir, fac, Env{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestManagerWatcher(t *testing.T) {
	wb := &watchBackend{skills: []Skill{{ID: "tool.a"}}, changed: make(chan struct{}, 1)}
	m := managerOf(t, "tools", wb)
	events, unsubscribe := m.Subscribe()
	defer unsubscribe()
	if _, err := m.Run(context.Background(), "tool.a", json.RawMessage(`{}`), nil); err != nil {
		t.Fatal(err)
	}
	wb.mu.Lock()
	wb.skills = []Skill{{ID: "tool.b", Input: json.RawMessage(`{"type":"object","required":["q"]}`)}, {ID: "Bad ID"}}
	wb.mu.Unlock()
	wb.changed <- struct{}{}
	select {
	case <-events:
	case <-time.After(20 * time.Second):
		t.Fatal("no change signal")
	}
	if _, _, ok := m.Skill("tool.a"); ok {
		t.Error("tool.a still listed")
	}
	if _, err := m.Run(context.Background(), "tool.b", json.RawMessage(`{}`), nil); code(err) != CodeInvalidInput {
		t.Errorf("tool.b with bad input: %v", err)
	}
	if got := m.Skills(true); len(got) != 1 || got[0].Skill.ID != "tool.b" {
		t.Errorf("skills %+v", got)
	}
}

// TestManagerConcurrentUse runs skills while agents come and go; run it
// with -race.
func TestManagerConcurrentUse(t *testing.T) {
	m := newTestManager(t, t.TempDir())
	ctx := context.Background()
	events, unsubscribe := m.Subscribe()
	defer unsubscribe()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-events:
				default:
				}
				_, err := m.Run(ctx, "text.stats", json.RawMessage(`{"text":"a b c"}`), nil)
				if c := code(err); c != "" && c != CodeBusy && c != CodeDisabled && c != CodeUnknownSkill {
					t.Errorf("run: %v", err)
				}
				m.List()
				m.SharedIn("c")
			}
		}()
	}
	for i := 0; i < 20; i++ {
		if err := m.Disable("builtin"); err != nil {
			t.Fatal(err)
		}
		if err := m.Enable(ctx, "builtin"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Add(ctx, []byte(BuiltinAgentFile), true); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

// conformingBackend claims conforming outputs (Conformer) and returns out.
type conformingBackend struct{ out string }

func (c conformingBackend) Skills() []Skill {
	return []Skill{{ID: "c.run", Output: json.RawMessage(`{"type":"object","required":["n"]}`)}}
}
func (c conformingBackend) Run(context.Context, string, json.RawMessage, Progress) (json.RawMessage, error) {
	return json.RawMessage(c.out), nil
}
func (conformingBackend) Close() error         { return nil }
func (conformingBackend) OutputConforms() bool { return true }

// TestManagerConformerOutput: a Conformer's output skips the schema (it
// claims the shape) but must still be JSON.
func TestManagerConformerOutput(t *testing.T) {
	for _, tt := range []struct {
		out  string
		code string
	}{
		{`{"n":1}`, ""},
		{`{"other":1}`, ""}, // the schema would refuse it: not checked
		{`{"n":`, CodeInvalidOutput},
		{strings.Repeat("[", 10001) + strings.Repeat("]", 10001), CodeInvalidOutput},
	} {
		m := managerOf(t, "c", conformingBackend{out: tt.out})
		if _, err := m.Run(context.Background(), "c.run", json.RawMessage(`{}`), nil); code(err) != tt.code {
			t.Errorf("output %.20q: %v, want code %q", tt.out, err, tt.code)
		}
	}
}
