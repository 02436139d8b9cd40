package workflow

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/agora-p2p/agora/node/agents"
)

// Graph is a planned workflow: its compiled expressions and the order its
// steps may run in. It is read-only and safe for concurrent use.
type Graph struct {
	flow   *Flow
	input  *agents.Schema
	steps  []plannedStep // as in the Flow
	index  map[string]int
	order  []string
	levels [][]string
	output *expr
}

type plannedStep struct {
	input      *expr
	when       *expr // nil without a when
	deps       []int // indices of the steps this one refers to, in file order
	dependants []int // indices of the steps that refer to this one
}

// Order returns the step IDs in an order they may run one by one: every
// step after the steps it depends on, ties in file order.
func (g *Graph) Order() []string { return slices.Clone(g.order) }

// Levels groups the steps by depth: level 0 depends on nothing, level n
// on steps of levels below n only, and the steps of one level may run
// together.
func (g *Graph) Levels() [][]string {
	out := make([][]string, len(g.levels))
	for i, l := range g.levels {
		out[i] = slices.Clone(l)
	}
	return out
}

// Dependencies returns the IDs of the steps step refers to, in file order
// (nil for an unknown step).
func (g *Graph) Dependencies(step string) []string {
	i, ok := g.index[step]
	if !ok {
		return nil
	}
	var out []string
	for _, d := range g.steps[i].deps {
		out = append(out, g.flow.Steps[d].ID)
	}
	return out
}

// Plan compiles a workflow's expressions and orders its steps. A step
// depends on the steps its input and when expressions refer to with
// $steps.<id>; the file's order does not matter. Errors name the step and
// field: an expression that does not compile, a reference to an unknown
// step (in a step or the output), a cycle, and, when known is not nil, a
// skill it does not know. All such errors are returned, joined. Plan is a
// pure function of its arguments.
func Plan(f *Flow, known func(skill string) bool) (*Graph, error) {
	if f == nil {
		return nil, errors.New("no workflow")
	}
	g := &Graph{flow: f, steps: make([]plannedStep, len(f.Steps)), index: make(map[string]int, len(f.Steps))}
	var errs []error
	for i, s := range f.Steps {
		if _, dup := g.index[s.ID]; dup {
			errs = append(errs, f.errorf(fmt.Sprintf("steps[%d].id", i), "", "step %q is defined twice", s.ID))
			continue
		}
		g.index[s.ID] = i
	}
	schema := f.InputSchema
	if len(schema) == 0 {
		schema = defaultInputSchema
	}
	var err error
	if g.input, err = agents.CompileSchema(schema); err != nil {
		errs = append(errs, f.errorf("input_schema", "", "%v", err))
	}

	// refs compiles one expression and resolves its references.
	refs := func(field, step, src string) (*expr, []int) {
		e, err := compileExpr(src)
		if err != nil {
			errs = append(errs, f.errorf(field, step, "%v", err))
			return nil, nil
		}
		var deps []int
		for _, id := range e.refs {
			j, ok := g.index[id]
			if !ok {
				errs = append(errs, f.errorf(field, step, "refers to unknown step %q%s", id, suggest(id, f.Steps)))
				continue
			}
			deps = append(deps, j)
		}
		return e, deps
	}
	for i, s := range f.Steps {
		field := func(name string) string { return fmt.Sprintf("steps[%d].%s", i, name) }
		if known != nil && !known(s.Skill) {
			errs = append(errs, f.errorf(field("skill"), s.ID, "no agent here or in the communities offers skill %q", s.Skill))
		}
		p := &g.steps[i]
		var deps []int
		p.input, deps = refs(field("input"), s.ID, s.Input)
		if s.When != "" {
			var wdeps []int
			p.when, wdeps = refs(field("when"), s.ID, s.When)
			deps = append(deps, wdeps...)
		}
		slices.Sort(deps)
		p.deps = slices.Compact(deps)
	}
	g.output, _ = refs("output", "", f.Output)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for i := range g.steps {
		for _, d := range g.steps[i].deps {
			g.steps[d].dependants = append(g.steps[d].dependants, i)
		}
	}
	if cycle := findCycle(g); cycle != nil {
		names := make([]string, len(cycle))
		for k, i := range cycle {
			names[k] = f.Steps[i].ID
		}
		i := cycle[0]
		return nil, f.errorf(fmt.Sprintf("steps[%d]", i), f.Steps[i].ID, "the steps form a cycle: %s", strings.Join(names, " -> "))
	}
	g.order, g.levels = topoSort(g)
	return g, nil
}

// findCycle returns a cycle as step indices, first step repeated at the
// end (a -> b -> a: a refers to b, b to a), or nil. It starts from the steps in file order, so
// the answer is stable.
func findCycle(g *Graph) []int {
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(g.steps))
	var stack []int
	var cycle []int
	var visit func(i int) bool
	visit = func(i int) bool {
		color[i] = grey
		stack = append(stack, i)
		for _, d := range g.steps[i].deps {
			switch color[d] {
			case grey:
				// The stack runs from a step to a step it refers to.
				cycle = append(slices.Clone(stack[slices.Index(stack, d):]), d)
				return true
			case white:
				if visit(d) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = black
		return false
	}
	for i := range g.steps {
		if color[i] == white && visit(i) {
			return cycle
		}
	}
	return nil
}

// topoSort orders an acyclic graph: level = 1 + the deepest dependency's
// level; the order lists level by level, each in file order.
func topoSort(g *Graph) ([]string, [][]string) {
	level := make([]int, len(g.steps))
	done := make([]bool, len(g.steps))
	var depth func(i int) int
	depth = func(i int) int {
		if done[i] {
			return level[i]
		}
		l := 0
		for _, d := range g.steps[i].deps {
			l = max(l, depth(d)+1)
		}
		level[i], done[i] = l, true
		return l
	}
	var levels [][]string
	for i := range g.steps {
		l := depth(i)
		for len(levels) <= l {
			levels = append(levels, nil)
		}
	}
	for i, s := range g.flow.Steps {
		levels[level[i]] = append(levels[level[i]], s.ID)
	}
	var order []string
	for _, l := range levels {
		order = append(order, l...)
	}
	return order, levels
}

// suggest is `; did you mean "x"?` for the step ID closest to id, if one
// is close.
func suggest(id string, steps []Step) string {
	best, bestDist := "", 3
	for _, s := range steps {
		if d := editDistance(id, s.ID); d < bestDist {
			best, bestDist = s.ID, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
