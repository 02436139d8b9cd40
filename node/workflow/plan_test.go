package workflow

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// flow builds a Flow of steps written "id skill input [| when]" by hand,
// so Plan's tests need no YAML.
func flow(output string, steps ...string) *Flow {
	f := &Flow{Name: "wf", Output: output}
	for _, s := range steps {
		id, rest, _ := strings.Cut(s, " ")
		skill, rest, _ := strings.Cut(rest, " ")
		input, when, _ := strings.Cut(rest, " | when ")
		f.Steps = append(f.Steps, Step{ID: id, Skill: skill, Input: input, When: when})
	}
	return f
}

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name   string
		flow   *Flow
		levels [][]string
		deps   map[string][]string
	}{
		{"one step", flow("$steps.a", "a s $input"),
			[][]string{{"a"}}, map[string][]string{"a": nil}},
		{"independent steps", flow("[$steps.a, $steps.b]", "a s $input", "b s {}"),
			[][]string{{"a", "b"}}, map[string][]string{"a": nil, "b": nil}},
		{"chain", flow("$steps.c", "a s $input", "b s {x: $steps.a}", "c s {x: $steps.b.y}"),
			[][]string{{"a"}, {"b"}, {"c"}}, map[string][]string{"b": {"a"}, "c": {"b"}}},
		{"defined later", flow("$steps.c", "c s {x: $steps.b}", "b s {x: $steps.a}", "a s $input"),
			[][]string{{"a"}, {"b"}, {"c"}}, map[string][]string{"c": {"b"}, "b": {"a"}, "a": nil}},
		{"diamond", flow("$steps.d", "a s {}", "b s {x: $steps.a}", "c s {x: $steps.a}", "d s {b: $steps.b, c: $steps.c}"),
			[][]string{{"a"}, {"b", "c"}, {"d"}}, map[string][]string{"d": {"b", "c"}}},
		{"when adds a dependency", flow("1", "a s {}", "b s {} | when $steps.a.ok"),
			[][]string{{"a"}, {"b"}}, map[string][]string{"b": {"a"}}},
		{"every way to name a step", flow("1", "a-1 s {}", "b s {}", "c s {}", "d s {}", "e s {}",
			`z s {x: $steps["a-1"], y: $steps."b", z: $steps?.c, w: "\($steps.d)", v: (reduce $steps.e.xs[] as $x (0; . + $x))}`),
			[][]string{{"a-1", "b", "c", "d", "e"}, {"z"}}, map[string][]string{"z": {"a-1", "b", "c", "d", "e"}}},
		{"repeated reference", flow("1", "a s {}", "b s {x: $steps.a, y: $steps.a.y} | when $steps.a"),
			[][]string{{"a"}, {"b"}}, map[string][]string{"b": {"a"}}},
		{"a field named steps is no reference", flow("1", "a s {steps: $input.steps}", "b s {x: .steps.a}"),
			[][]string{{"a", "b"}}, map[string][]string{"a": nil, "b": nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Plan(tc.flow, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := g.Levels(); !reflect.DeepEqual(got, tc.levels) {
				t.Errorf("levels %v, want %v", got, tc.levels)
			}
			var order []string
			for _, l := range tc.levels {
				order = append(order, l...)
			}
			if got := g.Order(); !reflect.DeepEqual(got, order) {
				t.Errorf("order %v, want %v", got, order)
			}
			for id, want := range tc.deps {
				if got := g.Dependencies(id); !reflect.DeepEqual(got, want) {
					t.Errorf("dependencies of %s: %v, want %v", id, got, want)
				}
			}
		})
	}
}

