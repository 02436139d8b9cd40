package recon

import (
	"bytes"
	"cmp"
	"fmt"
	"math"

	wire "github.com/agora-p2p/agora/protocol/recon"
	"github.com/agora-p2p/agora/protocol/record"
)

// Item is one record as reconciliation sees it. Items are ordered by Created,
// then by ID bytes; as every record CID starts with the same four bytes, that
// is the order of their sha2-256 digests, which is what goes on the wire.
type Item struct {
	Created uint64 // the record's created time, unix milliseconds
	ID      []byte // the record's CID in binary form (wire.CIDSize bytes)
}

// ItemOf returns the item of a record.
func ItemOf(r *record.Record) Item {
	return Item{Created: uint64(r.Created), ID: r.CID().Bytes()}
}

// Compare orders items: -1 if a sorts before b, 0 if equal, +1 after.
func (a Item) Compare(b Item) int {
	if c := cmp.Compare(a.Created, b.Created); c != 0 {
		return c
	}
	return bytes.Compare(a.ID, b.ID)
}

// Less reports whether a sorts before b.
func (a Item) Less(b Item) bool { return a.Compare(b) < 0 }

// Check reports whether a can be reconciled: a record CID, and a time below
// the one reserved for wire.Infinity.
func (a Item) Check() error {
	if _, err := wire.IDFromCID(a.ID); err != nil {
		return fmt.Errorf("recon: item %x: not a record CID", a.ID)
	}
	if a.Created == math.MaxUint64 {
		return fmt.Errorf("recon: item %x: created time %d is reserved", a.ID, a.Created)
	}
	return nil
}

// digest is the wire ID of a checked item.
func (a Item) digest() []byte { return a.ID[len(a.ID)-wire.IDSize:] }

// below reports whether a sorts before bound b.
func (a Item) below(b wire.Bound) bool { return b.Below(a.Created, a.digest()) }

// minimalBound returns the shortest bound above prev and not above curr,
// for prev < curr: curr's time alone if the times differ, else curr's time
// and the shortest prefix of its ID that sorts after prev's ID.
func minimalBound(prev, curr Item) wire.Bound {
	if prev.Created != curr.Created {
		return wire.Bound{Created: curr.Created}
	}
	a, b := prev.digest(), curr.digest()
	i := 0
	for i < len(b)-1 && a[i] == b[i] {
		i++
	}
	return wire.Bound{Created: curr.Created, Prefix: bytes.Clone(b[:i+1])}
}
