package governance

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"

	"github.com/agora-p2p/agora/internal/benchsamples"
	"github.com/agora-p2p/agora/node/trust"
	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/community"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/agora-p2p/agora/protocol/task"
	"github.com/agora-p2p/agora/registry"
	gov "github.com/agora-p2p/agora/registry/governance"
)

// Issue 7: every node tallies a proposal itself when its own clock passes
// end+grace, so tallies should agree with no round of messages after the
// close. These run governance on a gossiping mocknet and check that every
// node reaches the founder's final tally and derived policy, and measure
// how soon, against the time one gossip message takes to reach every node.

const (
	linkLatency    = 20 * time.Millisecond
	graceSeconds   = 1
	convergeWithin = 60 * time.Second // generous: go test runs other packages beside it
	pingTopic      = "agora-test/ping"
)

var discard = slog.New(slog.DiscardHandler)

// gossipNet is a mocknet of governance nodes in one community, node 0 its
// founder. Records travel on the community's records topic only, whose
// validator ingests them as replicate.ValidateRecord does; no sync runs.
type gossipNet struct {
	tb      testing.TB
	mn      mocknet.Mocknet
	comm    comms
	nodes   []*gossipNode
	ctx     context.Context
	cancel  context.CancelFunc
	readers sync.WaitGroup
	pings   chan ping
	pingSeq uint64
	// pingArrivals is every node's arrival delay of every gossipAll
	// message, for the benchmark's samples.
	pingArrivals []time.Duration
}

type gossipNode struct {
	member
	i       int
	h       host.Host
	ps      *pubsub.PubSub
	records *pubsub.Topic
	ping    *pubsub.Topic
	db      *badger.DB
	store   *registry.Store
	trust   *trust.Service
	svc     *Service
	// refused counts gossiped records the registry refused other than as
	// duplicates: a vote that outran its proposal, say. No sync repairs
	// that here, so it explains a node that never converges.
	refused atomic.Int64

	// gate keeps the validators off the registry once it is closing.
	gate sync.RWMutex
	shut bool

	mu      sync.Mutex
	changes []time.Time   // when OnPolicy fired
	changed chan struct{} // one pending OnPolicy signal
}

type ping struct {
	node int
	seq  uint64
	at   time.Time
}

func newGossipNet(tb testing.TB, n int) *gossipNet {
	tb.Helper()
	members := make([]member, n)
	for i := range members {
		members[i] = newMember(tb)
	}
	h, _ := mh.Sum([]byte("convergence"), mh.SHA2_256, -1)
	pol := community.DefaultPolicy()
	pol.VoteGraceSeconds = graceSeconds
	pol.VoteDurationSeconds = int64(body.MinVotingPeriod / time.Second)
	gn := &gossipNet{tb: tb, mn: mocknet.New(), pings: make(chan ping, 4096),
		comm: comms{id: cid.NewCidV1(cid.DagCBOR, h),
			genesis: community.Genesis{Name: "convergence", Founders: []peer.ID{members[0].id}, Policy: pol}}}
	gn.ctx, gn.cancel = context.WithCancel(context.Background())
	gn.mn.SetLinkDefaults(mocknet.LinkOptions{Latency: linkLatency})
	dir := tb.TempDir() // before the cleanup below, which must run first
	tb.Cleanup(gn.close)
	for i, m := range members {
		gn.open(i, m, filepath.Join(dir, fmt.Sprint(i)))
	}
	gn.connect()
	return gn
}

