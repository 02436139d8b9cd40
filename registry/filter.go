package registry

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
)

// idFilter is a Bloom filter of the IDs of every stored record. It lets
// Ingest tell a new record from a duplicate without a badger lookup in the
// common case (new: the filter says no) and fall back to badger only when
// the filter says maybe (duplicates, and a fraction of a percent of new
// records).
//
// Record IDs are SHA-256 digests, so their bytes are already uniform hash
// values: the filter takes its k bit positions straight from the digest.
// It is sized when the store opens, for at least four times the records
// then stored; beyond that its false-positive rate grows (costing lookups,
// never correctness) until the next open resizes it.
//
// The committer adds IDs; any goroutine reads. Bits are set with atomic
// ORs, so readers never see a torn word.
type idFilter struct {
	words []atomic.Uint64
	mask  uint64 // number of bits - 1
}

const (
	filterHashes      = 4
	filterBitsPerID   = 16 // about 0.2% false positives at capacity
	filterMinCapacity = 1 << 18
)

func newIDFilter(capacity int) *idFilter {
	capacity = max(capacity, filterMinCapacity)
	n := uint64(1) << bits.Len64(uint64(capacity*filterBitsPerID-1)) // a power of two
	return &idFilter{words: make([]atomic.Uint64, n/64), mask: n - 1}
}

// positions yields the filter's bit positions for a record ID: 8 bytes of
// the digest each.
func (f *idFilter) positions(id []byte, fn func(bit uint64)) {
	digest := id[len(id)-32:]
	for i := range filterHashes {
		fn(binary.LittleEndian.Uint64(digest[8*i:]) & f.mask)
	}
}

func (f *idFilter) add(c cid.Cid) {
	id := []byte(c.KeyString())
	if len(id) != cidLen {
		return
	}
	f.positions(id, func(bit uint64) { f.words[bit/64].Or(1 << (bit % 64)) })
}

// mayHave reports false only if the record is certainly not stored.
func (f *idFilter) mayHave(c cid.Cid) bool {
	id := []byte(c.KeyString())
	if len(id) != cidLen {
		return true
	}
	all := true
	f.positions(id, func(bit uint64) { all = all && f.words[bit/64].Load()&(1<<(bit%64)) != 0 })
	return all
}

// loadFilter builds the filter from the record keys in db.
func loadFilter(db *badger.DB, stored int) (*idFilter, error) {
	f := newIDFilter(4 * stored)
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{famRecord}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) != 1+cidLen {
				return fmt.Errorf("registry: open: bad record key %x", k)
			}
			f.positions(k[1:], func(bit uint64) { f.words[bit/64].Or(1 << (bit % 64)) })
		}
		return nil
	})
	return f, err
}
