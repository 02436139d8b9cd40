package api

import (
	"context"
	"encoding/json"
)

// The JSON shapes of the local HTTP API (/api/v1). They are the stable
// --json output of the CLI too, so fields are only ever added.

// Identity is GET /api/v1/id.
type Identity struct {
	PeerID string   `json:"peer_id"`
	Addrs  []string `json:"addrs"`
}

// Status is GET /api/v1/status.
type Status struct {
	PeerID       string      `json:"peer_id"`
	Reachability string      `json:"reachability"` // "public" | "private" | "unknown"
	Addrs        []string    `json:"addrs"`
	Peers        int         `json:"peers"`
	Communities  []Community `json:"communities"`
	Version      string      `json:"version"`
	UptimeS      int64       `json:"uptime_s"`
}

// Peer is one entry of GET /api/v1/peers.
type Peer struct {
	PeerID    string   `json:"peer_id"`
	Addrs     []string `json:"addrs"`
	Path      string   `json:"path"` // "direct" | "relayed"
	LatencyMS float64  `json:"latency_ms"`
}

// Community is one entry of GET /api/v1/communities.
type Community struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Members int    `json:"members"`
}

// CommunityDetail is GET /api/v1/communities/{id}.
type CommunityDetail struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Founders    []string `json:"founders"`
	Members     []string `json:"members"` // peer IDs, this node included
	Joined      int64    `json:"joined"`  // unix ms
	// Records is how many of the community's records this node holds, and
	// Fingerprint the reconciliation fingerprint of all of them (hex): two
	// nodes that hold the same set show the same pair.
	Records     int    `json:"records"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

// CreateCommunityRequest is the body of POST /api/v1/communities.
type CreateCommunityRequest struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Policy changes the default policy: dotted key → value, for example
	// {"certify.min_attestations": 3}. `agora policy keys` lists the keys.
	Policy map[string]int64 `json:"policy,omitempty"`
}

// CreatedCommunity answers POST /api/v1/communities.
type CreatedCommunity struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Invite string `json:"invite"`
}

// JoinRequest is the body of POST /api/v1/communities/join.
type JoinRequest struct {
	Invite string `json:"invite"`
}

// Joined answers POST /api/v1/communities/join.
type Joined struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Invite answers GET /api/v1/communities/{id}/invite.
type Invite struct {
	ID     string `json:"id"`
	Invite string `json:"invite"`
}

// Netcheck is GET /api/v1/netcheck.
type Netcheck struct {
	Reachability      string      `json:"reachability"`
	NATDeviceType     string      `json:"nat_device_type"` // "none" | "cone" | "symmetric" | "unknown"
	ListenAddrs       []string    `json:"listen_addrs"`
	ObservedAddrs     []string    `json:"observed_addrs"`
	RelayReservations []string    `json:"relay_reservations"`
	PortMapping       PortMapping `json:"port_mapping"`
	Peers             int         `json:"peers"`
	Hint              string      `json:"hint"`
}

// PortMapping reports UPnP / NAT-PMP.
type PortMapping struct {
	Enabled bool     `json:"enabled"`
	Mapped  []string `json:"mapped"` // external addresses obtained through the gateway
}

// PublishRequest is the body of POST /api/v1/records: a record the node
// signs with its identity and publishes. Community may be empty when the
// node is in exactly one community.
type PublishRequest struct {
	Community string         `json:"community,omitempty"`
	Kind      string         `json:"kind"` // "attestation" | "revocation"
	Body      map[string]any `json:"body"`
}

// Published answers POST /api/v1/records.
type Published struct {
	CID string `json:"cid"`
}

// RecordQuery are the filters of GET /api/v1/records (query parameters
// community, kind, author, subject, limit).
type RecordQuery struct {
	Community string
	Kind      string
	Author    string
	Subject   string
	Limit     int
}

// RecordView is a stored record as the API shows it: GET
// /api/v1/records/{cid}, the list, and "record.new" events.
type RecordView struct {
	CID       string         `json:"cid"`
	Kind      string         `json:"kind"`
	Community string         `json:"community"`
	Author    string         `json:"author"`
	Created   int64          `json:"created"` // unix ms
	Body      map[string]any `json:"body"`
	Verified  bool           `json:"verified"`
	Revoked   bool           `json:"revoked"`
	RevokedBy string         `json:"revoked_by,omitempty"`
}

// ErrorBody is what every failing route answers: one sentence that says what
// to do.
type ErrorBody struct {
	Error string `json:"error"`
}

// Event is one Server-Sent Event on GET /api/v1/events.
type Event struct {
	ID   uint64 `json:"id"`
	Type string `json:"type"` // e.g. "peer.connected", "community.joined"
	Time int64  `json:"time"` // unix ms
	Data any    `json:"data,omitempty"`
}

// Error is returned by a Backend for a request the user can fix; the server
// answers it with Code and Message. Any other error is a 500 with a generic
// sentence, logged in full.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Backend is the running node as the API sees it. Methods are called
// concurrently from request goroutines and must be safe for that.
type Backend interface {
	Identity() Identity
	Status(ctx context.Context) Status
	Peers(ctx context.Context) []Peer
	Netcheck(ctx context.Context) Netcheck
	Communities(ctx context.Context) []Community
	Community(ctx context.Context, id string) (CommunityDetail, error)
	CreateCommunity(ctx context.Context, req CreateCommunityRequest) (CreatedCommunity, error)
	JoinCommunity(ctx context.Context, invite string) (Joined, error)
	LeaveCommunity(ctx context.Context, id string) error
	Invite(ctx context.Context, id string) (Invite, error)
	Publish(ctx context.Context, req PublishRequest) (Published, error)
	Records(ctx context.Context, q RecordQuery) ([]RecordView, error)
	Record(ctx context.Context, cid string) (RecordView, error)
}

// TaskRequest is the body of POST /api/v1/tasks: run a skill, here or on a
// member's node.
type TaskRequest struct {
	Skill     string          `json:"skill"`
	Input     json.RawMessage `json:"input"`
	Community string          `json:"community,omitempty"` // default: the only community, when one
	Peer      string          `json:"peer,omitempty"`      // only this provider (may be this node)
	Remote    bool            `json:"remote,omitempty"`    // never run on this node
	TimeoutMS int64           `json:"timeout_ms,omitempty"`
	// CertifiedOnly sends the task only to providers whose agent or node
	// the community certified.
	CertifiedOnly bool `json:"certified_only,omitempty"`
	// Wait makes the call return when the task has ended (or the timeout
	// passed) instead of as soon as it is submitted.
	Wait bool `json:"wait,omitempty"`
}

// TaskUpdate is the data of a "task.updated" event: a task's new status
// and the event that changed it.
type TaskUpdate struct {
	TaskID string    `json:"task_id"`
	Status string    `json:"status"`
	Role   string    `json:"role"`
	Skill  string    `json:"skill"`
	Event  TaskEvent `json:"event"`
}

// Task is one task as the API shows it: GET /api/v1/tasks/{id}, the list
// (without events), POST /api/v1/tasks, and "task.updated" events.
type Task struct {
	ID        string `json:"task_id"`
	Status    string `json:"status"` // submitted | working | completed | failed | canceled | rejected
	Role      string `json:"role"`   // requester | executor
	Skill     string `json:"skill"`
	Community string `json:"community"`
	// Executor is the peer that ran (or is running) the task; Agent its
	// agent; Requester the peer that asked.
	Executor   string          `json:"executor,omitempty"`
	Agent      string          `json:"agent,omitempty"`
	Requester  string          `json:"requester,omitempty"`
	Input      json.RawMessage `json:"input,omitempty"`
	Output     json.RawMessage `json:"output,omitempty"`
	Error      string          `json:"error,omitempty"`
	Code       string          `json:"code,omitempty"`
	Receipt    *Receipt        `json:"receipt,omitempty"`
	Created    int64           `json:"created"` // unix ms
	Updated    int64           `json:"updated"` // unix ms
	DurationMS int64           `json:"duration_ms"`
	Attempts   int             `json:"attempts"`
	Parent     string          `json:"parent,omitempty"`
	Ancestry   []string        `json:"ancestry,omitempty"`
	Events     []TaskEvent     `json:"events,omitempty"`
	// Children are the subtasks this task started (a workflow's steps, a
	// planner's tool calls), in GET /api/v1/tasks/{id} only.
	Children []Task `json:"children,omitempty"`
}

// TaskEvent is one entry of a task's timeline.
type TaskEvent struct {
	Seq     int    `json:"seq"`
	Time    int64  `json:"time"` // unix ms
	Type    string `json:"type"` // submitted | attempt | accepted | rejected | progress | retry | completed | failed | canceled
	Peer    string `json:"peer,omitempty"`
	Agent   string `json:"agent,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Percent int    `json:"percent,omitempty"`
}