func (gn *gossipNet) open(i int, m member, dir string) {
	tb := gn.tb
	tb.Helper()
	n := &gossipNode{member: m, i: i, changed: make(chan struct{}, 1)}
	gn.nodes = append(gn.nodes, n) // closed by gn.close whatever fails below
	var err error
	if n.h, err = gn.mn.AddPeer(m.key, ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 10000+i))); err != nil {
		tb.Fatal(err)
	}
	// The node's options in the low-power profile, so fifty fit in memory.
	if n.db, err = badger.Open(registry.BadgerOptions(dir).WithMemTableSize(4 << 20).WithBlockCacheSize(4 << 20).WithIndexCacheSize(2 << 20)); err != nil {
		tb.Fatal(err)
	}
	if n.store, err = registry.Open(n.db, registry.Options{Logger: discard}); err != nil {
		tb.Fatal(err)
	}
	if n.trust, err = trust.New(trust.Config{Store: n.store, DB: n.db, Key: m.key, Communities: gn.comm}); err != nil {
		tb.Fatal(err)
	}
	if n.ps, err = pubsub.NewGossipSub(gn.ctx, n.h, pubsub.WithFloodPublish(true), pubsub.WithMaxMessageSize(128<<10),
		pubsub.WithLogger(discard)); err != nil {
		tb.Fatal(err)
	}
	name := community.RecordsTopic(gn.comm.id)
	if err = n.ps.RegisterTopicValidator(name, n.validate); err != nil {
		tb.Fatal(err)
	}
	for _, t := range []struct {
		name string
		dst  **pubsub.Topic
	}{{name, &n.records}, {pingTopic, &n.ping}} {
		if *t.dst, err = n.ps.Join(t.name); err != nil {
			tb.Fatal(err)
		}
		sub, err := (*t.dst).Subscribe()
		if err != nil {
			tb.Fatal(err)
		}
		gn.readers.Add(1)
		go gn.read(n, sub, t.name == pingTopic)
	}
	if n.svc, err = New(Config{Store: n.store, DB: n.db, Self: m.id, Communities: gn.comm, Trust: n.trust,
		Publish: n.publish, OnPolicy: n.policyChanged}); err != nil {
		tb.Fatal(err)
	}
}

// close stops governance and trust, then gossip and the hosts, then the
// registries: no validator is inside a registry when it closes.
func (gn *gossipNet) close() {
	for _, n := range gn.nodes {
		if n.svc != nil {
			n.svc.Close()
		}
		if n.trust != nil {
			n.trust.Close()
		}
		n.gate.Lock()
		n.shut = true
		n.gate.Unlock()
	}
	gn.cancel()
	gn.readers.Wait()
	gn.mn.Close()
	for _, n := range gn.nodes {
		if n.store != nil {
			n.store.Close()
		}
		if n.db != nil {
			n.db.Close()
		}
	}
}

