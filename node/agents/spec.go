package agents

import "time"

// Spec is an agent file, repo/agents/<name>.toml. See docs/agents.md.
type Spec struct {
	Name        string `toml:"name"`
	Description string `toml:"description"`
	Version     string `toml:"version"`
	// Backend is "builtin", "exec", "openai", "mcp" (and later "workflow").
	Backend string  `toml:"backend"`
	Sharing Sharing `toml:"sharing"`
	Limits  Limits  `toml:"limits"`

	// Skills declares the skills of builtin, exec and openai agents. An mcp
	// agent's skills come from its server's tool list; a [[skills]] entry
	// there only restricts or re-describes tools of the same ID.
	Skills []SkillSpec `toml:"skills"`

	Exec     *ExecSpec     `toml:"exec"`
	OpenAI   *OpenAISpec   `toml:"openai"`
	MCP      *MCPSpec      `toml:"mcp"`
	Workflow *WorkflowSpec `toml:"workflow"`

	// Exit is the agent's data-exit policy: where the subtasks it starts
	// (a workflow's steps, a planner's tool calls) may send their input.
	Exit ExitSpec `toml:"exit"`

	// Path is the file the Spec was read from (not in the file).
	Path string `toml:"-"`
}

// Sharing says who may use an agent's skills.
type Sharing struct {
	// Mode is "community" (every community the node is in, or those in
	// Communities) or "private" (this node only). Default "community".
	Mode        string   `toml:"mode"`
	Communities []string `toml:"communities"` // community IDs; empty = all
}

// Limits bound an agent's work. Zero values take the defaults.
type Limits struct {
	Concurrency int      `toml:"concurrency"`   // tasks at once (default 4)
	Timeout     Duration `toml:"timeout"`       // per task (default 60s)
	MaxInput    int      `toml:"max_input"`     // bytes of input JSON (default 256 KiB)
	MaxOutput   int      `toml:"max_output"`    // bytes of output JSON (default 1 MiB)
	RatePerPeer float64  `toml:"rate_per_peer"` // tasks per second from one remote peer (default 5)
}

// SkillSpec is a [[skills]] entry. Schemas are JSON text (or, for
// input_schema_file/output_schema_file, a path relative to the agents
// directory).
type SkillSpec struct {
	ID           string        `toml:"id"`
	Description  string        `toml:"description"`
	Tags         []string      `toml:"tags"`
	InputSchema  string        `toml:"input_schema"`
	OutputSchema string        `toml:"output_schema"`
	Examples     []ExampleSpec `toml:"examples"`
	// Args are exec-only: extra arguments for this skill's command line.
	Args []string `toml:"args"`
	// Prompt is openai-only: a template for the user message; {{input}} is
	// replaced by the input JSON. Empty means the input JSON itself.
	Prompt string `toml:"prompt"`
}

// ExampleSpec is one example in an agent file, JSON text.
type ExampleSpec struct {
	Input  string `toml:"input"`
	Output string `toml:"output"`
}

// ExecSpec is [exec]: a command run without a shell, input JSON on stdin,
// output JSON on stdout.
type ExecSpec struct {
	Command []string `toml:"command"` // argv; the skill's args are appended, then the skill ID is in AGORA_SKILL
	Dir     string   `toml:"dir"`
	// Env lists NAME=VALUE pairs, and NAME alone to pass the node's value
	// through; nothing else of the node's environment reaches the command
	// but PATH, HOME, LANG and TMPDIR.
	Env []string `toml:"env"`
}

// OpenAISpec is [openai]: any OpenAI-compatible chat endpoint.
type OpenAISpec struct {
	BaseURL     string  `toml:"base_url"` // e.g. http://127.0.0.1:11434/v1 (Ollama)
	Model       string  `toml:"model"`
	APIKeyEnv   string  `toml:"api_key_env"` // name of the variable holding the key; empty = no key
	Persona     string  `toml:"persona"`     // the system prompt
	Temperature float64 `toml:"temperature"`
	JSONMode    *bool   `toml:"json_mode"` // ask for a JSON object (default true)
	MaxTokens   int     `toml:"max_tokens"`
	// Delegate makes the agent a planner: the skills of the node and its
	// communities are offered to the model as function tools, and each
	// tool call runs as a delegated subtask (Env.Delegator).
	Delegate bool `toml:"delegate"`
	// MaxToolCalls bounds a planner's tool calls per task (default 8).
	MaxToolCalls int `toml:"max_tool_calls"`
	// Tools restricts the skills offered to a planner (empty = all).
	Tools []string `toml:"tools"`
}

// MCPSpec is [mcp]: a local MCP server over stdio (Command) or streamable
// HTTP (URL), exactly one of them.
type MCPSpec struct {
	Command []string `toml:"command"`
	Env     []string `toml:"env"`
	Dir     string   `toml:"dir"`
	URL     string   `toml:"url"`
	// Tools restricts the tools shared (empty = all).
	Tools []string `toml:"tools"`
}

// WorkflowSpec is [workflow]: the agent runs a workflow file (docs/
// workflows.md) as its one skill, whose ID is the agent's skills[0].id or,
// when there is no [[skills]], the workflow's name.
type WorkflowSpec struct {
	File string `toml:"file"` // relative to the agents directory
}

// ExitSpec is [exit], the data-exit policy of an agent: where the input of
// a subtask it starts may go. Delegate is "never" (this node only),
// "community" (any member) or "peers" (only the peer IDs in Peers). The
// default is "community" for a shared agent and "never" for a private one.
// Skills overrides it per delegated skill ID, with the same values, or
// "peers:ID,ID".
type ExitSpec struct {
	Delegate string            `toml:"delegate"`
	Peers    []string          `toml:"peers"`
	Skills   map[string]string `toml:"skills"`
}

// Duration is a time.Duration written as "30s", "2m" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if v < 0 {
		return errNegativeDuration
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as Go does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }
