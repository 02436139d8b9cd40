package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"github.com/agora-p2p/agora/node/agents"
	"github.com/agora-p2p/agora/node/agents/llm"
	"github.com/agora-p2p/agora/node/agents/mcpagent"
	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/capindex"
	"github.com/agora-p2p/agora/node/tasks"
	"github.com/agora-p2p/agora/node/workflow"
	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/record"
)

// factories are the node's backends.
func (n *Node) factories() map[string]agents.Factory {
	return Factories()
}

// Factories are the agent backends a node runs.
func Factories() map[string]agents.Factory {
	return map[string]agents.Factory{
		"builtin":  agents.BuiltinFactory,
		"exec":     agents.ExecFactory,
		"openai":   llm.Factory,
		"mcp":      mcpagent.Factory,
		"workflow": workflow.Factory,
	}
}

// startWork brings up the agents, the capability index, the advertiser and
// delegation. Called by Start once the communities are up.
func (n *Node) startWork(ctx context.Context) error {
	var err error
	dir := filepath.Join(n.Repo.Dir, "agents")
	if n.Agents, err = agents.NewManager(dir, n.factories(), agents.Env{Dir: dir, Delegator: delegator{n}}, n.log.With("subsystem", "agents")); err != nil {
		return err
	}
	if err := n.Agents.Load(ctx); err != nil {
		return err
	}
	n.Index = capindex.New(nil)
	if n.Advertiser, err = capindex.NewAdvertiser(capindex.AdvertiserConfig{
		Key: n.Repo.Key, Index: n.Index,
		Communities: n.Comms.Joined,
		Agents:      n.advertAgents,
		Load:        n.load,
		Addrs:       func() []string { return addrStrings(n.Host.Addrs()) },
		Publish:     n.Comms.PublishAdvert,
		Log:         n.log.With("subsystem", "adverts"),
	}); err != nil {
		return err
	}
	if err := n.startTrust(); err != nil {
		return err
	}
	if err := n.startGovernance(); err != nil {
		return err
	}
	if n.Tasks, err = tasks.New(tasks.Config{
		Host: n.Host, Key: n.Repo.Key, DB: n.DB.DB, Local: LocalAgents(n.Agents), Index: n.Index,
		Member: n.Comms.IsMember, Default: n.communityFor, Events: n.Hub, Exit: n.exitRule, Registerer: n.registry,
		Done: n.taskDone, Admit: n.admitRequester, Fault: n.Repl.Penalties().Fault,
		Log: n.log.With("subsystem", "tasks"),
	}); err != nil {
		return err
	}
	changes, stop := n.Agents.Subscribe()
	n.wg.Add(3)
	go func() {
		defer n.wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-n.Index.Changed():
				n.Hub.Publish("skills.changed", nil)
			}
		}
	}()
	go func() {
		defer n.wg.Done()
		defer stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-changes:
				n.Advertiser.Kick()
			}
		}
	}()
	go func() { defer n.wg.Done(); n.Advertiser.Run(ctx) }()
	capindex.ServeExchange(n.Host, n.Index, func(c cid.Cid, p peer.ID) bool {
		if !n.Comms.IsMember(c) || n.banned(c, p) {
			return false
		}
		// The asker saw this node join the topics; this node may not have
		// seen it subscribe yet.
		for range 20 {
			if slices.Contains(n.Comms.Peers(c), p) {
				return true
			}
			select {
			case <-ctx.Done():
				return false
			case <-time.After(100 * time.Millisecond):
			}
		}
		return false
	})
	n.pulls = newPuller(ctx, n)
	return nil
}

// advertAgents lists what the node shares in a community.
func (n *Node) advertAgents(c cid.Cid) []body.AdvertAgent { return AdvertAgents(n.Agents, c) }

