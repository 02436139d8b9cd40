package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/agora-p2p/agora/node/agents"
	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/capindex"
	"github.com/agora-p2p/agora/protocol/task"
)

// Request is a task this node asks for.
type Request struct {
	Skill     string
	Input     json.RawMessage
	Community string  // "" = the default community
	Peer      peer.ID // "" = any provider; this node's ID = local only
	Remote    bool    // never run on this node
	Timeout   time.Duration
	// Lineage, for subtasks: the parent task, the ancestry below which
	// this task runs (root first, parent last) and how many further hops
	// are allowed (-1: task.MaxHops).
	Parent   string
	Ancestry []string
	HopsLeft int
	// Origin is the local agent on whose behalf the task runs (a workflow,
	// a planner): its data-exit policy decides where the input may go.
	Origin string
	// CertifiedOnly sends the task only to members whose node or agent the
	// community certified (this node's own agents still count).
	CertifiedOnly bool
	// Exclude lists members not to send the task to (an audit re-runs a
	// task anywhere but on its first executor).
	Exclude []peer.ID
	// Audit marks a task that re-runs another to check it; Done reports
	// it, and it is not audited in turn.
	Audit bool
}

// Done is a task this node requested that another member ran and signed a
// receipt for: what feedback and audits need. Config.Done receives it
// after the task's last event.
type Done struct {
	Task      string
	Skill     string
	Community cid.Cid
	Status    string // completed or failed
	Code      string
	Receipt   *task.Receipt
	Input     json.RawMessage
	Output    json.RawMessage
	// Tags are the skill's tags as the executor advertised them.
	Tags  []string
	Audit bool
}

// Requester codes.
const (
	CodeNoProvider = "no-provider"
	CodeBadReceipt = "bad-receipt"
	CodeProtocol   = "protocol-error"
	CodeVanished   = "provider-vanished"
	CodePolicy     = "exit-policy"
)

// cancelGrace is how long a requester that canceled a task (or whose
// timeout passed) still listens for the executor's last frame and receipt.
const cancelGrace = time.Second

// ErrBadRequest wraps a request that cannot be submitted.
var ErrBadRequest = errors.New("bad task request")

// ErrClosed is returned by Submit once Close has begun.
var ErrClosed = errors.New("tasks: the task service is closed")

// ErrPolicy wraps a request the data-exit policy refuses outright.
var ErrPolicy = errors.New("refused by the data-exit policy")

// candidate is a place to run the task: this node (peer "") or a member.
type candidate struct {
	peer  peer.ID
	agent string
	tags  []string
}

// Submit validates r, journals the task and starts it. It returns as soon
// as the task is submitted; Wait for its end.
func (s *Service) Submit(ctx context.Context, r Request) (api.Task, error) {
	bad := func(format string, args ...any) (api.Task, error) {
		return api.Task{}, fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
	}
	if !task.ValidSkill(r.Skill) {
		return bad("%q is not a skill ID (lower-case letters, digits, '.', '_' and '-')", r.Skill)
	}
	if len(r.Input) == 0 {
		r.Input = json.RawMessage(`{}`)
	}
	if len(r.Input) > task.MaxPayload {
		return bad("the input is %d bytes, over the limit of %d", len(r.Input), task.MaxPayload)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, r.Input); err != nil {
		return bad("the input is not JSON: %v", err)
	}
	r.Input = compact.Bytes()
	if r.Timeout <= 0 {
		r.Timeout = s.cfg.DefaultTimeout
	}
	if r.Timeout > maxTaskTime {
		return bad("the timeout %s is over the limit of %s", r.Timeout, maxTaskTime)
	}
	if r.HopsLeft < 0 || r.HopsLeft > task.MaxHops {
		r.HopsLeft = task.MaxHops
	}
	if len(r.Ancestry) >= task.MaxAncestry {
		return bad("the task is nested %d deep, over the limit of %d", len(r.Ancestry), task.MaxAncestry)
	}
	localOnly := r.Peer == s.self
	if r.Remote && localOnly {
		return bad("--remote and --peer naming this node contradict each other")
	}
	// The data-exit policy is checked before anything leaves the node.
	exit := s.exitFor(r)
	if r.Peer != "" && !exit.AllowsPeer(idText.peer(r.Peer), localOnly) {
		return api.Task{}, fmt.Errorf("%w: the input may not go to %s (%s)", ErrPolicy, r.Peer, exit.Rule)
	}
	if r.Remote && exit.Mode == agents.ExitNever {
		return api.Task{}, fmt.Errorf("%w: the input may not leave this node (%s)", ErrPolicy, exit.Rule)
	}
	var comm cid.Cid
	def := s.cfg.Default
	if def == nil {
		def = func(string) (cid.Cid, error) { return cid.Undef, errors.New("this node is not in any community") }
	}
	if c, err := def(r.Community); err == nil {
		comm = c
	} else if !localOnly && (r.Remote || r.Peer != "" || !s.cfg.Local.Has(r.Skill)) {
		return bad("%v", err)
	}
	if !s.enter() {
		return api.Task{}, ErrClosed
	}
	ctx, cancel := context.WithTimeout(s.ctx, r.Timeout)
	ms := s.now()
	t := api.Task{
		ID: NewID(), Status: StatusSubmitted, Role: "requester", Skill: r.Skill, Input: keep(r.Input),
		Requester: s.selfStr, Created: ms, Updated: ms, Parent: r.Parent, Ancestry: r.Ancestry,
		// A remote task that completes at once has four events.
		Events: append(make([]api.TaskEvent, 0, 4), api.TaskEvent{Seq: 1, Time: ms, Type: StatusSubmitted}),
	}
	if comm.Defined() {
		t.Community = idText.community(comm)
	}
	l := s.begin(t, cancel)
	s.workers.run(func() {
		defer s.wg.Done()
		defer s.end(l)
		defer cancel()
		s.run(ctx, l, r, comm)
	})
	// The caller's copy does not share the live timeline's array.
	t.Events = slices.Clip(t.Events)
	return t, nil
}

