package tasks_test

// Shared helpers of the mocknet, executor and delegation tests: real
// libp2p hosts on a mocknet, real gossipsub, a real badger per node (opened
// with the node's options), a real agents.Manager (the builtin agent, plus
// exec agents written by the tests) adapted by node.LocalAgents, a real
// capindex.Index and Advertiser fed by a validator like node/communities'.
// Every helper's name starts with "mn".

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"

	"github.com/agora-p2p/agora/node"
	"github.com/agora-p2p/agora/node/agents"
	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/capindex"
	"github.com/agora-p2p/agora/node/tasks"
	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/community"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/agora-p2p/agora/protocol/task"
	"github.com/agora-p2p/agora/registry"
)

// mnCommunity is a synthetic community CID, the same in every test.
var mnCommunity = func() cid.Cid {
	h, err := mh.Sum([]byte("agora node/tasks mocknet tests"), mh.SHA2_256, -1)
	if err != nil {
		panic(err)
	}
	return cid.NewCidV1(cid.DagCBOR, h)
}()

// mnStatsInput and mnStatsOutput are a text.stats exchange.
const (
	mnStatsInput  = `{"text":"hello wide world\nbye"}`
	mnStatsOutput = `{"chars":20,"lines":2,"words":4}`
)

// mnNode is one node of a test network.
type mnNode struct {
	key    crypto.PrivKey
	id     peer.ID
	h      host.Host
	db     *badger.DB
	dbDir  string
	agents *agents.Manager
	agDir  string
	idx    *capindex.Index
	svc    *tasks.Service
	events *mnEvents
	// faults counts tasks.Config.Fault calls by "peer reason".
	faultMu sync.Mutex
	faults  map[string]int
	// set by mnJoinAdverts
	ps    *pubsub.PubSub
	topic *pubsub.Topic
	adv   *capindex.Advertiser
}

// mnOptions tune a node.
type mnOptions struct {
	// agentFiles are extra agent files (name -> TOML) written before Load.
	agentFiles map[string]string
	// member overrides tasks.Config.Member (default: mnCommunity only).
	member      func(cid.Cid) bool
	ratePerPeer float64
	burst       int
	noService   bool // a bare host (a raw protocol client)
	noDefault   bool // leave tasks.Config.Default nil
}

// mnNet is a mocknet with its nodes, torn down by t.Cleanup.
type mnNet struct {
	t     testing.TB
	mn    mocknet.Mocknet
	dir   string
	nodes []*mnNode
}

func mnNewNet(t testing.TB) *mnNet {
	t.Helper()
	// The directory comes first so that it is removed after the cleanup
	// below closed the databases (cleanups run last in, first out).
	net := &mnNet{t: t, mn: mocknet.New(), dir: t.TempDir()}
	t.Cleanup(func() {
		// Services first (they cancel their tasks and flush their
		// journals), then the hosts, then the databases and agents.
		var wg sync.WaitGroup
		for _, n := range net.nodes {
			if n.svc != nil {
				wg.Add(1)
				go func() { defer wg.Done(); n.svc.Close() }()
			}
		}
		wg.Wait()
		_ = net.mn.Close()
		for _, n := range net.nodes {
			if n.agents != nil {
				_ = n.agents.Close()
			}
			if n.db != nil {
				if err := n.db.Close(); err != nil {
					t.Errorf("close badger: %v", err)
				}
			}
		}
	})
	return net
}

