package workflow

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agora-p2p/agora/node/agents"
)

// Statuses of a workflow and of its steps.
const (
	StatusCompleted = "completed"
	StatusFailed    = "failed"
	StatusSkipped   = "skipped" // a step whose when was false; its dependants see null
)

// Codes of a failed step or workflow, besides those of the subtasks
// (agents.Code*), which a step's failure passes on.
const (
	// CodeDependencyFailed: the step did not run because a step it
	// depends on failed.
	CodeDependencyFailed = "dependency-failed"
	// CodeExpression: a jq expression (input, when or output) failed.
	CodeExpression = "expression-error"
	// CodeStepFailed: the workflow failed because a step failed.
	CodeStepFailed = "step-failed"
)

// DefaultParallel is how many steps run at once unless RunOptions says.
const DefaultParallel = 8

// Result is how a workflow run ended, as `agora run --json` prints it.
type Result struct {
	Status string          `json:"status"` // completed | failed
	Output json.RawMessage `json:"output,omitempty"`
	Code   string          `json:"code,omitempty"`
	Error  string          `json:"error,omitempty"`
	Steps  []StepResult    `json:"steps"` // in file order; empty when nothing ran
}

// StepResult is how one step ended.
type StepResult struct {
	ID         string `json:"id"`
	Skill      string `json:"skill"`
	Status     string `json:"status"` // completed | failed | skipped
	Executor   string `json:"executor,omitempty"`
	TaskID     string `json:"task_id,omitempty"`
	DurationMS int64  `json:"duration_ms"`
	Attempts   int    `json:"attempts"` // subtasks started; 0 if skipped or never run
	Code       string `json:"code,omitempty"`
	Error      string `json:"error,omitempty"`
}

// Kinds of StepEvent.
const (
	EventStarted  = "started"  // the step's first subtask is being submitted
	EventRetrying = "retrying" // an attempt failed and another starts
	EventFinished = "finished" // Step.Status says how it ended
)

// StepEvent is a step's progress, for a live display.
type StepEvent struct {
	Kind string
	Step StepResult // so far; final when Kind is EventFinished
	// Done of Total steps have finished (counting this one if finished).
	Done, Total int
}

// RunOptions tune Run.
type RunOptions struct {
	// Observer, if set, is told of each step's progress. Calls never
	// overlap and come in order for each step; it must not block for long.
	Observer func(StepEvent)
	// Origin is the agent on whose behalf the steps run (its data-exit
	// policy applies); empty for the node's owner.
	Origin string
	// Parallel bounds the steps running at once (DefaultParallel if 0).
	Parallel int
	// Now is the clock for durations (time.Now if nil).
	Now func() time.Time
}

// Run runs a planned workflow on input through d. The input is checked
// against the workflow's input schema first; nothing runs if it fails.
// Steps run as soon as the steps they depend on have ended, at most
// opts.Parallel at once. A failed step fails its dependants and the
// workflow, while the steps that do not depend on it run to their end.
// The output expression is evaluated once every step ended and none
// failed. Run returns when no step is running; canceling ctx cancels the
// running subtasks and starts no more.
func Run(ctx context.Context, f *Flow, g *Graph, input json.RawMessage, d agents.Delegator, opts RunOptions) Result {
	if f == nil || g == nil || g.flow != f {
		return Result{Status: StatusFailed, Code: agents.CodeBackend, Error: "the workflow was not planned (Plan) before Run", Steps: []StepResult{}}
	}
	if d == nil {
		return Result{Status: StatusFailed, Code: agents.CodeBackend, Error: "this node cannot delegate, so it cannot run workflows", Steps: []StepResult{}}
	}
	if err := g.input.Validate(input); err != nil {
		return Result{Status: StatusFailed, Code: agents.CodeInvalidInput, Error: "the input does not match the workflow's input schema: " + err.Error(), Steps: []StepResult{}}
	}
	in, err := decodeJSON(input)
	if err != nil {
		return Result{Status: StatusFailed, Code: agents.CodeInvalidInput, Error: "the input is not JSON: " + err.Error(), Steps: []StepResult{}}
	}
	r := &runner{ctx: ctx, f: f, g: g, d: d, opts: opts, input: in, now: opts.Now}
	if r.now == nil {
		r.now = time.Now
	}
	if r.opts.Parallel <= 0 {
		r.opts.Parallel = DefaultParallel
	}
	return r.run()
}