// candidates lists where the task may run, in order.
func (s *Service) candidates(r Request, comm cid.Cid) []candidate {
	switch {
	case r.Peer == s.self:
		return []candidate{{}}
	case r.Peer != "":
		// The owner named the provider: trust does not overrule that, but
		// certified-only and a ban still do.
		c := candidate{peer: r.Peer}
		certified := false
		if comm.Defined() {
			for _, p := range s.cfg.Index.Providers(comm, r.Skill) {
				if p.Peer == r.Peer {
					c.agent, c.tags, certified = p.Agent, p.Skill.Tags, p.Certified
					break
				}
			}
		}
		if r.CertifiedOnly && !certified {
			return nil
		}
		if comm.Defined() && s.cfg.Index.Standing(comm, r.Peer, c.agent).Banned {
			return nil // the community banned it: not even by name
		}
		return []candidate{c}
	}
	var out []candidate
	if !r.Remote && s.cfg.Local.Has(r.Skill) {
		out = append(out, candidate{})
	}
	if !comm.Defined() {
		return out
	}
	seen := map[peer.ID]bool{}
	for _, p := range r.Exclude {
		seen[p] = true
	}
	exit := s.exitFor(r)
	for _, p := range capindex.RankFrom(s.self, s.cfg.Index.Providers(comm, r.Skill)) {
		if p.Peer == s.self || seen[p.Peer] || !exit.AllowsPeer(idText.peer(p.Peer), false) || p.Distrusted || (r.CertifiedOnly && !p.Certified) {
			continue
		}
		seen[p.Peer] = true
		out = append(out, candidate{peer: p.Peer, agent: p.Agent, tags: p.Skill.Tags})
	}
	return out
}

// outcome is how one attempt ended.
type outcome struct {
	status   string // completed, rejected, failed, canceled
	code     string
	reason   string
	output   json.RawMessage
	receipt  *task.Receipt
	agent    string
	executor peer.ID
	tags     []string // the skill's advertised tags
}

