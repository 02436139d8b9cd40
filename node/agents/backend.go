package agents

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Skill is one thing an agent can do, in the spirit of A2A's AgentSkill and
// MCP's Tool. Input and Output are JSON Schemas (draft 2020-12 unless the
// schema says otherwise); input is validated before a skill runs, locally or
// remotely, and output before it is returned.
type Skill struct {
	ID          string          `json:"id" toml:"id"`
	Description string          `json:"description" toml:"description"`
	Tags        []string        `json:"tags,omitempty" toml:"tags"`
	Input       json.RawMessage `json:"input_schema" toml:"-"`
	Output      json.RawMessage `json:"output_schema" toml:"-"`
	Examples    []Example       `json:"examples,omitempty" toml:"-"`
}

// Example is one worked example of a skill.
type Example struct {
	Input  json.RawMessage `json:"input"`
	Output json.RawMessage `json:"output,omitempty"`
}

// Progress reports how a running skill is getting on; a backend may call it
// any number of times (never after Run returns). Message is for people;
// Percent is 0..100, or -1 when unknown.
type Progress func(message string, percent int)

// Backend runs the skills of one agent. It is built from the agent's Spec by
// the Factory registered for Spec.Backend, and closed when the agent is
// disabled, removed or replaced, or when the node stops.
//
// Run gets input that already passed the skill's input schema and must
// return JSON (the Manager checks it against the output schema unless the
// backend is a Conformer). It must
// return promptly once ctx is done, leaving nothing running. Errors a caller
// can act on are *RunError values with a Code.
type Backend interface {
	Skills() []Skill
	Run(ctx context.Context, skill string, input json.RawMessage, progress Progress) (json.RawMessage, error)
	Close() error
}

// Conformer is implemented by a Backend whose every output passes its
// skill's output schema by construction, and which says so with
// OutputConforms: the builtin backend, whose outputs are Go values of
// fixed shape, made from its own schemas' types (its fuzz test,
// FuzzBuiltinOutputConforms, checks the claim). The Manager skips the
// output check for it; every other backend's output is checked.
type Conformer interface {
	OutputConforms() bool
}

// Watcher is implemented by a Backend whose skills can change while it runs
// (an MCP server's tool list). Changed is signalled after Skills() changed;
// the Manager re-reads Skills() and tells its subscribers (the adverts).
type Watcher interface {
	Changed() <-chan struct{}
}

// Factory builds a Backend from an agent's Spec. It checks the backend's own
// section of the Spec (errors name the field, e.g. `exec.command: ...`) and
// may start processes or connect (mcp); ctx bounds that start-up.
type Factory func(ctx context.Context, spec *Spec, env Env) (Backend, error)

// Env is what a backend may use from the node.
type Env struct {
	// Dir is the agents directory (repo/agents): relative paths in a Spec
	// are relative to it.
	Dir string
	// Getenv reads the node's environment (API keys named by api_key_env);
	// tests inject their own. Nil means os.Getenv.
	Getenv func(string) string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Delegator runs subtasks for backends that decompose work (workflow,
	// a planner); nil where the node does not delegate (tests of a single
	// backend).
	Delegator Delegator
}

// Delegator runs skills as subtasks: on this node's agents or on other
// members', through the node's requester (ranking, retries, receipts, the
// data-exit policy). A backend calls it with the ctx of the task it is
// running, so subtasks become children of that task in the journal and
// inherit its deadline and hop budget. It is safe for concurrent use; its
// errors are *RunError values with a stable code (e.g. "exit-policy").
type Delegator interface {
	// Skills lists the skills a subtask may name: this node's own and
	// those its communities advertise, one entry per skill ID.
	Skills(ctx context.Context) []Skill
	// Delegate runs one subtask and waits for its end. err is for a request
	// that could not be submitted (bad skill ID, refused by policy); a
	// subtask that ran and failed is a SubtaskResult with Status "failed".
	Delegate(ctx context.Context, req SubtaskRequest) (SubtaskResult, error)
}

// SubtaskRequest is one subtask.
type SubtaskRequest struct {
	Skill   string
	Input   json.RawMessage
	Peer    string // a peer ID: only that provider
	Remote  bool   // never on this node
	Timeout time.Duration
	// Origin is the agent on whose behalf the subtask runs (its data-exit
	// policy applies); empty for the node's owner.
	Origin string
}

// SubtaskResult is how a subtask ended.
type SubtaskResult struct {
	TaskID     string          `json:"task_id"`
	Status     string          `json:"status"` // completed | failed | canceled | rejected
	Executor   string          `json:"executor,omitempty"`
	Output     json.RawMessage `json:"output,omitempty"`
	Code       string          `json:"code,omitempty"`
	Error      string          `json:"error,omitempty"`
	DurationMS int64           `json:"duration_ms"`
}

// Codes of RunError, shared with the task protocol's Failed and Rejected
// frames.
const (
	CodeInvalidInput  = "invalid-input"  // input fails the skill's input schema
	CodeInvalidOutput = "invalid-output" // the backend's output fails the output schema
	CodeUnknownSkill  = "unknown-skill"
	CodeTimeout       = "timeout"
	CodeOutputTooBig  = "output-too-large"
	CodeInputTooBig   = "input-too-large"
	CodeBackend       = "backend-error" // the backend failed (process exited non-zero, server error, ...)
	CodeCanceled      = "canceled"
	CodeBusy          = "busy"
	CodeDisabled      = "disabled"
)

// RunError is an error with a stable code (one of the Code constants) and a
// sentence for people.
type RunError struct {
	Code   string
	Reason string
}

func (e *RunError) Error() string { return e.Code + ": " + e.Reason }

// Errorf is a RunError with a formatted reason.
func Errorf(code, format string, args ...any) error {
	return &RunError{Code: code, Reason: sprintf(format, args...)}
}

// CodeOf returns err's RunError code, CodeCanceled or CodeTimeout for
// context errors, and CodeBackend for anything else.
func CodeOf(err error) string {
	var re *RunError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &re):
		return re.Code
	case errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout
	case errors.Is(err, context.Canceled):
		return CodeCanceled
	default:
		return CodeBackend
	}
}