func TestPlanErrors(t *testing.T) {
	known := func(s string) bool { return s == "s" }
	for _, tc := range []struct {
		name string
		flow *Flow
		want []string // each must be in the error
	}{
		{"unknown step", flow("1", "fetch s {}", "x s {}", "summarize s {x: $steps.fetchh}"),
			[]string{`steps[2] (summarize).input: refers to unknown step "fetchh"; did you mean "fetch"?`}},
		{"unknown step in when", flow("1", "a s {} | when $steps.nope"),
			[]string{`steps[0] (a).when: refers to unknown step "nope"`}},
		{"unknown step in output", flow("$steps.b", "a s {}"),
			[]string{`output: refers to unknown step "b"`}},
		{"self reference", flow("1", "a s {x: $steps.a}"),
			[]string{`steps[0] (a): the steps form a cycle: a -> a`}},
		{"cycle", flow("1", "a s {x: $steps.b}", "b s {x: $steps.a}"),
			[]string{`steps[0] (a): the steps form a cycle: a -> b -> a`}},
		{"long cycle behind a good step", flow("1", "ok s {}", "a s {x: $steps.c, o: $steps.ok}", "b s {x: $steps.a}", "c s {} | when $steps.b"),
			[]string{`steps[1] (a): the steps form a cycle: a -> c -> b -> a`}},
		{"unknown skill", flow("1", "a s {}", "b t {}"),
			[]string{`steps[1] (b).skill: no agent here or in the communities offers skill "t"`}},
		{"does not parse", flow("1", "a s {x:"),
			[]string{`steps[0] (a).input: the jq expression does not parse`}},
		{"does not compile", flow("1", "a s {x: nosuchfunc(1)}"),
			[]string{`steps[0] (a).input: the jq expression does not compile: function not defined: nosuchfunc/1`}},
		{"unknown variable", flow("1", "a s {x: $inptu}"),
			[]string{`steps[0] (a).input: the jq expression does not compile: variable not defined: $inptu`}},
		{"when does not compile", flow("1", "a s {} | when $x"),
			[]string{`steps[0] (a).when: the jq expression does not compile`}},
		{"output does not parse", flow("{", "a s {}"),
			[]string{`output: the jq expression does not parse`}},
		{"no env", flow("1", "a s {x: env.HOME}"),
			[]string{}}, // compiles (an empty environment): see TestExprSandbox
		{"no input builtin", flow("1", "a s {x: input}"),
			[]string{`steps[0] (a).input: the jq expression does not compile: input(s)/0 is not allowed`}},
		{"no modules", flow("1", `a s import "x" as x; {}`),
			[]string{`steps[0] (a).input: a workflow's expressions may not import modules`}},
		{"dynamic steps", flow("1", "a s {}", "b s {x: $steps[]}"),
			[]string{`steps[1] (b).input: $steps must be indexed with a step ID`}},
		{"steps piped", flow("1", "a s {}", "b s {x: ($steps | .a)}"),
			[]string{`steps[1] (b).input: $steps must be indexed`}},
		{"computed key", flow("1", "a s {}", `b s {x: $steps["a" + ""]}`),
			[]string{`$steps must be indexed`}},
		{"bare steps in output", flow("$steps", "a s {}"),
			[]string{`output: $steps must be indexed`}},
		{"rebinding steps", flow("1", "a s {} as $steps | {}"),
			[]string{`steps[0] (a).input: the expression may not bind $steps`}},
		{"rebinding input in a function", flow("1", "a s def f($input): 1; {}"),
			[]string{`may not bind $input`}},
		{"rebinding in a destructuring", flow("1", "a s . as {$steps} | {}"),
			[]string{`may not bind $steps`}},
		{"too long", flow("1", "a s "+strings.Repeat(" ", MaxExprLen)+"{}"),
			[]string{`steps[0] (a).input: the expression is`}},
		{"all errors at once", flow("$steps.q", "a t {x: $steps.zz}", "b s {"),
			[]string{`steps[0] (a).skill`, `steps[0] (a).input: refers to unknown step "zz"`, `steps[1] (b).input: the jq expression does not parse`, `output: refers to unknown step "q"`}},
		{"duplicate step ID", flow("1", "a s {}", "a s {}"),
			[]string{`steps[1].id: step "a" is defined twice`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Plan(tc.flow, known)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; order %v", g.Order())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n %s\nwant it to contain\n %s", err, w)
				}
			}
		})
	}
}

// Errors of a parsed workflow name the file and line.
func TestPlanErrorLines(t *testing.T) {
	f, err := Parse("flow.yaml", []byte(`name: wf
steps:
  - id: fetch
    skill: text.stats
    input: $input
  - id: summarize
    skill: json.query
    input: '{data: $steps.fetchh, query: "."}'
output: $steps.summarize
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Plan(f, nil)
	want := `flow.yaml:8: steps[1] (summarize).input: refers to unknown step "fetchh"; did you mean "fetch"?`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

func TestPlanBigGraph(t *testing.T) {
	// A chain of MaxSteps steps, written backwards.
	var steps []string
	for i := MaxSteps - 1; i >= 0; i-- {
		in := "{}"
		if i > 0 {
			in = fmt.Sprintf("{x: $steps.s%d}", i-1)
		}
		steps = append(steps, fmt.Sprintf("s%d s %s", i, in))
	}
	g, err := Plan(flow("1", steps...), nil)
	if err != nil {
		t.Fatal(err)
	}
	if o := g.Order(); len(o) != MaxSteps || o[0] != "s0" || o[MaxSteps-1] != fmt.Sprintf("s%d", MaxSteps-1) {
		t.Errorf("order %v", o)
	}
}