func (s *Service) run(ctx context.Context, l *live, r Request, comm cid.Cid) {
	// The candidates are listed again before each attempt, so a provider
	// whose advert arrived while an earlier one failed is tried too.
	tried := map[peer.ID]bool{}
	next := func() (candidate, bool) {
		for _, c := range s.candidates(r, comm) {
			key := c.peer
			if key == "" {
				key = s.self
			}
			if !tried[key] {
				tried[key] = true
				return c, true
			}
		}
		return candidate{}, false
	}
	c, ok := next()
	if !ok {
		where := "in community " + comm.String()
		if !comm.Defined() {
			where = "on this node"
		}
		o := outcome{status: StatusFailed, code: CodeNoProvider, reason: fmt.Sprintf("no member offers skill %q %s", r.Skill, where)}
		if r.CertifiedOnly {
			o.reason = fmt.Sprintf("no certified member offers skill %q %s", r.Skill, where)
		}
		if exit := s.exitFor(r); exit.Mode != agents.ExitCommunity && comm.Defined() && len(s.cfg.Index.Providers(comm, r.Skill)) > 0 {
			o.code, o.reason = CodePolicy, fmt.Sprintf("members offer skill %q, but the input may not go to them (%s)", r.Skill, exit.Rule)
		}
		s.finish(l, o)
		return
	}
	var last outcome
	for attempt := 0; ok && ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			s.event(l, api.TaskEvent{Type: "retry", Peer: idText.peer(c.peer), Message: last.reason, Code: last.code}, nil)
		}
		if c.peer == "" {
			last = s.runLocal(ctx, l, r, comm)
		} else {
			last = s.runRemote(ctx, l, r, comm, c.peer)
			last.tags = c.tags
			s.report(ctx, l, r, comm, last)
		}
		if last.status == StatusCompleted || last.status == StatusCanceled {
			break
		}
		c, ok = next()
	}
	if ctx.Err() != nil && last.status != StatusCompleted {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && s.ctx.Err() == nil {
			last = outcome{status: StatusFailed, code: agents.CodeTimeout, reason: "the task's timeout passed", executor: last.executor, agent: last.agent}
		} else {
			last = outcome{status: StatusCanceled, code: agents.CodeCanceled, reason: "the task was canceled", executor: last.executor, agent: last.agent}
		}
	}
	if last.status == StatusRejected {
		// Every provider refused; nothing ran.
		last.reason = "every provider refused the task; the last said: " + last.reason
	}
	s.finish(l, last)
}

// report tells Config.Done about an attempt another member ended with a
// receipt: every such attempt, so a provider that fails before another
// completes the task is rated too. An attempt the owner canceled is not
// reported; one cut off by the task's timeout is, with code timeout.
func (s *Service) report(ctx context.Context, l *live, r Request, comm cid.Cid, o outcome) {
	if s.cfg.Done == nil || o.receipt == nil || o.executor == s.self || o.executor == "" {
		return
	}
	status, code := o.status, o.code
	switch {
	case status == StatusCanceled && errors.Is(ctx.Err(), context.DeadlineExceeded) && s.ctx.Err() == nil:
		status, code = StatusFailed, agents.CodeTimeout
	case status != StatusCompleted && status != StatusFailed:
		return
	}
	s.cfg.Done(Done{Task: l.t.ID, Skill: r.Skill, Community: comm, Status: status, Code: code,
		Receipt: o.receipt, Input: r.Input, Output: o.output, Tags: o.tags, Audit: r.Audit})
}

func (s *Service) finish(l *live, o outcome) {
	s.event(l, api.TaskEvent{Type: o.status, Code: o.code, Message: o.reason, Peer: idText.peer(o.executor), Agent: o.agent}, func(t *api.Task) {
		t.Status, t.Code, t.Error = o.status, o.code, o.reason
		if o.status == StatusCompleted {
			t.Code, t.Error = "", ""
		}
		t.Output = keep(o.output)
		if o.executor != "" {
			t.Executor = idText.peer(o.executor)
		}
		if o.agent != "" {
			t.Agent = o.agent
		}
		if o.receipt != nil {
			l.rc = o.receipt
		}
	})
}

func (s *Service) runLocal(ctx context.Context, l *live, r Request, comm cid.Cid) outcome {
	job, err := s.cfg.Local.Admit(r.Skill, r.Input, "", comm)
	if err != nil {
		s.event(l, api.TaskEvent{Type: StatusRejected, Peer: s.selfStr, Code: agents.CodeOf(err), Message: reasonOf(err)}, func(t *api.Task) { t.Attempts++ })
		return outcome{status: StatusRejected, code: agents.CodeOf(err), reason: reasonOf(err), executor: s.self}
	}
	defer job.Release()
	s.event(l, api.TaskEvent{Type: "accepted", Peer: s.selfStr, Agent: job.Agent()}, func(t *api.Task) {
		t.Status, t.Executor, t.Agent = StatusWorking, s.selfStr, job.Agent()
		t.Attempts++
	})
	started := s.cfg.Now()
	var out json.RawMessage
	err = s.durableStart(ctx, job)
	if err == nil {
		out, err = job.Run(withLineage(ctx, l.t.ID, r), func(msg string, pct int) {
			s.event(l, api.TaskEvent{Type: "progress", Message: msg, Percent: pct}, nil)
		})
	}
	ended := s.cfg.Now()
	o := outcome{status: StatusCompleted, output: out, agent: job.Agent(), executor: s.self}
	if err != nil {
		o = outcome{status: StatusFailed, code: agents.CodeOf(err), reason: reasonOf(err), agent: job.Agent(), executor: s.self}
		if ctx.Err() != nil {
			return o
		}
	}
	if comm.Defined() {
		// A local task gets a receipt too, so it can be audited like any.
		rc := &task.Receipt{Task: l.t.ID, Community: comm, Requester: s.self, Agent: job.Agent(), Skill: r.Skill,
			Input: task.Hash(r.Input), Status: task.StatusCompleted, Started: started.UnixMilli(), Ended: max(ended.UnixMilli(), started.UnixMilli())}
		if err != nil {
			rc.Status = task.StatusFailed
		} else {
			rc.Output = task.Hash(out)
		}
		if _, serr := s.signer.Sign(rc); serr == nil {
			o.receipt = rc
		}
	}
	return o
}

