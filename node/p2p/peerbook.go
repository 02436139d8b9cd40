package p2p

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	bookPrefix = "p2p/peers/"
	bookMax    = 256 // remembered peers; the least recently seen go first
	// reconnectEvery is how often a node with few connections redials the
	// peers it remembers. A minute keeps an idle node idle.
	reconnectEvery = time.Minute
	// wantConns: below this many connections the book redials.
	wantConns = 8
	// A peer whose connection dropped is redialled with a backoff from
	// redialMin doubling to redialMax, for fastRedialFor; each dial may
	// take redialTimeout.
	redialMin     = time.Second
	redialMax     = 8 * time.Second
	fastRedialFor = 10 * time.Minute
	redialTimeout = 5 * time.Second
)

// PeerBook remembers the Agora peers this node has met, in the datastore, so
// a restarted node reconnects without any bootstrap list or invite.
type PeerBook struct {
	h   host.Host
	db  *badger.DB
	log *slog.Logger

	mu      sync.Mutex
	peers   map[peer.ID]bookEntry
	dirty   bool
	dialing map[peer.ID]bool // lost peers being redialled
}

type bookEntry struct {
	Addrs    []string `json:"addrs"`
	LastSeen int64    `json:"last_seen"` // unix ms
}

// NewPeerBook loads the remembered peers from db (which may be nil in tests
// that need no persistence). It is usable for Known at once, and for the
// rest once attached to the host.
func NewPeerBook(db *badger.DB, log *slog.Logger) *PeerBook {
	b := &PeerBook{db: db, log: log, peers: map[peer.ID]bookEntry{}}
	if db == nil {
		return b
	}
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(bookPrefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			id, err := peer.Decode(strings.TrimPrefix(string(it.Item().Key()), bookPrefix))
			if err != nil {
				continue // a damaged entry is forgotten, not fatal
			}
			var e bookEntry
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &e) }); err != nil {
				continue
			}
			b.peers[id] = e
		}
		return nil
	})
	if err != nil {
		log.Warn("cannot read remembered peers", "err", err)
	}
	return b
}

// Attach binds the book to the host it serves; call once, before Run.
func (b *PeerBook) Attach(h host.Host) { b.h = h }

// Remember records a peer's addresses.
func (b *PeerBook) Remember(ai peer.AddrInfo) {
	if ai.ID == b.h.ID() || len(ai.Addrs) == 0 {
		return
	}
	addrs := make([]string, 0, len(ai.Addrs))
	for _, a := range ai.Addrs {
		addrs = append(addrs, a.String())
	}
	sort.Strings(addrs)
	b.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.RecentlyConnectedAddrTTL)
	b.mu.Lock()
	b.peers[ai.ID] = bookEntry{Addrs: addrs, LastSeen: time.Now().UnixMilli()}
	b.dirty = true
	b.mu.Unlock()
}

// Known returns up to n remembered peers, most recently seen first.
func (b *PeerBook) Known(n int) []peer.AddrInfo {
	b.mu.Lock()
	type kv struct {
		id peer.ID
		e  bookEntry
	}
	all := make([]kv, 0, len(b.peers))
	for id, e := range b.peers {
		all = append(all, kv{id, e})
	}
	b.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].e.LastSeen > all[j].e.LastSeen })
	if len(all) > n {
		all = all[:n]
	}
	out := make([]peer.AddrInfo, 0, len(all))
	for _, p := range all {
		ai := peer.AddrInfo{ID: p.id}
		for _, s := range p.e.Addrs {
			if a, err := ma.NewMultiaddr(s); err == nil {
				ai.Addrs = append(ai.Addrs, a)
			}
		}
		out = append(out, ai)
	}
	return out
}

// Run remembers every Agora peer identify tells us about, and flushes the
// book to disk now and then.
func (b *PeerBook) Run(ctx context.Context) {
	sub, err := b.h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		b.log.Warn("cannot follow identify events; peers will not be remembered", "err", err)
		return
	}
	defer sub.Close()
	flush := time.NewTicker(30 * time.Second)
	defer flush.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-flush.C:
			b.Flush()
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			ev := e.(event.EvtPeerIdentificationCompleted)
			if !strings.HasPrefix(ev.AgentVersion, "agora/") {
				continue
			}
			b.Remember(peer.AddrInfo{ID: ev.Peer, Addrs: ev.ListenAddrs})
		}
	}
}

// Reconnect dials remembered peers at start, then every reconnectEvery
// while the node has few connections. A remembered peer whose connection
// drops is redialled at once and then with a backoff of 1 s doubling to
// redialMax, for fastRedialFor after the loss: a network that heals (a
// partition, a router's restart) is rejoined within seconds, while peers
// that are gone for good cost a dial a minute. Whenever a connection to a
// peer comes up, the network evidently works, so every lost peer is tried
// again at once. Fast redials happen only while the node has fewer than
// wantConns connections. These redials clear the swarm's own dial backoff for the
// peer first: it grows to minutes after repeated failures, which would
// keep a healed network apart.
func (b *PeerBook) Reconnect(ctx context.Context) {
	sub, err := b.h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		b.log.Warn("cannot follow connection events; lost peers are redialled only every minute", "err", err)
	}
	var events <-chan any
	if sub != nil {
		defer sub.Close()
		events = sub.Out()
	}
	plan := newRedialPlan(time.Now())
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			ev := e.(event.EvtPeerConnectednessChanged)
			switch ev.Connectedness {
			case network.NotConnected:
				if b.remembered(ev.Peer) {
					plan.lost(ev.Peer, time.Now())
				}
			case network.Connected:
				plan.connected(ev.Peer, time.Now())
			}
		case <-timer.C:
		}
		few := len(b.h.Network().Peers()) < wantConns
		due, slowRound, next := plan.due(time.Now())
		if slowRound && few {
			go b.dialKnown(ctx)
		}
		// With enough connections a lost peer is not missed (and may have
		// been closed by the connection manager): leave it to the slow round.
		if len(due) > 0 && few {
			go b.redial(ctx, due)
		}
		timer.Reset(max(time.Until(next), 10*time.Millisecond))
	}
}

