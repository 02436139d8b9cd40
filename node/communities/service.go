// Package communities runs the communities a node belongs to: it keeps the
// memberships in the datastore, joins each community's gossipsub topics with
// validators, makes and reads invites, and reports members. Record storage
// and replication belong to the registry, not here.
package communities

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/protocol/community"
	"github.com/agora-p2p/agora/protocol/record"
)

const dbPrefix = "communities/"

// Publisher receives the service's events (the API's event hub).
type Publisher interface {
	Publish(typ string, data any) api.Event
}

// Community is one joined community.
type Community struct {
	ID      cid.Cid
	Genesis *record.Record
	Info    community.Genesis
	Joined  time.Time

	adverts *pubsub.Topic
	records *pubsub.Topic
	subs    []*pubsub.Subscription
	cancel  context.CancelFunc
	readers sync.WaitGroup
}

type stored struct {
	Genesis []byte `json:"genesis"`
	Joined  int64  `json:"joined"`
}

// Replicator is the registry's side of the records topics. Implementations
// must be safe for concurrent use.
type Replicator interface {
	// ValidateDecoded stores a record received on the community's records
	// topic (as record.Decode returned it) and says whether gossip should
	// relay it.
	ValidateDecoded(ctx context.Context, community cid.Cid, from peer.ID, rec *record.Record) pubsub.ValidationResult
	// MemberJoined is told when a peer joins a community's records topic.
	// It must not block.
	MemberJoined(community cid.Cid, p peer.ID)
}

// Adverts is the capability index's side of the adverts topics.
// Implementations must be safe for concurrent use and must not block.
type Adverts interface {
	// ReceiveAdvert takes an advert record, already verified, that arrived
	// on the community's adverts topic. It reports an error for a body the
	// sender is at fault for, and whether the advert is news (to relay).
	ReceiveAdvert(community cid.Cid, rec *record.Record) (bool, error)
	// MemberJoined is told when a peer joins a community's topics.
	MemberJoined(community cid.Cid, p peer.ID)
	// CommunitiesChanged is told when the node joins or leaves one.
	CommunitiesChanged()
}

// Service owns the node's memberships. Safe for concurrent use.
type Service struct {
	h       host.Host
	ps      *pubsub.PubSub
	db      *badger.DB
	key     crypto.PrivKey
	pub     Publisher
	log     *slog.Logger
	now     func() time.Time
	ctx     context.Context
	connect func(ctx context.Context, ai peer.AddrInfo) // dials and remembers a bootstrap peer
	repl    Replicator
	adv     Adverts
	fault   func(peer.ID, string)

	mu     sync.Mutex
	joined map[cid.Cid]*Community
}

// Config wires a Service.
type Config struct {
	Host      host.Host
	PubSub    *pubsub.PubSub
	DB        *badger.DB
	Key       crypto.PrivKey
	Publisher Publisher
	Logger    *slog.Logger
	Now       func() time.Time
	// Connect dials a peer named in an invite and remembers it.
	Connect func(ctx context.Context, ai peer.AddrInfo)
	// Replicator stores what arrives on the records topics (nil: validate
	// only).
	Replicator Replicator
	// Adverts takes what arrives on the adverts topics (nil: validate
	// only).
	Adverts Adverts
	// Fault is told about a peer that forwarded a message the topic's
	// rules reject (it should have validated it before relaying): reason
	// is "topic:<why>" or "advert:<why>". Nil: gossipsub's own score only.
	Fault func(p peer.ID, reason string)
}