func (s *Service) runRemote(ctx context.Context, l *live, r Request, comm cid.Cid, p peer.ID) outcome {
	pStr := idText.peer(p)
	fail := func(status, code, reason string) outcome {
		return outcome{status: status, code: code, reason: reason, executor: p}
	}
	s.event(l, api.TaskEvent{Type: "attempt", Peer: pStr}, func(t *api.Task) {
		t.Attempts++
		t.Executor = pStr
	})
	deadline, _ := ctx.Deadline()
	started := time.Now()
	s.metrics.sent.Inc()
	st, err := s.cfg.Host.NewStream(network.WithAllowLimitedConn(ctx, "agora task"), p, task.ProtocolID)
	if err != nil {
		s.cfg.Index.Observe(p, r.Skill, 0, false)
		return fail(StatusFailed, CodeVanished, "could not reach the provider: "+err.Error())
	}
	_ = st.SetDeadline(deadline)
	ancestry := append(append([]string(nil), r.Ancestry...), l.t.ID)
	if len(ancestry) > task.MaxAncestry {
		ancestry = ancestry[len(ancestry)-task.MaxAncestry:]
	}
	req := &task.Request{ID: l.t.ID, Community: comm, Skill: r.Skill, Input: r.Input, Deadline: deadline.UnixMilli(),
		HopsLeft: uint64(max(r.HopsLeft-1, 0)), Ancestry: ancestry[:len(ancestry)-1]}
	if err := task.Write(st, req); err != nil {
		_ = st.Reset()
		return fail(StatusFailed, CodeVanished, "could not send the task: "+err.Error())
	}
	s.sigs.waiting.Add(1)
	defer s.sigs.waiting.Add(-1)
	// On cancel, tell the executor, then give up on the stream.
	// (context.AfterFunc rather than a goroutine per task that waits for
	// either: most tasks are never canceled.)
	stopped := make(chan struct{})
	defer close(stopped)
	stopWatch := context.AfterFunc(ctx, func() {
		_ = st.SetWriteDeadline(time.Now().Add(time.Second))
		_ = task.Write(st, &task.Cancel{ID: req.ID, Reason: "canceled by the requester"})
		// Give the executor a moment to end the task with its signed
		// receipt (a timed-out task can be rated that way).
		select {
		case <-stopped:
		case <-time.After(cancelGrace):
		}
		_ = st.Reset()
	})
	defer stopWatch() // before close(stopped): defers run last first
	protocolErr := func(what string) outcome {
		_ = st.Reset()
		s.cfg.Index.Observe(p, r.Skill, 0, false)
		return fail(StatusFailed, CodeProtocol, "the provider broke the task protocol: "+what)
	}
	accepted := false
	rd := getReader(st)
	defer putReader(rd)
	for {
		// An executor that says nothing for Silence is gone.
		_ = st.SetReadDeadline(earliest(deadline.Add(cancelGrace), time.Now().Add(Silence)))
		f, err := task.Read(rd, task.MaxFrame)
		if err != nil {
			_ = st.Reset()
			if ctx.Err() != nil {
				return fail(StatusCanceled, agents.CodeCanceled, "the task was canceled")
			}
			s.cfg.Index.Observe(p, r.Skill, 0, false)
			if errors.Is(err, task.ErrBadFrame) || errors.Is(err, task.ErrFrameTooLarge) {
				s.frameFault(p, err)
				return protocolErr(err.Error())
			}
			return fail(StatusFailed, CodeVanished, "the provider went away: "+err.Error())
		}
		if idOf(f) != req.ID {
			return protocolErr("a frame for another task")
		}
		switch f := f.(type) {
		case *task.Rejected:
			if accepted {
				return protocolErr("rejected after accepting")
			}
			_ = st.Close()
			s.event(l, api.TaskEvent{Type: StatusRejected, Peer: pStr, Code: f.Code, Message: f.Reason}, nil)
			return fail(StatusRejected, f.Code, f.Reason)
		case *task.Accepted:
			if accepted {
				return protocolErr("accepted twice")
			}
			accepted = true
			s.event(l, api.TaskEvent{Type: "accepted", Peer: pStr, Agent: f.Agent}, func(t *api.Task) {
				t.Status, t.Agent = StatusWorking, f.Agent
			})
		case *task.Progress:
			if !accepted {
				return protocolErr("progress before accepting")
			}
			if f.Message != "" || f.Percent >= 0 { // not a heartbeat
				s.event(l, api.TaskEvent{Type: "progress", Peer: pStr, Message: f.Message, Percent: int(f.Percent)}, nil)
			}
		case *task.Result:
			if !accepted {
				return protocolErr("a result before accepting")
			}
			// Closing sends our end of the stream through yamux's send
			// loop; the task is over, so it need not wait for that.
			go st.Close()
			rc, err := s.checkReceipt(f.Receipt, req, p, task.StatusCompleted, f.Output)
			if err != nil {
				s.cfg.Index.Observe(p, r.Skill, 0, false)
				return fail(StatusFailed, CodeBadReceipt, err.Error())
			}
			s.cfg.Index.Observe(p, r.Skill, time.Since(started), true)
			return outcome{status: StatusCompleted, output: f.Output, receipt: rc, agent: rc.Agent, executor: p}
		case *task.Failed:
			if !accepted {
				return protocolErr("a failure before accepting")
			}
			_ = st.Close()
			s.cfg.Index.Observe(p, r.Skill, 0, false)
			o := fail(StatusFailed, f.Code, f.Reason)
			if len(f.Receipt) > 0 {
				if rc, err := s.checkReceipt(f.Receipt, req, p, task.StatusFailed, nil); err == nil {
					o.receipt, o.agent = rc, rc.Agent
				}
			}
			if f.Code == agents.CodeCanceled && ctx.Err() != nil {
				o.status = StatusCanceled
			}
			return o
		default:
			return protocolErr("unexpected " + f.Type().String() + " frame")
		}
	}
}

