package capindex

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/canon"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Advert timing. An advert lives Lifetime and is republished after
// Lifetime/2 even when nothing changed, so a live node never drops out of
// its peers' indexes and a vanished one drops out within Lifetime.
const (
	DefaultLifetime = 10 * time.Minute
	// joinDebounce gathers the member-joined events of a burst (a node
	// that starts meets many peers at once) into one republication.
	joinDebounce = 500 * time.Millisecond
	// joinRepeat is when a newcomer is sent the advert a second time: the
	// first may reach relays whose gossipsub mesh has not formed yet (the
	// heartbeat is 1 s), and a mesh relays only what arrives after it.
	joinRepeat = 3 * time.Second
)

// AdvertiserConfig wires an Advertiser.
type AdvertiserConfig struct {
	Key   crypto.PrivKey
	Index *Index
	// Communities lists the communities the node is in.
	Communities func() []cid.Cid
	// Agents lists what the node shares in a community.
	Agents func(community cid.Cid) []body.AdvertAgent
	// Load is the node's load, 0..1.
	Load func() float64
	// Addrs are the addresses to advertise.
	Addrs func() []string
	// Publish sends an encoded advert record on the community's adverts
	// topic.
	Publish  func(ctx context.Context, community cid.Cid, raw []byte) error
	Lifetime time.Duration // DefaultLifetime when zero
	Now      func() time.Time
	Log      *slog.Logger
}

// Advertiser publishes this node's adverts: on change, before expiry, and
// soon after a member joins (so a newcomer learns the skills at once).
type Advertiser struct {
	cfg  AdvertiserConfig
	self peer.ID

	kick   chan struct{}
	mu     sync.Mutex
	last   map[cid.Cid]published
	seq    uint64
	join   map[cid.Cid]bool
	repeat map[cid.Cid]*time.Timer
}

type published struct {
	content []byte // the encoded advert without seq, expiry and load
	load    uint64
	at      time.Time
}

