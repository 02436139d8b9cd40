package registry

import (
	"bytes"
	"errors"
	"fmt"
	"iter"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
)

// ReconItem is one record as reconciliation sees it: its place in the
// (created, ID) order of its community.
type ReconItem struct {
	Created uint64 // unix ms
	ID      []byte // binary record ID (36 bytes)
}

// MaxGetMany bounds the IDs one GetMany call may ask for.
const MaxGetMany = 4096

// Items iterates over a community's records in (created, ID) order, the
// order range-based reconciliation works in. It reads one consistent
// snapshot; records stored meanwhile may or may not appear. Stop early by
// breaking out of the loop. The item's ID is a fresh slice.
func (s *Store) Items(community cid.Cid) iter.Seq2[ReconItem, error] {
	return func(yield func(ReconItem, error) bool) {
		comm, err := cidBytes(community)
		if err != nil {
			yield(ReconItem{}, fmt.Errorf("an invalid community ID: %w", err))
			return
		}
		prefix := timePrefix(comm)
		err = s.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				created, id, ok := splitTail(it.Item().Key(), len(prefix))
				if !ok {
					return fmt.Errorf("%w: damaged time index key %x", ErrStorage, it.Item().Key())
				}
				if !yield(ReconItem{Created: created, ID: bytes.Clone(id)}, nil) {
					return errStop
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			yield(ReconItem{}, err)
		}
	}
}

var errStop = errors.New("stop")

// ReconItems returns all of a community's items in (created, ID) order.
func (s *Store) ReconItems(community cid.Cid) ([]ReconItem, error) {
	out := make([]ReconItem, 0, s.Count(community))
	for it, err := range s.Items(community) {
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, nil
}

// GetMany returns the encoded records with the given binary IDs, in the same
// order, with nil for each one not stored (or not an ID). It is what a sync
// responder serves to a peer fetching what it lacks.
func (s *Store) GetMany(ids [][]byte) ([][]byte, error) {
	if len(ids) > MaxGetMany {
		return nil, fmt.Errorf("at most %d records can be fetched at once, not %d", MaxGetMany, len(ids))
	}
	out := make([][]byte, len(ids))
	err := s.db.View(func(txn *badger.Txn) error {
		for i, id := range ids {
			if len(id) != cidLen {
				continue
			}
			it, err := txn.Get(recordKey(id))
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if out[i], err = it.ValueCopy(nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	return out, nil
}