// AdvertAgents lists what m shares in community c, in the form of an
// advert: the enabled agents shared with c and their skills, texts clipped
// to the advert's limits.
func AdvertAgents(m *agents.Manager, c cid.Cid) []body.AdvertAgent {
	var out []body.AdvertAgent
	idx := map[string]int{}
	for _, ref := range m.SharedIn(c.String()) {
		i, ok := idx[ref.Agent]
		if !ok {
			info, _ := m.Agent(ref.Agent)
			out = append(out, body.AdvertAgent{Name: ref.Agent, Description: clip(info.Description, body.MaxAdvertDescription), Version: info.Version})
			i = len(out) - 1
			idx[ref.Agent] = i
		}
		sk := ref.Skill
		tags := sk.Tags
		if len(tags) > body.MaxAdvertTags {
			tags = tags[:body.MaxAdvertTags]
		}
		out[i].Skills = append(out[i].Skills, body.AdvertSkill{
			ID: sk.ID, Description: clip(sk.Description, body.MaxAdvertDescription), Tags: tags,
			Input: sk.Input, Output: sk.Output,
		})
	}
	return out
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// load is the share of the node's agent slots in use, 0..1.
func (n *Node) load() float64 {
	running, capacity := 0, 0
	for _, a := range n.Agents.List() {
		if a.Enabled {
			capacity += 4
		}
	}
	if ts, err := n.Tasks.List(64); err == nil {
		for _, t := range ts {
			if t.Role == "executor" && !tasks.Terminal(t.Status) {
				running++
			}
		}
	}
	if capacity == 0 {
		return 0
	}
	return min(float64(running)/float64(capacity), 1)
}

// ReceiveAdvert, MemberJoined and CommunitiesChanged implement
// communities.Adverts (set up before the index exists, hence the checks).
type advertSink struct{ n *Node }

func (a advertSink) ReceiveAdvert(c cid.Cid, rec *record.Record) (bool, error) {
	if a.n.Index == nil {
		return false, errors.New("not ready")
	}
	if a.n.banned(c, rec.Author) {
		return false, nil // the community banned the author: not indexed, not relayed
	}
	return a.n.Index.Receive(c, rec)
}

func (a advertSink) MemberJoined(c cid.Cid, p peer.ID) {
	if a.n.Advertiser != nil {
		a.n.Advertiser.MemberJoined(c, p)
	}
	if a.n.pulls != nil {
		a.n.pulls.pull(c, p)
	}
}

// puller asks members that join a community's topics for the adverts they
// hold (capindex.ExchangeProtocol), a few at a time, at most once a minute
// per member and community, and takes each one in as if it came by gossip.
type puller struct {
	ctx  context.Context
	n    *Node
	sem  chan struct{}
	mu   sync.Mutex
	last map[pullKey]time.Time
}

type pullKey struct {
	c cid.Cid
	p peer.ID
}

// pullEvery is how often the same member is asked again.
const pullEvery = time.Minute

func newPuller(ctx context.Context, n *Node) *puller {
	return &puller{ctx: ctx, n: n, sem: make(chan struct{}, 4), last: map[pullKey]time.Time{}}
}

func (pl *puller) pull(c cid.Cid, p peer.ID) {
	if pl.ctx.Err() != nil {
		return
	}
	k := pullKey{c, p}
	now := time.Now()
	pl.mu.Lock()
	if t, ok := pl.last[k]; ok && now.Sub(t) < pullEvery {
		pl.mu.Unlock()
		return
	}
	pl.last[k] = now
	for k, t := range pl.last {
		if now.Sub(t) >= pullEvery {
			delete(pl.last, k)
		}
	}
	pl.mu.Unlock()
	pl.n.wg.Add(1)
	go func() {
		defer pl.n.wg.Done()
		select {
		case pl.sem <- struct{}{}:
		case <-pl.ctx.Done():
			return
		}
		defer func() { <-pl.sem }()
		pl.exchange(c, p)
	}()
}

// exchange pulls p's adverts of c and takes them in. A record that breaks
// the rules is the sender's fault, as on the adverts topic.
func (pl *puller) exchange(c cid.Cid, p peer.ID) {
	raws, err := capindex.PullAdverts(pl.ctx, pl.n.Host, p, c)
	if errors.Is(err, capindex.ErrExchange) {
		pl.n.Repl.Penalties().Fault(p, "advert:exchange")
	}
	if err != nil {
		pl.n.log.Debug("advert exchange failed", "peer", p, "community", c, "err", err)
	}
	taken := 0
	for _, raw := range raws {
		rec, err := record.Open(raw, time.Now())
		switch {
		case err != nil && record.IsSenderFault(err):
			pl.n.Repl.Penalties().Fault(p, "advert:"+record.Reason(err))
			return
		case err != nil:
			continue // from the future, a newer version: may be fine later
		case !rec.Community.Equals(c) || rec.Kind != record.KindAdvert:
			pl.n.Repl.Penalties().Fault(p, "advert:wrong-topic")
			return
		}
		fresh, err := advertSink{pl.n}.ReceiveAdvert(c, rec)
		if err != nil && record.IsSenderFault(err) {
			pl.n.Repl.Penalties().Fault(p, "advert:"+record.Reason(err))
			return
		}
		if fresh {
			taken++
		}
	}
	if taken > 0 {
		pl.n.log.Debug("took adverts from a member", "peer", p, "community", c, "new", taken, "sent", len(raws))
	}
}

func (a advertSink) CommunitiesChanged() {
	if a.n.Advertiser != nil {
		a.n.Advertiser.Kick()
	}
}

// LocalAgents adapts an agents manager to delegation: what tasks.Service
// runs for this node and for the community.
func LocalAgents(m *agents.Manager) tasks.Local {
	return &localAgents{m: m, rates: map[string]*rate.Limiter{}}
}

type localAgents struct {
	m     *agents.Manager
	mu    sync.Mutex
	rates map[string]*rate.Limiter // agent + "/" + peer
}

// allow applies an agent's limits.rate_per_peer to a remote peer.
func (l *localAgents) allow(agent string, from peer.ID, perSecond float64) bool {
	k := agent + "/" + string(from)
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.rates[k]
	if lim == nil || lim.Limit() != rate.Limit(perSecond) {
		if len(l.rates) > 8192 {
			clear(l.rates)
		}
		lim = rate.NewLimiter(rate.Limit(perSecond), max(int(perSecond*2), 1))
		l.rates[k] = lim
	}
	return lim.Allow()
}

func (l *localAgents) Has(skill string) bool {
	_, _, ok := l.m.Skill(skill)
	return ok
}

func (l *localAgents) Admit(skill string, input json.RawMessage, from peer.ID, c cid.Cid) (tasks.Job, error) {
	adm, err := l.m.Admit(skill, input, c.String(), from != "")
	if err != nil {
		return nil, err
	}
	if from != "" && adm.Limits.RatePerPeer > 0 && !l.allow(adm.Agent, from, adm.Limits.RatePerPeer) {
		adm.Release()
		return nil, agents.Errorf(tasks.CodeRateLimited, "agent %s takes at most %g tasks a second from one member", adm.Agent, adm.Limits.RatePerPeer)
	}
	return &job{m: l.m, agent: adm.Agent, skill: skill, input: input, release: adm.Release, pure: adm.Pure}, nil
}

type job struct {
	m       *agents.Manager
	agent   string
	skill   string
	input   json.RawMessage
	release func()
	pure    bool
}

func (j *job) Agent() string { return j.agent }
func (j *job) Pure() bool    { return j.pure }
func (j *job) Release()      { j.release() }
func (j *job) Run(ctx context.Context, p agents.Progress) (json.RawMessage, error) {
	return j.m.RunAdmitted(ctx, j.skill, j.input, p)
}

// --- api.Work ---

func agentView(a agents.AgentInfo) api.Agent {
	v := api.Agent{Name: a.Name, Description: a.Description, Version: a.Version, Backend: a.Backend,
		Enabled: a.Enabled, Shared: a.Shared, Communities: a.Communities, Error: a.Error, Path: a.Path}
	for _, s := range a.Skills {
		v.Skills = append(v.Skills, api.Skill{ID: s.ID, Description: s.Description, Tags: s.Tags, InputSchema: s.Input, OutputSchema: s.Output})
	}
	return v
}

func agentError(err error) error {
	var re *agents.RunError
	switch {
	case errors.Is(err, agents.ErrNoAgent):
		return &api.Error{Code: http.StatusNotFound, Message: err.Error()}
	case errors.Is(err, agents.ErrAgentExists):
		return &api.Error{Code: http.StatusConflict, Message: err.Error()}
	case errors.As(err, &re):
		return &api.Error{Code: http.StatusBadRequest, Message: err.Error()}
	}
	return &api.Error{Code: http.StatusBadRequest, Message: err.Error()}
}

// Agents implements api.Work.
func (w workAPI) Agents(context.Context) []api.Agent {
	var out []api.Agent
	for _, a := range w.n.Agents.List() {
		out = append(out, agentView(a))
	}
	return out
}

// workAPI is the node as api.Work (Node's own method names are taken by
// its fields).
type workAPI struct{ n *Node }

var _ api.Work = workAPI{}

func (w workAPI) AddAgent(ctx context.Context, req api.AddAgentRequest) (api.Agent, error) {
	a, err := w.n.Agents.Add(ctx, []byte(req.TOML), req.Replace)
	if err != nil {
		return api.Agent{}, agentError(err)
	}
	return agentView(a), nil
}

func (w workAPI) RemoveAgent(_ context.Context, name string) error {
	if err := w.n.Agents.Remove(name); err != nil {
		return agentError(err)
	}
	return nil
}

func (w workAPI) EnableAgent(ctx context.Context, name string, enable bool) (api.Agent, error) {
	var err error
	if enable {
		err = w.n.Agents.Enable(ctx, name)
	} else {
		err = w.n.Agents.Disable(name)
	}
	if err != nil {
		return api.Agent{}, agentError(err)
	}
	a, _ := w.n.Agents.Agent(name)
	return agentView(a), nil
}

func (w workAPI) Skills(_ context.Context, community, skill string) ([]api.SkillOffer, error) {
	c := cid.Undef
	if community != "" {
		var err error
		if c, err = w.n.communityFor(community); err != nil {
			return nil, err
		}
	}
	self := w.n.Host.ID()
	var out []api.SkillOffer
	for _, s := range w.n.Index.Skills(c) {
		if skill != "" && s.ID != skill {
			continue
		}
		o := api.SkillOffer{Skill: s.ID, Description: s.Description}
		s.Providers = slices.DeleteFunc(s.Providers, func(p capindex.Provider) bool { return p.Banned })
		if len(s.Providers) == 0 {
			continue
		}
		if len(s.Providers) > 0 {
			o.InputSchema, o.OutputSchema = s.Providers[0].Skill.Input, s.Providers[0].Skill.Output
		}
		for _, p := range s.Providers {
			if p.Banned {
				continue
			}
			o.Providers = append(o.Providers, api.Provider{PeerID: p.Peer.String(), Agent: p.Agent,
				LatencyMS: p.Stats.LatencyMS, SuccessRate: p.Stats.SuccessRate(), Load: p.Load, Self: p.Peer == self,
				Trust: p.Trust, Certified: p.Certified})
		}
		out = append(out, o)
	}
	return out, nil
}

func (w workAPI) SubmitTask(ctx context.Context, req api.TaskRequest) (api.Task, error) {
	r := tasks.Request{Skill: req.Skill, Input: req.Input, Community: req.Community, Remote: req.Remote,
		Timeout: time.Duration(req.TimeoutMS) * time.Millisecond, HopsLeft: -1,
		CertifiedOnly: req.CertifiedOnly || w.n.Repo.Config.Trust.CertifiedOnly}
	if req.Peer != "" {
		p, err := peer.Decode(req.Peer)
		if err != nil {
			return api.Task{}, badRequest("%q is not a peer ID: %v", req.Peer, err)
		}
		r.Peer = p
	}
	t, err := w.n.Tasks.Submit(ctx, r)
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) {
			return api.Task{}, err
		}
		if errors.Is(err, tasks.ErrBadRequest) {
			return api.Task{}, &api.Error{Code: http.StatusBadRequest, Message: err.Error()}
		}
		if errors.Is(err, tasks.ErrPolicy) {
			return api.Task{}, policyError(err)
		}
		return api.Task{}, err
	}
	if !req.Wait {
		return t, nil
	}
	return w.n.Tasks.Wait(ctx, t.ID)
}

