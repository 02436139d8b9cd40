package recon

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	wire "github.com/agora-p2p/agora/protocol/recon"
)

func naiveFingerprint(items []Item) wire.Fingerprint {
	var s Sum
	for _, it := range items {
		s.Add(it.digest())
	}
	return s.Fingerprint(len(items))
}

func sorted(items []Item) []Item {
	out := slices.Clone(items)
	slices.SortFunc(out, Item.Compare)
	return out
}

func TestVectorMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 15, 16, 17, 100, 1000} {
		items := genItems(rng, n, 50)
		v := mustVector(t, append(slices.Clone(items), items...)) // duplicates dropped
		want := sorted(items)
		if v.Len() != n {
			t.Fatalf("n=%d: Len = %d", n, v.Len())
		}
		got := slices.Collect(v.Items(0, n))
		for i := range want {
			if got[i].Compare(want[i]) != 0 {
				t.Fatalf("n=%d: item %d out of order", n, i)
			}
		}
		for range 200 {
			lo := rng.IntN(n + 1)
			hi := lo + rng.IntN(n-lo+1)
			if v.Fingerprint(lo, hi) != naiveFingerprint(want[lo:hi]) {
				t.Fatalf("n=%d: Fingerprint(%d, %d) differs from the naive sum", n, lo, hi)
			}
			// A bound at, just above or between items.
			var b wire.Bound
			switch k := rng.IntN(4); {
			case n == 0 || k == 0:
				b = wire.Bound{Created: baseTime + rng.Uint64N(60)}
			case k == 1:
				it := want[rng.IntN(n)]
				b = wire.Bound{Created: it.Created, Prefix: bytes.TrimRight(it.digest(), "\x00")}
			case k == 2:
				b = wire.Infinity
			default:
				i := 1 + rng.IntN(max(n-1, 1))
				if i < n {
					b = minimalBound(want[i-1], want[i])
				}
			}
			first := lo
			for first < hi && want[first].below(b) {
				first++
			}
			if got := v.FindLowerBound(lo, hi, b); got != first {
				t.Fatalf("n=%d: FindLowerBound(%d, %d, %+v) = %d, want %d", n, lo, hi, b, got, first)
			}
		}
	}
}

func TestVectorInsert(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	items := genItems(rng, 500, 100)
	v := mustVector(t, items[:300])
	w, err := v.Insert(items[250:]...) // overlaps by 50
	if err != nil {
		t.Fatal(err)
	}
	if v.Len() != 300 {
		t.Fatal("Insert changed the original")
	}
	all := mustVector(t, items)
	if w.Len() != all.Len() || w.Fingerprint(0, w.Len()) != all.Fingerprint(0, all.Len()) {
		t.Fatalf("Insert: %d items, want %d, or sums differ", w.Len(), all.Len())
	}
	for i := 0; i <= w.Len(); i += 37 {
		if w.Fingerprint(0, i) != all.Fingerprint(0, i) {
			t.Fatalf("prefix %d differs", i)
		}
	}
}

func TestVectorRejects(t *testing.T) {
	good := mustCID(make([]byte, wire.IDSize))
	for _, it := range []Item{
		{Created: 1, ID: nil},
		{Created: 1, ID: good[4:]},
		{Created: 1, ID: append([]byte{0x01, 0x55}, good[2:]...)},
		{Created: wire.Infinity.Created, ID: good},
	} {
		if _, err := NewVector([]Item{it}); err == nil {
			t.Fatalf("NewVector accepted %+v", it)
		}
		if _, err := mustVector(t, nil).Insert(it); err == nil {
			t.Fatalf("Insert accepted %+v", it)
		}
	}
}

func TestMinimalBound(t *testing.T) {
	idOf := func(b ...byte) []byte {
		id := make([]byte, wire.IDSize)
		copy(id, b)
		return mustCID(id)
	}
	tests := []struct {
		name       string
		prev, curr Item
		want       wire.Bound
	}{
		{"times differ", Item{5, idOf(9)}, Item{7, idOf(1)}, wire.Bound{Created: 7}},
		{"first byte differs", Item{5, idOf(1)}, Item{5, idOf(2)}, wire.Bound{Created: 5, Prefix: []byte{2}}},
		{"shared prefix", Item{5, idOf(1, 2, 3)}, Item{5, idOf(1, 2, 4)}, wire.Bound{Created: 5, Prefix: []byte{1, 2, 4}}},
		{"zero then non-zero", Item{5, idOf(1, 0, 0)}, Item{5, idOf(1, 0, 1)}, wire.Bound{Created: 5, Prefix: []byte{1, 0, 1}}},
		{"last byte", Item{5, idOf(make([]byte, 31)...)}, Item{5, idOf(append(make([]byte, 31), 1)...)}, wire.Bound{Created: 5, Prefix: append(make([]byte, 31), 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := minimalBound(tt.prev, tt.curr)
			if got.Compare(tt.want) != 0 {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if !tt.prev.below(got) || tt.curr.below(got) {
				t.Fatal("bound does not separate the items")
			}
			if err := wire.ValidateRanges([]wire.Range{{Upper: got}}); err != nil {
				t.Fatalf("bound is not minimal-form: %v", err)
			}
		})
	}
}
