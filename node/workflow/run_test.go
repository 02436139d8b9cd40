package workflow

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/agora-p2p/agora/node/agents"
)

func mustPlan(t *testing.T, src string) (*Flow, *Graph) {
	t.Helper()
	f, err := Parse("wf.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	g, err := Plan(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f, g
}

// recorder is an Observer that keeps the events.
type recorder struct {
	mu     sync.Mutex
	events []StepEvent
}

func (r *recorder) observe(ev StepEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

// kinds lists "id:kind[:status]" in order.
func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		s := ev.Step.ID + ":" + ev.Kind
		if ev.Kind == EventFinished {
			s += ":" + ev.Step.Status
		}
		out = append(out, s)
	}
	return out
}

func stepByID(t *testing.T, res Result, id string) StepResult {
	t.Helper()
	for _, s := range res.Steps {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no step %s in %+v", id, res.Steps)
	return StepResult{}
}

func jsonEqual(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("output %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("output %s, want %s", gb, wb)
	}
}

func TestRunChainAndBranch(t *testing.T) {
	d := newDelegator(t)
	f, g := mustPlan(t, `name: wf
input_schema: {type: object, properties: {text: {type: string}}, required: [text]}
steps:
  - id: double
    skill: math.eval
    input: '{expr: "\($steps.stats.words) * 2"}'
  - id: stats
    skill: text.stats
    input: '{text: $input.text}'
  - id: first
    skill: json.query
    input: '{data: $input, query: ".text | split(\" \") | first"}'
output: '{words: $steps.stats.words, doubled: $steps.double.value, first: $steps.first.result}'
`)
	var rec recorder
	res := Run(context.Background(), f, g, json.RawMessage(`{"text":"hello wide world"}`), d, RunOptions{Observer: rec.observe, Origin: "digest"})
	if res.Status != StatusCompleted || res.Error != "" {
		t.Fatalf("%+v", res)
	}
	jsonEqual(t, res.Output, `{"words":3,"doubled":6,"first":"hello"}`)
	if len(res.Steps) != 3 || res.Steps[0].ID != "double" {
		t.Fatalf("steps not in file order: %+v", res.Steps)
	}
	for _, s := range res.Steps {
		if s.Status != StatusCompleted || s.TaskID == "" || s.Executor != "local" || s.Attempts != 1 || s.DurationMS < 0 {
			t.Errorf("step %+v", s)
		}
	}
	// double ran after stats, and saw its output.
	ev := rec.kinds()
	if slices.Index(ev, "double:started") < slices.Index(ev, "stats:finished:completed") {
		t.Errorf("double started before stats finished: %v", ev)
	}
	for _, r := range d.requests() {
		if r.Origin != "digest" {
			t.Errorf("origin %q", r.Origin)
		}
	}
	// The shape `agora run --json` prints.
	b, _ := json.Marshal(res)
	for _, key := range []string{`"status":"completed"`, `"output":{`, `"steps":[{"id":"double","skill":"math.eval","status":"completed","executor":"local","task_id":"task-`, `"duration_ms":`, `"attempts":1`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("%s lacks %s", b, key)
		}
	}
}

// test.meet-a and test.meet-b each wait for the other to have started:
// the workflow completes only if independent steps run at the same time.
func TestRunParallel(t *testing.T) {
	d := newDelegator(t)
	f, g := mustPlan(t, `name: wf
steps:
  - id: a
    skill: test.meet-a
    input: '{}'
  - id: b
    skill: test.meet-b
    input: '{}'
  - id: both
    skill: json.query
    input: '{data: [$steps.a.met, $steps.b.met], query: "all"}'
output: $steps.both.result
`)
	var rec recorder
	res := Run(context.Background(), f, g, json.RawMessage(`{}`), d, RunOptions{Observer: rec.observe})
	if res.Status != StatusCompleted {
		t.Fatalf("%+v", res)
	}
	jsonEqual(t, res.Output, `true`)
	ev := rec.kinds()
	if last := slices.Index(ev, "a:started"); last > slices.Index(ev, "b:finished:completed") {
		t.Errorf("events %v", ev)
	}
}