// New loads the memberships from the datastore and rejoins their topics.
func New(ctx context.Context, c Config) (*Service, error) {
	s := &Service{h: c.Host, ps: c.PubSub, db: c.DB, key: c.Key, pub: c.Publisher, log: c.Logger,
		now: c.Now, ctx: ctx, connect: c.Connect, repl: c.Replicator, adv: c.Adverts, fault: c.Fault, joined: map[cid.Cid]*Community{}}
	if s.now == nil {
		s.now = time.Now
	}
	var saved []stored
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(dbPrefix), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var st stored
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &st) }); err != nil {
				return fmt.Errorf("membership %s is damaged: %w", it.Item().Key(), err)
			}
			saved = append(saved, st)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load communities: %w", err)
	}
	for _, st := range saved {
		rec, err := record.Decode(st.Genesis)
		if err == nil {
			err = rec.Verify()
		}
		if err != nil {
			s.log.Error("skipping a stored community whose genesis no longer verifies", "err", err)
			continue
		}
		g, err := community.ParseGenesis(rec)
		if err != nil {
			s.log.Error("skipping a stored community with a bad genesis", "err", err)
			continue
		}
		if err := s.activate(rec, g, time.UnixMilli(st.Joined)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// activate joins the community's topics and starts reading them.
func (s *Service) activate(rec *record.Record, g community.Genesis, joined time.Time) error {
	id := rec.CID()
	c := &Community{ID: id, Genesis: rec, Info: g, Joined: joined}
	var err error
	for _, t := range []struct {
		name string
		kind record.Kind
		dst  **pubsub.Topic
	}{
		{community.AdvertsTopic(id), record.KindAdvert, &c.adverts},
		{community.RecordsTopic(id), "", &c.records},
	} {
		if err = s.ps.RegisterTopicValidator(t.name, s.validator(id, t.kind)); err != nil {
			break
		}
		if *t.dst, err = s.ps.Join(t.name); err != nil {
			break
		}
		if err = (*t.dst).SetScoreParams(TopicScore()); err != nil {
			break
		}
		var sub *pubsub.Subscription
		if sub, err = (*t.dst).Subscribe(); err != nil {
			break
		}
		c.subs = append(c.subs, sub)
	}
	if err != nil {
		s.close(c)
		return fmt.Errorf("join topics of community %s: %w", id, err)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	c.cancel = cancel
	for _, sub := range c.subs {
		c.readers.Add(1)
		go func() { defer c.readers.Done(); s.read(ctx, sub) }()
	}
	c.readers.Add(1)
	go func() { defer c.readers.Done(); s.watchMembers(ctx, c) }()
	s.mu.Lock()
	s.joined[id] = c
	s.mu.Unlock()
	if s.adv != nil {
		s.adv.CommunitiesChanged()
	}
	return nil
}

func (s *Service) close(c *Community) {
	if c.cancel != nil {
		c.cancel()
	}
	// pubsub reads a topic's event handlers unlocked while closing it, so
	// the handlers must be gone first.
	c.readers.Wait()
	for _, sub := range c.subs {
		sub.Cancel()
	}
	for _, t := range []*pubsub.Topic{c.adverts, c.records} {
		if t != nil {
			name := t.String()
			t.Close()
			s.ps.UnregisterTopicValidator(name)
		}
	}
}

// read drains a subscription. Until the registry consumes records, reading
// keeps the topic's mesh alive and the validators doing their work.
func (s *Service) read(ctx context.Context, sub *pubsub.Subscription) {
	for {
		if _, err := sub.Next(ctx); err != nil {
			return
		}
	}
}

func (s *Service) watchMembers(ctx context.Context, c *Community) {
	ev, err := c.records.EventHandler()
	if err != nil {
		return
	}
	defer ev.Cancel()
	for {
		e, err := ev.NextPeerEvent(ctx)
		if err != nil {
			return
		}
		typ := "community.member.joined"
		if e.Type == pubsub.PeerLeave {
			typ = "community.member.left"
		} else {
			if s.repl != nil {
				s.repl.MemberJoined(c.ID, e.Peer)
			}
			if s.adv != nil {
				s.adv.MemberJoined(c.ID, e.Peer)
			}
		}
		s.pub.Publish(typ, map[string]string{"community": c.ID.String(), "peer_id": e.Peer.String()})
	}
}

// validator checks every message on a community topic. It rejects only what
// proves the forwarding peer at fault and ignores what may become fine.
func (s *Service) validator(id cid.Cid, want record.Kind) pubsub.ValidatorEx {
	return func(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		if from == s.h.ID() {
			// Published here (gossipsub sets the receiver to the local
			// host only for local publications); what the node publishes
			// it has stored or built itself.
			return pubsub.ValidationAccept
		}
		// Decode first: the topic rules need no cryptography. Records go to
		// the registry, which verifies them once as it ingests them.
		rec, err := record.Decode(msg.Data)
		ingest := want == "" && s.repl != nil
		if err == nil && !ingest {
			if err = rec.Verify(); err == nil {
				err = rec.CheckClock(s.now())
			}
		}
		switch {
		case err != nil && !record.IsSenderFault(err):
			return pubsub.ValidationIgnore
		case err != nil:
			s.log.Debug("rejected gossip", "from", from, "reason", record.Reason(err))
			s.faulted(from, "topic:"+record.Reason(err))
			return pubsub.ValidationReject
		case !rec.Community.Equals(id), rec.Kind == record.KindCommunity,
			want != "" && rec.Kind != want, want == "" && rec.Kind == record.KindAdvert:
			s.log.Debug("rejected gossip for the wrong topic", "from", from, "kind", rec.Kind)
			s.faulted(from, "topic:wrong-topic")
			return pubsub.ValidationReject
		case ingest:
			return s.repl.ValidateDecoded(ctx, id, from, rec)
		case want == record.KindAdvert && s.adv != nil:
			fresh, err := s.adv.ReceiveAdvert(id, rec)
			switch {
			case err != nil && record.IsSenderFault(err):
				s.log.Debug("rejected an advert", "from", from, "author", rec.Author, "reason", record.Reason(err))
				s.faulted(from, "advert:"+record.Reason(err))
				return pubsub.ValidationReject
			case err != nil, !fresh:
				return pubsub.ValidationIgnore
			}
		}
		return pubsub.ValidationAccept
	}
}

func (s *Service) faulted(p peer.ID, reason string) {
	if s.fault != nil {
		s.fault(p, reason)
	}
}

// Create makes a new community with this node as its founder.
func (s *Service) Create(ctx context.Context, name, description string) (api.CreatedCommunity, error) {
	return s.CreateWith(ctx, name, description, nil)
}

// CreateWith makes a new community with this node as its founder and the
// default policy changed by policy (dotted key → value, e.g.
// "vote.grace_s": 30).
func (s *Service) CreateWith(ctx context.Context, name, description string, policy map[string]int64) (api.CreatedCommunity, error) {
	g := community.Genesis{
		Name:        strings.TrimSpace(name),
		Description: strings.TrimSpace(description),
		Founders:    []peer.ID{s.h.ID()},
		Policy:      community.DefaultPolicy(),
	}
	for k, v := range policy {
		p, err := g.Policy.With(k, v)
		if err != nil {
			return api.CreatedCommunity{}, &api.Error{Code: http.StatusBadRequest, Message: err.Error()}
		}
		g.Policy = p
	}
	for _, a := range s.selfAddrs() {
		g.Bootstrap = append(g.Bootstrap, a.String())
	}
	if err := g.Validate(); err != nil {
		return api.CreatedCommunity{}, &api.Error{Code: http.StatusBadRequest, Message: err.Error()}
	}
	rec, err := community.NewGenesis(s.key, g, s.now())
	if err != nil {
		return api.CreatedCommunity{}, fmt.Errorf("sign genesis: %w", err)
	}
	if err := s.activate(rec, g, s.now()); err != nil {
		return api.CreatedCommunity{}, err
	}
	if err := s.store(rec, s.now()); err != nil {
		s.deactivate(rec.CID())
		return api.CreatedCommunity{}, err
	}
	s.pub.Publish("community.created", map[string]string{"id": rec.CID().String(), "name": g.Name})
	inv, err := s.Invite(ctx, rec.CID().String())
	if err != nil {
		return api.CreatedCommunity{}, err
	}
	return api.CreatedCommunity{ID: rec.CID().String(), Name: g.Name, Invite: inv.Invite}, nil
}

// Join verifies an invite, stores the membership, dials the peers it names
// and joins the topics. Joining again is harmless and answers the same.
func (s *Service) Join(ctx context.Context, invite string) (api.Joined, error) {
	inv, err := community.ParseInvite(invite, s.now())
	if err != nil {
		return api.Joined{}, &api.Error{Code: http.StatusBadRequest, Message: err.Error()}
	}
	g, err := community.ParseGenesis(inv.Genesis)
	if err != nil {
		return api.Joined{}, &api.Error{Code: http.StatusBadRequest, Message: err.Error()}
	}
	id := inv.Genesis.CID()
	s.mu.Lock()
	_, already := s.joined[id]
	s.mu.Unlock()
	if !already {
		if err := s.activate(inv.Genesis, g, s.now()); err != nil {
			return api.Joined{}, err
		}
		if err := s.store(inv.Genesis, s.now()); err != nil {
			s.deactivate(id)
			return api.Joined{}, err
		}
		s.pub.Publish("community.joined", map[string]string{"id": id.String(), "name": g.Name})
	}
	s.dialAll(ctx, inviteAddrs(inv, g))
	return api.Joined{ID: id.String(), Name: g.Name}, nil
}

// inviteAddrs gathers the peers an invite names: its fresh addresses first,
// then the genesis bootstrap list.
func inviteAddrs(inv community.Invite, g community.Genesis) []peer.AddrInfo {
	addrs := append([]ma.Multiaddr{}, inv.Addrs...)
	for _, s := range g.Bootstrap {
		if a, err := ma.NewMultiaddr(s); err == nil {
			addrs = append(addrs, a)
		}
	}
	infos, _ := peer.AddrInfosFromP2pAddrs(addrs...)
	return infos
}

func (s *Service) dialAll(ctx context.Context, infos []peer.AddrInfo) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, ai := range infos {
		if ai.ID == s.h.ID() {
			continue
		}
		wg.Add(1)
		go func(ai peer.AddrInfo) {
			defer wg.Done()
			s.connect(ctx, ai)
		}(ai)
	}
	wg.Wait()
}

// Leave drops a membership and its topics.
func (s *Service) Leave(_ context.Context, id string) error {
	c, err := s.lookup(id)
	if err != nil {
		return err
	}
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Delete([]byte(dbPrefix + c.ID.String())) }); err != nil {
		return fmt.Errorf("forget community: %w", err)
	}
	s.deactivate(c.ID)
	s.pub.Publish("community.left", map[string]string{"id": c.ID.String(), "name": c.Info.Name})
	return nil
}

