package recon

import (
	"iter"

	wire "github.com/agora-p2p/agora/protocol/recon"
)

// Store is the set of items one side reconciles: a sorted sequence with
// positional access, as in Negentropy's storage interface. Positions are
// only meaningful within one call of Session.Reconcile or Initiate, so the
// Store must not change during a call; between calls it may (a record
// ingested mid-session is then at worst reported once more as missing).
// The simplest way to honour this is to give each session an immutable
// snapshot, as Vector is.
//
// Items must be valid (Item.Check), unique and strictly increasing. Methods
// must be safe to call from the session's goroutine while other goroutines
// use other snapshots, and must not fail: a disk-backed implementation loads
// what it needs when the snapshot is taken. Positional access and O(log n)
// range sums are what make a round cheap; the registry's (created, CID)
// index feeds a Vector for that reason rather than serving ranges from disk.
type Store interface {
	// Len returns the number of items.
	Len() int
	// Items yields the items at positions [lo, hi) in order. The IDs it
	// yields may be reused by the store; callers clone what they keep.
	Items(lo, hi int) iter.Seq[Item]
	// FindLowerBound returns the first position in [lo, hi) whose item is
	// not below b, or hi if there is none.
	FindLowerBound(lo, hi int, b wire.Bound) int
	// Fingerprint returns the fingerprint of the items at [lo, hi): their
	// Sum of wire IDs and their count (Sum.Fingerprint).
	Fingerprint(lo, hi int) wire.Fingerprint
}