// redialPlan is Reconnect's schedule, apart from the clock and the network
// so that it can be tested: when to redial which lost peer, and when the
// next slow round of all remembered peers is.
type redialPlan struct {
	slow time.Time
	away map[peer.ID]*redialState
}

type redialState struct {
	since, next time.Time
	wait        time.Duration
}

func newRedialPlan(now time.Time) *redialPlan {
	return &redialPlan{slow: now, away: map[peer.ID]*redialState{}}
}

// lost records that the connection to p dropped: it is due at once.
func (pl *redialPlan) lost(p peer.ID, now time.Time) {
	pl.away[p] = &redialState{since: now, next: now, wait: redialMin}
}

// connected records that a connection to p came up: p is no longer lost,
// and since the network evidently works, every lost peer is due at once
// with its backoff reset.
func (pl *redialPlan) connected(p peer.ID, now time.Time) {
	delete(pl.away, p)
	for _, r := range pl.away {
		r.next, r.wait = now, redialMin
	}
}

// due returns the lost peers to redial now, whether the slow round is due,
// and when the plan next has something to do. Peers lost longer than
// fastRedialFor are left to the slow rounds.
func (pl *redialPlan) due(now time.Time) (due []peer.ID, slowRound bool, next time.Time) {
	if !pl.slow.After(now) {
		slowRound = true
		pl.slow = now.Add(reconnectEvery)
	}
	next = pl.slow
	for p, r := range pl.away {
		if now.Sub(r.since) > fastRedialFor {
			delete(pl.away, p)
			continue
		}
		if !r.next.After(now) {
			due = append(due, p)
			r.next = now.Add(r.wait)
			r.wait = min(2*r.wait, redialMax)
		}
		if r.next.Before(next) {
			next = r.next
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i] < due[j] })
	return due, slowRound, next
}

// remembered reports whether id is in the book.
func (b *PeerBook) remembered(id peer.ID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.peers[id]
	return ok
}

// redial dials lost peers that are not being dialled already, past the
// swarm's backoff.
func (b *PeerBook) redial(ctx context.Context, ids []peer.ID) {
	var wg sync.WaitGroup
	for _, id := range ids {
		b.mu.Lock()
		busy := b.dialing[id]
		if !busy {
			if b.dialing == nil {
				b.dialing = map[peer.ID]bool{}
			}
			b.dialing[id] = true
		}
		b.mu.Unlock()
		if busy || b.h.Network().Connectedness(id) == network.Connected {
			if !busy {
				b.doneDialing(id)
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer b.doneDialing(id)
			if sw, ok := b.h.Network().(*swarm.Swarm); ok {
				sw.Backoff().Clear(id)
			}
			dctx, cancel := context.WithTimeout(ctx, redialTimeout)
			defer cancel()
			if err := b.h.Connect(dctx, peer.AddrInfo{ID: id}); err != nil {
				b.log.Debug("lost peer still unreachable", "peer", id, "err", err)
			}
		}()
	}
	wg.Wait()
}

func (b *PeerBook) doneDialing(id peer.ID) {
	b.mu.Lock()
	delete(b.dialing, id)
	b.mu.Unlock()
}

func (b *PeerBook) dialKnown(ctx context.Context) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, ai := range b.Known(32) {
		if b.h.Network().Connectedness(ai.ID) == network.Connected {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(ai peer.AddrInfo) {
			defer func() { <-sem; wg.Done() }()
			dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			if err := b.h.Connect(dctx, ai); err != nil {
				b.log.Debug("remembered peer unreachable", "peer", ai.ID, "err", err)
			}
		}(ai)
	}
	wg.Wait()
}

// Flush writes the book to the datastore if it changed, keeping the
// bookMax most recently seen peers.
func (b *PeerBook) Flush() {
	if b.db == nil {
		return
	}
	b.mu.Lock()
	if !b.dirty {
		b.mu.Unlock()
		return
	}
	keep := make([]peer.ID, 0, len(b.peers))
	for id := range b.peers {
		keep = append(keep, id)
	}
	sort.Slice(keep, func(i, j int) bool { return b.peers[keep[i]].LastSeen > b.peers[keep[j]].LastSeen })
	var drop []peer.ID
	if len(keep) > bookMax {
		drop, keep = keep[bookMax:], keep[:bookMax]
	}
	for _, id := range drop {
		delete(b.peers, id)
	}
	entries := make(map[peer.ID][]byte, len(keep))
	for _, id := range keep {
		v, _ := json.Marshal(b.peers[id])
		entries[id] = v
	}
	b.dirty = false
	b.mu.Unlock()

	wb := b.db.NewWriteBatch()
	defer wb.Cancel()
	for id, v := range entries {
		wb.Set([]byte(bookPrefix+id.String()), v)
	}
	for _, id := range drop {
		wb.Delete([]byte(bookPrefix + id.String()))
	}
	if err := wb.Flush(); err != nil {
		b.log.Warn("cannot save remembered peers; will retry", "err", err)
		b.mu.Lock()
		b.dirty = true
		b.mu.Unlock()
	}
}