type runner struct {
	ctx   context.Context
	f     *Flow
	g     *Graph
	d     agents.Delegator
	opts  RunOptions
	input any
	now   func() time.Time

	obsMu sync.Mutex // serialises Observer calls

	// Owned by run's goroutine.
	results []StepResult
	outputs []json.RawMessage // completed steps' outputs
	ended   []bool
	waiting []int        // per step, its dependencies not yet ended
	done    atomic.Int64 // steps ended; read by the steps' goroutines for events
}

// stepEnd is a step's goroutine's report.
type stepEnd struct {
	i      int
	res    StepResult
	output json.RawMessage
}

func (r *runner) run() Result {
	n := len(r.f.Steps)
	r.results = make([]StepResult, n)
	r.outputs = make([]json.RawMessage, n)
	r.ended = make([]bool, n)
	r.waiting = make([]int, n)
	var ready []int
	for i, s := range r.f.Steps {
		r.results[i] = StepResult{ID: s.ID, Skill: s.Skill}
		r.waiting[i] = len(r.g.steps[i].deps)
		if r.waiting[i] == 0 {
			ready = append(ready, i)
		}
	}
	ends := make(chan stepEnd)
	running := 0
	for int(r.done.Load()) < n {
		for len(ready) > 0 && running < r.opts.Parallel {
			i := ready[0]
			ready = ready[1:]
			running++
			steps := r.visible(i)
			go func() { ends <- r.runStep(i, steps) }()
		}
		if running == 0 {
			// Unreachable for a planned (acyclic) graph; never hang.
			break
		}
		e := <-ends
		running--
		r.outputs[e.i] = e.output
		ready = append(ready, r.end(e.i, e.res)...)
	}
	return r.finish()
}

// end records how step i ended, tells the observer, fails its dependants
// if it failed, and returns the steps that became ready.
func (r *runner) end(i int, res StepResult) []int {
	r.results[i], r.ended[i] = res, true
	done := r.done.Add(1)
	r.observe(StepEvent{Kind: EventFinished, Step: res, Done: int(done), Total: len(r.f.Steps)})
	var ready []int
	for _, j := range r.g.steps[i].dependants {
		if r.ended[j] {
			continue // failed already, through another dependency
		}
		if res.Status == StatusFailed {
			reason := fmt.Sprintf("step %s failed", res.ID)
			if res.Code == CodeDependencyFailed {
				reason = fmt.Sprintf("step %s did not run (%s)", res.ID, res.Error)
			}
			ready = append(ready, r.end(j, StepResult{
				ID: r.f.Steps[j].ID, Skill: r.f.Steps[j].Skill, Status: StatusFailed,
				Code: CodeDependencyFailed, Error: reason,
			})...)
			continue
		}
		if r.waiting[j]--; r.waiting[j] == 0 {
			ready = append(ready, j)
		}
	}
	return ready
}

// visible is the $steps step i sees: the outputs of its dependencies,
// null for a skipped one. Only those: an expression cannot see a step it
// does not depend on, whatever has ended by then.
func (r *runner) visible(i int) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for _, d := range r.g.steps[i].deps {
		out[r.f.Steps[d].ID] = r.outputs[d]
	}
	return out
}

// envFor decodes the outputs an expression sees. Each evaluation gets its
// own copy, so no two goroutines share a value.
func (r *runner) envFor(outputs map[string]json.RawMessage) (env, error) {
	e := env{input: r.input, steps: make(map[string]any, len(outputs))}
	for id, raw := range outputs {
		if raw == nil {
			e.steps[id] = nil
			continue
		}
		v, err := decodeJSON(raw)
		if err != nil {
			return env{}, fmt.Errorf("the output of step %s is not JSON: %v", id, err)
		}
		e.steps[id] = v
	}
	return e, nil
}

