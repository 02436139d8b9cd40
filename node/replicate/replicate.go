// Package replicate moves registry records between members: push by gossip
// on each community's records topic, and pull by range-based reconciliation
// over /agora/sync/1.0.0 when a member joins the topic and periodically with
// a random member. It owns the streams, their limits and the penalties for
// peers that misbehave; what a record means and whether it is valid belongs
// to the registry.
package replicate

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	wire "github.com/agora-p2p/agora/protocol/recon"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/agora-p2p/agora/registry"
	"github.com/agora-p2p/agora/registry/recon"
)

// Communities is what replication needs of the node's memberships.
type Communities interface {
	IsMember(community cid.Cid) bool
	// Peers lists the other members on the community's records topic.
	Peers(community cid.Cid) []peer.ID
	// PublishRecord sends a stored record on the community's topic.
	PublishRecord(ctx context.Context, community cid.Cid, raw []byte) error
	// Joined lists the communities the node is in.
	Joined() []cid.Cid
}

// Config wires a Service. Zero durations take the defaults.
type Config struct {
	Host        host.Host
	Store       *registry.Store
	Communities Communities
	Logger      *slog.Logger
	// SyncEvery is how often the node reconciles each community with one
	// random member (default 1 minute, with ±25% jitter).
	SyncEvery time.Duration
	// SessionTimeout bounds a whole sync session (default 2 minutes).
	SessionTimeout time.Duration
}