// checkReceipt verifies a receipt and that it is about this task: signed by
// the provider, for this node, this skill, this input and this output.
func (s *Service) checkReceipt(raw []byte, req *task.Request, p peer.ID, status string, output []byte) (*task.Receipt, error) {
	rc, err := task.DecodeReceiptBy(raw, s.sigs.check)
	if err != nil {
		return nil, err
	}
	switch {
	case rc.Executor != p:
		return nil, fmt.Errorf("the receipt is signed by %s, not by the provider %s", rc.Executor, p)
	case rc.Task != req.ID, rc.Requester != s.self, rc.Skill != req.Skill, !rc.Community.Equals(req.Community):
		return nil, errors.New("the receipt is for another task")
	case rc.Status != status:
		return nil, fmt.Errorf("the receipt says %s, the provider said %s", rc.Status, status)
	case !bytes.Equal(rc.Input, task.Hash(req.Input)):
		return nil, errors.New("the receipt's input hash is not the input's")
	case output != nil && !bytes.Equal(rc.Output, task.Hash(output)):
		return nil, errors.New("the receipt's output hash is not the output's")
	}
	return rc, nil
}

func idOf(f task.Frame) string {
	switch f := f.(type) {
	case *task.Accepted:
		return f.ID
	case *task.Rejected:
		return f.ID
	case *task.Progress:
		return f.ID
	case *task.Result:
		return f.ID
	case *task.Failed:
		return f.ID
	case *task.Cancel:
		return f.ID
	case *task.Request:
		return f.ID
	}
	return ""
}

type lineageKey struct{}

// Lineage is what a task running on this node passes to the subtasks it
// delegates (the planner and workflows use it).
type Lineage struct {
	Task     string
	Ancestry []string // root first, Task last
	HopsLeft int
}

func withLineage(ctx context.Context, id string, r Request) context.Context {
	return context.WithValue(ctx, lineageKey{}, Lineage{Task: id, Ancestry: append(append([]string(nil), r.Ancestry...), id), HopsLeft: r.HopsLeft})
}

// LineageFrom returns the lineage of the task ctx runs, if any.
func LineageFrom(ctx context.Context) (Lineage, bool) {
	l, ok := ctx.Value(lineageKey{}).(Lineage)
	return l, ok
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// exitFor is the data-exit rule of a request.
func (s *Service) exitFor(r Request) agents.Exit {
	if s.cfg.Exit == nil {
		return agents.Exit{Mode: agents.ExitCommunity}
	}
	return s.cfg.Exit(r.Origin, r.Skill)
}
