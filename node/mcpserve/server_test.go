package mcpserve

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agora-p2p/agora/node/agents"
	"github.com/agora-p2p/agora/node/api"
)

// nodeSource stands for the daemon: its own agents are a real Manager with
// the builtin agent, and Run runs them; offers are what the community
// advertises besides.
type nodeSource struct {
	m *agents.Manager

	mu     sync.Mutex
	offers []api.SkillOffer
	runs   []string
}

func newNodeSource(t *testing.T) *nodeSource {
	t.Helper()
	m, err := agents.NewManager(t.TempDir(), map[string]agents.Factory{"builtin": agents.BuiltinFactory}, agents.Env{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &nodeSource{m: m}
}

func (n *nodeSource) setOffers(o []api.SkillOffer) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.offers = o
}

func (n *nodeSource) runCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.runs)
}

func (n *nodeSource) Skills(context.Context) ([]api.SkillOffer, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]api.SkillOffer(nil), n.offers...), nil
}

func (n *nodeSource) Agents(context.Context) ([]api.Agent, error) {
	var out []api.Agent
	for _, a := range n.m.List() {
		v := api.Agent{Name: a.Name, Enabled: a.Enabled, Error: a.Error, Backend: a.Backend}
		for _, s := range a.Skills {
			v.Skills = append(v.Skills, api.Skill{ID: s.ID, Description: s.Description, InputSchema: s.Input, OutputSchema: s.Output})
		}
		out = append(out, v)
	}
	return out, nil
}

func (n *nodeSource) Run(ctx context.Context, skill string, input json.RawMessage) (api.Task, error) {
	n.mu.Lock()
	n.runs = append(n.runs, skill)
	id := "task-" + string(rune('0'+len(n.runs)))
	n.mu.Unlock()
	agent, _, ok := n.m.Skill(skill)
	if !ok {
		return api.Task{}, errors.New("no member offers " + skill)
	}
	t := api.Task{ID: id, Skill: skill, Role: "requester", Executor: "12D3KooWSelf", Agent: agent, Input: input}
	out, err := n.m.Run(ctx, skill, input, nil)
	if err != nil {
		t.Status, t.Code, t.Error = "failed", agents.CodeOf(err), err.Error()
		if re, ok := errors.AsType[*agents.RunError](err); ok {
			t.Error = re.Reason
		}
		return t, nil
	}
	t.Status, t.Output = "completed", out
	return t, nil
}

// connect serves srv on in-memory transports and returns a connected SDK
// client session.
func connect(t *testing.T, srv *Server, copts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, ct := mcp.NewInMemoryTransports()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, st) }()
	cl := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, copts)
	cs, err := cl.Connect(ctx, ct, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		cancel()
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after the session closed")
		}
	})
	return cs
}

func toolsByName(t *testing.T, cs *mcp.ClientSession) map[string]*mcp.Tool {
	t.Helper()
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*mcp.Tool{}
	for _, tl := range res.Tools {
		out[tl.Name] = tl
	}
	return out
}

func text(res *mcp.CallToolResult) string {
	var b []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b = append(b, tc.Text)
		}
	}
	return strings.Join(b, "\n")
}

var remoteUpper = api.SkillOffer{
	Skill: "text.upper", Description: "Upper-cases a string",
	Providers:   []api.Provider{{PeerID: "12D3KooWOther", Agent: "shouter"}, {PeerID: "12D3KooWThird", Agent: "shouter"}},
	InputSchema: json.RawMessage(`{"type":"string","maxLength":10}`), OutputSchema: json.RawMessage(`{"type":"string"}`),
}

func TestListAndCall(t *testing.T) {
	src := newNodeSource(t)
	src.setOffers([]api.SkillOffer{
		// text.stats is shared by this node and one other member.
		{Skill: "text.stats", Description: "remote description", Providers: []api.Provider{{PeerID: "12D3KooWSelf", Self: true}, {PeerID: "12D3KooWOther"}},
			InputSchema: json.RawMessage(`{"type":"object"}`)},
		remoteUpper,
	})
	cs := connect(t, New(src, Options{}), nil)

	tools := toolsByName(t, cs)
	for _, want := range []string{"text.stats", "json.query", "math.eval", "text.upper"} {
		if tools[want] == nil {
			t.Fatalf("tool %s missing; have %v", want, tools)
		}
	}
	ts := tools["text.stats"]
	in, _ := json.Marshal(ts.InputSchema)
	out, _ := json.Marshal(ts.OutputSchema)
	if !strings.Contains(string(in), `"required":["text"]`) || !strings.Contains(string(out), `"chars"`) {
		t.Fatalf("text.stats schemas: in %s out %s", in, out)
	}
	if !strings.HasPrefix(ts.Description, "Counts the words") || !strings.Contains(ts.Description, "2 members offer it, this node among them") {
		t.Fatalf("text.stats description: %q", ts.Description)
	}
	up := tools["text.upper"]
	in, _ = json.Marshal(up.InputSchema)
	if !strings.Contains(string(in), `"input":{"maxLength":10,"type":"string"}`) || up.OutputSchema != nil || !strings.Contains(up.Description, "2 members offer it)") {
		t.Fatalf("text.upper: in %s, out %v, %q", in, up.OutputSchema, up.Description)
	}

	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "text.stats", Arguments: map[string]any{"text": "one two\nthree"}})
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := json.Marshal(res.StructuredContent)
	if res.IsError || string(sc) != `{"chars":13,"lines":2,"words":3}` {
		t.Fatalf("text.stats: error %v, structured %s, text %q", res.IsError, sc, text(res))
	}
	if len(res.Content) != 2 || !strings.Contains(text(res), `"words":3`) || !strings.Contains(text(res), "Ran on 12D3KooWSelf (agent builtin) as task task-1.") {
		t.Fatalf("text.stats content: %q", text(res))
	}
}

