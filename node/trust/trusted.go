package trust

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The owner's trusted peers live in the node's datastore, one key each:
// "trust/peers/<peer ID>" → added (unix ms, big-endian).
const trustedPrefix = "trust/peers/"

// TrustedPeer is a peer the owner trusts, with when.
type TrustedPeer struct {
	Peer  peer.ID
	Added int64
}

// ErrSelf refuses trusting oneself (the node always seeds its own trust).
var ErrSelf = errors.New("a node always trusts itself; name another peer")

func loadTrusted(db *badger.DB) (map[peer.ID]int64, error) {
	out := map[peer.ID]int64{}
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(trustedPrefix), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			p, err := peer.Decode(strings.TrimPrefix(string(item.Key()), trustedPrefix))
			if err != nil {
				continue // not ours to judge; never written by this code
			}
			err = item.Value(func(v []byte) error {
				if len(v) == 8 {
					out[p] = int64(binary.BigEndian.Uint64(v))
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the trusted peers: %w", err)
	}
	return out, nil
}

// Trusted lists the owner's trusted peers, by peer ID.
func (s *Service) Trusted() []TrustedPeer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]TrustedPeer, 0, len(s.trusted))
	for p, at := range s.trusted {
		out = append(out, TrustedPeer{Peer: p, Added: at})
	}
	slices.SortFunc(out, func(a, b TrustedPeer) int { return strings.Compare(string(a.Peer), string(b.Peer)) })
	return out
}

// Trust adds p to the owner's trusted peers (a seed of personal trust). It
// is idempotent and keeps the first time it was added.
func (s *Service) Trust(p peer.ID) (TrustedPeer, error) {
	if p == s.self {
		return TrustedPeer{}, ErrSelf
	}
	s.mu.Lock()
	if at, ok := s.trusted[p]; ok {
		s.mu.Unlock()
		return TrustedPeer{Peer: p, Added: at}, nil
	}
	at := s.cfg.Now().UnixMilli()
	err := s.cfg.DB.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte(trustedPrefix+p.String()), binary.BigEndian.AppendUint64(nil, uint64(at)))
	})
	if err == nil {
		s.trusted[p] = at
	}
	s.mu.Unlock()
	if err != nil {
		return TrustedPeer{}, fmt.Errorf("save the trusted peer: %w", err)
	}
	s.Changed()
	return TrustedPeer{Peer: p, Added: at}, nil
}

// Untrust removes p from the owner's trusted peers; it reports whether p
// was there.
func (s *Service) Untrust(p peer.ID) (bool, error) {
	s.mu.Lock()
	_, ok := s.trusted[p]
	var err error
	if ok {
		err = s.cfg.DB.Update(func(txn *badger.Txn) error { return txn.Delete([]byte(trustedPrefix + p.String())) })
		if err == nil {
			delete(s.trusted, p)
		}
	}
	s.mu.Unlock()
	if err != nil {
		return false, fmt.Errorf("forget the trusted peer: %w", err)
	}
	if ok {
		s.Changed()
	}
	return ok, nil
}