// Service replicates records. Safe for concurrent use.
type Service struct {
	h       host.Host
	store   *registry.Store
	comms   Communities
	log     *slog.Logger
	every   time.Duration
	timeout time.Duration
	pen     *Penalties

	mu       sync.Mutex
	snaps    map[cid.Cid]*recon.Vector // cached reconciliation snapshots
	outgoing map[peer.ID]bool          // one initiated sync per peer at a time
	incoming map[peer.ID]int
	kick     chan syncReq
	stats    Stats

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Stats counts replication work since start.
type Stats struct {
	SessionsInitiated int
	SessionsServed    int
	RecordsFetched    int
	BytesSent         int64
	BytesReceived     int64
}

type syncReq struct {
	community cid.Cid
	peer      peer.ID
}

// Limits of the sync protocol on this node.
const (
	maxIncomingPerPeer = 1
	maxIncomingTotal   = 16
	// maxOutgoing bounds the sessions this node initiates at once; a node
	// that holds nothing yet catches up from one peer at a time.
	maxOutgoing       = 4
	maxNeedPerSession = 100_000
)

// New makes the service; Start runs it.
func New(c Config) *Service {
	if c.SyncEvery == 0 {
		c.SyncEvery = time.Minute
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 2 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return &Service{
		h: c.Host, store: c.Store, comms: c.Communities, log: c.Logger,
		every: c.SyncEvery, timeout: c.SessionTimeout, pen: NewPenalties(c.Host, c.Logger),
		snaps: map[cid.Cid]*recon.Vector{}, outgoing: map[peer.ID]bool{}, incoming: map[peer.ID]int{},
		kick: make(chan syncReq, 64),
	}
}

// Attach gives the service the node's memberships; call it once, before
// Start. (Communities need the service as their Replicator first.)
func (s *Service) Attach(c Communities) { s.comms = c }

// Penalties is the score of misbehaving peers, for gossipsub's
// application-specific score.
func (s *Service) Penalties() *Penalties { return s.pen }

// Start registers the stream handler and runs the sync loops until Close.
func (s *Service) Start() {
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.h.SetStreamHandler(wire.ProtocolID, s.serve)
	notes, cancel := s.store.Subscribe(1024)
	s.wg.Add(3)
	go func() {
		defer s.wg.Done()
		defer cancel()
		for {
			select {
			case <-s.ctx.Done():
				return
			case st, ok := <-notes:
				if !ok {
					return
				}
				s.invalidate(st.Record.Community)
			}
		}
	}()
	go func() { defer s.wg.Done(); s.kicks() }()
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.reconnects() }()
	go func() { defer s.wg.Done(); s.periodic() }()
}

// Close stops syncing and waits for the loops.
func (s *Service) Close() {
	s.h.RemoveStreamHandler(wire.ProtocolID)
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// Stats returns the counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// invalidate drops a community's snapshot after a new record; the next
// session rebuilds it. (A notification may be dropped under load, or come
// while the snapshot is being built; snapshot checks the count too.)
func (s *Service) invalidate(c cid.Cid) {
	s.mu.Lock()
	delete(s.snaps, c)
	s.mu.Unlock()
}

// snapshot returns the community's reconciliation vector, built from the
// registry's (created, CID) index when missing or stale. Records are never
// removed, so one that holds as many items as the store is current.
func (s *Service) snapshot(c cid.Cid) (*recon.Vector, error) {
	s.mu.Lock()
	v := s.snaps[c]
	s.mu.Unlock()
	if v != nil && v.Len() == s.store.Count(c) {
		return v, nil
	}
	items, err := s.store.ReconItems(c)
	if err != nil {
		return nil, err
	}
	its := make([]recon.Item, len(items))
	for i, it := range items {
		its[i] = recon.Item{Created: it.Created, ID: it.ID}
	}
	if v, err = recon.NewVector(its); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.snaps[c] = v
	s.mu.Unlock()
	return v, nil
}

// Fingerprint returns how many of a community's records this node holds and
// the reconciliation fingerprint of the whole range (hex): two nodes holding
// the same set of records report the same pair.
func (s *Service) Fingerprint(c cid.Cid) (int, string, error) {
	v, err := s.snapshot(c)
	if err != nil {
		return 0, "", err
	}
	fp := v.Fingerprint(0, v.Len())
	return v.Len(), hex.EncodeToString(fp[:]), nil
}

// ValidateRecord is ValidateDecoded for the record's encoding: a record
// from gossip is ingested before it is relayed, so the network only
// carries what members have verified and stored.
func (s *Service) ValidateRecord(ctx context.Context, community cid.Cid, from peer.ID, data []byte) pubsub.ValidationResult {
	if from == s.h.ID() {
		return pubsub.ValidationAccept // published by us, stored before publishing
	}
	rec, err := record.Decode(data)
	switch {
	case err != nil && registry.IsSenderFault(err):
		s.pen.Fault(from, "gossip:"+registry.Reason(err))
		return pubsub.ValidationReject
	case err != nil:
		return pubsub.ValidationIgnore
	}
	return s.ValidateDecoded(ctx, community, from, rec)
}

// ValidateDecoded implements communities.Replicator: ValidateRecord for a
// record that record.Decode returned (the topic validator decodes it first
// to route it).
func (s *Service) ValidateDecoded(ctx context.Context, community cid.Cid, from peer.ID, rec *record.Record) pubsub.ValidationResult {
	if from == s.h.ID() {
		return pubsub.ValidationAccept // published by us, stored before publishing
	}
	if s.store.IsCatchUp(rec.Created) {
		// Old records travel by sync only, where they are not rate limited;
		// on gossip a back-dated record would dodge the author's rate limit.
		return pubsub.ValidationIgnore
	}
	res, err := s.store.IngestRecord(ctx, rec)
	s.log.Debug("gossiped record", "from", from, "cid", res.CID, "new", res.New, "err", err)
	switch {
	case err == nil && res.New:
		return pubsub.ValidationAccept
	case err == nil:
		return pubsub.ValidationIgnore // a duplicate
	case registry.IsSenderFault(err):
		s.pen.Fault(from, "gossip:"+registry.Reason(err))
		return pubsub.ValidationReject
	case errors.Is(err, registry.ErrUnknownReference):
		// We lack what it refers to: the sender has it, so sync with it.
		s.MemberJoined(community, from)
	}
	return pubsub.ValidationIgnore
}

// MemberJoined implements communities.Replicator: a new member on the
// topic is a moment to reconcile with it.
func (s *Service) MemberJoined(community cid.Cid, p peer.ID) {
	select {
	case s.kick <- syncReq{community, p}:
	default: // a sync is already queued; the periodic one catches up
	}
}

// Publish signs a record with key, stores it (durably) and gossips it.
func (s *Service) Publish(ctx context.Context, key crypto.PrivKey, community cid.Cid, kind record.Kind, body any) (*record.Record, error) {
	rec, err := s.store.Sign(key, community, kind, body)
	if err != nil {
		return nil, err
	}
	raw, err := rec.Encode()
	if err != nil {
		return nil, err
	}
	if err := s.comms.PublishRecord(ctx, community, raw); err != nil {
		// Stored all the same: sync delivers it when gossip cannot.
		s.log.Warn("record stored but not gossiped; sync will deliver it", "cid", rec.CID(), "err", err)
	}
	return rec, nil
}

// reconnects syncs with a member whose connection comes back. Gossipsub
// announces a peer joining a topic only when it had seen it leave; after a
// partition, a connection that stalled and was replaced does not always
// look like a leave and a join, and the records published on either side
// meanwhile would wait for the periodic sync (a minute). A short delay lets
// the new connection's gossipsub hello arrive, so the peer is on the topic.
func (s *Service) reconnects() {
	sub, err := s.h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		s.log.Warn("cannot follow connections; reconnected members sync only periodically", "err", err)
		return
	}
	defer sub.Close()
	for {
		select {
		case <-s.ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			ev := e.(event.EvtPeerConnectednessChanged)
			if ev.Connectedness != network.Connected {
				continue
			}
			time.AfterFunc(reconnectSyncDelay, func() {
				if s.ctx.Err() != nil {
					return
				}
				for _, c := range s.comms.Joined() {
					if slices.Contains(s.comms.Peers(c), ev.Peer) {
						s.MemberJoined(c, ev.Peer)
					}
				}
			})
		}
	}
}

// reconnectSyncDelay is how long after a connection comes up its peer is
// checked for the communities' topics.
const reconnectSyncDelay = 2 * time.Second

func (s *Service) kicks() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case r := <-s.kick:
			s.goSync(r.community, r.peer)
		}
	}
}

