package tasks_test

// Shared helpers of the delegation benchmarks: two real libp2p hosts on
// loopback TCP, each with what node/work.go wires for delegation (a
// badger datastore opened as the node opens it, an agents.Manager with the
// builtin agent, a capability index, a tasks.Service), and the raw baseline
// protocol the benchmarks compare delegation with (a signed echo).

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mh "github.com/multiformats/go-multihash"

	"github.com/agora-p2p/agora/node"
	"github.com/agora-p2p/agora/node/agents"
	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/capindex"
	"github.com/agora-p2p/agora/node/repo"
	"github.com/agora-p2p/agora/node/tasks"
	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/record"
)

// benchInput is the task input and the echo payload: 22 bytes of JSON.
var benchInput = json.RawMessage(`{"text":"hello world"}`)

// benchCommunity is the community both sides are in.
func benchCommunity() cid.Cid {
	sum, _ := mh.Sum([]byte("agora delegation benchmark"), mh.SHA2_256, -1)
	return cid.NewCidV1(cid.DagCBOR, sum)
}

// loopbackHost is a libp2p host with the default security and muxer,
// listening on loopback TCP only.
func loopbackHost(tb testing.TB) (host.Host, crypto.PrivKey) {
	tb.Helper()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		tb.Fatal(err)
	}
	h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		tb.Fatal(err)
	}
	return h, key
}

// sideOptions tune one side's delegation (zero values: the node's).
type sideOptions struct {
	// Tuned replaces the builtin agent file agents.Manager.Load writes
	// (agents.BuiltinAgentFile, the node's defaults) with the same agent
	// with limits.concurrency = Concurrency and limits.rate_per_peer =
	// AgentRate.
	Tuned       bool
	Concurrency int
	AgentRate   float64
	// RatePerPeer and Burst go to tasks.Config (0: 50/s, burst 100).
	RatePerPeer float64
	Burst       int
}

// tunedBuiltin is the builtin agent with the given limits.
func tunedBuiltin(concurrency int, rate float64) string {
	return fmt.Sprintf(`name = "builtin"
description = "Deterministic utilities: text statistics, jq queries over JSON, arithmetic."
version = "1"
backend = "builtin"

[sharing]
mode = "community"

[limits]
concurrency = %d
rate_per_peer = %g

[[skills]]
id = "text.stats"

[[skills]]
id = "json.query"

[[skills]]
id = "math.eval"
`, concurrency, rate)
}

// side is one node's delegation stack.
type side struct {
	h      host.Host
	key    crypto.PrivKey
	ds     *repo.Datastore
	agents *agents.Manager
	index  *capindex.Index
	svc    *tasks.Service
	ends   *taskEnds
}

// taskEnds is the event hub of a side: it keeps how the tasks this node
// requested ended (status/code), for waitTask's fallback.
type taskEnds struct {
	mu sync.Mutex
	m  map[string]string
	// races counts the Waits that lost a race with the journal (see
	// pair.delegate).
	races atomic.Int64
	// stages, when set, is told of every task event.
	stages *stages
}

func (e *taskEnds) Publish(typ string, data any) api.Event {
	u, ok := data.(api.TaskUpdate)
	if !ok || typ != "task.updated" {
		return api.Event{}
	}
	if e.stages != nil {
		e.stages.event(u)
	}
	if u.Role != "requester" {
		return api.Event{}
	}
	if tasks.Terminal(u.Status) {
		e.mu.Lock()
		e.m[u.TaskID] = u.Status + "/" + u.Event.Code
		e.mu.Unlock()
	}
	return api.Event{}
}

func (e *taskEnds) take(id string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.m[id]
	delete(e.m, id)
	return v, ok
}

