package recon

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// The 1,000,000 common items are built once per test binary; each benchmark
// only merges its extras into them.
var bench struct {
	once   sync.Once
	common *Vector
	extra  []Item
}

const benchItems = 1_000_000

func benchCommon(b *testing.B) (*Vector, []Item) {
	bench.once.Do(func() {
		rng := rand.New(rand.NewPCG(42, 42))
		// A year of records.
		items := genItems(rng, benchItems+2_000, 365*24*3600*1000)
		bench.common = mustVector(b, items[:benchItems])
		bench.extra = items[benchItems:]
	})
	return bench.common, bench.extra
}

// BenchmarkReconcile reconciles two sets of about 1,000,000 items that differ
// by d items (split between the sides), through the real framing. It
// reports round trips and bytes each way per sync.
func BenchmarkReconcile(b *testing.B) {
	for _, d := range []int{1, 1000} {
		b.Run(fmt.Sprintf("items=1M/diffs=%d", d), func(b *testing.B) {
			common, extra := benchCommon(b)
			onlyA, onlyB := extra[:d/2], extra[d/2:d]
			va, err := common.Insert(onlyA...)
			if err != nil {
				b.Fatal(err)
			}
			vb, err := common.Insert(onlyB...)
			if err != nil {
				b.Fatal(err)
			}
			r := syncOnce(b, va, vb, cfg(), cfg(), nil)
			checkExact(b, "have", r.have, onlyA)
			checkExact(b, "need", r.need, onlyB)
			b.ResetTimer()
			for b.Loop() {
				r = syncOnce(b, va, vb, cfg(), cfg(), nil)
			}
			b.ReportMetric(float64(r.rounds), "roundtrips/op")
			b.ReportMetric(float64(r.up), "bytes-up/op")
			b.ReportMetric(float64(r.down), "bytes-down/op")
		})
	}
}

// BenchmarkNewVector is the cost of building a Store snapshot of 1,000,000
// items from scratch; Insert of a batch into an existing one is cheaper.
func BenchmarkNewVector(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	items := genItems(rng, benchItems, 365*24*3600*1000)
	for b.Loop() {
		if _, err := NewVector(items); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInsert(b *testing.B) {
	common, extra := benchCommon(b)
	for b.Loop() {
		if _, err := common.Insert(extra[:100]...); err != nil {
			b.Fatal(err)
		}
	}
}
