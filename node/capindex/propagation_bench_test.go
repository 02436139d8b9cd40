package capindex_test

// Advert propagation (issue 4): how long a signed advert takes to reach the
// capability index of every node of a 100-node gossipsub network, against
// a raw gossipsub publication of the same size on the same network in the
// same run. Nothing here is a timed assertion; see docs/perf.md.
//
//	go test -run '^$' -bench AdvertPropagation -benchtime 5x ./node/capindex
//
// With AGORA_BENCH_SAMPLES naming a directory, it writes every node's
// arrival delay of every iteration (ms, one a line) there, for the advert
// (advert-propagation.samples) and the raw message
// (gossipsub-propagation.samples), for cmd/agora-bench's plots.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"

	"github.com/agora-p2p/agora/internal/benchsamples"
	"github.com/agora-p2p/agora/node/agents"
	"github.com/agora-p2p/agora/node/capindex"
	"github.com/agora-p2p/agora/node/communities"
	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/record"
)

const (
	propNodes   = 100
	propDegree  = 6 // connections per node, on average
	propLatency = 20 * time.Millisecond
	rawTopic    = "agora-bench/raw/1"
	advTopic    = "agora-bench/adverts/1"
)

// propNode is one member: a mocknet host, gossipsub on both topics, and a
// capability index fed by the adverts topic's validator.
type propNode struct {
	h     host.Host
	key   crypto.PrivKey
	ps    *pubsub.PubSub
	raw   *pubsub.Topic
	adv   *pubsub.Topic
	index *capindex.Index
	mesh  *meshTracer
	// events are the raw and adverts topics' peer events.
	events []*pubsub.TopicEventHandler
	ads    *capindex.Advertiser // made when the node first publishes
}

// arrivals records when each node got each publication (by tag: the raw
// message's first 16 bytes, or the advert's seq), counted from start.
type arrivals struct {
	mu    sync.Mutex
	start time.Time
	at    map[string]map[peer.ID]time.Duration
	kick  chan struct{}
}

func newArrivals() *arrivals {
	return &arrivals{at: map[string]map[peer.ID]time.Duration{}, kick: make(chan struct{}, 1)}
}

// reset forgets earlier publications and starts the clock.
func (a *arrivals) reset() {
	a.mu.Lock()
	a.start, a.at = time.Now(), map[string]map[peer.ID]time.Duration{}
	a.mu.Unlock()
}