func (s *Service) deactivate(id cid.Cid) {
	s.mu.Lock()
	c := s.joined[id]
	delete(s.joined, id)
	s.mu.Unlock()
	if c != nil {
		s.close(c)
	}
	if s.adv != nil {
		s.adv.CommunitiesChanged()
	}
}

func (s *Service) store(rec *record.Record, joined time.Time) error {
	raw, err := rec.Encode()
	if err != nil {
		return err
	}
	v, _ := json.Marshal(stored{Genesis: raw, Joined: joined.UnixMilli()})
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(dbPrefix+rec.CID().String()), v) }); err != nil {
		return fmt.Errorf("save membership: %w", err)
	}
	return nil
}

// lookup resolves a community ID (or a unique prefix of it, or its name).
func (s *Service) lookup(id string) (*Community, error) {
	id = strings.TrimSpace(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	var found []*Community
	for cid, c := range s.joined {
		if cid.String() == id {
			return c, nil
		}
		if (len(id) >= 8 && strings.HasPrefix(cid.String(), id)) || c.Info.Name == id {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return nil, &api.Error{Code: http.StatusNotFound, Message: fmt.Sprintf("this node is not in a community %q; `agora community list` shows the ones it is in", id)}
	}
	return nil, &api.Error{Code: http.StatusConflict, Message: fmt.Sprintf("%q matches several communities; use the full ID from `agora community list`", id)}
}

// PublishRecord sends an encoded record on its community's records topic.
// The record must already be stored: our own validator accepts it unseen.
func (s *Service) PublishRecord(ctx context.Context, community cid.Cid, raw []byte) error {
	s.mu.Lock()
	c := s.joined[community]
	s.mu.Unlock()
	if c == nil {
		return fmt.Errorf("not a member of community %s", community)
	}
	err := c.records.Publish(ctx, raw)
	s.log.Debug("published record", "community", community, "peers", len(c.records.ListPeers()), "err", err)
	return err
}

// PublishAdvert sends an encoded advert record on its community's adverts
// topic.
func (s *Service) PublishAdvert(ctx context.Context, community cid.Cid, raw []byte) error {
	s.mu.Lock()
	c := s.joined[community]
	s.mu.Unlock()
	if c == nil {
		return fmt.Errorf("not a member of community %s", community)
	}
	return c.adverts.Publish(ctx, raw)
}

// Joined lists the IDs of the communities the node is in.
func (s *Service) Joined() []cid.Cid {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]cid.Cid, 0, len(s.joined))
	for id := range s.joined {
		out = append(out, id)
	}
	return out
}