func TestBadArgumentsRunNothing(t *testing.T) {
	src := newNodeSource(t)
	src.setOffers([]api.SkillOffer{remoteUpper})
	cs := connect(t, New(src, Options{}), nil)
	toolsByName(t, cs)

	for _, tc := range []struct {
		tool string
		args any
		want string
	}{
		{"text.stats", map[string]any{"txt": 1}, "input schema of text.stats"},
		{"text.stats", map[string]any{"text": 5}, "want string"},
		{"text.stats", nil, "missing property"},
		{"text.stats", []int{1}, "must be a JSON object"},
		{"text.upper", map[string]any{"text": "x"}, `one argument, "input"`},
		{"text.upper", map[string]any{"input": "far too long a text"}, "maxLength"},
	} {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tc.tool, Arguments: tc.args})
		if err != nil {
			// The SDK may refuse non-object arguments itself.
			if strings.Contains(tc.want, "JSON object") {
				continue
			}
			t.Fatalf("%s %v: %v", tc.tool, tc.args, err)
		}
		if !res.IsError || !strings.Contains(text(res), tc.want) || !strings.Contains(text(res), "Nothing was run") {
			t.Errorf("%s %v: error %v, %q (want %q)", tc.tool, tc.args, res.IsError, text(res), tc.want)
		}
	}
	if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "no.such", Arguments: map[string]any{}}); err == nil {
		t.Error("an unknown tool was called")
	}
	if n := src.runCount(); n != 0 {
		t.Fatalf("bad arguments submitted %d tasks", n)
	}
}

func TestFailedTaskIsToolError(t *testing.T) {
	src := newNodeSource(t)
	cs := connect(t, New(src, Options{}), nil)
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "json.query", Arguments: map[string]any{"data": 1, "query": "]["}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || !strings.Contains(text(res), "task-1 ended failed") || !strings.Contains(text(res), "(invalid-input: the query does not parse") || res.StructuredContent != nil {
		t.Fatalf("failed task: error %v, %q", res.IsError, text(res))
	}
	// A skill the node lists but nobody can run: Run's error, as a tool error.
	src.setOffers([]api.SkillOffer{remoteUpper})
	res, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "text.upper", Arguments: map[string]any{"input": "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || !strings.Contains(text(res), "could not be run: no member offers text.upper") {
		t.Fatalf("unrunnable: %q", text(res))
	}
}

func TestToolListFollowsTheSource(t *testing.T) {
	src := newNodeSource(t)
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv := New(src, Options{Now: clock, MaxAge: time.Minute})
	changed := make(chan struct{}, 8)
	cs := connect(t, srv, &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
		changed <- struct{}{}
	}})
	if tools := toolsByName(t, cs); tools["text.upper"] != nil || tools["text.stats"] == nil {
		t.Fatalf("before: %v", tools)
	}
	for len(changed) > 0 {
		<-changed
	}

	// A fresh list is served as is; a stale one is re-read on tools/list.
	src.setOffers([]api.SkillOffer{remoteUpper})
	if tools := toolsByName(t, cs); tools["text.upper"] != nil {
		t.Fatal("a fresh list was re-read")
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if tools := toolsByName(t, cs); tools["text.upper"] == nil {
		t.Fatal("a stale list was not re-read")
	}

	// Refresh (what Watch does on a change) notifies the client.
	if err := src.m.Disable("builtin"); err != nil {
		t.Fatal(err)
	}
	for len(changed) > 0 {
		<-changed
	}
	if err := srv.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("no tools/list_changed notification")
	}
	if tools := toolsByName(t, cs); tools["text.stats"] != nil || tools["text.upper"] == nil {
		t.Fatalf("after disabling builtin: %v", tools)
	}
}

