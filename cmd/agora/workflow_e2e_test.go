package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/agora-p2p/agora/node/api"
)

// flowFile writes a workflow file into a temp dir.
func flowFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var sentRE = regexp.MustCompile(`(?m)^agora_task_requests_sent_total (\d+)`)

// tasksSent reads how many task requests a daemon has sent to other nodes.
func tasksSent(t *testing.T, d *daemon) int {
	t.Helper()
	text, err := d.client.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := sentRE.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no agora_task_requests_sent_total in /metrics")
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestWorkflowAcrossProcesses runs a three-step workflow on A whose two
// parallel branches execute on B and C, then one where a branch fails while
// the other completes, then a private workflow agent whose input must never
// leave A.
func TestWorkflowAcrossProcesses(t *testing.T) {
	ds, _ := community(t, "a", "b", "c")
	a, b, c := ds["a"], ds["b"], ds["c"]
	idB, idC := peerID(t, b), peerID(t, c)
	run(t, "agents", "disable", "builtin", "--repo", a.dir)
	waitSkill(t, a, "text.stats", idB, idC)
	waitSkill(t, a, "math.eval", idB, idC)

	flow := flowFile(t, "report.yaml", `name: garden.report
input_schema:
  type: object
  properties:
    note: {type: string}
    plots: {type: integer}
  required: [note, plots]
steps:
  - id: stats
    skill: text.stats
    peer: `+idB+`
    input: '{text: $input.note}'
  - id: area
    skill: math.eval
    peer: `+idC+`
    input: '{expr: "\($input.plots) * 12.5"}'
  - id: summary
    skill: json.query
    remote: true
    input: '{data: {words: $steps.stats.words, area: $steps.area.value}, query: ".words + .area"}'
output: '{words: $steps.stats.words, area: $steps.area.value, total: $steps.summary.result}'
`)
	var res api.WorkflowResult
	runJSON(t, &res, "run", flow, "--input", `{"note":"beans peas and leeks","plots":4}`, "--repo", a.dir)
	if res.Status != "completed" || !sameJSON(res.Output, `{"words":4,"area":50,"total":54}`) {
		t.Fatalf("workflow: %+v", res)
	}
	by := map[string]api.WorkflowStep{}
	for _, s := range res.Steps {
		by[s.ID] = s
	}
	if by["stats"].Executor != idB || by["area"].Executor != idC || by["summary"].Status != "completed" || by["summary"].Executor == peerID(t, a) {
		t.Fatalf("steps: %+v", res.Steps)
	}
	if bt, err := b.client.Task(context.Background(), by["stats"].TaskID); err != nil || bt.Role != "executor" {
		t.Fatalf("B's journal for the stats step: %+v %v", bt, err)
	}

	// A failed branch fails what depends on it; the other branch completes.
	failing := flowFile(t, "failing.yaml", `name: garden.failing
steps:
  - id: good
    skill: text.stats
    input: '{text: "one two"}'
  - id: bad
    skill: math.eval
    input: '{expr: "1 +"}'
  - id: after
    skill: math.eval
    input: '{expr: "\($steps.bad.value) + 1"}'
output: '{words: $steps.good.words}'
`)
	stdout, _, code := run(t, "run", failing, "--json", "--repo", a.dir)
	if code == 0 {
		t.Fatalf("a failing workflow exited 0: %s", stdout)
	}
	res = api.WorkflowResult{}
	if err := jsonUnmarshal(stdout, &res); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	by = map[string]api.WorkflowStep{}
	for _, s := range res.Steps {
		by[s.ID] = s
	}
	if res.Status != "failed" || by["good"].Status != "completed" || by["bad"].Status != "failed" ||
		by["after"].Status != "failed" || !strings.Contains(by["after"].Error, "bad") {
		t.Fatalf("failing workflow: %+v", res)
	}

	// A workflow with a cycle or an unknown reference runs nothing.
	cycle := flowFile(t, "cycle.yaml", `name: garden.cycle
steps:
  - id: x
    skill: math.eval
    input: '{expr: "\($steps.y.value)"}'
  - id: y
    skill: math.eval
    input: '{expr: "\($steps.x.value)"}'
output: '$steps.x'
`)
	before := tasksSent(t, a)
	_, stderr, code := run(t, "run", cycle, "--repo", a.dir)
	if code == 0 || !strings.Contains(stderr, "cycle") || tasksSent(t, a) != before {
		t.Fatalf("a cyclic workflow: code %d, %s", code, stderr)
	}

	// A private workflow agent: its steps' input never leaves A, so with no
	// local text.stats it fails naming the rule, and nothing went out.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "private-count.yaml"), []byte(`name: diary.count
steps:
  - id: stats
    skill: text.stats
    input: '{text: $input.text}'
output: '$steps.stats'
`), 0o644)
	agentFile := filepath.Join(dir, "diary.toml")
	os.WriteFile(agentFile, []byte(`name = "diary"
description = "Counts the words of my diary, privately"
backend = "workflow"

[workflow]
file = "`+filepath.Join(dir, "private-count.yaml")+`"

[sharing]
mode = "private"
`), 0o644)
	runJSON(t, &api.Agent{}, "agents", "add", agentFile, "--repo", a.dir)
	var pol []api.ExitPolicy
	runJSON(t, &pol, "policy", "local", "--repo", a.dir)
	found := false
	for _, p := range pol {
		found = found || (p.Agent == "diary" && p.Delegate == "never" && p.Private)
	}
	if !found {
		t.Fatalf("agora policy local: %+v", pol)
	}
	before = tasksSent(t, a)
	bTasks, _ := b.client.Tasks(context.Background(), 1000)
	cTasks, _ := c.client.Tasks(context.Background(), 1000)
	var got api.Task
	stdout, _, code = run(t, "ask", "diary.count", "--input", `{"text":"dear diary, a secret"}`, "--json", "--repo", a.dir)
	if code == 0 {
		t.Fatalf("the private workflow completed without a local text.stats: %s", stdout)
	}
	if err := jsonUnmarshal(stdout, &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != "failed" || !strings.Contains(got.Error, "private") {
		t.Fatalf("private workflow: %+v", got)
	}
	if n := tasksSent(t, a); n != before {
		t.Fatalf("A sent %d task requests for a private workflow", n-before)
	}
	for name, d := range map[string]*daemon{"b": b, "c": c} {
		ts, _ := d.client.Tasks(context.Background(), 1000)
		want := len(bTasks)
		if name == "c" {
			want = len(cTasks)
		}
		if len(ts) != want {
			t.Fatalf("%s's journal grew from %d to %d tasks", name, want, len(ts))
		}
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
