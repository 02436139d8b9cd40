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
)

// PeerBook remembers the Agora peers this node has met, in the datastore, so
// a restarted node reconnects without any bootstrap list or invite.
type PeerBook struct {
	h   host.Host
	db  *badger.DB
	log *slog.Logger

	mu    sync.Mutex
	peers map[peer.ID]bookEntry
	dirty bool
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
// while the node has few connections.
func (b *PeerBook) Reconnect(ctx context.Context) {
	t := time.NewTicker(reconnectEvery)
	defer t.Stop()
	for {
		if len(b.h.Network().Peers()) < wantConns {
			b.dialKnown(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
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