func TestRunFailure(t *testing.T) {
	d := newDelegator(t)
	f, g := mustPlan(t, `name: wf
steps:
  - id: bad
    skill: test.fail
    input: '{}'
  - id: after
    skill: text.stats
    input: '{text: ($steps.bad | tostring)}'
  - id: later
    skill: text.stats
    input: '{text: ($steps.after | tostring)}'
  - id: indep
    skill: text.stats
    input: '{text: "still runs"}'
  - id: indep2
    skill: math.eval
    input: '{expr: "\($steps.indep.words) + 1"}'
output: '[$steps.later, $steps.indep2]'
`)
	res := Run(context.Background(), f, g, json.RawMessage(`{}`), d, RunOptions{})
	if res.Status != StatusFailed || res.Code != CodeStepFailed || !strings.Contains(res.Error, "step bad failed") || !strings.Contains(res.Error, "boom") || res.Output != nil {
		t.Fatalf("%+v", res)
	}
	bad := stepByID(t, res, "bad")
	if bad.Status != StatusFailed || bad.Code != agents.CodeBackend || bad.TaskID == "" || bad.Attempts != 1 {
		t.Errorf("bad %+v", bad)
	}
	after := stepByID(t, res, "after")
	if after.Status != StatusFailed || after.Code != CodeDependencyFailed || after.Error != "step bad failed" || after.Attempts != 0 || after.TaskID != "" {
		t.Errorf("after %+v", after)
	}
	later := stepByID(t, res, "later")
	if later.Status != StatusFailed || later.Code != CodeDependencyFailed || later.Error != "step after did not run (step bad failed)" {
		t.Errorf("later %+v", later)
	}
	for _, id := range []string{"indep", "indep2"} {
		if s := stepByID(t, res, id); s.Status != StatusCompleted {
			t.Errorf("%s %+v", id, s)
		}
	}
	// Nothing ran that depended on the failure.
	var skills []string
	for _, r := range d.requests() {
		skills = append(skills, r.Skill)
	}
	slices.Sort(skills)
	if !slices.Equal(skills, []string{"math.eval", "test.fail", "text.stats"}) {
		t.Errorf("subtasks %v", skills)
	}
}

func TestRunWhen(t *testing.T) {
	d := newDelegator(t)
	f, g := mustPlan(t, `name: wf
steps:
  - id: big
    skill: math.eval
    when: $input.n > 10
    input: '{expr: "\($input.n) * 100"}'
  - id: small
    skill: math.eval
    when: $input.n <= 10
    input: '{expr: "\($input.n) + 1"}'
  - id: pick
    skill: math.eval
    input: '{expr: "\($steps.big.value // $steps.small.value)"}'
output: '{big: $steps.big, small: $steps.small.value, pick: $steps.pick.value}'
`)
	var rec recorder
	res := Run(context.Background(), f, g, json.RawMessage(`{"n":3}`), d, RunOptions{Observer: rec.observe})
	if res.Status != StatusCompleted {
		t.Fatalf("%+v", res)
	}
	jsonEqual(t, res.Output, `{"big":null,"small":4,"pick":4}`)
	if s := stepByID(t, res, "big"); s.Status != StatusSkipped || s.Attempts != 0 || s.TaskID != "" {
		t.Errorf("big %+v", s)
	}
	if ev := rec.kinds(); slices.Contains(ev, "big:started") || !slices.Contains(ev, "big:finished:skipped") {
		t.Errorf("events %v", ev)
	}
	if n := len(d.requests()); n != 2 {
		t.Errorf("%d subtasks, want 2", n)
	}

	// A when that fails fails its step.
	f, g = mustPlan(t, "name: wf\nsteps:\n  - id: a\n    skill: math.eval\n    when: $input.n | error\n    input: '{expr: \"1\"}'\noutput: $steps.a\n")
	res = Run(context.Background(), f, g, json.RawMessage(`{"n":"no"}`), d, RunOptions{})
	if s := stepByID(t, res, "a"); s.Status != StatusFailed || s.Code != CodeExpression || !strings.HasPrefix(s.Error, "when: the expression failed") {
		t.Errorf("%+v", s)
	}
}

