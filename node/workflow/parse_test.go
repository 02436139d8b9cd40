package workflow

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// minimal is a valid workflow that the bad cases below break one by one.
const minimal = `name: wf
steps:
  - id: a
    skill: text.stats
    input: '{text: $input.text}'
output: $steps.a
`

func TestParse(t *testing.T) {
	f, err := Parse("wf.yaml", []byte(`# a comment
name: page.digest
description: Counts and sums.
input_schema:
  type: object
  properties:
    text: {type: string}
    n: {type: integer, minimum: 0}
  required: [text]
steps:
  - id: stats
    skill: text.stats
    input: '{text: $input.text}'
  - id: double
    skill: math.eval
    input: |
      {expr: "\($steps.stats.words) * 2"}
    when: $input.n > 0
    peer: 12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA
    remote: true
    retries: 2
    timeout: 1m30s
output: '{words: $steps.double.value}'
`))
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "page.digest" || f.Description != "Counts and sums." || f.Output != "{words: $steps.double.value}" || len(f.Steps) != 2 {
		t.Fatalf("%+v", f)
	}
	var schema map[string]any
	if err := json.Unmarshal(f.InputSchema, &schema); err != nil || schema["type"] != "object" {
		t.Errorf("schema %s: %v", f.InputSchema, err)
	}
	want := Step{
		ID: "double", Skill: "math.eval", Input: `{expr: "\($steps.stats.words) * 2"}`, When: "$input.n > 0",
		Peer: "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA", Remote: true, Retries: 2, Timeout: 90 * time.Second,
	}
	if f.Steps[1] != want {
		t.Errorf("step 1:\n got %+v\nwant %+v", f.Steps[1], want)
	}
	if got := f.line("steps[1].when"); got != 18 {
		t.Errorf("line of steps[1].when = %d", got)
	}

	// The same workflow as JSON, tabs and all.
	fj, err := Parse("wf.json", []byte("{\n\t\"name\": \"wf\",\n\t\"input_schema\": {\"type\": \"object\", \"required\": [\"text\"]},\n"+
		"\t\"steps\": [{\"id\": \"a\", \"skill\": \"text.stats\", \"input\": \"{text: $input.text}\"}],\n\t\"output\": \"$steps.a\"\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if string(fj.InputSchema) != `{"required":["text"],"type":"object"}` || fj.Steps[0].Input != "{text: $input.text}" {
		t.Errorf("%s %+v", fj.InputSchema, fj.Steps)
	}
	// No input_schema: any object.
	fm, err := Parse("", []byte(minimal))
	if err != nil || string(fm.InputSchema) != `{"type":"object"}` {
		t.Errorf("%v %s", err, fm.InputSchema)
	}
}

func TestParseTestdata(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Parse(path, data)
		if err == nil {
			_, err = Plan(f, nil)
		}
		if err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"empty", "", `wf.yaml: the file is empty`},
		{"comment only", "# nothing\n", `wf.yaml: the file is empty`},
		{"not a mapping", "- 1\n", `wf.yaml:1: sequence was used where mapping is expected`},
		{"syntax", "name: [\n", `wf.yaml:1: sequence end token ']' not found`},
		{"unknown key", strings.Replace(minimal, "name: wf", "name: wf\nstepz: []", 1), `wf.yaml:2: unknown field "stepz"`},
		{"unknown step key", strings.Replace(minimal, "    input:", "    inputt: x\n    input:", 1), `wf.yaml:5: steps[0]: unknown field "inputt"`},
		{"wrong type", strings.Replace(minimal, "    input: '{text: $input.text}'", "    input: {text: 1}", 1), `wf.yaml:5: steps[0].input: want a string, not a mapping`},
		{"retries not a number", strings.Replace(minimal, "    input:", "    retries: lots\n    input:", 1), `wf.yaml:5: steps[0].retries: want a whole number, not a string`},
		{"duplicate key", minimal + "name: other\n", `wf.yaml:7: mapping key "name" already defined at [1:1]`},
		{"two documents", minimal + "---\nname: b\n", `wf.yaml:7: a workflow file holds one document`},
		{"alias", "name: wf\ninput_schema: &s {type: object}\nsteps:\n  - id: a\n    skill: text.stats\n    input: '{}'\nx: *s\n", `wf.yaml:7: YAML aliases`},
		{"no name", strings.Replace(minimal, "name: wf\n", "", 1), `wf.yaml: name: a workflow needs a name`},
		{"bad name", strings.Replace(minimal, "name: wf", "name: My Flow", 1), `wf.yaml:1: name: "My Flow" is not a valid workflow name`},
		{"no output", strings.Replace(minimal, "output: $steps.a\n", "", 1), `output: a workflow needs an output`},
		{"no steps", "name: wf\noutput: $input\n", `steps: a workflow needs at least one step`},
		{"empty steps", "name: wf\nsteps: []\noutput: $input\n", `wf.yaml:2: steps: a workflow needs at least one step`},
		{"no id", strings.Replace(minimal, "  - id: a\n    skill", "  - skill", 1), `steps[0].id: a step needs an id`},
		{"bad id", strings.Replace(minimal, "id: a", "id: Fetch.Page", 1), `wf.yaml:3: steps[0].id: "Fetch.Page" is not a valid step ID`},
		{"duplicate id", strings.Replace(minimal, "output:", "  - id: a\n    skill: math.eval\n    input: '{}'\noutput:", 1), `wf.yaml:6: steps[1].id: step "a" is already steps[0]`},
		{"no skill", strings.Replace(minimal, "    skill: text.stats\n", "", 1), `steps[0] (a).skill: a step needs a skill`},
		{"bad skill", strings.Replace(minimal, "skill: text.stats", "skill: Text Stats", 1), `wf.yaml:4: steps[0] (a).skill: "Text Stats" is not a valid skill ID`},
		{"no input", strings.Replace(minimal, "    input: '{text: $input.text}'\n", "", 1), `steps[0] (a).input: a step needs an input`},
		{"retries too many", strings.Replace(minimal, "    input:", "    retries: 6\n    input:", 1), `wf.yaml:5: steps[0] (a).retries: 6 is not between 0 and 5`},
		{"retries negative", strings.Replace(minimal, "    input:", "    retries: -1\n    input:", 1), `steps[0] (a).retries: -1 is not between 0 and 5`},
		{"bad timeout", strings.Replace(minimal, "    input:", "    timeout: 10\n    input:", 1), `wf.yaml:5: steps[0] (a).timeout: "10" is not a positive duration`},
		{"zero timeout", strings.Replace(minimal, "    input:", "    timeout: 0s\n    input:", 1), `steps[0] (a).timeout: "0s" is not a positive duration`},
		{"bad peer", strings.Replace(minimal, "    input:", "    peer: bob\n    input:", 1), `wf.yaml:5: steps[0] (a).peer: "bob" is not a peer ID`},
		{"schema not a schema", strings.Replace(minimal, "name: wf", "name: wf\ninput_schema: {type: 12}", 1), `wf.yaml:2: input_schema: invalid schema`},
		{"schema not JSON", strings.Replace(minimal, "name: wf", "name: wf\ninput_schema: {maximum: .inf}", 1), `wf.yaml:2: input_schema: not a JSON value`},
		{"too big", minimal + "#" + strings.Repeat("x", MaxFileSize), `wf.yaml: the file is`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("wf.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("no error; got %+v", f)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error\n %s\nwant it to contain\n %s", err, tc.want)
			}
			var we *Error
			if !errors.As(err, &we) {
				t.Errorf("%T is not an *Error", err)
			}
		})
	}
}