func (a *arrivals) arrived(p peer.ID, tag string) {
	now := time.Now()
	a.mu.Lock()
	m := a.at[tag]
	if m == nil {
		m = map[peer.ID]time.Duration{}
		a.at[tag] = m
	}
	if _, ok := m[p]; !ok {
		m[p] = now.Sub(a.start)
	}
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// wait returns the arrival times of tag once all the other nodes have it.
func (a *arrivals) wait(tb testing.TB, tag, what string) []time.Duration {
	deadline := time.After(20 * time.Second)
	for {
		a.mu.Lock()
		m := a.at[tag]
		if len(m) >= propNodes-1 {
			out := make([]time.Duration, 0, len(m))
			for _, d := range m {
				out = append(out, d)
			}
			a.mu.Unlock()
			return out
		}
		a.mu.Unlock()
		select {
		case <-a.kick:
		case <-deadline:
			tb.Fatalf("%s reached %d of %d nodes in 20 s", what, len(m), propNodes-1)
		}
	}
}

// meshTracer counts a node's mesh peers per topic (gossipsub's GRAFT and
// PRUNE), so the benchmark waits for meshes rather than sleeping.
type meshTracer struct {
	mu      sync.Mutex
	mesh    map[string]map[peer.ID]bool
	changed chan struct{}
}

func (m *meshTracer) Graft(p peer.ID, topic string) {
	m.mu.Lock()
	if m.mesh[topic] == nil {
		m.mesh[topic] = map[peer.ID]bool{}
	}
	m.mesh[topic][p] = true
	m.mu.Unlock()
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

func (m *meshTracer) Prune(p peer.ID, topic string) {
	m.mu.Lock()
	delete(m.mesh[topic], p)
	m.mu.Unlock()
}

// waitMesh waits until one of the node's topics has n mesh peers.
func (m *meshTracer) waitMesh(ctx context.Context, topic string, n int) error {
	for {
		m.mu.Lock()
		k := len(m.mesh[topic])
		m.mu.Unlock()
		if k >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d mesh peers on %s", k, n, topic)
		case <-m.changed:
		}
	}
}

func (*meshTracer) AddPeer(peer.ID, string)                              {}
func (*meshTracer) RemovePeer(peer.ID)                                   {}
func (*meshTracer) Join(string)                                          {}
func (*meshTracer) Leave(string)                                         {}
func (*meshTracer) DeliverMessage(*pubsub.Message)                       {}
func (*meshTracer) ValidateMessage(*pubsub.Message)                      {}
func (*meshTracer) RejectMessage(*pubsub.Message, string)                {}
func (*meshTracer) DuplicateMessage(*pubsub.Message)                     {}
func (*meshTracer) ThrottlePeer(peer.ID)                                 {}
func (*meshTracer) RecvRPC(*pubsub.RPC)                                  {}
func (*meshTracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (*meshTracer) DropRPC(*pubsub.RPC, peer.ID)                         {}
func (*meshTracer) UndeliverableMessage(*pubsub.Message)                 {}
func (*meshTracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (*meshTracer) OnClosedOutboundStream(peer.ID)                       {}
func (*meshTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}

// advertValidator is node/communities' validator for an adverts topic:
// decode, verify the signature and the clock, check kind and community,
// and hand the record to the index, relaying only news.
func advertValidator(self peer.ID, community cid.Cid, x *capindex.Index, got *arrivals) pubsub.ValidatorEx {
	return func(_ context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		if from == self { // our own publication (messages name no author)
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
		case !rec.Community.Equals(community), rec.Kind != record.KindAdvert:
			return pubsub.ValidationReject
		}
		fresh, err := x.Receive(community, rec)
		switch {
		case err != nil && record.IsSenderFault(err):
			return pubsub.ValidationReject
		case err != nil, !fresh:
			return pubsub.ValidationIgnore
		}
		got.arrived(self, fmt.Sprint(x.Seq(community, rec.Author)))
		return pubsub.ValidationAccept
	}
}

// builtinAgents is what a node with the builtin agent advertises.
func builtinAgents() []body.AdvertAgent {
	ag := body.AdvertAgent{Name: "builtin", Description: "Deterministic utilities: text statistics, jq queries over JSON, arithmetic.", Version: "1"}
	for _, s := range agents.BuiltinSkills() {
		d := s.Description
		if r := []rune(d); len(r) > body.MaxAdvertDescription {
			d = string(r[:body.MaxAdvertDescription])
		}
		ag.Skills = append(ag.Skills, body.AdvertSkill{ID: s.ID, Description: d, Tags: s.Tags, Input: s.Input, Output: s.Output})
	}
	return []body.AdvertAgent{ag}
}

// BenchmarkAdvertPropagation builds a 100-node mocknet (20 ms per link,
// each node connected to about 6 others, gossipsub configured as the node
// configures it: flood publishing, unsigned messages with content IDs)
// once, then per iteration has one node (a different one
// each time) publish (a) a raw message the size of an encoded advert record
// on a plain topic, time until the 99 others' subscriptions deliver it, and
// (b) its signed advert (capindex.Advertiser, as the node does) on a topic
// whose validator verifies it and feeds each node's capindex.Index, time
// until the 99 indexes hold it. It reports p50/p99/max of the arrival times
// across nodes for both, the median time for all 99, and the ratio of
// those (target ≤ 1.1).
func BenchmarkAdvertPropagation(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sum, _ := mh.Sum([]byte("agora advert propagation benchmark"), mh.SHA2_256, -1)
	community := cid.NewCidV1(cid.DagCBOR, sum)

	mn := mocknet.New()
	defer mn.Close()
	mn.SetLinkDefaults(mocknet.LinkOptions{Latency: propLatency})
	rawGot, advGot := newArrivals(), newArrivals()
	nodes := make([]*propNode, propNodes)
	for i := range nodes {
		key, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			b.Fatal(err)
		}
		h, err := mn.AddPeer(key, ma.StringCast(fmt.Sprintf("/ip4/10.1.%d.%d/tcp/4001", i/250, i%250+1)))
		if err != nil {
			b.Fatal(err)
		}
		n := &propNode{h: h, key: key, index: capindex.New(nil),
			mesh: &meshTracer{mesh: map[string]map[peer.ID]bool{}, changed: make(chan struct{}, 1)}}
		// The node's gossipsub (node/node.go): its scoring, sizes, queues,
		// flood publishing and the community topics' message options
		// (unsigned messages with content IDs), for both topics.
		params, thresholds := communities.ScoreParams(func(peer.ID) float64 { return 0 })
		opts := append([]pubsub.Option{pubsub.WithPeerScore(params, thresholds),
			pubsub.WithFloodPublish(true), pubsub.WithMaxMessageSize(128 << 10), pubsub.WithRawTracer(n.mesh),
			pubsub.WithValidateQueueSize(256), pubsub.WithPeerOutboundQueueSize(128)},
			communities.PubSubOptions()...)
		if n.ps, err = pubsub.NewGossipSub(ctx, h, opts...); err != nil {
			b.Fatal(err)
		}
		if err := n.ps.RegisterTopicValidator(advTopic, advertValidator(h.ID(), community, n.index, advGot)); err != nil {
			b.Fatal(err)
		}
		if n.raw, err = n.ps.Join(rawTopic); err != nil {
			b.Fatal(err)
		}
		if n.adv, err = n.ps.Join(advTopic); err != nil {
			b.Fatal(err)
		}
		for _, t := range []*pubsub.Topic{n.raw, n.adv} {
			ev, err := t.EventHandler()
			if err != nil {
				b.Fatal(err)
			}
			n.events = append(n.events, ev)
			sub, err := t.Subscribe()
			if err != nil {
				b.Fatal(err)
			}
			raw := t == n.raw
			go func() {
				for {
					m, err := sub.Next(ctx)
					if err != nil {
						return
					}
					if raw && m.ReceivedFrom != h.ID() {
						rawGot.arrived(h.ID(), string(m.Data[:16]))
					}
				}
			}()
		}
		nodes[i] = n
	}

	// About propDegree connections per node: a ring (so the graph is
	// connected) plus random chords.
	rng := rand.New(rand.NewPCG(1, 2))
	linked := map[[2]int]bool{}
	connect := func(i, j int) {
		if i == j || linked[[2]int{min(i, j), max(i, j)}] {
			return
		}
		linked[[2]int{min(i, j), max(i, j)}] = true
		if _, err := mn.LinkPeers(nodes[i].h.ID(), nodes[j].h.ID()); err != nil {
			b.Fatal(err)
		}
		if _, err := mn.ConnectPeers(nodes[i].h.ID(), nodes[j].h.ID()); err != nil {
			b.Fatal(err)
		}
	}
	for i := range nodes {
		connect(i, (i+1)%propNodes)
	}
	for len(linked) < propNodes*propDegree/2 {
		connect(rng.IntN(propNodes), rng.IntN(propNodes))
	}

	// Wait until every node has its neighbours on both topics (peer
	// events), then until each mesh has min(neighbours, Dlo) peers (GRAFTs
	// seen by the tracer).
	setupCtx, setupDone := context.WithTimeout(ctx, 30*time.Second)
	defer setupDone()
	var wg sync.WaitGroup
	var short atomic.Int64
	errs := make(chan error, 2*propNodes)
	for _, n := range nodes {
		neighbours := len(n.h.Network().Peers())
		for i, t := range []*pubsub.Topic{n.raw, n.adv} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer n.events[i].Cancel()
				joined := map[peer.ID]bool{}
				for len(joined) < neighbours {
					e, err := n.events[i].NextPeerEvent(setupCtx)
					if err != nil {
						errs <- fmt.Errorf("%d of %d topic peers: %w", len(joined), neighbours, err)
						return
					}
					if e.Type == pubsub.PeerJoin {
						joined[e.Peer] = true
					} else {
						delete(joined, e.Peer)
					}
				}
				// A peer with more than Dhi mesh peers prunes a GRAFT and the
				// grafting node then backs off for a minute, so a node may
				// stay one or two short of Dlo: wait 5 s for a full mesh, then
				// settle for any mesh at all.
				full, done := context.WithTimeout(setupCtx, 5*time.Second)
				defer done()
				if n.mesh.waitMesh(full, t.String(), min(neighbours, pubsub.GossipSubDlo)) != nil {
					short.Add(1)
					if err := n.mesh.waitMesh(setupCtx, t.String(), 1); err != nil {
						errs <- err
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("the network did not form within 30 s: %v", err)
	}
	if k := short.Load(); k > 0 {
		b.Logf("%d of %d topic meshes stayed under min(neighbours, Dlo)", k, 2*propNodes)
	}

	publishAdvert := func(n *propNode) (string, error) {
		if n.ads == nil {
			var err error
			if n.ads, err = capindex.NewAdvertiser(capindex.AdvertiserConfig{
				Key: n.key, Index: n.index,
				Communities: func() []cid.Cid { return []cid.Cid{community} },
				Agents:      func(cid.Cid) []body.AdvertAgent { return builtinAgents() },
				Addrs:       func() []string { return []string{n.h.Addrs()[0].String()} },
				Publish:     func(ctx context.Context, _ cid.Cid, raw []byte) error { return n.adv.Publish(ctx, raw) },
			}); err != nil {
				return "", err
			}
		}
		n.ads.MemberJoined(community, "") // publish now, unchanged or not
		n.ads.Sync(ctx)
		return fmt.Sprint(n.index.Seq(community, n.h.ID())), nil
	}
	// The size of an encoded advert record: sign one as the Advertiser does.
	sample, err := record.Sign(nodes[0].key, record.KindAdvert, community,
		body.Advert{Seq: uint64(time.Now().UnixMilli()), Expires: time.Now().Add(capindex.DefaultLifetime).UnixMilli(),
			Addrs: []string{nodes[0].h.Addrs()[0].String()}, Agents: builtinAgents()}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	size := len(sample.Raw())

	var rawAll, advAll []time.Duration // per-node arrival times, all iterations
	var rawFull, advFull []time.Duration
	round := func(i int) {
		n := nodes[(i+propNodes)%propNodes]
		msg := make([]byte, size)
		tag := fmt.Sprintf("raw-%012d", i) // 16 bytes
		copy(msg, tag)
		rawGot.reset()
		if err := n.raw.Publish(ctx, msg); err != nil {
			b.Fatal(err)
		}
		got := rawGot.wait(b, tag, "the raw message")
		rawAll = append(rawAll, got...)
		rawFull = append(rawFull, slices.Max(got))

		// The clock starts before the advert is signed.
		advGot.reset()
		seq, err := publishAdvert(n)
		if err != nil {
			b.Fatal(err)
		}
		got = advGot.wait(b, seq, "the advert")
		advAll = append(advAll, got...)
		advFull = append(advFull, slices.Max(got))
	}
	round(-1) // warm up: streams, validators
	rawAll, advAll, rawFull, advFull = nil, nil, nil, nil
	b.ResetTimer()
	for i := range b.N {
		round(i)
	}
	b.StopTimer()

	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	var line strings.Builder
	for i := range rawFull {
		fmt.Fprintf(&line, " %.0f/%.0f", ms(rawFull[i]), ms(advFull[i]))
	}
	b.Logf("all 99 nodes, raw/advert ms, per iteration:%s", line.String())
	benchsamples.Write(b, "gossipsub-propagation", rawAll)
	benchsamples.Write(b, "advert-propagation", advAll)
	slices.Sort(rawAll)
	slices.Sort(advAll)
	slices.Sort(rawFull)
	slices.Sort(advFull)
	q := func(s []time.Duration, p float64) time.Duration { return s[min(int(p*float64(len(s))), len(s)-1)] }
	b.ReportMetric(float64(size), "record_bytes")
	b.ReportMetric(ms(q(rawAll, 0.5)), "raw_p50_ms")
	b.ReportMetric(ms(q(rawAll, 0.99)), "raw_p99_ms")
	b.ReportMetric(ms(rawAll[len(rawAll)-1]), "raw_max_ms")
	b.ReportMetric(ms(q(advAll, 0.5)), "adv_p50_ms")
	b.ReportMetric(ms(q(advAll, 0.99)), "adv_p99_ms")
	b.ReportMetric(ms(advAll[len(advAll)-1]), "adv_max_ms")
	b.ReportMetric(ms(q(rawFull, 0.5)), "raw_all_ms")
	b.ReportMetric(ms(q(advFull, 0.5)), "adv_all_ms")
	b.ReportMetric(float64(q(advFull, 0.5))/float64(q(rawFull, 0.5)), "all_ratio")
}
