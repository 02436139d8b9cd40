package recon

import (
	"bytes"
	"fmt"
	"math"
)

// Mode says what a range carries. The enum is append-only: values are never
// reused or renumbered.
type Mode uint64

const (
	// ModeSkip: the sender has nothing to say about the range; it matches
	// or was settled.
	ModeSkip Mode = 0
	// ModeFingerprint: the range carries the sender's fingerprint of its
	// items in the range.
	ModeFingerprint Mode = 1
	// ModeIDList: the range carries the IDs of all the sender's items in the
	// range.
	ModeIDList Mode = 2
)

func (m Mode) String() string {
	switch m {
	case ModeSkip:
		return "skip"
	case ModeFingerprint:
		return "fingerprint"
	case ModeIDList:
		return "idlist"
	}
	return fmt.Sprintf("mode(%d)", uint64(m))
}

// Bound is a point in the order of items, which is by Created, then by ID
// bytes. An item is below a bound when its Created is smaller, or equal with
// an ID that sorts before Prefix (compared bytewise, so an ID that starts
// with Prefix is not below it).
//
// A bound's Prefix is as short as it can be, so it never ends in a zero byte
// (that byte would not change the order) and is at most IDSize bytes.
// Infinity, above every item, has Created = math.MaxUint64 and no Prefix;
// no item has that Created.
type Bound struct {
	Created uint64
	Prefix  []byte
}

// Infinity is the bound above every item; the last range of a full
// partition ends there.
var Infinity = Bound{Created: math.MaxUint64}

// IsInfinity reports whether b is Infinity.
func (b Bound) IsInfinity() bool { return b.Created == math.MaxUint64 }

// Compare orders bounds: -1 if b sorts before o, 0 if equal, +1 after.
func (b Bound) Compare(o Bound) int {
	switch {
	case b.Created < o.Created:
		return -1
	case b.Created > o.Created:
		return 1
	}
	return bytes.Compare(b.Prefix, o.Prefix)
}

// Below reports whether the item (created, id) sorts before b. id is the wire
// ID (IDSize bytes).
func (b Bound) Below(created uint64, id []byte) bool {
	if created != b.Created {
		return created < b.Created
	}
	return bytes.Compare(id, b.Prefix) < 0
}

func (b Bound) check() error {
	if b.IsInfinity() {
		if len(b.Prefix) != 0 {
			return fmt.Errorf("%w: the infinity bound has an ID prefix", ErrBadFrame)
		}
		return nil
	}
	if len(b.Prefix) > IDSize {
		return fmt.Errorf("%w: a bound's ID prefix is %d bytes, more than %d", ErrBadFrame, len(b.Prefix), IDSize)
	}
	if n := len(b.Prefix); n > 0 && b.Prefix[n-1] == 0 {
		return fmt.Errorf("%w: a bound's ID prefix ends in a zero byte, so it is not minimal", ErrBadFrame)
	}
	return nil
}

// Range is one element of a reconciliation message. Ranges partition the
// item order: a range starts where the previous one ended (the first at the
// very beginning) and ends just before Upper. Items after the last range's
// Upper need nothing from the sender.
type Range struct {
	Upper Bound
	Mode  Mode
	// Fingerprint is set in ModeFingerprint only.
	Fingerprint Fingerprint
	// IDs is set in ModeIDList only (it may be empty): each is IDSize bytes.
	IDs [][]byte
}

// ValidateRanges checks the ranges of an Open or Reconcile frame: at most
// MaxRanges, strictly increasing minimal bounds, Infinity only last, known
// modes and well-formed payloads. Both the encoder and the decoder apply it.
func ValidateRanges(rs []Range) error {
	if len(rs) > MaxRanges {
		return fmt.Errorf("%w: %d ranges, more than %d", ErrBadFrame, len(rs), MaxRanges)
	}
	for i, r := range rs {
		if err := r.Upper.check(); err != nil {
			return fmt.Errorf("range %d: %w", i, err)
		}
		if i > 0 && rs[i-1].Upper.Compare(r.Upper) >= 0 {
			return fmt.Errorf("%w: range %d: bounds are not strictly increasing", ErrBadFrame, i)
		}
		switch r.Mode {
		case ModeSkip:
			if r.Fingerprint != (Fingerprint{}) || r.IDs != nil {
				return fmt.Errorf("%w: range %d: a skip range carries a payload", ErrBadFrame, i)
			}
		case ModeFingerprint:
			if r.IDs != nil {
				return fmt.Errorf("%w: range %d: a fingerprint range carries IDs", ErrBadFrame, i)
			}
		case ModeIDList:
			if r.Fingerprint != (Fingerprint{}) {
				return fmt.Errorf("%w: range %d: an ID list range carries a fingerprint", ErrBadFrame, i)
			}
			for j, id := range r.IDs {
				if len(id) != IDSize {
					return fmt.Errorf("%w: range %d: ID %d is %d bytes, want %d", ErrBadFrame, i, j, len(id), IDSize)
				}
			}
		default:
			return fmt.Errorf("%w: range %d: unknown mode %d", ErrBadFrame, i, uint64(r.Mode))
		}
	}
	return nil
}

// RangeSize returns the exact number of bytes r adds to the encoded ranges of
// a frame when it follows a range whose upper bound is prev (the zero Bound
// for the first range). Reconcilers use it to keep frames under their limit.
func RangeSize(prev Bound, r Range) int {
	n := 1 + cborUintSize(boundDelta(prev, r.Upper)) + cborBytesSize(len(r.Upper.Prefix)) + cborUintSize(uint64(r.Mode))
	switch r.Mode {
	case ModeFingerprint:
		n += cborBytesSize(FingerprintSize)
	case ModeIDList:
		n += cborBytesSize(len(r.IDs) * IDSize)
	default:
		n += cborBytesSize(0)
	}
	return n
}

// RangesOverhead bounds what an Open or Reconcile frame adds to the sum of
// its RangeSize values: map header, keys, type, community and the ranges
// array header.
const RangesOverhead = 80

// boundDelta is the wire form of b's Created after a range ending at prev:
// 0 for Infinity, else the increase plus one.
func boundDelta(prev, b Bound) uint64 {
	if b.IsInfinity() {
		return 0
	}
	return b.Created - prev.Created + 1
}

func cborUintSize(v uint64) int {
	switch {
	case v < 24:
		return 1
	case v <= math.MaxUint8:
		return 2
	case v <= math.MaxUint16:
		return 3
	case v <= math.MaxUint32:
		return 5
	}
	return 9
}

func cborBytesSize(n int) int { return cborUintSize(uint64(n)) + n }
