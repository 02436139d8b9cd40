package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/agora-p2p/agora/node/config"
)

// An idle daemon hands its heap's slack back to the operating system.
//
// The GC lets garbage pile up to GOGC percent of the live heap before it
// collects, and the runtime's scavenger then returns freed pages only down
// to about that goal: a node that allocates a little at a time (a trust
// refresh every minute, libp2p's housekeeping) keeps the whole goal in its
// RSS while it idles, which is most of a home node's life. Every period,
// idleTrim looks at how much the node allocated since the last look; when
// that is little (the node is idle) and enough memory is reclaimable
// (garbage not yet collected, plus free pages not yet returned), it runs a
// collection and returns the pages (debug.FreeOSMemory). A busy node is
// left to the GC's pacing, and a trim is not repeated until garbage piles
// up again, so an idle node pays one collection of its small heap every
// few minutes at most.
type idleTrim struct {
	every time.Duration
	// quiet is the most the node may allocate in a period and still count
	// as idle.
	quiet uint64
	// slack is the least reclaimable memory worth a trim, and at least an
	// eighth of the live heap: a trim marks the whole heap, so a large one
	// waits for more garbage.
	slack uint64
}

// defaultTrim: an idle node allocates a few MB a minute.
var defaultTrim = idleTrim{every: 30 * time.Second, quiet: 32 << 20, slack: 4 << 20}

// heapStats is what idleTrim reads of the runtime.
type heapStats struct {
	allocated   uint64 // bytes allocated since the process started
	objects     uint64 // bytes of heap objects, live and not yet collected
	live        uint64 // bytes of heap objects the last collection found live
	free        uint64 // bytes of free heap pages not yet returned to the OS
	reclaimable uint64 // objects - live + free
}

var heapMetrics = []string{
	"/gc/heap/allocs:bytes",
	"/memory/classes/heap/objects:bytes",
	"/gc/heap/live:bytes",
	"/memory/classes/heap/free:bytes",
}

func readHeap() heapStats {
	s := make([]metrics.Sample, len(heapMetrics))
	for i, name := range heapMetrics {
		s[i].Name = name
	}
	metrics.Read(s)
	v := func(i int) uint64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s[i].Value.Uint64()
	}
	h := heapStats{allocated: v(0), objects: v(1), live: v(2), free: v(3)}
	if h.objects > h.live {
		h.reclaimable = h.objects - h.live
	}
	h.reclaimable += h.free
	return h
}

// shouldTrim decides from the previous and the current reading.
func (t idleTrim) shouldTrim(prev, cur heapStats) bool {
	if cur.allocated < prev.allocated { // cannot happen; never trim on nonsense
		return false
	}
	return cur.allocated-prev.allocated <= t.quiet && cur.reclaimable >= max(t.slack, cur.live/8)
}

// run checks at every tick until ctx ends; trim is debug.FreeOSMemory in
// the daemon.
func (t idleTrim) run(ctx context.Context, tick <-chan time.Time, read func() heapStats, trim func()) {
	prev := read()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
		cur := read()
		if t.shouldTrim(prev, cur) {
			trim()
			cur = read()
		}
		prev = cur
	}
}

// trimWhenIdle runs defaultTrim for the daemon's profile until ctx ends
// (not for the server profile, which trades memory for less GC work).
func trimWhenIdle(ctx context.Context, profile string) {
	if profile == config.ProfileServer {
		return
	}
	tk := time.NewTicker(defaultTrim.every)
	defer tk.Stop()
	defaultTrim.run(ctx, tk.C, readHeap, debug.FreeOSMemory)
}
