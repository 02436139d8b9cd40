package replicate

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/communities"
	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/agora-p2p/agora/registry"
	"github.com/agora-p2p/agora/registry/recon"
)

var quiet = slog.New(slog.DiscardHandler)

// testNode is one Agora node on a mocknet, wired as node/node.go wires it:
// host, badger, registry, replication, gossipsub and communities.
type testNode struct {
	key    crypto.PrivKey
	id     peer.ID
	h      host.Host
	db     *badger.DB
	ps     *pubsub.PubSub
	store  *registry.Store
	comms  *communities.Service
	repl   *Service
	events *memberEvents
	cancel context.CancelFunc
}

type nodeOptions struct {
	syncEvery time.Duration // replicate.Config.SyncEvery; 0 is the default
}

// testDB opens badger with the node's options (registry.BadgerOptions) in
// the low-power profile, so that twenty of them fit on a laptop. big is
// for 100,000s of records: the node's full caches, and badger's own
// compactors in place of the node's compaction driver.
func testDB(t testing.TB, dir string, big bool) *badger.DB {
	t.Helper()
	o := registry.BadgerOptions(dir).WithMemTableSize(4 << 20).WithBlockCacheSize(4 << 20).WithIndexCacheSize(2 << 20)
	if big {
		o = registry.BadgerOptions(dir).WithNumCompactors(2)
	}
	db, err := badger.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func newKey(t testing.TB) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// addHost adds a mocknet host with a loopback address, so that invites
// carry an address (mocknet never dials it for real).
func addHost(t testing.TB, mn mocknet.Mocknet, key crypto.PrivKey) host.Host {
	t.Helper()
	addr := ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 10000+len(mn.Peers())))
	h, err := mn.AddPeer(key, addr)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// newTestNode starts a node on mn with its datastore in dir. Stop it with
// stop, then release it once its host is closed (newTestNet does both).
func newTestNode(t testing.TB, mn mocknet.Mocknet, dir string, o nodeOptions) *testNode {
	t.Helper()
	n := &testNode{key: newKey(t), events: newMemberEvents()}
	n.id, _ = peer.IDFromPrivateKey(n.key)
	n.h = addHost(t, mn, n.key)
	n.db = testDB(t, dir, false)
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel

	// The registry asks the communities, which are made after it.
	var member atomic.Pointer[communities.Service]
	var err error
	if n.store, err = registry.Open(n.db, registry.Options{
		Member: func(c cid.Cid) bool { s := member.Load(); return s != nil && s.IsMember(c) },
		Logger: quiet,
	}); err != nil {
		t.Fatal(err)
	}
	n.repl = New(Config{Host: n.h, Store: n.store, Logger: quiet, SyncEvery: o.syncEvery})
	params, thresholds := communities.ScoreParams(n.repl.Penalties().Score)
	if n.ps, err = pubsub.NewGossipSub(ctx, n.h,
		pubsub.WithPeerScore(params, thresholds),
		pubsub.WithMaxMessageSize(128<<10),
		pubsub.WithPeerExchange(true),
		pubsub.WithFloodPublish(true),
		pubsub.WithLogger(quiet),
	); err != nil {
		t.Fatal(err)
	}
	if n.comms, err = communities.New(ctx, communities.Config{
		Host: n.h, PubSub: n.ps, DB: n.db, Key: n.key, Publisher: n.events, Replicator: n.repl, Logger: quiet,
		Connect: func(ctx context.Context, ai peer.AddrInfo) { n.h.Connect(ctx, ai) },
	}); err != nil {
		t.Fatal(err)
	}
	member.Store(n.comms)
	n.repl.Attach(n.comms)
	n.repl.Start()
	return n
}

// stop stops replication and leaves the topics: nothing new starts after.
func (n *testNode) stop() {
	n.repl.Close()
	n.comms.Close()
	n.cancel()
}

// release closes the store and the database, once the host is gone.
func (n *testNode) release() {
	n.store.Close()
	n.db.Close()
}

// testNet is a mocknet of test nodes, torn down in an order that leaves no
// session using a closed database: replication everywhere first, then the
// hosts, then storage.
type testNet struct {
	t     testing.TB
	mn    mocknet.Mocknet
	dir   string // removed after the cleanup below, which closes the databases
	nodes []*testNode
}

