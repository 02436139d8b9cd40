package tasks

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mb "github.com/multiformats/go-multibase"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/agora-p2p/agora/node/agents"
	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/capindex"
	"github.com/agora-p2p/agora/protocol/task"
)

// Local is this node's agents as delegation sees them.
type Local interface {
	// Admit checks that an enabled agent has skill (shared in community
	// when the request comes from another peer, from != "" ), that input
	// fits its size and schema, and takes one of the agent's concurrency
	// slots without waiting. The error is an *agents.RunError whose code
	// goes in the rejection. release must be called once the job ends.
	Admit(skill string, input json.RawMessage, from peer.ID, community cid.Cid) (Job, error)
	// Has reports whether a local agent could run skill for this node.
	Has(skill string) bool
}

// Job is an admitted task on a local agent.
type Job interface {
	Agent() string
	// Run runs the skill; the output passed the output schema.
	Run(ctx context.Context, progress agents.Progress) (json.RawMessage, error)
	Release()
}

// Pure is implemented by a Job whose run has no effect outside the process
// (the builtin skills) and returns true. The executor makes the journal
// entry of any other job durable before it runs, so that a node killed
// while such a task runs lists it as failed after the restart; a pure task
// is journaled off the task's path (it usually ends before the journal's
// next write, and a crash before that loses nothing but its history).
type Pure interface{ Pure() bool }

// Publisher receives task events (the API's event hub).
type Publisher interface {
	Publish(typ string, data any) api.Event
}

// Config wires a Service.
type Config struct {
	Host  host.Host
	Key   crypto.PrivKey
	DB    *badger.DB
	Local Local
	Index *capindex.Index
	// Member reports whether this node is in a community.
	Member func(cid.Cid) bool
	// Default picks the community of a request that names none ("" when
	// there is no single one); it returns an error that says which IDs to
	// choose from.
	Default func(id string) (cid.Cid, error)
	Events  Publisher
	Log     *slog.Logger
	Now     func() time.Time
	// RatePerPeer and Burst bound the tasks one remote peer may submit to
	// this node (defaults 200/s, burst 400); each agent may set a lower
	// rate of its own (limits.rate_per_peer).
	RatePerPeer float64
	Burst       int
	// DefaultTimeout is a task's deadline when the request names none
	// (default 60 s).
	DefaultTimeout time.Duration
	// Exit gives the data-exit rule for a subtask of skill started by the
	// local agent origin ("" for the owner); nil allows every member.
	Exit func(origin, skill string) agents.Exit
	// Registerer gets the service's metrics (nil: not exported).
	Registerer prometheus.Registerer
	// Admit, if set, may refuse a remote requester in a community (the
	// community banned it, or its trust is under the policy's floor): it
	// returns a rejection code and reason, or "" to go on. It runs on
	// every request and must be fast.
	Admit func(community cid.Cid, requester peer.ID) (code, reason string)
	// Done, if set, is told about every task another member ran for this
	// node with a receipt (feedback, audits). It runs on the task's
	// goroutine after the task ended and must not block.
	Done func(Done)
	// Fault, if set, is told when a peer provably broke the task protocol
	// (a frame that does not decode or is over the cap), with a reason
	// "task:malformed" or "task:too-large"; the node scores the peer down.
	Fault func(p peer.ID, reason string)
}

// frameFault reports a peer whose frame failed to decode to cfg.Fault.
func (s *Service) frameFault(p peer.ID, err error) {
	if s.cfg.Fault == nil {
		return
	}
	switch {
	case errors.Is(err, task.ErrFrameTooLarge):
		s.cfg.Fault(p, "task:too-large")
	case errors.Is(err, task.ErrBadFrame):
		s.cfg.Fault(p, "task:malformed")
	}
}

// metrics count what crosses the wire, so an operator (and a test) can see
// that nothing left the node.
type metrics struct {
	sent     prometheus.Counter     // task streams this node opened
	received *prometheus.CounterVec // task requests by outcome: accepted, rejected
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "agora_task_requests_sent_total",
			Help: "Task requests this node sent to other members (streams opened on /agora/task/1.0.0)."}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agora_task_requests_received_total",
			Help: "Task requests other members sent to this node, by outcome."}, []string{"outcome"}),
	}
	if reg != nil {
		reg.MustRegister(m.sent, m.received)
	}
	return m
}

// Service is the executor, the requester and the journal. Safe for
// concurrent use.
type Service struct {
	cfg  Config
	self peer.ID
	log  *slog.Logger
	j    *journal
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	selfStr string
	metrics *metrics
	signer  *task.Signer
	workers *workers
	sigs    *sigBatcher

	mu sync.Mutex
	// closing is set when Close begins: no task starts after it (enter).
	closing bool
	live    map[string]*live
	rates   map[peer.ID]*rate.Limiter
	// seen and seenOld hold remote request IDs (requester/ID) of the
	// current and the previous seenFor period, against replays.
	seen, seenOld map[string]struct{}
	seenSince     time.Time
}

