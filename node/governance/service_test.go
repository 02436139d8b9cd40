package governance

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/agora-p2p/agora/node/trust"
	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/community"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/agora-p2p/agora/protocol/task"
	"github.com/agora-p2p/agora/registry"
	gov "github.com/agora-p2p/agora/registry/governance"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

type comms struct {
	id      cid.Cid
	genesis community.Genesis
}

func (c comms) Joined() []cid.Cid { return []cid.Cid{c.id} }
func (c comms) Genesis(id cid.Cid) (community.Genesis, bool) {
	return c.genesis, id == c.id
}

type member struct {
	key crypto.PrivKey
	id  peer.ID
}

func newMember(t testing.TB) member {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	return member{k, id}
}

// fixture is one node: a real badger, registry, trust and governance
// service; founder is the node itself.
type fixture struct {
	t       *testing.T
	dir     string
	clk     *clock
	self    member
	comm    comms
	db      *badger.DB
	store   *registry.Store
	trust   *trust.Service
	svc     *Service
	members []member
	n       int
	base    int // records stored before the service subscribed
}

const t0 = 1767225600000 // 2026-01-01

func newFixture(t *testing.T, members int) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), clk: &clock{t: time.UnixMilli(t0)}, self: newMember(t)}
	h, _ := mh.Sum([]byte("gov"), mh.SHA2_256, -1)
	pol := community.DefaultPolicy()
	pol.VoteGraceSeconds = 10
	pol.VoteDurationSeconds = 60
	f.comm = comms{id: cid.NewCidV1(cid.DagCBOR, h), genesis: community.Genesis{Name: "gov", Founders: []peer.ID{f.self.id}, Policy: pol}}
	for range members {
		f.members = append(f.members, newMember(t))
	}
	f.open()
	// The founder rates every member's work well, so they hold community
	// trust and may vote.
	for _, m := range f.members {
		f.rate(m, 900)
	}
	f.settle()
	return f
}