// mnOpenDB opens badger as the node does (registry.BadgerOptions), with the
// caches of the low-power profile so that fifty fit in a test.
func mnOpenDB(t testing.TB, dir string) *badger.DB {
	t.Helper()
	o := registry.BadgerOptions(dir).WithMemTableSize(4 << 20).WithBlockCacheSize(2 << 20).WithIndexCacheSize(1 << 20)
	db, err := badger.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// add starts one node: host, badger, agents, index and tasks service.
func (net *mnNet) add(o mnOptions) *mnNode {
	t := net.t
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n := &mnNode{key: key, events: &mnEvents{changed: make(chan struct{})}}
	n.id, _ = peer.IDFromPrivateKey(key)
	addr := ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 20000+len(net.nodes)))
	if n.h, err = net.mn.AddPeer(key, addr); err != nil {
		t.Fatal(err)
	}
	net.nodes = append(net.nodes, n)
	if o.noService {
		return n
	}
	base := filepath.Join(net.dir, fmt.Sprint(len(net.nodes)))
	n.dbDir = filepath.Join(base, "db")
	n.db = mnOpenDB(t, n.dbDir)
	n.agDir = filepath.Join(base, "agents")
	if err := os.MkdirAll(n.agDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if len(o.agentFiles) > 0 {
		// Load writes the builtin agent only into a fresh, empty directory.
		if err := os.WriteFile(filepath.Join(n.agDir, "builtin.toml"), []byte(agents.BuiltinAgentFile), 0o600); err != nil {
			t.Fatal(err)
		}
		for name, data := range o.agentFiles {
			if err := os.WriteFile(filepath.Join(n.agDir, name+".toml"), []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n.agents, err = agents.NewManager(n.agDir, node.Factories(), agents.Env{Dir: n.agDir}, nil); err != nil {
		t.Fatal(err)
	}
	if err := n.agents.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, a := range n.agents.List() {
		if a.Error != "" {
			t.Fatalf("agent %s: %s", a.Name, a.Error)
		}
	}
	n.idx = capindex.New(nil)
	member := o.member
	if member == nil {
		member = func(c cid.Cid) bool { return c.Equals(mnCommunity) }
	}
	def := mnDefault
	if o.noDefault {
		def = nil
	}
	if n.svc, err = tasks.New(tasks.Config{
		Host: n.h, Key: key, DB: n.db, Local: node.LocalAgents(n.agents), Index: n.idx,
		Member: member, Default: def, Events: n.events,
		RatePerPeer: o.ratePerPeer, Burst: o.burst,
		Fault: func(p peer.ID, reason string) {
			n.faultMu.Lock()
			defer n.faultMu.Unlock()
			if n.faults == nil {
				n.faults = map[string]int{}
			}
			n.faults[p.String()+" "+reason]++
		},
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// faultCount returns how often the node faulted p for reason.
func (n *mnNode) faultCount(p peer.ID, reason string) int {
	n.faultMu.Lock()
	defer n.faultMu.Unlock()
	return n.faults[p.String()+" "+reason]
}

func mnDefault(id string) (cid.Cid, error) {
	if id == "" || id == mnCommunity.String() {
		return mnCommunity, nil
	}
	return cid.Undef, fmt.Errorf("not in community %q; choose %s", id, mnCommunity)
}

// link links every pair of nodes and connects each to the given ones.
func (net *mnNet) linkAll() {
	if err := net.mn.LinkAll(); err != nil {
		net.t.Fatal(err)
	}
}

func (net *mnNet) connect(a, b *mnNode) {
	net.t.Helper()
	if _, err := net.mn.ConnectPeers(a.id, b.id); err != nil {
		net.t.Fatal(err)
	}
}

// advertiseDirect signs from's advert and hands it to the indexes of the
// nodes to (for the small tests, which need no gossip).
func (net *mnNet) advertiseDirect(from *mnNode, to ...*mnNode) {
	t := net.t
	t.Helper()
	now := time.Now()
	adv := body.Advert{Seq: uint64(now.UnixNano()), Expires: now.Add(10 * time.Minute).UnixMilli(), Agents: node.AdvertAgents(from.agents, mnCommunity)}
	rec, err := record.Sign(from.key, record.KindAdvert, mnCommunity, adv, now)
	if err != nil {
		t.Fatal(err)
	}
	rec, err = record.Decode(rec.Raw())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range to {
		if err := rec.Verify(); err != nil {
			t.Fatal(err)
		}
		if fresh, err := n.idx.Receive(mnCommunity, rec); err != nil || !fresh {
			t.Fatalf("index refused the advert: %v %v", fresh, err)
		}
	}
}

// joinAdverts starts gossipsub on n, joins the adverts topic with a
// validator like node/communities' and runs an Advertiser publishing n's
// shared skills, republishing when a member joins the topic.
func (n *mnNode) joinAdverts(t testing.TB, ctx context.Context, wg *sync.WaitGroup, lifetime time.Duration) {
	t.Helper()
	var err error
	if n.ps, err = pubsub.NewGossipSub(ctx, n.h, pubsub.WithFloodPublish(true), pubsub.WithPeerExchange(true), pubsub.WithLogger(mnPSLog)); err != nil {
		t.Fatal(err)
	}
	name := community.AdvertsTopic(mnCommunity)
	if err := n.ps.RegisterTopicValidator(name, mnAdvertValidator(n)); err != nil {
		t.Fatal(err)
	}
	if n.topic, err = n.ps.Join(name); err != nil {
		t.Fatal(err)
	}
	sub, err := n.topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	events, err := n.topic.EventHandler()
	if err != nil {
		t.Fatal(err)
	}
	if n.adv, err = capindex.NewAdvertiser(capindex.AdvertiserConfig{
		Key: n.key, Index: n.idx,
		Communities: func() []cid.Cid { return []cid.Cid{mnCommunity} },
		Agents:      func(c cid.Cid) []body.AdvertAgent { return node.AdvertAgents(n.agents, c) },
		Publish: func(ctx context.Context, _ cid.Cid, raw []byte) error {
			return n.topic.Publish(ctx, raw)
		},
		Lifetime: lifetime,
	}); err != nil {
		t.Fatal(err)
	}
	wg.Add(3)
	go func() { // drain, as communities.read does
		defer wg.Done()
		for {
			if _, err := sub.Next(ctx); err != nil {
				return
			}
		}
	}()
	go func() { // as communities.watchMembers does
		defer wg.Done()
		defer events.Cancel()
		for {
			e, err := events.NextPeerEvent(ctx)
			if err != nil {
				return
			}
			if e.Type == pubsub.PeerJoin {
				n.adv.MemberJoined(mnCommunity, e.Peer)
			}
		}
	}()
	go func() { defer wg.Done(); n.adv.Run(ctx) }()
}

var mnPSLog = func() *slog.Logger {
	if os.Getenv("MN_PSLOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}()

// mnAdvertValidator is node/communities' validator for the adverts topic.
func mnAdvertValidator(n *mnNode) pubsub.ValidatorEx {
	return func(_ context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		if msg.GetFrom() == n.id && from == n.id {
			return pubsub.ValidationAccept
		}
		rec, err := record.Decode(msg.Data)
		if err == nil {
			if err = rec.Verify(); err == nil {
				err = rec.CheckClock(time.Now())
			}
		}
		switch {
		case err != nil && !record.IsSenderFault(err):
			return pubsub.ValidationIgnore
		case err != nil:
			return pubsub.ValidationReject
		case !rec.Community.Equals(mnCommunity), rec.Kind != record.KindAdvert:
			return pubsub.ValidationReject
		}
		fresh, err := n.idx.Receive(mnCommunity, rec)
		switch {
		case err != nil && record.IsSenderFault(err):
			return pubsub.ValidationReject
		case err != nil, !fresh:
			return pubsub.ValidationIgnore
		}
		return pubsub.ValidationAccept
	}
}

// mnEvents is a tasks.Publisher that keeps every event, for tests to wait
// on without sleeping.
type mnEvents struct {
	mu      sync.Mutex
	evs     []mnEvent
	changed chan struct{} // closed and replaced at each event
}

type mnEvent struct {
	TaskID, Status, Role, Skill string
	Ev                          api.TaskEvent
}

func (e *mnEvents) Publish(typ string, data any) api.Event {
	u, ok := data.(api.TaskUpdate)
	if typ != "task.updated" || !ok {
		return api.Event{}
	}
	ev := mnEvent{TaskID: u.TaskID, Status: u.Status, Role: u.Role, Skill: u.Skill, Ev: u.Event}
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
	return api.Event{Type: typ}
}

// wait returns the first event (ever published) matching pred, waiting up
// to timeout for one.
func (e *mnEvents) wait(t testing.TB, timeout time.Duration, what string, pred func(mnEvent) bool) mnEvent {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		e.mu.Lock()
		for _, ev := range e.evs {
			if pred(ev) {
				e.mu.Unlock()
				return ev
			}
		}
		ch := e.changed
		e.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("no event %s within %s", what, timeout)
		}
	}
}

// mnWait waits for a task's end on svc.
func mnWait(t testing.TB, svc *tasks.Service, id string, timeout time.Duration) api.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	got, err := svc.Wait(ctx, id)
	if err != nil {
		t.Fatalf("wait for task %s: %v", id, err)
	}
	if !tasks.Terminal(got.Status) {
		t.Fatalf("task %s did not end within %s: %+v", id, timeout, got)
	}
	return got
}

// mnCheckReceipt decodes and verifies the receipt of a completed task and
// checks it names the task, requester, executor, skill, input and output.
func mnCheckReceipt(t testing.TB, got api.Task, requester, executor peer.ID, input string) *task.Receipt {
	t.Helper()
	if got.Receipt == nil {
		t.Fatalf("task %s has no receipt", got.ID)
	}
	raw, err := base64.StdEncoding.DecodeString(got.Receipt.Raw)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := task.DecodeReceipt(raw)
	if err != nil {
		t.Fatalf("receipt of %s does not verify: %v", got.ID, err)
	}
	switch {
	case rc.Task != got.ID:
		t.Errorf("receipt task %s, want %s", rc.Task, got.ID)
	case rc.Requester != requester:
		t.Errorf("receipt requester %s, want %s", rc.Requester, requester)
	case rc.Executor != executor:
		t.Errorf("receipt executor %s, want %s", rc.Executor, executor)
	case rc.Skill != got.Skill:
		t.Errorf("receipt skill %s, want %s", rc.Skill, got.Skill)
	case !rc.Community.Equals(mnCommunity):
		t.Errorf("receipt community %s", rc.Community)
	case string(rc.Input) != string(task.Hash([]byte(input))):
		t.Errorf("receipt input hash is not the input's")
	case rc.Status != task.StatusCompleted:
		t.Errorf("receipt status %s", rc.Status)
	case string(rc.Output) != string(task.Hash(got.Output)):
		t.Errorf("receipt output hash is not the output's")
	case rc.Ended < rc.Started || rc.Started <= 0:
		t.Errorf("receipt times %d..%d", rc.Started, rc.Ended)
	}
	if got.Receipt.Executor != executor.String() || !got.Receipt.Verified {
		t.Errorf("receipt view %+v", got.Receipt)
	}
	return rc
}

// mnJSONEqual compares two JSON texts by value.
func mnJSONEqual(t testing.TB, got []byte, want string) {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("output %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Fatalf("output %s, want %s", got, want)
	}
}

// mnSlowAgent is an exec agent with one skill, "slow.echo", that writes
// the shell's pid to pidfile, reports progress, sleeps, then echoes its
// input.
func mnSlowAgent(name, skill, pidfile string, sleep string, concurrency int, extra string) string {
	return fmt.Sprintf(`name = %q
backend = "exec"
%s
[limits]
concurrency = %d

[exec]
command = ["/bin/sh", "-c", 'echo $$ >> "$PIDFILE"; echo "progress: 10 started" >&2; sleep "$SLEEP"; cat']
env = ["PIDFILE=%s", "SLEEP=%s"]

[[skills]]
id = %q
`, name, extra, concurrency, pidfile, sleep, skill)
}

// mnReadPids reads the pids an mnSlowAgent wrote.
func mnReadPids(t testing.TB, path string) []int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, f := range strings.Fields(string(data)) {
		var p int
		if _, err := fmt.Sscan(f, &p); err != nil {
			t.Fatalf("pid file %q", data)
		}
		out = append(out, p)
	}
	return out
}

// mnRaw opens a task stream from c to n and writes f.
func mnRaw(t testing.TB, c, n *mnNode, f task.Frame) network.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.h.NewStream(ctx, n.id, task.ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	_ = st.SetDeadline(time.Now().Add(20 * time.Second))
	if f != nil {
		if err := task.Write(st, f); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// mnRequest is a valid request for text.stats.
func mnRequest(skill, input string) *task.Request {
	return &task.Request{ID: tasks.NewID(), Community: mnCommunity, Skill: skill, Input: []byte(input),
		Deadline: time.Now().Add(30 * time.Second).UnixMilli(), HopsLeft: 3}
}

// mnReadFrame reads one frame.
func mnReadFrame(t testing.TB, st network.Stream) task.Frame {
	t.Helper()
	f, err := task.Read(st, task.MaxFrame)
	if err != nil {
		t.Fatalf("read a frame: %v", err)
	}
	return f
}

// mnReadEnd reads frames until Result or Failed.
func mnReadEnd(t testing.TB, st network.Stream) task.Frame {
	t.Helper()
	for {
		f := mnReadFrame(t, st)
		switch f.(type) {
		case *task.Result, *task.Failed:
			return f
		case *task.Progress:
		default:
			t.Fatalf("unexpected %T %+v", f, f)
		}
	}
}