// live is a task in flight on this node.
type live struct {
	mu     sync.Mutex
	t      api.Task
	cancel context.CancelFunc
	done   chan struct{}
	// rc is the task's receipt, set by an event's change. t.Receipt, its
	// view for the API, is made from it when first read (the journal
	// stores the encoding alone).
	rc *task.Receipt
}

// snapshot implements snapshotter.
func (l *live) snapshot() api.Task {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rc != nil && l.t.Receipt == nil {
		l.t.Receipt = receiptView(l.rc)
	}
	t := l.t
	t.Events = slices.Clone(l.t.Events)
	return t
}

// stored implements snapshotter: the task is encoded under its lock, so
// nothing is copied first.
func (l *live) stored() (stored, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var rc []byte
	if l.rc != nil {
		rc = l.rc.Raw()
	}
	return encodeStored(&l.t, rc)
}

// New opens the journal (ending tasks a previous run left in flight) and
// registers the executor's stream handler.
func New(cfg Config) (*Service, error) {
	if cfg.Host == nil || cfg.Key == nil || cfg.DB == nil || cfg.Local == nil || cfg.Index == nil || cfg.Member == nil {
		return nil, errors.New("tasks: Config needs Host, Key, DB, Local, Index and Member")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.RatePerPeer <= 0 {
		cfg.RatePerPeer = 200
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 400
	}
	if cfg.DefaultTimeout <= 0 {
		cfg.DefaultTimeout = 60 * time.Second
	}
	signer, err := task.NewSigner(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("tasks: the node's key cannot sign receipts: %w", err)
	}
	if signer.ID() != cfg.Host.ID() {
		return nil, errors.New("tasks: Config.Key is not the host's key")
	}
	j, err := openJournal(cfg.DB, cfg.Log, cfg.Now())
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, self: cfg.Host.ID(), selfStr: cfg.Host.ID().String(), log: cfg.Log, j: j, ctx: ctx, stop: stop,
		live: map[string]*live{}, seen: map[string]struct{}{}, seenSince: cfg.Now(), rates: map[peer.ID]*rate.Limiter{},
		metrics: newMetrics(cfg.Registerer), signer: signer, workers: newWorkers(), sigs: newSigBatcher()}
	cfg.Host.SetStreamHandler(task.ProtocolID, func(st network.Stream) {
		// On a worker: libp2p starts a new goroutine for every stream.
		s.workers.run(func() { s.serve(st) })
	})
	return s, nil
}

// Close stops serving, cancels the tasks in flight and writes the journal.
func (s *Service) Close() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.cfg.Host.RemoveStreamHandler(task.ProtocolID)
	s.stop()
	s.wg.Wait()
	s.workers.close()
	s.j.close()
}

// idEncoding writes task IDs in lower-case base32: 26 characters that never
// start with '-', so a command line never mistakes one for a flag.
var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewID returns a fresh random task ID (128 bits).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(idEncoding.EncodeToString(b[:]))
}

func (s *Service) now() int64 { return s.cfg.Now().UnixMilli() }

// enter counts a task Close must wait for, unless Close has begun.
func (s *Service) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.wg.Add(1)
	return true
}

// begin registers a live task and journals it.
func (s *Service) begin(t api.Task, cancel context.CancelFunc) *live {
	l, _ := s.tryBegin(t, cancel)
	return l
}

// tryBegin is begin unless a task with the same ID is live; ok is false
// then and nothing changed.
func (s *Service) tryBegin(t api.Task, cancel context.CancelFunc) (_ *live, ok bool) {
	l := &live{t: t, cancel: cancel, done: make(chan struct{})}
	s.mu.Lock()
	if s.live[t.ID] != nil {
		s.mu.Unlock()
		return nil, false
	}
	s.live[t.ID] = l
	s.mu.Unlock()
	s.j.put(t.ID, l)
	s.publish(t, t.Events[len(t.Events)-1])
	return l, true
}

// known reports whether a task with this ID is live or journaled here.
func (s *Service) known(id string) bool {
	s.mu.Lock()
	l := s.live[id]
	s.mu.Unlock()
	if l != nil {
		return true
	}
	ok, _ := s.j.has(id)
	return ok
}

