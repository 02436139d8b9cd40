package trust

import (
	"context"
	"crypto/rand"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/community"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/agora-p2p/agora/protocol/task"
	"github.com/agora-p2p/agora/registry"
	"github.com/agora-p2p/agora/registry/certify"
)

// taskID makes a valid task ID from n.
func taskID(n int) string {
	return fmt.Sprintf("task%022d", n)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
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

type fixture struct {
	t       *testing.T
	dir     string
	db      *badger.DB
	store   *registry.Store
	svc     *Service
	clk     *clock
	key     crypto.PrivKey
	self    peer.ID
	comm    comms
	updates chan struct{}
	// tune, if set, changes the service's Config before it starts.
	tune func(*Config)
}

func newKey(t testing.TB) (crypto.PrivKey, peer.ID) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	return k, id
}

func communityID(t testing.TB, s string) cid.Cid {
	t.Helper()
	h, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.DagCBOR, h)
}

// newFixture runs a Service on a real badger and registry, as the node
// does; founders seed trust, and the service's own key is the first.
func newFixture(t *testing.T, founders ...peer.ID) *fixture {
	t.Helper()
	return newTunedFixture(t, nil, founders...)
}

func newTunedFixture(t *testing.T, tune func(*Config), founders ...peer.ID) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), clk: &clock{t: time.UnixMilli(1767225600000).Add(30 * time.Second)}, updates: make(chan struct{}, 64), tune: tune}
	f.key, f.self = newKey(t)
	pol := community.DefaultPolicy()
	f.comm = comms{id: communityID(t, "home"), genesis: community.Genesis{Name: "home", Founders: append([]peer.ID{f.self}, founders...), Policy: pol}}
	f.open()
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
	cfg := Config{Store: f.store, DB: db, Key: f.key, Communities: f.comm, Now: f.clk.Now,
		Debounce: time.Millisecond, OnUpdate: func() {
			select {
			case f.updates <- struct{}{}:
			default:
			}
		}}
	if f.tune != nil {
		f.tune(&cfg)
	}
	if f.svc, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.close)
}

func (f *fixture) close() {
	if f.svc == nil {
		return
	}
	f.svc.Close()
	f.store.Close()
	f.db.Close()
	f.svc = nil
}

// settle makes the service read the registry and recompute now.
func (f *fixture) settle() {
	f.t.Helper()
	if err := f.svc.Refresh(); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) receipt(exec crypto.PrivKey, requester peer.ID, n int) *task.Receipt {
	f.t.Helper()
	now := f.clk.Now().UnixMilli()
	rc := &task.Receipt{Task: taskID(n), Community: f.comm.id, Requester: requester, Agent: "a", Skill: "text.stats",
		Input: task.Hash([]byte(`{}`)), Output: task.Hash([]byte(`{}`)), Status: task.StatusCompleted, Started: now - 5, Ended: now}
	if _, err := rc.Sign(exec); err != nil {
		f.t.Fatal(err)
	}
	return rc
}

// ingest signs body by key and stores it.
func (f *fixture) ingest(key crypto.PrivKey, kind record.Kind, b any) *record.Record {
	f.t.Helper()
	rec, err := f.store.Sign(key, f.comm.id, kind, b)
	if err != nil {
		f.t.Fatalf("sign %s: %v", kind, err)
	}
	return rec
}