// Receipt is an executor-signed receipt, decoded and verified.
type Receipt struct {
	CID        string `json:"cid"`
	Task       string `json:"task_id"`
	Community  string `json:"community"`
	Requester  string `json:"requester"`
	Executor   string `json:"executor"`
	Agent      string `json:"agent"`
	Skill      string `json:"skill"`
	InputHash  string `json:"input_hash"`  // base58 multihash
	OutputHash string `json:"output_hash"` // base58 multihash, empty on failure
	Status     string `json:"status"`
	Started    int64  `json:"started"`
	Ended      int64  `json:"ended"`
	Verified   bool   `json:"verified"`
	// Raw is the signed receipt, base64: what feedback records carry.
	Raw string `json:"raw"`
}

// Agent is one entry of GET /api/v1/agents.
type Agent struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Version     string   `json:"version"`
	Backend     string   `json:"backend"`
	Enabled     bool     `json:"enabled"`
	Shared      bool     `json:"shared"`
	Communities []string `json:"communities,omitempty"` // shared only in these; empty = all
	Skills      []Skill  `json:"skills"`
	Error       string   `json:"error,omitempty"` // why the agent does not run
	Path        string   `json:"path"`
}

// Skill is a skill of a local agent.
type Skill struct {
	ID           string          `json:"id"`
	Description  string          `json:"description"`
	Tags         []string        `json:"tags,omitempty"`
	InputSchema  json.RawMessage `json:"input_schema"`
	OutputSchema json.RawMessage `json:"output_schema"`
}