// event appends an event to a live task, applies change, journals it and
// tells the event stream.
func (s *Service) event(l *live, ev api.TaskEvent, change func(*api.Task)) {
	l.mu.Lock()
	ev.Time = s.now()
	if change != nil {
		change(&l.t)
	}
	t := &l.t
	if ev.Type == "progress" && len(t.Events) >= maxEvents && t.Events[len(t.Events)-1].Type == "progress" {
		ev.Seq = t.Events[len(t.Events)-1].Seq
		t.Events[len(t.Events)-1] = ev
	} else {
		ev.Seq = len(t.Events) + 1
		t.Events = append(t.Events, ev)
	}
	t.Updated = ev.Time
	if Terminal(t.Status) {
		t.DurationMS = t.Updated - t.Created
	}
	id, status, role, skill := t.ID, t.Status, t.Role, t.Skill
	l.mu.Unlock()
	s.j.put(id, l)
	if s.cfg.Events != nil {
		s.cfg.Events.Publish("task.updated", api.TaskUpdate{TaskID: id, Status: status, Role: role, Skill: skill, Event: ev})
	}
}

// end removes a finished live task.
func (s *Service) end(l *live) {
	s.mu.Lock()
	delete(s.live, l.t.ID)
	s.mu.Unlock()
	close(l.done)
}

func (s *Service) publish(t api.Task, ev api.TaskEvent) {
	if s.cfg.Events == nil {
		return
	}
	s.cfg.Events.Publish("task.updated", api.TaskUpdate{TaskID: t.ID, Status: t.Status, Role: t.Role, Skill: t.Skill, Event: ev})
}

// Get returns a task with its events.
func (s *Service) Get(id string) (api.Task, error) {
	s.mu.Lock()
	l := s.live[id]
	s.mu.Unlock()
	var t api.Task
	var err error
	if l != nil {
		t = l.snapshot()
	} else if t, err = s.j.get(id); err != nil {
		return t, err
	}
	t.Children = s.children(id)
	return t, nil
}

// children lists the subtasks of a task, oldest first, without events.
func (s *Service) children(parent string) []api.Task {
	ids := s.j.children(parent)
	s.mu.Lock()
	for id, l := range s.live {
		l.mu.Lock()
		if l.t.Parent == parent {
			ids = append(ids, id)
		}
		l.mu.Unlock()
	}
	s.mu.Unlock()
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var out []api.Task
	for _, id := range ids {
		var t api.Task
		if l := s.liveTask(id); l != nil {
			t = l.snapshot()
		} else if j, err := s.j.get(id); err == nil {
			t = j
		} else {
			continue
		}
		out = append(out, summary(t))
	}
	slices.SortFunc(out, func(a, b api.Task) int { return cmp.Compare(a.Created, b.Created) })
	return out
}

func (s *Service) liveTask(id string) *live {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live[id]
}

// List returns up to limit tasks, newest first, without events.
func (s *Service) List(limit int) ([]api.Task, error) {
	if limit <= 0 || limit > 10000 {
		limit = 100
	}
	return s.j.list(limit)
}

// Cancel stops a task running on this node, as requester or executor.
func (s *Service) Cancel(id string) error {
	s.mu.Lock()
	l := s.live[id]
	s.mu.Unlock()
	if l == nil {
		if _, err := s.j.get(id); err != nil {
			return err
		}
		return fmt.Errorf("the task has already ended")
	}
	l.cancel()
	return nil
}

// ReceiptChecks says how many receipt signatures this node has checked as
// a requester, and in how many batches (sigBatcher).
func (s *Service) ReceiptChecks() (batches, signatures int64) {
	return s.sigs.batches.Load(), s.sigs.sigs.Load()
}

// Wait blocks until the task ends or ctx does, and returns it.
func (s *Service) Wait(ctx context.Context, id string) (api.Task, error) {
	s.mu.Lock()
	l := s.live[id]
	s.mu.Unlock()
	if l == nil {
		return s.Get(id)
	}
	select {
	case <-l.done:
	case <-ctx.Done():
	}
	return l.snapshot(), nil
}

// receiptView decodes a receipt for the API.
func receiptView(r *task.Receipt) *api.Receipt {
	enc := func(b []byte) string {
		if len(b) == 0 {
			return ""
		}
		s, _ := mb.Encode(mb.Base58BTC, b)
		return s[1:]
	}
	return &api.Receipt{
		CID: r.CID().String(), Task: r.Task, Community: idText.community(r.Community),
		Requester: idText.peer(r.Requester), Executor: idText.peer(r.Executor), Agent: r.Agent, Skill: r.Skill,
		InputHash: enc(r.Input), OutputHash: enc(r.Output), Status: r.Status,
		Started: r.Started, Ended: r.Ended, Verified: true,
		Raw: base64.StdEncoding.EncodeToString(r.Raw()),
	}
}

// limiter returns p's token bucket.
func (s *Service) limiter(p peer.ID) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.rates[p]
	if l == nil {
		if len(s.rates) > 4096 { // forget idle peers rather than grow
			for k, v := range s.rates {
				if v.Tokens() >= float64(s.cfg.Burst) {
					delete(s.rates, k)
				}
			}
		}
		l = rate.NewLimiter(rate.Limit(s.cfg.RatePerPeer), s.cfg.Burst)
		s.rates[p] = l
	}
	return l
}