func TestFeedbackRanksAndDistrusts(t *testing.T) {
	f := newFixture(t)
	goodKey, good := newKey(t)
	badKey, bad := newKey(t)
	ctx := context.Background()
	for i := range 5 {
		if _, err := f.svc.Rate(ctx, f.receipt(goodKey, f.self, i), 950, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Rate(ctx, f.receipt(badKey, f.self, 100+i), 50, "wrong answer"); err != nil {
			t.Fatal(err)
		}
	}
	f.settle()
	res, seeds, ok := f.svc.Reputation(f.comm.id, Personal)
	if !ok || !seeds[f.self] {
		t.Fatalf("no personal vector (ok %v, seeds %v)", ok, seeds)
	}
	g, _ := res.Get(good)
	b, _ := res.Get(bad)
	if g.Trust <= b.Trust || g.Rank >= b.Rank || g.Feedback != 5 || b.Feedback != 5 {
		t.Fatalf("good %+v, bad %+v", g, b)
	}
	if Distrusted(g) || !Distrusted(b) {
		t.Fatalf("distrust: good %v (%+v), bad %v (%+v)", Distrusted(g), g, Distrusted(b), b)
	}
	if s := f.svc.AppScore(bad); s >= -100 {
		t.Fatalf("a distrusted peer's gossip score is %v, not below the gossip threshold -100", s)
	}
	if s := f.svc.AppScore(good); s <= 0 {
		t.Fatalf("a trusted provider's gossip score is %v", s)
	}
	if j := f.svc.Judge(f.comm.id, bad, "a"); !j.Distrusted {
		t.Fatalf("judge(bad) = %+v", j)
	}
	if j := f.svc.Judge(f.comm.id, good, "a"); j.Distrusted || j.Level <= 0 {
		t.Fatalf("judge(good) = %+v", j)
	}

	// The owner changes its mind about one task: the later rating
	// supersedes, it does not add up.
	rc := f.receipt(badKey, f.self, 999)
	if _, err := f.svc.Rate(ctx, rc, 0, ""); err != nil {
		t.Fatal(err)
	}
	f.clk.Add(time.Second)
	if _, err := f.svc.Rate(ctx, rc, 1000, "it was right after all"); err != nil {
		t.Fatal(err)
	}
	f.settle()
	res, _, _ = f.svc.Reputation(f.comm.id, Personal)
	if b, _ := res.Get(bad); b.Feedback != 6 {
		t.Fatalf("feedback counted %d times, want 6 (one per receipt)", b.Feedback)
	}

	// Only the requester may rate, and never its own task.
	if _, err := f.svc.Rate(ctx, f.receipt(goodKey, good, 7), 900, ""); err == nil {
		t.Fatal("rated a task another node requested")
	}
	if _, err := f.svc.Rate(ctx, f.receipt(f.key, f.self, 8), 900, ""); err == nil {
		t.Fatal("rated a task this node ran for itself")
	}
}

func TestCommunityVectorIsCutAtTheEpoch(t *testing.T) {
	f := newFixture(t)
	execKey, exec := newKey(t)
	if _, err := f.svc.Rate(context.Background(), f.receipt(execKey, f.self, 1), 1000, ""); err != nil {
		t.Fatal(err)
	}
	f.settle()
	res, founders, _ := f.svc.Reputation(f.comm.id, Community)
	if !founders[f.self] || res.Trust(exec) != 0 {
		t.Fatalf("feedback of the current epoch counted in the community vector: %v", res.Trust(exec))
	}
	if p, _, _ := f.svc.Reputation(f.comm.id, Personal); p.Trust(exec) == 0 {
		t.Fatal("the personal vector ignores fresh feedback")
	}
	f.clk.Add(CommunityEpoch)
	f.settle()
	if res, _, _ = f.svc.Reputation(f.comm.id, Community); res.Trust(exec) == 0 {
		t.Fatal("the next epoch's community vector does not count the feedback")
	}
	if cut := f.svc.CommunityCut(f.comm.id); cut%CommunityEpoch.Milliseconds() != 0 {
		t.Fatalf("cut %d is not on an epoch boundary", cut)
	}
}

func TestCertificationAndRevocation(t *testing.T) {
	auditorKey, auditor := newKey(t)
	f := newFixture(t, auditor)
	_, provider := newKey(t)
	subject := body.Subject{Type: body.SubjectAgent, ID: AgentSubject(provider, "builtin")}
	pass := body.Attestation{Subject: subject, Predicate: "agora:audit/manual/v1", Verdict: body.VerdictPass}
	f.ingest(f.key, record.KindAttestation, pass)
	f.settle()
	if f.svc.Judge(f.comm.id, provider, "builtin").Certified {
		t.Fatal("certified by one attestation; the policy asks for two")
	}
	second := f.ingest(auditorKey, record.KindAttestation, pass)
	f.settle()
	if !f.svc.Judge(f.comm.id, provider, "builtin").Certified {
		t.Fatalf("not certified by two founders: %+v", f.svc.Certifications(f.comm.id))
	}
	if f.svc.Judge(f.comm.id, provider, "other").Certified {
		t.Fatal("the certification of one agent spread to another")
	}
	f.clk.Add(time.Second)
	f.ingest(auditorKey, record.KindRevocation, body.Revocation{Target: second.CID()})
	f.settle()
	if f.svc.Judge(f.comm.id, provider, "builtin").Certified {
		t.Fatal("still certified after a revocation")
	}
	d, ok := f.svc.Decide(f.comm.id, "agent:"+AgentSubject(provider, "builtin"))
	if !ok || d.Certified || d.Attestations != 1 {
		t.Fatalf("decision %+v", d)
	}
	// A restart reads the same state back from the registry.
	f.close()
	f.open()
	f.settle()
	if f.svc.Judge(f.comm.id, provider, "builtin").Certified {
		t.Fatal("certified again after a restart")
	}
	if d, _ := f.svc.Decide(f.comm.id, "agent:"+AgentSubject(provider, "builtin")); d.Attestations != 1 {
		t.Fatalf("after restart: %+v", d)
	}
}

func TestTrustedPeersSeedAndPersist(t *testing.T) {
	f := newFixture(t)
	friendKey, friend := newKey(t)
	_, stranger := newKey(t)
	if _, err := f.svc.Trust(f.self); err != ErrSelf {
		t.Fatalf("trusting oneself: %v", err)
	}
	if _, err := f.svc.Trust(friend); err != nil {
		t.Fatal(err)
	}
	// What the friend rated now counts for this node.
	rc := &task.Receipt{Task: taskID(1), Community: f.comm.id, Requester: friend, Agent: "a", Skill: "text.stats",
		Input: task.Hash([]byte(`{}`)), Output: task.Hash([]byte(`{}`)), Status: task.StatusCompleted,
		Started: f.clk.Now().UnixMilli() - 5, Ended: f.clk.Now().UnixMilli()}
	execKey, exec := newKey(t)
	if _, err := rc.Sign(execKey); err != nil {
		t.Fatal(err)
	}
	f.ingest(friendKey, record.KindFeedback, body.Feedback{Receipt: rc, Score: 1000})
	f.settle()
	res, seeds, _ := f.svc.Reputation(f.comm.id, Personal)
	if !seeds[friend] || seeds[stranger] || res.Trust(exec) == 0 {
		t.Fatalf("seeds %v, trust of the friend's provider %v", seeds, res.Trust(exec))
	}
	f.close()
	f.open()
	if got := f.svc.Trusted(); len(got) != 1 || got[0].Peer != friend {
		t.Fatalf("after restart: %+v", got)
	}
	if ok, err := f.svc.Untrust(friend); !ok || err != nil {
		t.Fatalf("untrust: %v %v", ok, err)
	}
	if ok, _ := f.svc.Untrust(friend); ok {
		t.Fatal("untrusted twice")
	}
	f.settle()
	if _, seeds, _ := f.svc.Reputation(f.comm.id, Personal); seeds[friend] {
		t.Fatal("an untrusted peer still seeds")
	}
}

func TestFileIsAsynchronousAndBounded(t *testing.T) {
	f := newFixture(t)
	f.close()
	// A budget of 2 feedback records, then nothing until it refills.
	db, err := badger.Open(registry.BadgerOptions(f.dir))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, err := registry.Open(db, registry.Options{Now: f.clk.Now, RatePerAuthor: registry.Unlimited})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	notes, stop := store.Subscribe(64)
	defer stop()
	svc, err := New(Config{Store: store, DB: db, Key: f.key, Communities: f.comm, Now: f.clk.Now, FeedbackRate: 1e-9, FeedbackBurst: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	execKey, _ := newKey(t)
	for i := range 5 {
		svc.File(f.receipt(execKey, f.self, i), 900, "")
	}
	svc.File(f.receipt(f.key, f.self, 10), 900, "") // its own task: ignored
	for range 2 {
		select {
		case st := <-notes:
			if st.Record.Kind != record.KindFeedback || st.Record.Author != f.self {
				t.Fatalf("stored %s by %s", st.Record.Kind, st.Record.Author)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("automatic feedback was not filed")
		}
	}
	// The other three are dropped, not queued forever: wait until the
	// filer has seen them all.
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(svc.metrics.dropped) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("dropped %v, want 3", testutil.ToFloat64(svc.metrics.dropped))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := store.Count(f.comm.id); n != 2 {
		t.Fatalf("%d records stored, want 2", n)
	}
}

// TestFollowsNewRecords checks the background path: a record stored after
// start reaches the vectors without anyone asking.
func TestFollowsNewRecords(t *testing.T) {
	f := newFixture(t)
	execKey, exec := newKey(t)
	if _, err := f.svc.Rate(context.Background(), f.receipt(execKey, f.self, 1), 1000, ""); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		if res, _, _ := f.svc.Reputation(f.comm.id, Personal); res.Trust(exec) > 0 {
			return
		}
		select {
		case <-f.updates:
		case <-deadline:
			t.Fatal("the feedback never reached the personal vector")
		}
	}
}

// TestScheduledRecomputeSkipsWhenNothingChanged: an idle node does not
// recompute at every epoch; it does when a rating crosses into the
// community cut, an attestation expires, the inputs change, or Refresh
// passes.
func TestScheduledRecomputeSkipsWhenNothingChanged(t *testing.T) {
	// The service's own loop would act on Changed below, racing the test
	// for the state it checks: give it a debounce longer than the test.
	f := newTunedFixture(t, func(c *Config) { c.Debounce = time.Hour })
	execKey, _ := newKey(t)
	rc := f.receipt(execKey, f.self, 1)
	f.ingest(f.key, record.KindFeedback, body.Feedback{Receipt: rc, Score: 900})
	_, subject := newKey(t)
	expires := f.clk.Now().Add(95 * time.Second).UnixMilli()
	f.ingest(f.key, record.KindAttestation, body.Attestation{Subject: body.Subject{Type: body.SubjectPeer, ID: subject.String()},
		Predicate: "agora:audit/manual/v1", Verdict: body.VerdictPass, Expires: expires})
	f.settle()
	s := f.svc

	// The rating was created in the current epoch: the next epoch's cut
	// takes it in, so that epoch is due.
	f.clk.Add(CommunityEpoch)
	if !s.stale(f.clk.Now()) {
		t.Fatal("the epoch that takes a new rating into the cut is not due")
	}
	f.settle()
	// Nothing changed since: the following epochs are not.
	for range 3 {
		f.clk.Add(CommunityEpoch)
		if s.stale(f.clk.Now()) {
			t.Fatalf("at %v, with nothing new, a scheduled recomputation is due", f.clk.Now())
		}
	}
	// An attestation's expiry is.
	f.clk.Set(time.UnixMilli(expires))
	if !s.stale(f.clk.Now()) {
		t.Fatal("the attestation's expiry is not due")
	}
	f.settle()
	if s.stale(f.clk.Now()) {
		t.Fatal("due again right after a recomputation")
	}
	// So is any change of the inputs, and Refresh's period.
	s.Changed()
	if !s.stale(f.clk.Now()) {
		t.Fatal("a change is not due")
	}
	f.settle()
	f.clk.Add(time.Minute)
	if !s.stale(f.clk.Now()) {
		t.Fatal("Refresh's period passed and nothing is due")
	}
}

// TestPaced: a cheap computation waits the debounce; a costly one waits
// ten times its cost, so recomputing stays under a tenth of a core.
func TestPaced(t *testing.T) {
	for _, tc := range []struct{ debounce, cost, want time.Duration }{
		{200 * time.Millisecond, 0, 200 * time.Millisecond},
		{200 * time.Millisecond, 5 * time.Millisecond, 200 * time.Millisecond},
		{200 * time.Millisecond, 20 * time.Millisecond, 200 * time.Millisecond},
		{200 * time.Millisecond, 150 * time.Millisecond, 1500 * time.Millisecond},
	} {
		if got := paced(tc.debounce, tc.cost); got != tc.want {
			t.Errorf("paced(%v, %v) = %v, want %v", tc.debounce, tc.cost, got, tc.want)
		}
	}
}

// TestTakeAgainChangesNothing: a record the state holds already (a
// notification that arrives after a reload took its record in) is no
// change, so it asks for no recomputation; a revocation is one change,
// once.
func TestTakeAgainChangesNothing(t *testing.T) {
	f := newFixture(t)
	execKey, _ := newKey(t)
	fb := f.ingest(f.key, record.KindFeedback, body.Feedback{Receipt: f.receipt(execKey, f.self, 1), Score: 900})
	_, subject := newKey(t)
	att := f.ingest(f.key, record.KindAttestation, body.Attestation{Subject: body.Subject{Type: body.SubjectPeer, ID: subject.String()},
		Predicate: "agora:audit/manual/v1", Verdict: body.VerdictPass})
	rev := f.ingest(f.key, record.KindRevocation, body.Revocation{Target: att.CID()})
	st := newState()
	for _, rec := range []*record.Record{fb, att, rev} {
		got, err := f.store.Get(rec.CID())
		if err != nil {
			t.Fatal(err)
		}
		if !st.take(got) {
			t.Fatalf("taking the %s in is no change", rec.Kind)
		}
		if st.take(got) {
			t.Fatalf("taking the %s in again is a change", rec.Kind)
		}
	}
	if !st.atts[att.CID()].Revoked {
		t.Fatal("the revoked attestation is not marked revoked")
	}
	// The attestation seen again, now stored as revoked, changes nothing.
	again, err := f.store.Get(att.CID())
	if err != nil || !again.Revoked {
		t.Fatalf("stored attestation: %+v, %v", again, err)
	}
	if st.take(again) {
		t.Fatal("the revoked attestation taken in again is a change")
	}
	// A fresh state that saw the attestation before its revocation learns
	// the revocation from the attestation's own note.
	st2 := newState()
	first := *again
	first.Revoked = false
	if !st2.take(&first) || !st2.take(again) || !st2.atts[att.CID()].Revoked {
		t.Fatal("an attestation noted again as revoked did not become revoked")
	}
}

// TestCertificationsKeptWhileTheirInputsAre: a recomputation that finds the
// certifications' inputs unchanged (the attestations, the community's
// levels, the policy, the votes, no expiry passed) keeps the decisions it
// has instead of deciding every subject again; any change of those inputs
// decides again.
func TestCertificationsKeptWhileTheirInputsAre(t *testing.T) {
	var mu sync.Mutex
	pol := community.DefaultPolicy()
	var yes map[string]string
	f := newTunedFixture(t, func(c *Config) {
		c.Debounce = time.Hour // the loop would race the test's recomputations
		c.Policy = func(cid.Cid) community.Policy { mu.Lock(); defer mu.Unlock(); return pol }
		c.Decided = func(cid.Cid) (map[string]string, map[string]string) {
			mu.Lock()
			defer mu.Unlock()
			return yes, nil
		}
	})
	s := f.svc
	_, provider := newKey(t)
	subject := "peer:" + provider.String()
	expires := f.clk.Now().Add(95 * time.Second).UnixMilli()
	f.ingest(f.key, record.KindAttestation, body.Attestation{Subject: body.Subject{Type: body.SubjectPeer, ID: provider.String()},
		Predicate: "agora:audit/manual/v1", Verdict: body.VerdictPass, Expires: expires})
	f.settle()
	certs := func() map[string]certify.Decision {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return s.comms[f.comm.id].certs
	}
	same := func(a, b map[string]certify.Decision) bool {
		return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
	}
	first := certs()
	if d := first[subject]; d.Attestations != 1 || d.Certified {
		t.Fatalf("one pass of two required: %+v", d)
	}

	f.clk.Add(time.Minute) // Refresh's period: the vectors decay, nothing else
	s.recompute()
	if !same(certs(), first) {
		t.Fatal("decided every subject again with nothing changed")
	}
	// What it kept is what deciding again gives.
	s.mu.RLock()
	communal, by := s.comms[f.comm.id].communal, s.comms[f.comm.id].certsBy
	s.mu.RUnlock()
	if fresh := s.certify(f.comm.id, communal, by, f.clk.Now().UnixMilli()); !reflect.DeepEqual(fresh, certs()) {
		t.Fatalf("kept %+v, deciding again gives %+v", certs(), fresh)
	}

	mu.Lock()
	pol.CertifyMinAttestations = 1
	mu.Unlock()
	s.recompute()
	if d := certs()[subject]; same(certs(), first) || !d.Certified {
		t.Fatalf("a new policy kept the old decisions: %+v", d)
	}

	kept := certs()
	mu.Lock()
	yes = map[string]string{"peer:someone": "bafyproposal"}
	mu.Unlock()
	s.recompute()
	if d := certs()["peer:someone"]; same(certs(), kept) || !d.Certified {
		t.Fatalf("a vote kept the old decisions: %+v", d)
	}

	kept = certs()
	f.clk.Set(time.UnixMilli(expires))
	s.recompute()
	if d := certs()[subject]; same(certs(), kept) || d.Certified || d.Attestations != 0 {
		t.Fatalf("an expiry kept the old decisions: %+v", d)
	}

	kept = certs()
	s.Changed()
	s.recompute()
	if same(certs(), kept) {
		t.Fatal("a change of the inputs kept the old decisions")
	}
}
