package recon

import (
	"bytes"
	"cmp"
	"iter"
	"slices"
	"sort"

	wire "github.com/agora-p2p/agora/protocol/recon"
)

// sumStride is how many items a Vector's prefix sums step over: a range sum
// costs at most 2*(sumStride-1) additions, and the sums take 32/sumStride
// bytes per item instead of 32.
const sumStride = 16

// Vector is an immutable, in-memory Store: items in a sorted array with
// prefix sums of their IDs every sumStride items, so a fingerprint costs
// O(1) and a bound lookup O(log n). It takes about 50 bytes per item.
// A Vector is safe for concurrent use.
type Vector struct {
	items []entry
	sums  []Sum // sums[k] is the Sum of items[:k*sumStride]
}

type entry struct {
	created uint64
	cid     [wire.CIDSize]byte
}

func (e *entry) item() Item { return Item{Created: e.created, ID: e.cid[:]} }

func (e *entry) digest() []byte { return e.cid[wire.CIDSize-wire.IDSize:] }

func compareEntries(a, b entry) int {
	if c := cmp.Compare(a.created, b.created); c != 0 {
		return c
	}
	return bytes.Compare(a.cid[:], b.cid[:])
}

// NewVector returns a Vector of the given items, in any order; duplicates are
// kept once. It fails if an item does not pass Item.Check. items is not
// retained.
func NewVector(items []Item) (*Vector, error) {
	es, err := entries(items)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(es, compareEntries)
	return build(slices.CompactFunc(es, func(a, b entry) bool { return a == b })), nil
}

// Insert returns a Vector holding v's items and the given ones; v is not
// changed, so sessions reading it are not disturbed. It costs O(n + k log k)
// for k new items: batch them.
func (v *Vector) Insert(items ...Item) (*Vector, error) {
	es, err := entries(items)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(es, compareEntries)
	merged := make([]entry, 0, len(v.items)+len(es))
	i, j := 0, 0
	for i < len(v.items) || j < len(es) {
		var next entry
		switch {
		case j == len(es) || i < len(v.items) && compareEntries(v.items[i], es[j]) <= 0:
			next = v.items[i]
			i++
		default:
			next = es[j]
			j++
		}
		if n := len(merged); n > 0 && merged[n-1] == next {
			continue
		}
		merged = append(merged, next)
	}
	return build(merged), nil
}

func entries(items []Item) ([]entry, error) {
	es := make([]entry, len(items))
	for i, it := range items {
		if err := it.Check(); err != nil {
			return nil, err
		}
		es[i].created = it.Created
		copy(es[i].cid[:], it.ID)
	}
	return es, nil
}

func build(es []entry) *Vector {
	v := &Vector{items: es, sums: make([]Sum, len(es)/sumStride+1)}
	var s Sum
	for i := range es {
		if i%sumStride == 0 {
			v.sums[i/sumStride] = s
		}
		s.Add(es[i].digest())
	}
	if len(es)%sumStride == 0 {
		v.sums[len(es)/sumStride] = s
	}
	return v
}

// Len returns the number of items.
func (v *Vector) Len() int { return len(v.items) }

// Items yields the items at [lo, hi). Their IDs point into the Vector and
// must not be modified.
func (v *Vector) Items(lo, hi int) iter.Seq[Item] {
	return func(yield func(Item) bool) {
		for i := lo; i < hi; i++ {
			if !yield(v.items[i].item()) {
				return
			}
		}
	}
}

// FindLowerBound returns the first position in [lo, hi) whose item is not
// below b, or hi.
func (v *Vector) FindLowerBound(lo, hi int, b wire.Bound) int {
	return lo + sort.Search(hi-lo, func(i int) bool {
		e := &v.items[lo+i]
		return !b.Below(e.created, e.digest())
	})
}

// Fingerprint returns the fingerprint of the items at [lo, hi).
func (v *Vector) Fingerprint(lo, hi int) wire.Fingerprint {
	s := v.prefixSum(hi)
	s.SubSum(v.prefixSum(lo))
	return s.Fingerprint(hi - lo)
}

// prefixSum returns the Sum of items[:i].
func (v *Vector) prefixSum(i int) Sum {
	k := i / sumStride
	s := v.sums[k]
	for j := k * sumStride; j < i; j++ {
		s.Add(v.items[j].digest())
	}
	return s
}