// NewAdvertiser checks cfg.
func NewAdvertiser(cfg AdvertiserConfig) (*Advertiser, error) {
	if cfg.Key == nil || cfg.Index == nil || cfg.Communities == nil || cfg.Agents == nil || cfg.Publish == nil {
		return nil, errors.New("capindex: AdvertiserConfig needs Key, Index, Communities, Agents and Publish")
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Load == nil {
		cfg.Load = func() float64 { return 0 }
	}
	if cfg.Addrs == nil {
		cfg.Addrs = func() []string { return nil }
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	self, err := peer.IDFromPrivateKey(cfg.Key)
	if err != nil {
		return nil, err
	}
	return &Advertiser{cfg: cfg, self: self, kick: make(chan struct{}, 1), last: map[cid.Cid]published{}, join: map[cid.Cid]bool{}}, nil
}

// Kick asks for a check now (the shared skills or the communities changed).
func (a *Advertiser) Kick() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// MemberJoined schedules a republication in community, so the newcomer
// gets this node's advert without waiting for the next refresh.
func (a *Advertiser) MemberJoined(community cid.Cid, _ peer.ID) {
	mark := func() {
		a.mu.Lock()
		a.join[community] = true
		a.mu.Unlock()
		a.Kick()
	}
	mark()
	a.mu.Lock()
	if a.repeat == nil {
		a.repeat = map[cid.Cid]*time.Timer{}
	}
	if t := a.repeat[community]; t != nil {
		t.Reset(joinRepeat)
	} else {
		a.repeat[community] = time.AfterFunc(joinRepeat, func() {
			a.mu.Lock()
			delete(a.repeat, community)
			a.mu.Unlock()
			mark()
		})
	}
	a.mu.Unlock()
}

// Run publishes until ctx ends.
func (a *Advertiser) Run(ctx context.Context) {
	refresh := time.NewTicker(min(a.cfg.Lifetime/8, time.Minute))
	defer refresh.Stop()
	for {
		a.Sync(ctx)
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
			// A burst of joins and changes makes one round.
			t := time.NewTimer(joinDebounce)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		case <-refresh.C:
			a.cfg.Index.Expire()
		}
	}
}

// Sync publishes, in every community, an advert that changed, is due for
// refresh, or was asked for by a newcomer.
func (a *Advertiser) Sync(ctx context.Context) {
	now := a.cfg.Now()
	a.mu.Lock()
	joins := a.join
	a.join = map[cid.Cid]bool{}
	a.mu.Unlock()
	joined := map[cid.Cid]bool{}
	for _, c := range a.cfg.Communities() {
		joined[c] = true
		if err := a.syncOne(ctx, c, now, joins[c]); err != nil {
			a.cfg.Log.Warn("could not publish the advert", "community", c, "err", err)
		}
	}
	a.mu.Lock()
	for c := range a.last {
		if !joined[c] {
			delete(a.last, c)
		}
	}
	a.mu.Unlock()
}

func (a *Advertiser) syncOne(ctx context.Context, c cid.Cid, now time.Time, force bool) error {
	agents := a.cfg.Agents(c)
	content, err := canon.Marshal(body.Advert{Seq: 1, Expires: 1, Addrs: a.cfg.Addrs(), Agents: agents})
	if err != nil {
		return err
	}
	load := uint64(min(max(a.cfg.Load(), 0), 1) * body.MaxLoad)
	a.mu.Lock()
	prev, ok := a.last[c]
	due := !ok || force || !bytes.Equal(prev.content, content) ||
		now.Sub(prev.at) >= a.cfg.Lifetime/2 || loadMoved(prev.load, load)
	if !due {
		a.mu.Unlock()
		return nil
	}
	// Seq is the creation time in ms, kept increasing: no state to keep
	// across restarts.
	a.seq = max(a.seq+1, uint64(now.UnixMilli()))
	seq := a.seq
	a.mu.Unlock()

	adv := body.Advert{Seq: seq, Expires: now.Add(a.cfg.Lifetime).UnixMilli(), Load: load, Addrs: a.cfg.Addrs(), Agents: agents}
	adv = fit(adv)
	rec, err := record.Sign(a.cfg.Key, record.KindAdvert, c, adv, now)
	if err != nil {
		return fmt.Errorf("sign advert: %w", err)
	}
	a.cfg.Index.update(c, a.self, rec.Created, adv, rec.Raw())
	if err := a.cfg.Publish(ctx, c, rec.Raw()); err != nil {
		return err
	}
	a.mu.Lock()
	a.last[c] = published{content: content, load: load, at: now}
	a.mu.Unlock()
	return nil
}

// loadMoved reports a load change worth telling the community: a quarter
// of the range.
func loadMoved(old, now uint64) bool {
	d := int64(now) - int64(old)
	return d > body.MaxLoad/4 || d < -body.MaxLoad/4
}

// fit drops the last skills (then agents) until the advert fits a record,
// so a node with a huge MCP server still advertises most of it.
func fit(adv body.Advert) body.Advert {
	const budget = record.MaxSize - 1024 // the envelope's own fields
	for {
		b, err := canon.Marshal(adv)
		if err != nil || len(b) <= budget {
			return adv
		}
		last := len(adv.Agents) - 1
		if last < 0 {
			return adv
		}
		if n := len(adv.Agents[last].Skills); n > 1 {
			adv.Agents[last].Skills = adv.Agents[last].Skills[:n-1]
		} else {
			adv.Agents = adv.Agents[:last]
		}
	}
}

// Receive handles an advert record that arrived on community's topic,
// already verified (signature, clock). It returns an error for a body that
// breaks the advert's rules (the sender's fault), and whether the advert
// was new (relay it) or stale (do not).
func (x *Index) Receive(community cid.Cid, rec *record.Record) (bool, error) {
	b, err := body.DecodeRecord(rec)
	if err != nil {
		return false, err
	}
	adv, ok := b.(body.Advert)
	if !ok {
		return false, fmt.Errorf("%w: not an advert", record.ErrMalformed)
	}
	return x.update(community, rec.Author, rec.Created, adv, rec.Raw()), nil
}
