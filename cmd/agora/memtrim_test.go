package main

import (
	"context"
	"runtime"
	"testing"
	"time"
)

func TestIdleTrimDecides(t *testing.T) {
	tr := idleTrim{quiet: 10 << 20, slack: 4 << 20}
	base := heapStats{allocated: 100 << 20}
	for _, c := range []struct {
		name string
		cur  heapStats
		want bool
	}{
		{"idle with slack", heapStats{allocated: 101 << 20, reclaimable: 5 << 20}, true},
		{"idle, little to reclaim", heapStats{allocated: 101 << 20, reclaimable: 3 << 20}, false},
		{"busy", heapStats{allocated: 200 << 20, reclaimable: 50 << 20}, false},
		{"exactly quiet", heapStats{allocated: 110 << 20, reclaimable: 4 << 20}, true},
		{"counter went back", heapStats{allocated: 1, reclaimable: 50 << 20}, false},
		{"large heap, little slack", heapStats{allocated: 101 << 20, live: 400 << 20, reclaimable: 20 << 20}, false},
		{"large heap, an eighth reclaimable", heapStats{allocated: 101 << 20, live: 400 << 20, reclaimable: 50 << 20}, true},
	} {
		if got := tr.shouldTrim(base, c.cur); got != c.want {
			t.Errorf("%s: trim %v, want %v", c.name, got, c.want)
		}
	}
}

// TestIdleTrimRuns: the loop trims when idle, not again until garbage piles
// up anew, and not while busy.
func TestIdleTrimRuns(t *testing.T) {
	tr := idleTrim{quiet: 10, slack: 4}
	readings := make(chan heapStats, 1)
	tick := make(chan time.Time)
	trims := make(chan struct{}, 8)
	var cur heapStats
	read := func() heapStats {
		select {
		case cur = <-readings:
		default:
		}
		return cur
	}
	trim := func() {
		cur.reclaimable = 0 // what FreeOSMemory does
		trims <- struct{}{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.run(ctx, tick, read, trim); close(done) }()
	step := func(h heapStats) {
		readings <- h
		tick <- time.Time{}
	}
	step(heapStats{allocated: 5, reclaimable: 6}) // idle, slack: trim
	step(heapStats{allocated: 8, reclaimable: 2}) // idle, nothing piled up
	step(heapStats{allocated: 100, reclaimable: 9})
	step(heapStats{allocated: 103, reclaimable: 9}) // idle again: trim
	tick <- time.Time{}                             // the last step's trim has happened
	cancel()
	<-done
	if n := len(trims); n != 2 {
		t.Fatalf("%d trims, want 2", n)
	}
}

func TestReadHeapReadsTheRuntime(t *testing.T) {
	keep := make([]byte, 8<<20) // live across the collection
	runtime.GC()
	h := readHeap()
	if h.allocated == 0 || h.objects == 0 || h.live < 8<<20 {
		t.Fatalf("the runtime's heap metrics read wrong: %+v", h)
	}
	garbage := uint64(0)
	if h.objects > h.live { // the two are read a moment apart
		garbage = h.objects - h.live
	}
	if h.reclaimable != garbage+h.free {
		t.Fatalf("reclaimable %d is not garbage plus free pages: %+v", h.reclaimable, h)
	}
	runtime.KeepAlive(keep)
}