func (f *fixture) open() {
	t := f.t
	db, err := badger.Open(registry.BadgerOptions(f.dir))
	if err != nil {
		t.Fatal(err)
	}
	f.db = db
	if f.store, err = registry.Open(db, registry.Options{Now: f.clk.Now, RatePerAuthor: registry.Unlimited}); err != nil {
		t.Fatal(err)
	}
	if f.trust, err = trust.New(trust.Config{Store: f.store, DB: db, Key: f.self.key, Communities: f.comm, Now: f.clk.Now,
		Refresh: time.Hour}); err != nil {
		t.Fatal(err)
	}
	f.base = f.store.Count(f.comm.id)
	if f.svc, err = New(Config{Store: f.store, DB: db, Self: f.self.id, Communities: f.comm, Trust: f.trust, Now: f.clk.Now,
		Publish: func(_ context.Context, c cid.Cid, kind record.Kind, b any) (*record.Record, error) {
			return f.store.Sign(f.self.key, c, kind, b)
		}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.close)
}

func (f *fixture) close() {
	if f.svc == nil {
		return
	}
	f.svc.Close()
	f.trust.Close()
	f.store.Close()
	f.db.Close()
	f.svc = nil
}

func (f *fixture) settle() {
	f.t.Helper()
	f.caughtUp()
	if err := f.trust.Refresh(); err != nil {
		f.t.Fatal(err)
	}
	if err := f.svc.Refresh(); err != nil {
		f.t.Fatal(err)
	}
}

// at moves the clock, once the service has taken in every record stored
// so far at the old time (as a running node would have).
func (f *fixture) at(ms int64) {
	f.caughtUp()
	f.clk.Set(time.UnixMilli(ms))
}

// caughtUp waits until the service's subscription has delivered every
// record stored since it opened.
func (f *fixture) caughtUp() {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for int(f.svc.followed.Load())+f.base < f.store.Count(f.comm.id) {
		if time.Now().After(deadline) {
			f.t.Fatalf("the service took in %d of %d records", int(f.svc.followed.Load())+f.base, f.store.Count(f.comm.id))
		}
		time.Sleep(time.Millisecond)
	}
}

// rate files the founder's feedback on a task m ran.
func (f *fixture) rate(m member, score int64) {
	f.t.Helper()
	f.n++
	now := f.clk.Now().UnixMilli()
	rc := &task.Receipt{Task: fmt.Sprintf("task%022d", f.n), Community: f.comm.id, Requester: f.self.id, Agent: "a", Skill: "s",
		Input: task.Hash([]byte(`{}`)), Output: task.Hash([]byte(`{}`)), Status: task.StatusCompleted, Started: now - 5, Ended: now}
	if _, err := rc.Sign(m.key); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.store.Sign(f.self.key, f.comm.id, record.KindFeedback, body.Feedback{Receipt: rc, Score: score}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) sign(key crypto.PrivKey, kind record.Kind, b any) (*record.Record, error) {
	return f.store.Sign(key, f.comm.id, kind, b)
}

func (f *fixture) propose(p body.Proposal) cid.Cid {
	f.t.Helper()
	rec, err := f.sign(f.self.key, record.KindProposal, p)
	if err != nil {
		f.t.Fatal(err)
	}
	return rec.CID()
}

func (f *fixture) vote(m member, p cid.Cid, choices ...uint64) (*record.Record, error) {
	return f.sign(m.key, record.KindVote, body.Vote{Proposal: p, Choices: choices})
}

func banProposal(start int64, who peer.ID) body.Proposal {
	return body.Proposal{Title: "Ban a spammer", Choices: []string{"yes", "no"}, Method: body.MethodSingle,
		Weighting: body.WeightMember, Quorum: 200, Threshold: 500, Start: start, End: start + 60_000,
		Action: &body.Action{Type: body.ActionBan, Peer: who}}
}

func TestBanPassesAndApplies(t *testing.T) {
	f := newFixture(t, 3)
	f.at(t0 + 1000)
	spammer := newMember(t)
	pid := f.propose(banProposal(t0+1000, spammer.id))
	f.at(t0 + 2000)
	for _, m := range f.members[:2] {
		if _, err := f.vote(m, pid, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.vote(f.members[2], pid, 1); err != nil {
		t.Fatal(err)
	}
	// A spammer with no trust votes too: it counts for nothing.
	if _, err := f.vote(spammer, pid, 1); err != nil {
		t.Fatal(err)
	}
	f.settle()
	o, ok := f.svc.Outcome(f.comm.id, pid)
	if !ok || o.Status != gov.StatusOpen || o.Final {
		t.Fatalf("while open: %+v", o)
	}
	// After the end but within grace: the result is known, not applied.
	f.at(t0 + 61_000 + 5_000)
	f.settle()
	o, _ = f.svc.Outcome(f.comm.id, pid)
	if o.Status != gov.StatusPassed || o.Final || o.Result.Voters != 3 || f.svc.Banned(f.comm.id, spammer.id) {
		t.Fatalf("in grace: status %s final %v voters %d banned %v", o.Status, o.Final, o.Result.Voters, f.svc.Banned(f.comm.id, spammer.id))
	}
	if o.Result.Ignored == nil || len(o.Result.Ignored) != 1 {
		t.Fatalf("ignored %v, want the spammer's vote", o.Result.Ignored)
	}
	// After grace: the ban applies and this node publishes its tally.
	f.at(t0 + 61_000 + 11_000)
	f.settle()
	o, _ = f.svc.Outcome(f.comm.id, pid)
	if !o.Final || !f.svc.Banned(f.comm.id, spammer.id) || !f.svc.BannedAnywhere(spammer.id) {
		t.Fatalf("after grace: final %v banned %v", o.Final, f.svc.Banned(f.comm.id, spammer.id))
	}
	pol := f.svc.Policy(f.comm.id)
	if pol.State.Banned[spammer.id] != pid.String() {
		t.Fatalf("banned by %q, want %s", pol.State.Banned[spammer.id], pid)
	}
	tallies, err := f.store.Query(registry.Query{Community: f.comm.id, Kind: record.KindTally})
	if err != nil || len(tallies) != 1 || tallies[0].Record.Author != f.self.id {
		t.Fatalf("tallies %v, %v", tallies, err)
	}
	// Published once, whatever happens next.
	f.settle()
	if tallies, _ := f.store.Query(registry.Query{Community: f.comm.id, Kind: record.KindTally}); len(tallies) != 1 {
		t.Fatalf("%d tallies after a second computation", len(tallies))
	}
}

func TestVoteRulesAtIngest(t *testing.T) {
	f := newFixture(t, 1)
	f.at(t0 + 1000)
	p := banProposal(t0+1000, newMember(t).id)
	pid := f.propose(p)
	m := f.members[0]
	for name, v := range map[string]body.Vote{
		"no such choice": {Proposal: pid, Choices: []uint64{2}},
		"two choices":    {Proposal: pid, Choices: []uint64{0, 1}},
		"credits":        {Proposal: pid, Choices: []uint64{0}, Credits: []uint64{5}},
	} {
		if _, err := f.sign(m.key, record.KindVote, v); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// For a proposal the node does not hold: kept out until it arrives.
	h, _ := mh.Sum([]byte("elsewhere"), mh.SHA2_256, -1)
	if _, err := f.sign(m.key, record.KindVote, body.Vote{Proposal: cid.NewCidV1(cid.DagCBOR, h), Choices: []uint64{0}}); err == nil || !registry.IsRetryable(err) {
		t.Errorf("vote for an unknown proposal: %v, want a retryable unknown-reference", err)
	}
	// After the end, by its own clock: never counted, the sender's fault.
	f.at(p.End + 1)
	if _, err := f.vote(m, pid, 0); err == nil || !registry.IsSenderFault(err) {
		t.Errorf("vote after the end: %v", err)
	}
}

func TestVoteReplacementAndLateVotes(t *testing.T) {
	f := newFixture(t, 3)
	f.at(t0 + 1000)
	p := body.Proposal{Title: "Colour", Choices: []string{"red", "blue"}, Method: body.MethodSingle, Weighting: body.WeightMember,
		Quorum: 200, Threshold: 500, Start: t0 + 1000, End: t0 + 61_000}
	pid := f.propose(p)
	a, b, c := f.members[0], f.members[1], f.members[2]
	f.at(t0 + 2000)
	f.vote(a, pid, 0)
	f.at(t0 + 3000)
	f.vote(a, pid, 1) // a changes its mind: only the latest counts
	f.vote(b, pid, 1)
	f.settle()
	// The node runs through the close (end + 10 s grace)...
	f.at(p.End + 10_000 + 100)
	f.settle()
	o, _ := f.svc.Outcome(f.comm.id, pid)
	if !o.Final || o.Result.Voters != 2 || o.Result.Counts[1] != 2000 || o.Result.Counts[0] != 0 {
		t.Fatalf("closed tally: voters %d counts %v", o.Result.Voters, o.Result.Counts)
	}
	before := o.Result.Fingerprint
	// ...then a vote dated before the end arrives: it is late here.
	f.at(p.End - 1)
	late, err := f.vote(c, pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.at(p.End + 20_000)
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.svc.mu.RLock()
		marked := f.svc.late[late.CID()]
		f.svc.mu.RUnlock()
		if marked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the late vote was never marked")
		}
		time.Sleep(time.Millisecond)
	}
	f.settle()
	o, _ = f.svc.Outcome(f.comm.id, pid)
	if o.Result.Fingerprint != before || o.Result.Ignored[late.CID().String()] != gov.ReasonExcluded {
		t.Fatalf("a late vote changed the tally: %v", o.Result.Ignored)
	}
	// The mark survives a restart.
	f.close()
	f.open()
	f.settle()
	if o, _ := f.svc.Outcome(f.comm.id, pid); o.Result.Fingerprint != before {
		t.Fatal("the late vote counts after a restart")
	}
}

// TestCatchUpAdoptsFounderLateList: a node that was not running at the
// close counts by the votes' own times, minus the late votes the founder's
// tally names, and reaches the founder's fingerprint.
func TestCatchUpAdoptsFounderLateList(t *testing.T) {
	f := newFixture(t, 2)
	f.at(t0 + 1000)
	p := body.Proposal{Title: "Colour", Choices: []string{"red", "blue"}, Method: body.MethodSingle, Weighting: body.WeightMember,
		Quorum: 200, Threshold: 500, Start: t0 + 1000, End: t0 + 61_000}
	pid := f.propose(p)
	f.at(t0 + 2000)
	f.vote(f.members[0], pid, 0)
	f.at(p.End + 10_000 + 100)
	f.settle() // the founder saw the close
	f.at(p.End - 1)
	late, _ := f.vote(f.members[1], pid, 1)
	f.at(p.End + 30_000)
	waitMarked(t, f.svc, late.CID())
	f.settle()
	founder, _ := f.svc.Outcome(f.comm.id, pid)

	// A second node holds the same records but never saw the close.
	recs, err := f.store.Query(registry.Query{Community: f.comm.id, Limit: registry.MaxQueryLimit})
	if err != nil {
		t.Fatal(err)
	}
	other := &fixture{t: t, dir: t.TempDir(), clk: f.clk, self: newMember(t), comm: f.comm}
	other.open()
	raws := make([][]byte, 0, len(recs))
	for i := len(recs) - 1; i >= 0; i-- {
		raws = append(raws, recs[i].Raw)
	}
	for _, r := range other.store.IngestBatch(context.Background(), raws) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	other.settle()
	o, ok := other.svc.Outcome(f.comm.id, pid)
	if !ok || o.Result.Fingerprint != founder.Result.Fingerprint || o.Status != founder.Status {
		t.Fatalf("catch-up: %v %s, founder %s", ok, o.Status, founder.Status)
	}
	if len(o.Disagreements) != 0 {
		t.Fatalf("disagreements %+v", o.Disagreements)
	}
}

func waitMarked(t *testing.T, s *Service, c cid.Cid) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.RLock()
		ok := s.late[c]
		s.mu.RUnlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("vote never marked late")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSetPolicyAndProposerFloor(t *testing.T) {
	f := newFixture(t, 2)
	f.at(t0 + 1000)
	p := body.Proposal{Title: "Fewer audits", Choices: []string{"yes", "no"}, Method: body.MethodSingle, Weighting: body.WeightTrust,
		Quorum: 200, Threshold: 500, Start: t0 + 1000, End: t0 + 61_000,
		Action: &body.Action{Type: body.ActionSetPolicy, Key: "propose.min_trust", Value: 900}}
	pid := f.propose(p)
	f.at(t0 + 2000)
	f.sign(f.self.key, record.KindVote, body.Vote{Proposal: pid, Choices: []uint64{0}})
	f.at(p.End + 11_000)
	f.settle()
	pol := f.svc.Policy(f.comm.id)
	if pol.Policy.ProposeMinTrust != 900 || pol.State.SetBy["propose.min_trust"] != pid.String() {
		t.Fatalf("policy %+v set by %v", pol.Policy, pol.State.SetBy)
	}
	// A member under the new floor proposes: listed, never applied.
	m := f.members[0]
	q := banProposal(f.clk.Now().UnixMilli(), f.members[1].id)
	rec, err := f.sign(m.key, record.KindProposal, q)
	if err != nil {
		t.Fatal(err)
	}
	f.settle()
	o, _ := f.svc.Outcome(f.comm.id, rec.CID())
	if o.Status != StatusInvalid || o.Reason == "" {
		t.Fatalf("under-floor proposal: %s %q", o.Status, o.Reason)
	}
}