// periodic reconciles each community with one random member now and then,
// so partitions heal and missed gossip is fetched.
func (s *Service) periodic() {
	for {
		d := s.every*3/4 + time.Duration(rand.Int64N(int64(s.every/2)+1))
		t := time.NewTimer(d)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		for _, c := range s.comms.Joined() {
			if ps := s.comms.Peers(c); len(ps) > 0 {
				s.goSync(c, ps[rand.IntN(len(ps))])
			}
		}
	}
}

// goSync runs one initiated sync in the background unless one with that
// peer is already running.
func (s *Service) goSync(c cid.Cid, p peer.ID) {
	if s.pen.Dropped(p) {
		return
	}
	empty := s.store.Count(c) == 0
	s.mu.Lock()
	if s.outgoing[p] || len(s.outgoing) >= maxOutgoing || (empty && len(s.outgoing) > 0) {
		s.mu.Unlock()
		return // the periodic sync will come back to it
	}
	s.outgoing[p] = true
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.outgoing, p)
			s.mu.Unlock()
		}()
		res, err := s.SyncWith(s.ctx, p, c)
		if err != nil && s.ctx.Err() == nil {
			s.log.Debug("sync failed", "peer", p, "community", c, "err", err)
			return
		}
		if res.Fetched > 0 {
			s.log.Info("synced records", "peer", p, "community", c, "fetched", res.Fetched, "rounds", res.Rounds)
		}
	}()
}

// Result describes one initiated sync.
type Result struct {
	Rounds    int
	Need      int // records the peer had that we lacked
	Have      int // records we had that the peer lacked
	Fetched   int // of Need, stored now
	Rejected  int // records the peer sent that failed validation
	BytesSent int64
	BytesRecv int64
	Complete  bool
}

var errPeerFault = errors.New("the peer broke the sync protocol")

func (s *Service) account(r Result, initiated bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if initiated {
		s.stats.SessionsInitiated++
	} else {
		s.stats.SessionsServed++
	}
	s.stats.RecordsFetched += r.Fetched
	s.stats.BytesSent += r.BytesSent
	s.stats.BytesReceived += r.BytesRecv
}

// streamIO counts the bytes of a sync stream.
type streamIO struct {
	network.Stream
	sent, recv int64
}

func (c *streamIO) Read(p []byte) (int, error) {
	n, err := c.Stream.Read(p)
	c.recv += int64(n)
	return n, err
}

func (c *streamIO) Write(p []byte) (int, error) {
	n, err := c.Stream.Write(p)
	c.sent += int64(n)
	return n, err
}

func fault(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errPeerFault, fmt.Sprintf(format, a...))
}