// connect links and connects every pair and waits until every node sees
// every other on both topics.
func (gn *gossipNet) connect() {
	tb := gn.tb
	tb.Helper()
	if err := gn.mn.LinkAll(); err != nil {
		tb.Fatal(err)
	}
	type watch struct {
		t  *pubsub.Topic
		ev *pubsub.TopicEventHandler
	}
	var watches []watch
	for _, n := range gn.nodes {
		for _, t := range []*pubsub.Topic{n.records, n.ping} {
			ev, err := t.EventHandler()
			if err != nil {
				tb.Fatal(err)
			}
			defer ev.Cancel()
			watches = append(watches, watch{t, ev})
		}
	}
	for i, a := range gn.nodes {
		for _, b := range gn.nodes[i+1:] {
			if _, err := gn.mn.ConnectPeers(a.id, b.id); err != nil {
				tb.Fatal(err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(gn.ctx, convergeWithin)
	defer cancel()
	for _, w := range watches {
		for len(w.t.ListPeers()) < len(gn.nodes)-1 {
			// Wait for the next join, re-checking the list now and then: a
			// join can land between the check and the wait.
			step, cancelStep := context.WithTimeout(ctx, 250*time.Millisecond)
			_, err := w.ev.NextPeerEvent(step)
			cancelStep()
			if err != nil && ctx.Err() != nil {
				tb.Fatalf("%d of %d peers on %s: %v", len(w.t.ListPeers()), len(gn.nodes)-1, w.t, ctx.Err())
			}
		}
	}
}

func (gn *gossipNet) read(n *gossipNode, sub *pubsub.Subscription, pings bool) {
	defer gn.readers.Done()
	defer sub.Cancel()
	for {
		msg, err := sub.Next(gn.ctx)
		if err != nil {
			return
		}
		if pings && msg.ReceivedFrom != n.id && len(msg.Data) == 8 {
			select {
			case gn.pings <- ping{node: n.i, seq: binary.BigEndian.Uint64(msg.Data), at: time.Now()}:
			default:
			}
		}
	}
}

// validate ingests a gossiped record as replicate.ValidateRecord does: a
// new record is relayed, a duplicate or one that may yet become valid is
// dropped, and a sender's fault is rejected.
func (n *gossipNode) validate(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	if from == n.id {
		return pubsub.ValidationAccept // stored before it was published
	}
	n.gate.RLock()
	defer n.gate.RUnlock()
	if n.shut {
		return pubsub.ValidationIgnore
	}
	res, err := n.store.Ingest(ctx, msg.Data)
	switch {
	case err == nil && res.New:
		return pubsub.ValidationAccept
	case err == nil:
		return pubsub.ValidationIgnore
	}
	n.refused.Add(1)
	if registry.IsSenderFault(err) {
		return pubsub.ValidationReject
	}
	return pubsub.ValidationIgnore
}

// publish is Config.Publish: sign and store, then gossip.
func (n *gossipNode) publish(ctx context.Context, c cid.Cid, kind record.Kind, b any) (*record.Record, error) {
	rec, err := n.store.Sign(n.key, c, kind, b)
	if err != nil {
		return nil, err
	}
	raw, err := rec.Encode()
	if err != nil {
		return nil, err
	}
	return rec, n.records.Publish(ctx, raw)
}

func (n *gossipNode) policyChanged(cid.Cid) {
	n.mu.Lock()
	n.changes = append(n.changes, time.Now())
	n.mu.Unlock()
	select {
	case n.changed <- struct{}{}:
	default:
	}
}

// changedSince is the first time the node's policy changed at or after t.
func (n *gossipNode) changedSince(t time.Time) (time.Time, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.changes {
		if !c.Before(t) {
			return c, true
		}
	}
	return time.Time{}, false
}

// waitFor waits until ok holds, checking it again whenever the node
// stores a record.
func (n *gossipNode) waitFor(ctx context.Context, what string, ok func() bool) error {
	notes, cancel := n.store.Subscribe(8192)
	defer cancel()
	for !ok() {
		select {
		case <-notes:
		case <-ctx.Done():
			return fmt.Errorf("node %d: %s: %w (%d gossiped records refused)", n.i, what, ctx.Err(), n.refused.Load())
		}
	}
	return nil
}

// waitAll runs waitFor on every node.
func (gn *gossipNet) waitAll(ctx context.Context, what string, ok func(n *gossipNode) bool) error {
	for _, n := range gn.nodes {
		if err := n.waitFor(ctx, what, func() bool { return ok(n) }); err != nil {
			return err
		}
	}
	return nil
}

// rateAll has the founder rate every other node's work, so they hold
// community trust and their votes count, and waits until every node holds
// the feedback.
func (gn *gossipNet) rateAll(ctx context.Context) error {
	founder := gn.nodes[0]
	for _, m := range gn.nodes[1:] {
		now := time.Now().UnixMilli()
		rc := &task.Receipt{Task: fmt.Sprintf("task%022d", m.i), Community: gn.comm.id, Requester: founder.id, Agent: "a", Skill: "s",
			Input: task.Hash([]byte(`{}`)), Output: task.Hash([]byte(`{}`)), Status: task.StatusCompleted, Started: now - 5, Ended: now}
		if _, err := rc.Sign(m.key); err != nil {
			return err
		}
		if _, err := founder.publish(ctx, gn.comm.id, record.KindFeedback, body.Feedback{Receipt: rc, Score: 900}); err != nil {
			return err
		}
	}
	want := len(gn.nodes) - 1
	return gn.waitAll(ctx, "feedback", func(n *gossipNode) bool { return n.store.Count(gn.comm.id) >= want })
}

// gossipAll publishes count messages on a topic without a validator, from
// the nodes in turn, and returns the median time one took to reach every
// other node.
func (gn *gossipNet) gossipAll(ctx context.Context, count int) (time.Duration, error) {
	var took []time.Duration
	for k := range count {
		from := gn.nodes[k%len(gn.nodes)]
		gn.pingSeq++
		seq := gn.pingSeq
		start := time.Now()
		if err := from.ping.Publish(ctx, binary.BigEndian.AppendUint64(nil, seq)); err != nil {
			return 0, err
		}
		got := map[int]bool{}
		var last time.Time
		for len(got) < len(gn.nodes)-1 {
			select {
			case p := <-gn.pings:
				if p.seq == seq && p.node != from.i {
					got[p.node] = true
					gn.pingArrivals = append(gn.pingArrivals, p.at.Sub(start))
					if p.at.After(last) {
						last = p.at
					}
				}
			case <-ctx.Done():
				return 0, fmt.Errorf("a gossip message reached %d of %d nodes: %w", len(got), len(gn.nodes)-1, ctx.Err())
			}
		}
		took = append(took, last.Sub(start))
	}
	slices.Sort(took)
	return took[(len(took)-1)/2], nil
}

// round is one proposal and its vote.
type round struct {
	id      cid.Cid
	p       body.Proposal
	closeAt time.Time     // end + grace
	reach   time.Duration // from publishing the proposal until every node held it
}

// propose has the founder propose to set vote.duration_s to value, with a
// voting period of body.MinVotingPeriod opening after lead, and waits until
// every node holds the proposal (a vote that outran it would be refused).
func (gn *gossipNet) propose(ctx context.Context, lead time.Duration, value int64) (round, error) {
	start := time.Now().Add(lead).UnixMilli()
	p := body.Proposal{Title: "Longer votes", Choices: []string{"yes", "no"}, Method: body.MethodSingle, Weighting: body.WeightMember,
		Quorum: 200, Threshold: 500, Start: start, End: start + body.MinVotingPeriod.Milliseconds(),
		Action: &body.Action{Type: body.ActionSetPolicy, Key: "vote.duration_s", Value: value}}
	published := time.Now()
	rec, err := gn.nodes[0].publish(ctx, gn.comm.id, record.KindProposal, p)
	if err != nil {
		return round{}, err
	}
	r := round{id: rec.CID(), p: p, closeAt: time.UnixMilli(p.End + graceSeconds*1000)}
	err = gn.waitAll(ctx, "the proposal", func(n *gossipNode) bool { return n.store.Has(r.id) })
	r.reach = time.Since(published)
	return r, err
}

// vote has nodes 1 to voters vote in turn through the window, the last
// about a second before the end. Every fourth votes no; node 1 first votes
// no and then changes its mind, so only its later ballot counts.
func (gn *gossipNet) vote(ctx context.Context, r round, voters int) error {
	cast := func(n *gossipNode, at int64, choice uint64) error {
		if d := time.Until(time.UnixMilli(at)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if _, err := n.publish(ctx, gn.comm.id, record.KindVote, body.Vote{Proposal: r.id, Choices: []uint64{choice}}); err != nil {
			return fmt.Errorf("node %d votes: %w", n.i, err)
		}
		return nil
	}
	if err := cast(gn.nodes[1], r.p.Start+50, 1); err != nil {
		return err
	}
	gap := (r.p.End - r.p.Start - 600) / int64(voters)
	for k := range voters {
		choice := uint64(0)
		if (k+1)%4 == 0 {
			choice = 1
		}
		if err := cast(gn.nodes[k+1], r.p.Start+100+int64(k)*gap, choice); err != nil {
			return err
		}
	}
	return nil
}

// tallyKey is what must be identical on every node: the status, the
// fingerprint of the counted ballots, and the counts and weights (which
// show the community trust agreed too).
func tallyKey(o *Outcome) string {
	return fmt.Sprintf("%s %x %v %d/%d", o.Status, o.Result.Fingerprint, o.Result.Counts, o.Result.Weight, o.Result.Eligible)
}

// converge polls every node until all hold the founder's final tally, and
// returns for each how long after end+grace it got there: when its policy
// changed (the computation that made the tally final) if that tally was
// already the founder's, else when a poll saw it identical.
func (gn *gossipNet) converge(ctx context.Context, r round) ([]time.Duration, error) {
	n := len(gn.nodes)
	first := make([]string, n)
	firstAt := make([]time.Time, n)
	took := make([]time.Duration, n)
	done := make([]bool, n)
	left := n
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		now := time.Now()
		ref := ""
		if o, ok := gn.nodes[0].svc.Outcome(gn.comm.id, r.id); ok && o.Final {
			ref = tallyKey(o)
		}
		for i, nd := range gn.nodes {
			if done[i] {
				continue
			}
			o, ok := nd.svc.Outcome(gn.comm.id, r.id)
			if !ok || !o.Final {
				continue
			}
			k := tallyKey(o)
			if first[i] == "" {
				first[i] = k
				if firstAt[i], ok = nd.changedSince(r.closeAt); !ok {
					firstAt[i] = now
				}
			}
			if ref != "" && k == ref {
				at := now
				if first[i] == ref {
					at = firstAt[i]
				}
				took[i], done[i] = at.Sub(r.closeAt), true
				left--
			}
		}
		if left == 0 {
			return took, nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("%d of %d nodes hold the founder's final tally %q: %w", n-left, n, ref, ctx.Err())
		}
	}
}

// watchTallies returns when every node holds a tally of r from every node,
// or ctx ends; start it before the close.
func (gn *gossipNet) watchTallies(ctx context.Context, r round) func() (time.Time, error) {
	var wg sync.WaitGroup
	at := make([]time.Time, len(gn.nodes))
	errs := make([]error, len(gn.nodes))
	for i, n := range gn.nodes {
		notes, cancel := n.store.Subscribe(8192)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel()
			authors := map[peer.ID]bool{}
			for len(authors) < len(gn.nodes) {
				select {
				case st, ok := <-notes:
					if !ok {
						errs[i] = errors.New("the registry closed")
						return
					}
					if st.Record.Kind != record.KindTally {
						continue
					}
					if b, err := body.DecodeRecord(st.Record); err == nil && b.(body.Tally).Proposal.Equals(r.id) {
						authors[st.Record.Author] = true
					}
				case <-ctx.Done():
					errs[i] = fmt.Errorf("node %d holds %d of %d tallies: %w", n.i, len(authors), len(gn.nodes), ctx.Err())
					return
				}
			}
			at[i] = time.Now()
		}()
	}
	return func() (time.Time, error) {
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return time.Time{}, err
		}
		return slices.MaxFunc(at, time.Time.Compare), nil
	}
}

// TestTallyConvergenceMocknet: on a gossiping network, every node reaches
// the founder's final tally and derived policy on its own at end+grace,
// and once every node's tally has arrived, no node disagrees with any.
func TestTallyConvergenceMocknet(t *testing.T) {
	const nodes, voters = 12, 8
	gn := newGossipNet(t, nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 2*convergeWithin)
	defer cancel()
	if err := gn.rateAll(ctx); err != nil {
		t.Fatal(err)
	}
	const value = 3 * 24 * 60 * 60
	r, err := gn.propose(ctx, time.Second, value)
	if err != nil {
		t.Fatal(err)
	}
	if err := gn.vote(ctx, r, voters); err != nil {
		t.Fatal(err)
	}

	// Every node's tally becomes final by its own clock; the policy
	// changes with it.
	wait, stop := context.WithDeadline(ctx, r.closeAt.Add(convergeWithin))
	defer stop()
	for _, n := range gn.nodes {
		for {
			if o, ok := n.svc.Outcome(gn.comm.id, r.id); ok && o.Final {
				break
			}
			select {
			case <-n.changed:
			case <-wait.Done():
				o, _ := n.svc.Outcome(gn.comm.id, r.id)
				t.Fatalf("node %d: no final tally %v after the close (%d gossiped records refused): %+v", n.i, time.Since(r.closeAt), n.refused.Load(), o)
			}
		}
	}
	var slowest time.Duration
	for _, n := range gn.nodes {
		if at, ok := n.changedSince(r.closeAt); ok {
			slowest = max(slowest, at.Sub(r.closeAt))
		}
	}
	t.Logf("every node's tally final %v after end+grace", slowest)

	// Once every node's tally has arrived, none disagrees with any.
	for _, n := range gn.nodes {
		err := n.waitFor(wait, "every tally, in agreement", func() bool {
			if err := n.svc.Refresh(); err != nil {
				t.Fatal(err)
			}
			o, ok := n.svc.Outcome(gn.comm.id, r.id)
			return ok && o.Final && len(o.Tallies) == nodes && len(o.Disagreements) == 0
		})
		if err != nil {
			o, _ := n.svc.Outcome(gn.comm.id, r.id)
			t.Fatalf("%v: %d tallies, disagreements %+v", err, len(o.Tallies), o.Disagreements)
		}
	}

	founder, _ := gn.nodes[0].svc.Outcome(gn.comm.id, r.id)
	if founder.Status != gov.StatusPassed || founder.Result.Voters != voters || founder.Result.Counts[1] != 2*gov.MemberWeight {
		t.Fatalf("founder's tally: %s, %d voters, counts %v; want passed, %d voters, two no", founder.Status, founder.Result.Voters,
			founder.Result.Counts, voters)
	}
	want := gn.nodes[0].svc.Policy(gn.comm.id)
	if want.Policy.VoteDurationSeconds != value || want.State.SetBy["vote.duration_s"] != r.id.String() {
		t.Fatalf("founder's policy: vote.duration_s %d set by %q", want.Policy.VoteDurationSeconds, want.State.SetBy["vote.duration_s"])
	}
	for _, n := range gn.nodes[1:] {
		o, _ := n.svc.Outcome(gn.comm.id, r.id)
		if got, want := tallyKey(o), tallyKey(founder); got != want {
			t.Errorf("node %d tally %s, founder %s", n.i, got, want)
		}
		if refused := n.refused.Load(); refused != 0 {
			t.Errorf("node %d refused %d gossiped records", n.i, refused)
		}
		pol := n.svc.Policy(gn.comm.id)
		if pol.Policy != want.Policy || pol.State.SetBy["vote.duration_s"] != r.id.String() {
			t.Errorf("node %d policy %+v set by %v, founder %+v", n.i, pol.Policy, pol.State.SetBy, want.Policy)
		}
	}
}

// BenchmarkTallyConvergence measures, on a 50-node mocknet with 20 ms
// links, how long after a proposal's end+grace every node holds the
// founder's final tally (p50 and max over the nodes), against the time
// one gossip message takes to reach all nodes on the same network.
//
//	go test -run '^$' -bench TallyConvergence -benchtime 1x ./node/governance/
//
// Run it with -benchtime 1x (and -count N for more samples): a second round
// on the same network fails, because the first round's proposal passes and
// sets vote.duration_s to two days, under which the next round's 5 s
// voting period is refused (Service's proposal check), so no final tally
// ever comes.
//
// With AGORA_BENCH_SAMPLES naming a directory, it writes every node's time
// to the founder's final tally in every round (tally-convergence.samples)
// and every node's arrival delay of the baseline's gossip messages
// (tally-gossip-baseline.samples) there, in ms, one a line, for
// cmd/agora-bench's plots.
func BenchmarkTallyConvergence(b *testing.B) {
	const nodes, voters = 50, 10
	gn := newGossipNet(b, nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 2*convergeWithin)
	defer cancel()
	if err := gn.rateAll(ctx); err != nil {
		b.Fatal(err)
	}
	gossip, err := gn.gossipAll(ctx, 5)
	if err != nil {
		b.Fatal(err)
	}
	var p50, worst, reach, tallies float64
	var samples []time.Duration
	b.ResetTimer()
	for i := range b.N {
		// Each round sets a new value, so the policy changes every time.
		r, took, all, err := gn.measure(context.Background(), int64(2+i)*24*60*60, voters)
		if err != nil {
			b.Fatal(err)
		}
		samples = append(samples, took...)
		p50 += ms(took[(len(took)-1)/2])
		worst += ms(took[len(took)-1])
		reach += ms(r.reach)
		tallies += ms(all.Sub(r.closeAt))
	}
	b.StopTimer()
	benchsamples.Write(b, "tally-convergence", samples)
	benchsamples.Write(b, "tally-gossip-baseline", gn.pingArrivals)
	n := float64(b.N)
	b.ReportMetric(p50/n, "ms-to-identical-p50")
	b.ReportMetric(worst/n, "ms-to-identical-max")
	b.ReportMetric(ms(gossip), "ms-gossip-all")
	b.ReportMetric(worst/n/ms(gossip), "identical-max/gossip-all")
	b.ReportMetric(reach/n, "ms-record-all")
	b.ReportMetric(tallies/n, "ms-tallies-all")
}

// measure runs one round: a proposal setting vote.duration_s to value,
// voters votes, and the close. It returns each node's time from end+grace
// to the founder's final tally, sorted, and when every node held every
// node's tally.
func (gn *gossipNet) measure(ctx context.Context, value int64, voters int) (round, []time.Duration, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*convergeWithin)
	defer cancel()
	r, err := gn.propose(ctx, time.Second, value)
	if err != nil {
		return r, nil, time.Time{}, err
	}
	held := gn.watchTallies(ctx, r)
	if err := gn.vote(ctx, r, voters); err != nil {
		return r, nil, time.Time{}, err
	}
	took, err := gn.converge(ctx, r)
	if err != nil {
		return r, nil, time.Time{}, err
	}
	all, err := held()
	slices.Sort(took)
	return r, took, all, err
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
