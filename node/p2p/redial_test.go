package p2p

import (
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestRedialPlan(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	a, b := peer.ID("a"), peer.ID("b")
	pl := newRedialPlan(t0)

	// The first call is the slow round at start.
	due, slow, next := pl.due(t0)
	if !slow || len(due) != 0 || !next.Equal(at(reconnectEvery)) {
		t.Fatalf("at start: due %v slow %v next %v", due, slow, next.Sub(t0))
	}

	// A lost peer is due at once, then after 1, 2, 4, 8, 8 s.
	pl.lost(a, at(10*time.Second))
	var times []time.Duration
	now := at(10 * time.Second)
	for range 7 {
		due, _, next := pl.due(now)
		if !slices.Equal(due, []peer.ID{a}) {
			t.Fatalf("at %v: due %v", now.Sub(t0), due)
		}
		times = append(times, now.Sub(t0))
		now = next
	}
	want := []time.Duration{10, 11, 13, 17, 25, 33, 41}
	for i := range want {
		want[i] *= time.Second
	}
	if !slices.Equal(times, want) {
		t.Errorf("redials at %v, want %v", times, want)
	}

	// The slow round falling due does not push a lost peer's redial past it
	// (the bug: after a slow round the next wake-up was a minute away).
	now = at(reconnectEvery)
	due, slow, next = pl.due(now)
	if !slow {
		t.Fatalf("the slow round is not due at %v", now.Sub(t0))
	}
	if next.Sub(now) > redialMax {
		t.Errorf("after the slow round the next wake-up is %v away, want at most %v while a peer is lost", next.Sub(now), redialMax)
	}
	_ = due

	// A connection to anyone resets the others' backoff: due at once.
	pl.lost(b, now)
	pl.connected(b, now.Add(time.Second))
	due, _, _ = pl.due(now.Add(time.Second))
	if !slices.Equal(due, []peer.ID{a}) {
		t.Errorf("after another peer connected: due %v, want [a]", due)
	}
	_, _, next = pl.due(now.Add(time.Second))
	if got := next.Sub(now.Add(time.Second)); got != redialMin {
		t.Errorf("after the reset the next redial is %v away, want %v", got, redialMin)
	}

	// Peers lost long ago are left to the slow rounds.
	late := at(10*time.Second + fastRedialFor + time.Second)
	due, _, next = pl.due(late)
	if len(due) != 0 || len(pl.away) != 0 {
		t.Errorf("long after the loss: due %v, still tracked %d", due, len(pl.away))
	}
	if next.Sub(late) > reconnectEvery {
		t.Errorf("next wake-up %v away, want the slow round", next.Sub(late))
	}
}