// burstSource is a node source that signals a burst of changes and counts
// how often the server re-reads the skills.
type burstSource struct {
	*nodeSource
	reads atomic.Int64
	burst int
	sent  chan struct{}
}

func (b *burstSource) Skills(ctx context.Context) ([]api.SkillOffer, error) {
	b.reads.Add(1)
	return b.nodeSource.Skills(ctx)
}

func (b *burstSource) Watch(ctx context.Context, changed func()) error {
	for range b.burst {
		changed()
		time.Sleep(2 * time.Millisecond) // adverts arriving one after another
	}
	close(b.sent)
	<-ctx.Done()
	return ctx.Err()
}

// TestWatchDebouncesBursts: a stream of change signals (adverts changing
// many times a second in a busy community) costs a re-read per debounce
// period, not one per signal.
func TestWatchDebouncesBursts(t *testing.T) {
	src := &burstSource{nodeSource: newNodeSource(t), burst: 150, sent: make(chan struct{})}
	srv := New(src, Options{Debounce: 100 * time.Millisecond, RefreshEvery: time.Hour})
	rawSession(t, srv) // Watch re-reads only for a connected client
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Watch(ctx) }()
	<-src.sent
	// The last signal's re-read comes one debounce period later.
	deadline := time.Now().Add(10 * time.Second)
	for before := src.reads.Load(); src.reads.Load() == before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	// 150 signals over at least 300 ms: one read at start, then about one
	// per 100 ms. Without the debounce it was one per signal.
	if n := src.reads.Load(); n < 2 || n > 12 {
		t.Errorf("%d change signals caused %d reads of the skills, want 2 to 12", src.burst, n)
	}
}

// rawSession connects a client to srv's SDK server without Serve (whose
// own Watch would run beside the test's).
func rawSession(t *testing.T, srv *Server) *mcp.ClientSession {
	t.Helper()
	st, ct := mcp.NewInMemoryTransports()
	ss, err := srv.mcp.Connect(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(context.Background(), ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close(); ss.Close() })
	return cs
}

// TestWatchIdleWithoutClients: with no client connected, change signals
// cost nothing; the first client to list the tools gets them read then.
func TestWatchIdleWithoutClients(t *testing.T) {
	src := &burstSource{nodeSource: newNodeSource(t), burst: 50, sent: make(chan struct{})}
	srv := New(src, Options{Debounce: time.Millisecond, RefreshEvery: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Watch(ctx) }()
	<-src.sent
	// Let the loop turn many times over on its 1 ms tick and debounce.
	for range 50 {
		time.Sleep(time.Millisecond)
	}
	if n := src.reads.Load(); n != 0 {
		t.Errorf("with no client, %d change signals and ticks caused %d reads of the skills, want 0", src.burst, n)
	}
	cs := rawSession(t, srv)
	if tools := toolsByName(t, cs); tools["text.stats"] == nil {
		t.Errorf("the first client's list lacks text.stats: %v", tools)
	}
	if src.reads.Load() == 0 {
		t.Error("listing the tools did not read the skills")
	}
	cancel()
	<-done
}

// kickSource signals a change whenever the test sends on kick.
type kickSource struct {
	*nodeSource
	reads atomic.Int64
	kick  chan struct{}
}

func (k *kickSource) Skills(ctx context.Context) ([]api.SkillOffer, error) {
	k.reads.Add(1)
	return k.nodeSource.Skills(ctx)
}

func (k *kickSource) Watch(ctx context.Context, changed func()) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-k.kick:
			changed()
		}
	}
}

// TestChangeWithoutClientReachesTheNext: a change signalled while no
// client is connected is not read then, but the next client's list reads
// it even though the last read is recent (MaxAge is an hour here).
func TestChangeWithoutClientReachesTheNext(t *testing.T) {
	src := &kickSource{nodeSource: newNodeSource(t), kick: make(chan struct{})}
	srv := New(src, Options{Debounce: time.Millisecond, RefreshEvery: time.Hour, MaxAge: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Watch(ctx) }()
	defer func() { cancel(); <-done }()

	first := rawSession(t, srv)
	toolsByName(t, first)
	if n := src.reads.Load(); n != 1 {
		t.Fatalf("the first list read the skills %d times, want 1", n)
	}
	first.Close()
	waitFor(t, "the first client to be gone", func() bool { return !srv.connected() })
	src.kick <- struct{}{}
	waitFor(t, "Watch to mark the list stale", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return srv.stale
	})
	if n := src.reads.Load(); n != 1 {
		t.Fatalf("a change with no client connected read the skills (%d reads)", n)
	}
	toolsByName(t, rawSession(t, srv))
	if n := src.reads.Load(); n != 2 {
		t.Fatalf("the next client's list read the skills %d times in all, want 2", n)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