func (w workAPI) Tasks(_ context.Context, limit int) ([]api.Task, error) {
	return w.n.Tasks.List(limit)
}

func (w workAPI) Task(_ context.Context, id string) (api.Task, error) {
	t, err := w.n.Tasks.Get(id)
	if errors.Is(err, tasks.ErrNotFound) {
		return t, &api.Error{Code: http.StatusNotFound, Message: fmt.Sprintf("there is no task %q on this node; `agora tasks` lists them", id)}
	}
	return t, err
}

func (w workAPI) CancelTask(ctx context.Context, id string) (api.Task, error) {
	if err := w.n.Tasks.Cancel(id); err != nil {
		if errors.Is(err, tasks.ErrNotFound) {
			return api.Task{}, &api.Error{Code: http.StatusNotFound, Message: fmt.Sprintf("there is no task %q on this node", id)}
		}
		return api.Task{}, &api.Error{Code: http.StatusConflict, Message: err.Error()}
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return w.n.Tasks.Wait(wctx, id)
}

// LocalPolicy implements api.Work: each agent's data-exit policy and the
// rule that applies to its subtasks by default.
func (w workAPI) LocalPolicy(context.Context) []api.ExitPolicy {
	var out []api.ExitPolicy
	for _, a := range w.n.Agents.List() {
		e := agents.ResolveExit(a.Name, !a.Shared, a.Exit, "")
		p := api.ExitPolicy{Agent: a.Name, Private: !a.Shared, Delegate: e.Mode, Peers: e.Peers, Rule: e.Rule, Skills: map[string]string{}}
		for skill, rule := range a.Exit.Skills {
			p.Skills[skill] = rule
		}
		out = append(out, p)
	}
	return out
}

// RunWorkflow implements api.Work: parse and plan a workflow file, then run
// its steps as tasks of the node's owner, publishing "workflow.step" events
// as they go.
func (w workAPI) RunWorkflow(ctx context.Context, req api.WorkflowRun) (api.WorkflowResult, error) {
	name := req.Name
	if name == "" {
		name = "workflow"
	}
	f, err := workflow.Parse(name, []byte(req.Flow))
	if err != nil {
		return api.WorkflowResult{}, &api.Error{Code: http.StatusBadRequest, Message: err.Error()}
	}
	d := delegator{w.n}
	known := map[string]bool{}
	for _, s := range d.Skills(ctx) {
		known[s.ID] = true
	}
	g, err := workflow.Plan(f, func(skill string) bool { return known[skill] })
	if err != nil {
		return api.WorkflowResult{}, &api.Error{Code: http.StatusBadRequest, Message: err.Error()}
	}
	timeout := 5 * time.Minute
	if req.TimeoutMS > 0 {
		timeout = time.Duration(req.TimeoutMS) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	input := req.Input
	if len(input) == 0 {
		input = json.RawMessage(`{}`)
	}
	res := workflow.Run(ctx, f, g, input, d, workflow.RunOptions{Observer: func(e workflow.StepEvent) {
		st := stepView(e.Step)
		if e.Kind == workflow.EventStarted {
			st.Status = "running"
		}
		w.n.Hub.Publish("workflow.step", map[string]any{"workflow": f.Name, "event": e.Kind, "step": st, "done": e.Done, "total": e.Total})
	}})
	out := api.WorkflowResult{Status: res.Status, Output: res.Output, Error: res.Error, Steps: []api.WorkflowStep{}}
	for _, s := range res.Steps {
		out.Steps = append(out.Steps, stepView(s))
	}
	return out, nil
}

func stepView(s workflow.StepResult) api.WorkflowStep {
	return api.WorkflowStep{ID: s.ID, Skill: s.Skill, Status: s.Status, Executor: s.Executor, TaskID: s.TaskID,
		DurationMS: s.DurationMS, Attempts: s.Attempts, Error: s.Error}
}