func TestRunRetries(t *testing.T) {
	src := `name: wf
steps:
  - id: a
    skill: math.eval
    retries: 2
    timeout: 5s
    remote: true
    peer: 12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA
    input: '{expr: "1 + 1"}'
output: $steps.a.value
`
	d := newDelegator(t)
	d.flaky["math.eval"] = 2
	f, g := mustPlan(t, src)
	var rec recorder
	res := Run(context.Background(), f, g, json.RawMessage(`{}`), d, RunOptions{Observer: rec.observe})
	if res.Status != StatusCompleted || string(res.Output) != "2" {
		t.Fatalf("%+v", res)
	}
	if s := res.Steps[0]; s.Attempts != 3 || s.TaskID != "task-3" || s.Error != "" {
		t.Errorf("%+v", s)
	}
	if ev := rec.kinds(); !slices.Equal(ev, []string{"a:started", "a:retrying", "a:retrying", "a:finished:completed"}) {
		t.Errorf("events %v", ev)
	}
	for _, r := range d.requests() {
		if !r.Remote || r.Peer != "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA" || r.Timeout.Seconds() != 5 {
			t.Errorf("request %+v", r)
		}
	}

	// One failure too many.
	d.flaky["math.eval"] = 3
	res = Run(context.Background(), f, g, json.RawMessage(`{}`), d, RunOptions{})
	if s := res.Steps[0]; res.Status != StatusFailed || s.Status != StatusFailed || s.Attempts != 3 || s.Error != "flaky: try again" {
		t.Errorf("%+v", res)
	}

	// A request that cannot be submitted is not retried.
	f, g = mustPlan(t, strings.Replace(src, "math.eval", "no.such-skill", 1))
	n := len(d.requests())
	res = Run(context.Background(), f, g, json.RawMessage(`{}`), d, RunOptions{})
	if s := res.Steps[0]; s.Status != StatusFailed || s.Code != agents.CodeUnknownSkill || s.Attempts != 1 || !strings.Contains(s.Error, "no.such-skill") {
		t.Errorf("%+v", s)
	}
	if len(d.requests()) != n+1 {
		t.Errorf("retried an unknown skill")
	}
}

func TestRunInputRejected(t *testing.T) {
	d := newDelegator(t)
	f, g := mustPlan(t, `name: wf
input_schema: {type: object, properties: {text: {type: string}}, required: [text]}
steps:
  - id: a
    skill: text.stats
    input: '{text: $input.text}'
output: $steps.a
`)
	var rec recorder
	for _, in := range []string{`{"txt":"x"}`, `{"text":1}`, `not json`, `[]`} {
		res := Run(context.Background(), f, g, json.RawMessage(in), d, RunOptions{Observer: rec.observe})
		if res.Status != StatusFailed || res.Code != agents.CodeInvalidInput || len(res.Steps) != 0 {
			t.Errorf("%s: %+v", in, res)
		}
	}
	if len(d.requests()) != 0 || len(rec.kinds()) != 0 {
		t.Errorf("something ran: %v %v", d.requests(), rec.kinds())
	}
	b, _ := json.Marshal(Run(context.Background(), f, g, json.RawMessage(`{}`), d, RunOptions{}))
	if !strings.Contains(string(b), `"steps":[]`) {
		t.Errorf("%s", b)
	}
}