func newTestNet(t testing.TB, n int, o nodeOptions) *testNet {
	t.Helper()
	tn := &testNet{t: t, mn: mocknet.New(), dir: t.TempDir()}
	t.Cleanup(func() {
		for _, n := range tn.nodes {
			n.stop()
		}
		tn.mn.Close()
		for _, n := range tn.nodes {
			n.release()
		}
	})
	for range n {
		tn.add(o)
	}
	if err := tn.mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	return tn
}

// add starts one more node; link it before it dials.
func (tn *testNet) add(o nodeOptions) *testNode {
	dir, err := os.MkdirTemp(tn.dir, "node")
	if err != nil {
		tn.t.Fatal(err)
	}
	n := newTestNode(tn.t, tn.mn, dir, o)
	tn.nodes = append(tn.nodes, n)
	return n
}

// community has the first node create a community and every other node
// join it by invite, connects all pairs, and waits until each node sees
// all the others on the records topic.
func (tn *testNet) community(ctx context.Context) cid.Cid {
	tn.t.Helper()
	created, err := tn.nodes[0].comms.Create(ctx, "garden", "allotment agents")
	if err != nil {
		tn.t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(tn.nodes))
	for _, n := range tn.nodes[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := n.comms.Join(ctx, created.Invite); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tn.t.Fatal(err)
	}
	for i, a := range tn.nodes {
		for _, b := range tn.nodes[i+1:] {
			if _, err := tn.mn.ConnectPeers(a.id, b.id); err != nil {
				tn.t.Fatal(err)
			}
		}
	}
	c, _ := cid.Decode(created.ID)
	for _, n := range tn.nodes {
		if err := n.events.waitMembers(ctx, c, len(tn.nodes)-1); err != nil {
			tn.t.Fatal(err)
		}
	}
	return c
}

// memberEvents is the communities' Publisher: it follows who is on each
// community's records topic, so tests wait on topic events, not on time.
type memberEvents struct {
	mu      sync.Mutex
	members map[string]map[string]bool // community -> peers
	changed chan struct{}              // closed and replaced on every change
}

func newMemberEvents() *memberEvents {
	return &memberEvents{members: map[string]map[string]bool{}, changed: make(chan struct{})}
}

func (e *memberEvents) Publish(typ string, data any) api.Event {
	ev := api.Event{Type: typ, Time: time.Now().UnixMilli(), Data: data}
	m, ok := data.(map[string]string)
	if !ok || (typ != "community.member.joined" && typ != "community.member.left") {
		return ev
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ps := e.members[m["community"]]
	if ps == nil {
		ps = map[string]bool{}
		e.members[m["community"]] = ps
	}
	if typ == "community.member.joined" {
		ps[m["peer_id"]] = true
	} else {
		delete(ps, m["peer_id"])
	}
	close(e.changed)
	e.changed = make(chan struct{})
	return ev
}

// waitMembers waits until n other peers are on the community's records
// topic.
func (e *memberEvents) waitMembers(ctx context.Context, c cid.Cid, n int) error {
	for {
		e.mu.Lock()
		got, changed := len(e.members[c.String()]), e.changed
		e.mu.Unlock()
		if got == n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%d other members on the topic of %s, want %d: %w", got, c, n, ctx.Err())
		}
	}
}

// waitCount waits until the node holds want records of c, woken by the
// store's notifications.
func (n *testNode) waitCount(ctx context.Context, c cid.Cid, want int) error {
	notes, cancel := n.store.Subscribe(8192)
	defer cancel()
	for n.store.Count(c) < want {
		select {
		case <-notes:
		case <-ctx.Done():
			return fmt.Errorf("node %s holds %d records, want %d: %w", n.id, n.store.Count(c), want, ctx.Err())
		}
	}
	return nil
}

// fingerprint is the reconciliation fingerprint of everything the node
// holds of c, and the number of items.
func (n *testNode) fingerprint(t testing.TB, c cid.Cid) (string, int) {
	t.Helper()
	its, err := n.store.ReconItems(c)
	if err != nil {
		t.Fatal(err)
	}
	items := make([]recon.Item, len(its))
	for i, it := range its {
		items[i] = recon.Item{Created: it.Created, ID: it.ID}
	}
	return vectorFingerprint(t, items)
}