// AddAgentRequest is the body of POST /api/v1/agents: the agent file's
// TOML text.
type AddAgentRequest struct {
	TOML    string `json:"toml"`
	Replace bool   `json:"replace,omitempty"`
}

// SkillOffer is one entry of GET /api/v1/skills: a skill and who offers it
// in the node's communities, best provider first.
type SkillOffer struct {
	Skill       string     `json:"skill"`
	Description string     `json:"description"`
	Providers   []Provider `json:"providers"`
	// The schemas as the best-ranked provider advertises them.
	InputSchema  json.RawMessage `json:"input_schema,omitempty"`
	OutputSchema json.RawMessage `json:"output_schema,omitempty"`
}

// Provider is one member offering a skill.
type Provider struct {
	PeerID      string  `json:"peer_id"`
	Agent       string  `json:"agent"`
	LatencyMS   float64 `json:"latency_ms"`
	SuccessRate float64 `json:"success_rate"`
	Load        float64 `json:"load"`
	Self        bool    `json:"self,omitempty"`
	// Trust is this node's personal trust level in the provider
	// (thousandths of the most trusted peer's); Certified says its agent or
	// node is certified by the community.
	Trust     int64 `json:"trust"`
	Certified bool  `json:"certified"`
}

// Work is the node's agents, skills and tasks as the API sees them. It is
// optional in ServerConfig (the routes answer 503 without it). Methods are
// called concurrently.
type Work interface {
	Agents(ctx context.Context) []Agent
	AddAgent(ctx context.Context, req AddAgentRequest) (Agent, error)
	RemoveAgent(ctx context.Context, name string) error
	EnableAgent(ctx context.Context, name string, enable bool) (Agent, error)
	Skills(ctx context.Context, community, skill string) ([]SkillOffer, error)
	SubmitTask(ctx context.Context, req TaskRequest) (Task, error)
	Tasks(ctx context.Context, limit int) ([]Task, error)
	Task(ctx context.Context, id string) (Task, error)
	CancelTask(ctx context.Context, id string) (Task, error)
	LocalPolicy(ctx context.Context) []ExitPolicy
	RunWorkflow(ctx context.Context, req WorkflowRun) (WorkflowResult, error)
}

// ExitPolicy is one agent's data-exit policy, GET /api/v1/policy/local:
// where the inputs of the subtasks it starts may go.
type ExitPolicy struct {
	Agent    string            `json:"agent"`
	Private  bool              `json:"private"`
	Delegate string            `json:"delegate"` // never | community | peers (what applies by default)
	Peers    []string          `json:"peers,omitempty"`
	Skills   map[string]string `json:"skills"` // per delegated skill ID: never | community | peers:ID,...
	Rule     string            `json:"rule"`   // the rule that decided Delegate, in words
}

// WorkflowRun is the body of POST /api/v1/workflows/run: a workflow file's
// text (YAML or JSON) and its input.
type WorkflowRun struct {
	Name  string          `json:"name,omitempty"` // the file name, for messages
	Flow  string          `json:"flow"`
	Input json.RawMessage `json:"input"`
	// TimeoutMS bounds the whole run (default 5 minutes).
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// WorkflowResult answers POST /api/v1/workflows/run.
type WorkflowResult struct {
	Status string          `json:"status"` // completed | failed
	Output json.RawMessage `json:"output,omitempty"`
	Error  string          `json:"error,omitempty"`
	Steps  []WorkflowStep  `json:"steps"`
}

// WorkflowStep is one step of a run; also the data of "workflow.step"
// events.
type WorkflowStep struct {
	ID         string `json:"id"`
	Skill      string `json:"skill"`
	Status     string `json:"status"` // running | completed | failed | skipped
	Executor   string `json:"executor,omitempty"`
	TaskID     string `json:"task_id,omitempty"`
	DurationMS int64  `json:"duration_ms"`
	Attempts   int    `json:"attempts,omitempty"`
	Error      string `json:"error,omitempty"`
}