// IsMember reports whether the node is in the community.
func (s *Service) IsMember(community cid.Cid) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.joined[community] != nil
}

// Peers lists the peers on the community's records topic (not this node).
func (s *Service) Peers(community cid.Cid) []peer.ID {
	s.mu.Lock()
	c := s.joined[community]
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.records.ListPeers()
}

// Get returns a joined community by ID.
func (s *Service) Get(id string) (*Community, error) { return s.lookup(id) }

// Members lists this node and the peers subscribed to the community's
// records topic, sorted.
func (s *Service) Members(c *Community) []peer.ID {
	out := append([]peer.ID{s.h.ID()}, c.records.ListPeers()...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// List summarises the joined communities, by name.
func (s *Service) List() []api.Community {
	s.mu.Lock()
	cs := make([]*Community, 0, len(s.joined))
	for _, c := range s.joined {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	out := make([]api.Community, 0, len(cs))
	for _, c := range cs {
		out = append(out, api.Community{ID: c.ID.String(), Name: c.Info.Name, Members: len(s.Members(c))})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Detail describes one community.
func (s *Service) Detail(id string) (api.CommunityDetail, error) {
	c, err := s.lookup(id)
	if err != nil {
		return api.CommunityDetail{}, err
	}
	d := api.CommunityDetail{ID: c.ID.String(), Name: c.Info.Name, Description: c.Info.Description,
		Joined: c.Joined.UnixMilli(), Founders: []string{}, Members: []string{}}
	for _, f := range c.Info.Founders {
		d.Founders = append(d.Founders, f.String())
	}
	for _, m := range s.Members(c) {
		d.Members = append(d.Members, m.String())
	}
	return d, nil
}

// Invite makes a fresh invite carrying this node's current addresses.
func (s *Service) Invite(_ context.Context, id string) (api.Invite, error) {
	c, err := s.lookup(id)
	if err != nil {
		return api.Invite{}, err
	}
	inv := community.Invite{Genesis: c.Genesis, Addrs: s.selfAddrs()}
	str, err := inv.Encode()
	if err != nil {
		return api.Invite{}, err
	}
	return api.Invite{ID: c.ID.String(), Invite: str}, nil
}

// maxInviteAddrs keeps invites short enough to paste.
const maxInviteAddrs = 8

// shareableAddrs are the host's addresses worth giving to someone else:
// public first, then LAN and relay addresses; loopback only when there is
// nothing else (a single-machine community, as in the demo).
func (s *Service) shareableAddrs() []ma.Multiaddr {
	var public, private, loop []ma.Multiaddr
	for _, a := range s.h.Addrs() {
		switch {
		case manet.IsIPLoopback(a):
			loop = append(loop, a)
		case manet.IsPublicAddr(a):
			public = append(public, a)
		default:
			private = append(private, a)
		}
	}
	out := append(public, private...)
	if len(out) == 0 {
		out = loop
	}
	if len(out) > maxInviteAddrs {
		out = out[:maxInviteAddrs]
	}
	return out
}

// selfAddrs are the shareable addresses with this node's /p2p/ suffix, as
// invites and bootstrap lists carry them.
func (s *Service) selfAddrs() []ma.Multiaddr {
	self, err := ma.NewComponent("p2p", s.h.ID().String())
	if err != nil {
		return nil
	}
	var out []ma.Multiaddr
	for _, a := range s.shareableAddrs() {
		out = append(out, a.Encapsulate(self))
	}
	return out
}

// Close leaves every topic (memberships stay stored).
func (s *Service) Close() {
	s.mu.Lock()
	cs := s.joined
	s.joined = map[cid.Cid]*Community{}
	s.mu.Unlock()
	for _, c := range cs {
		s.close(c)
	}
}