func TestRunExpressions(t *testing.T) {
	d := newDelegator(t)
	for _, tc := range []struct {
		name, input, output string
		status, code, err   string
		want                string
	}{
		{name: "several output values make an array", input: `{text: "a b"}`, output: `$steps.a.words, $steps.a.chars`,
			status: StatusCompleted, want: `[2,3]`},
		{name: "no output value is null", input: `{text: "a b"}`, output: `empty`,
			status: StatusCompleted, want: `null`},
		{name: "output error", input: `{text: "a b"}`, output: `$steps.a.words | error`,
			status: StatusFailed, code: CodeExpression, err: "output: the expression failed"},
		{name: "step input error", input: `{text: ($input.n | error)}`, output: `1`,
			status: StatusFailed, code: CodeStepFailed, err: "step a failed: input: the expression failed"},
		{name: "step input not an object", input: `"a b"`, output: `1`,
			status: StatusFailed, code: CodeStepFailed, err: "input: the expression gave a string; it must give an object"},
		{name: "step input several values", input: `{text: "a"}, {text: "b"}`, output: `1`,
			status: StatusFailed, code: CodeStepFailed, err: "it must give one object"},
		{name: "step input fails the skill's schema", input: `{text: 5}`, output: `1`,
			status: StatusFailed, code: CodeStepFailed, err: "step a failed: at '/text': got number, want string"},
		{name: "no clock", input: `{text: (now | tostring)}`, output: `1`,
			status: StatusFailed, code: CodeStepFailed, err: "now is not available in workflows"},
		{name: "no environment", input: `{text: ($ENV | length | tostring)}`, output: `$steps.a.words`,
			status: StatusCompleted, want: `1`},
		{name: "the dot is null", input: `{text: (. | tostring)}`, output: `.`,
			status: StatusCompleted, want: `null`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "name: wf\nsteps:\n  - id: a\n    skill: text.stats\n    input: " + strconvQuote(tc.input) + "\noutput: " + strconvQuote(tc.output) + "\n"
			f, g := mustPlan(t, src)
			res := Run(context.Background(), f, g, json.RawMessage(`{"n":"x"}`), d, RunOptions{})
			if res.Status != tc.status || res.Code != tc.code || !strings.Contains(res.Error, tc.err) {
				t.Fatalf("%+v", res)
			}
			if tc.want != "" {
				jsonEqual(t, res.Output, tc.want)
			}
		})
	}
}

// strconvQuote quotes s for YAML (a JSON string is a YAML string).
func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestRunCanceled(t *testing.T) {
	d := newDelegator(t)
	f, g := mustPlan(t, "name: wf\nsteps:\n  - id: a\n    skill: math.eval\n    input: '{expr: \"1\"}'\n  - id: b\n    skill: math.eval\n    input: '{expr: \"\\($steps.a.value)\"}'\noutput: $steps.b\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := Run(ctx, f, g, json.RawMessage(`{}`), d, RunOptions{})
	if res.Status != StatusFailed || res.Code != agents.CodeCanceled || len(d.requests()) != 0 {
		t.Fatalf("%+v", res)
	}
	if s := stepByID(t, res, "b"); s.Code != CodeDependencyFailed {
		t.Errorf("%+v", s)
	}
}

func TestRunNotPlanned(t *testing.T) {
	f, _ := mustPlan(t, minimal)
	_, g := mustPlan(t, minimal)
	if res := Run(context.Background(), f, g, json.RawMessage(`{}`), newDelegator(t), RunOptions{}); res.Status != StatusFailed || !strings.Contains(res.Error, "not planned") {
		t.Errorf("%+v", res)
	}
	f, g = mustPlan(t, minimal)
	if res := Run(context.Background(), f, g, json.RawMessage(`{}`), nil, RunOptions{}); res.Status != StatusFailed || !strings.Contains(res.Error, "cannot delegate") {
		t.Errorf("%+v", res)
	}
}

// The examples of docs/workflows.md run.
func TestRunDocExamples(t *testing.T) {
	d := newDelegator(t)
	text := json.RawMessage(`{"text":"Tomatoes need sun. Tomatoes need water, and slugs love tomatoes."}`)
	for _, tc := range []struct{ file, want string }{
		{"testdata/digest.yaml", `{"words":10,"doubled":20}`},
		{"testdata/report.yaml", `{"words":10,"top":[{"w":"tomatoes","n":3},{"w":"need","n":2},{"w":"love","n":1}],"density":0.6}`},
		{"testdata/brief.yaml", `{"brief":"Tomatoes need sun. Tomatoes need water, and slugs love tomatoes.","words":10}`},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, g := mustPlan(t, string(mustRead(t, tc.file)))
			res := Run(context.Background(), f, g, text, d, RunOptions{})
			if res.Status != StatusCompleted {
				t.Fatalf("%+v", res)
			}
			jsonEqual(t, res.Output, tc.want)
		})
	}
}