func newSide(tb testing.TB, o sideOptions) *side {
	tb.Helper()
	s := &side{ends: &taskEnds{m: map[string]string{}}}
	s.h, s.key = loopbackHost(tb)
	base := tb.TempDir()
	var err error
	if s.ds, err = repo.OpenDatastore(filepath.Join(base, "datastore"), ""); err != nil {
		tb.Fatal(err)
	}
	dir := filepath.Join(base, "agents")
	if o.Tuned {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			tb.Fatal(err)
		}
		file := tunedBuiltin(o.Concurrency, o.AgentRate)
		if err := os.WriteFile(filepath.Join(dir, "builtin.toml"), []byte(file), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	if s.agents, err = agents.NewManager(dir, node.Factories(), agents.Env{Dir: dir}, nil); err != nil {
		tb.Fatal(err)
	}
	if err := s.agents.Load(context.Background()); err != nil {
		tb.Fatal(err)
	}
	if _, _, ok := s.agents.Skill("text.stats"); !ok {
		tb.Fatal("the builtin agent does not offer text.stats")
	}
	s.index = capindex.New(nil)
	comm := benchCommunity()
	if s.svc, err = tasks.New(tasks.Config{
		Host: s.h, Key: s.key, DB: s.ds.DB, Local: node.LocalAgents(s.agents), Index: s.index,
		Member:      func(c cid.Cid) bool { return c.Equals(comm) },
		Default:     func(string) (cid.Cid, error) { return comm, nil },
		RatePerPeer: o.RatePerPeer, Burst: o.Burst, Events: s.ends,
	}); err != nil {
		tb.Fatal(err)
	}
	return s
}

func (s *side) close() {
	s.svc.Close()
	_ = s.h.Close()
	_ = s.agents.Close()
	_ = s.ds.Close()
}

// advertAgents is what node.advertAgents lists: the skills shared in c.
func (s *side) advertAgents(c cid.Cid) []body.AdvertAgent {
	var out []body.AdvertAgent
	idx := map[string]int{}
	for _, ref := range s.agents.SharedIn(c.String()) {
		i, ok := idx[ref.Agent]
		if !ok {
			out = append(out, body.AdvertAgent{Name: ref.Agent})
			i = len(out) - 1
			idx[ref.Agent] = i
		}
		out[i].Skills = append(out[i].Skills, body.AdvertSkill{ID: ref.Skill.ID, Description: ref.Skill.Description,
			Tags: ref.Skill.Tags, Input: ref.Skill.Input, Output: ref.Skill.Output})
	}
	return out
}

// advertiseTo publishes s's advert, as capindex.Advertiser does, straight
// into the indexes of others (verified as the adverts topic's validator
// does), so they know s offers its skills.
func (s *side) advertiseTo(tb testing.TB, others ...*side) {
	tb.Helper()
	comm := benchCommunity()
	adv, err := capindex.NewAdvertiser(capindex.AdvertiserConfig{
		Key: s.key, Index: s.index,
		Communities: func() []cid.Cid { return []cid.Cid{comm} },
		Agents:      s.advertAgents,
		Publish: func(_ context.Context, c cid.Cid, raw []byte) error {
			rec, err := record.Open(raw, time.Now())
			if err != nil {
				return err
			}
			for _, o := range others {
				if fresh, err := o.index.Receive(c, rec); err != nil || !fresh {
					return fmt.Errorf("advert not taken: fresh %v, %v", fresh, err)
				}
			}
			return nil
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	adv.Sync(context.Background())
	for _, o := range others {
		if len(o.index.Providers(comm, "text.stats")) != 1 {
			tb.Fatal("the advert did not reach the other index")
		}
	}
}

// stages times a delegation's steps from the events both services
// publish (in one process, so one clock): when the requester journaled the
// task, began an attempt, heard Accepted, and ended it; when the executor
// accepted it and ended it.
type stages struct {
	mu sync.Mutex
	at map[string]map[string]time.Time // task ID -> role:event -> when
}

func (s *stages) event(u api.TaskUpdate) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.at[u.TaskID]
	if m == nil {
		m = map[string]time.Time{}
		s.at[u.TaskID] = m
	}
	m[u.Role+":"+u.Event.Type] = now
}

// take returns and forgets the times of task id.
func (s *stages) take(id string) map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.at[id]
	delete(s.at, id)
	return m
}

// stageNames are the steps of a delegation in order, as stages sees them,
// from Submit's call to Wait's return.
var stageNames = []string{"requester:submitted", "requester:attempt", "executor:accepted", "requester:accepted",
	"executor:completed", "requester:completed"}

// pair is a requester (a) and an executor (b), connected, each serving
// the signed echo.
type pair struct {
	a, b *side
}

func newPair(tb testing.TB, o sideOptions) *pair {
	tb.Helper()
	p := &pair{a: newSide(tb, o), b: newSide(tb, o)}
	tb.Cleanup(func() { p.a.close(); p.b.close() })
	p.b.advertiseTo(tb, p.a)
	for _, s := range []*side{p.a, p.b} {
		serveEcho(s.h, s.key)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.a.h.Connect(ctx, peer.AddrInfo{ID: p.b.h.ID(), Addrs: p.b.h.Addrs()}); err != nil {
		tb.Fatal(err)
	}
	return p
}

// delegate runs one task on b from a through the requester's API, as
// `agora run --peer` does (Submit, then Wait), and returns its status and
// code ("completed/" when it completed).
func (p *pair) delegate(ctx context.Context) (string, error) {
	end, _, err := p.delegateID(ctx)
	return end, err
}

func (p *pair) delegateID(ctx context.Context) (string, string, error) {
	t, err := p.a.svc.Submit(ctx, tasks.Request{Skill: "text.stats", Input: benchInput, Peer: p.b.h.ID(), HopsLeft: -1})
	if err != nil {
		return "", "", err
	}
	id := t.ID
	t, err = p.a.svc.Wait(ctx, id)
	ended, ok := p.a.ends.take(id)
	if ok && (errors.Is(err, tasks.ErrNotFound) || err == nil && !tasks.Terminal(t.Status)) {
		// Wait lost the race with the journal's flush: a task that has
		// ended is read back from the journal, and while the batch holding
		// its last version is being written it is neither in the pending
		// map nor in badger (ErrNotFound), or badger still has an older
		// version (not ended). Take the end from the event instead, and
		// count it.
		p.a.ends.races.Add(1)
		return ended, id, nil
	}
	if err != nil {
		return "", id, err
	}
	return t.Status + "/" + t.Code, id, nil
}

// The signed echo: the requester opens a stream and sends a payload; the
// responder answers with a ~150-byte reply and its Ed25519 signature of
// it, which the requester verifies with the responder's key. One stream,
// one round trip, one signature and one verification, as a delegation has
// at the least.
const echoProtocol = "/agora-bench/signed-echo/1.0.0"

const maxEcho = 4 << 10

func serveEcho(h host.Host, key crypto.PrivKey) {
	h.SetStreamHandler(echoProtocol, func(st network.Stream) {
		defer st.Close()
		_ = st.SetDeadline(time.Now().Add(10 * time.Second))
		in, err := io.ReadAll(io.LimitReader(st, maxEcho))
		if err != nil {
			_ = st.Reset()
			return
		}
		reply := fmt.Sprintf(`{"words":2,"lines":1,"chars":11,"input_bytes":%d,"agent":"builtin","skill":"text.stats","status":"completed","task":"Xq3v9kLmNp2RsTuW","ended":%d}`,
			len(in), time.Now().UnixMilli())
		sig, err := key.Sign([]byte(reply))
		if err != nil {
			_ = st.Reset()
			return
		}
		out := binary.AppendUvarint(nil, uint64(len(reply)))
		out = append(append(out, reply...), sig...)
		if _, err := st.Write(out); err != nil {
			_ = st.Reset()
		}
	})
}

var errBadEcho = errors.New("bad signed echo")

// roundTrip writes payload on a new stream of proto to p, closes its side
// and reads the whole answer (at most maxEcho bytes).
func roundTrip(ctx context.Context, h host.Host, p peer.ID, proto protocol.ID, payload []byte) ([]byte, error) {
	st, err := h.NewStream(ctx, p, proto)
	if err != nil {
		return nil, err
	}
	_ = st.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := st.Write(payload); err != nil {
		_ = st.Reset()
		return nil, err
	}
	if err := st.CloseWrite(); err != nil {
		_ = st.Reset()
		return nil, err
	}
	in, err := io.ReadAll(io.LimitReader(st, maxEcho))
	if err != nil {
		_ = st.Reset()
		return nil, err
	}
	_ = st.Close()
	return in, nil
}

// echo runs one signed echo with p, whose public key is pub.
func echo(ctx context.Context, h host.Host, p peer.ID, pub crypto.PubKey, payload []byte) error {
	in, err := roundTrip(ctx, h, p, echoProtocol, payload)
	if err != nil {
		return err
	}
	n, k := binary.Uvarint(in)
	if k <= 0 || uint64(len(in)-k) < n {
		return errBadEcho
	}
	reply, sig := in[k:k+int(n)], in[k+int(n):]
	if ok, err := pub.Verify(reply, sig); err != nil || !ok || !bytes.HasPrefix(reply, []byte(`{"words":2`)) {
		return errBadEcho
	}
	return nil
}

// percentile returns the q-quantile (nearest rank) of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// latencies sorts ds and returns its p50 and p99.
func latencies(ds []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(ds)
	return percentile(ds, 0.50), percentile(ds, 0.99)
}