func vectorFingerprint(t testing.TB, items []recon.Item) (string, int) {
	t.Helper()
	v, err := recon.NewVector(items)
	if err != nil {
		t.Fatal(err)
	}
	fp := v.Fingerprint(0, v.Len())
	return fmt.Sprintf("%x", fp[:]), v.Len()
}

// testCommunity is a community ID for records of a community no node
// created (the registry needs only a well-formed ID).
func testCommunity(t testing.TB, name string) cid.Cid {
	t.Helper()
	c, err := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: -1}.Sum([]byte(name))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// attestation is a realistic attestation body (a record of about 600
// bytes, as in the registry's benchmarks).
func attestation(subject peer.ID, n int) body.Attestation {
	return body.Attestation{
		Subject:   body.Subject{Type: body.SubjectPeer, ID: subject.String()},
		Predicate: "agora:audit/deterministic/v1",
		Verdict:   body.VerdictPass,
		Claims:    map[string]string{"sample": fmt.Sprint(n), "skill": "text.summarize", "matched": "20/20"},
		Evidence:  strings.Repeat("receipt bafyreiexampleexampleexampleexample ", 5),
	}
}

// signed signs a record and returns it with its encoding.
func signed(t testing.TB, key crypto.PrivKey, c cid.Cid, kind record.Kind, b any, created time.Time) (*record.Record, []byte) {
	t.Helper()
	rec, err := record.Sign(key, kind, c, b, created)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rec.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return rec, raw
}

// signMany signs n attestations of c by the given authors in turn, the i-th
// created at created(i), on every CPU.
func signMany(t testing.TB, authors []crypto.PrivKey, c cid.Cid, n int, created func(i int) time.Time) [][]byte {
	t.Helper()
	subjects := make([]peer.ID, len(authors))
	for i, k := range authors {
		subjects[i], _ = peer.IDFromPrivateKey(k)
	}
	out := make([][]byte, n)
	var wg sync.WaitGroup
	var failed atomic.Value
	const workers = 8
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				k := i % len(authors)
				rec, err := record.Sign(authors[k], record.KindAttestation, c, attestation(subjects[(k+1)%len(subjects)], i), created(i))
				if err == nil {
					out[i], err = rec.Encode()
				}
				if err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		t.Fatal(err)
	}
	return out
}

// ingestAll stores records that must all be new and valid.
func ingestAll(t testing.TB, s *registry.Store, raws [][]byte) {
	t.Helper()
	for i := 0; i < len(raws); i += 4096 {
		for j, r := range s.IngestBatch(context.Background(), raws[i:min(i+4096, len(raws))]) {
			if r.Err != nil || !r.New {
				t.Fatalf("record %d: new %v, %v", i+j, r.New, r.Err)
			}
		}
	}
}

func rawBytes(raws [][]byte) int64 {
	var n int64
	for _, r := range raws {
		n += int64(len(r))
	}
	return n
}

func keys(t testing.TB, n int) []crypto.PrivKey {
	out := make([]crypto.PrivKey, n)
	for i := range out {
		out[i] = newKey(t)
	}
	return out
}

// bareNode is a host, a store and the replication service, a member of one
// community without its topics: nothing but the syncs a test runs moves
// records. Start its service with repl.Start.
type bareNode struct {
	h     host.Host
	db    *badger.DB
	store *registry.Store
	repl  *Service
}

func newBareNode(t testing.TB, mn mocknet.Mocknet, dir string, c cid.Cid) *bareNode {
	t.Helper()
	h := addHost(t, mn, newKey(t))
	n := &bareNode{h: h, db: testDB(t, dir, true)}
	var err error
	if n.store, err = registry.Open(n.db, registry.Options{Member: c.Equals, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	n.repl = New(Config{Host: h, Store: n.store, Communities: fixedMembership{c}, Logger: quiet})
	return n
}

func (n *bareNode) close() {
	n.repl.Close()
	n.h.Close()
	n.store.Close()
	n.db.Close()
}

// fixedMembership is a membership of one community, with no topic.
type fixedMembership struct{ c cid.Cid }

func (m fixedMembership) IsMember(c cid.Cid) bool                            { return c.Equals(m.c) }
func (fixedMembership) Peers(cid.Cid) []peer.ID                              { return nil }
func (fixedMembership) PublishRecord(context.Context, cid.Cid, []byte) error { return nil }
func (m fixedMembership) Joined() []cid.Cid                                  { return []cid.Cid{m.c} }