// runStep runs step i on its own goroutine.
func (r *runner) runStep(i int, outputs map[string]json.RawMessage) stepEnd {
	s, p := &r.f.Steps[i], &r.g.steps[i]
	res := StepResult{ID: s.ID, Skill: s.Skill}
	start := r.now()
	end := func(status, code, msg string) stepEnd {
		res.Status, res.Code, res.Error = status, code, msg
		res.DurationMS = r.now().Sub(start).Milliseconds()
		return stepEnd{i: i, res: res}
	}
	if err := r.ctx.Err(); err != nil {
		return end(StatusFailed, agents.CodeCanceled, "the workflow was canceled before the step started")
	}
	e, err := r.envFor(outputs)
	if err != nil {
		return end(StatusFailed, CodeExpression, err.Error())
	}
	if p.when != nil {
		ok, err := p.when.truthy(r.ctx, e)
		if err != nil {
			return end(StatusFailed, CodeExpression, "when: "+err.Error())
		}
		if !ok {
			return end(StatusSkipped, "", "")
		}
	}
	input, err := p.input.object(r.ctx, e)
	if err != nil {
		return end(StatusFailed, CodeExpression, "input: "+err.Error())
	}
	req := agents.SubtaskRequest{
		Skill: s.Skill, Input: input, Peer: s.Peer, Remote: s.Remote,
		Timeout: s.Timeout, Origin: r.opts.Origin,
	}
	kind := EventStarted
	for {
		res.Attempts++
		r.observe(StepEvent{Kind: kind, Step: res, Done: int(r.done.Load()), Total: len(r.f.Steps)})
		st, err := r.d.Delegate(r.ctx, req)
		if err != nil {
			// Not submitted (an unknown skill, refused by policy): another
			// attempt would meet the same refusal.
			return end(StatusFailed, agents.CodeOf(err), err.Error())
		}
		res.TaskID, res.Executor = st.TaskID, st.Executor
		switch {
		case st.Status == StatusCompleted:
			if _, err := decodeJSON(st.Output); err != nil {
				return end(StatusFailed, agents.CodeInvalidOutput, fmt.Sprintf("the subtask's output is not JSON: %v", err))
			}
			out := end(StatusCompleted, "", "")
			out.output = st.Output
			return out
		case (st.Status == StatusFailed || st.Status == "rejected") && res.Attempts <= s.Retries && r.ctx.Err() == nil:
			res.Code, res.Error = st.Code, st.Error
			kind = EventRetrying
		default:
			code, msg := st.Code, st.Error
			if code == "" {
				code = agents.CodeBackend
				if st.Status == "canceled" {
					code = agents.CodeCanceled
				}
			}
			if msg == "" {
				msg = "the subtask ended " + st.Status
			}
			return end(StatusFailed, code, msg)
		}
	}
}

func (r *runner) observe(ev StepEvent) {
	if r.opts.Observer == nil {
		return
	}
	r.obsMu.Lock()
	defer r.obsMu.Unlock()
	r.opts.Observer(ev)
}

// finish evaluates the output, or says which step failed.
func (r *runner) finish() Result {
	res := Result{Status: StatusFailed, Steps: r.results}
	for _, sr := range r.results {
		if sr.Status == StatusFailed && sr.Code != CodeDependencyFailed {
			res.Code, res.Error = CodeStepFailed, fmt.Sprintf("step %s failed: %s", sr.ID, sr.Error)
			if sr.Code == agents.CodeCanceled || r.ctx.Err() != nil {
				res.Code, res.Error = agents.CodeCanceled, "the workflow was canceled"
			}
			return res
		}
	}
	all := make(map[string]json.RawMessage, len(r.outputs))
	for _, d := range r.g.output.refs {
		all[d] = r.outputs[r.g.index[d]]
	}
	e, err := r.envFor(all)
	if err == nil {
		res.Output, err = r.g.output.value(r.ctx, e)
	}
	if err != nil {
		res.Code, res.Error = CodeExpression, "output: "+err.Error()
		return res
	}
	res.Status = StatusCompleted
	return res
}
