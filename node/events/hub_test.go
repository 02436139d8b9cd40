package events_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/events"
)

func fixedClock() time.Time { return time.UnixMilli(1_700_000_000_123) }

func ids(evs []api.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func rangeIDs(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPublishNumbersAndStamps(t *testing.T) {
	h := events.New(8, events.WithClock(fixedClock))
	for i := uint64(1); i <= 3; i++ {
		ev := h.Publish("peer.connected", map[string]string{"n": fmt.Sprint(i)})
		if ev.ID != i || ev.Type != "peer.connected" || ev.Time != 1_700_000_000_123 {
			t.Fatalf("event %d = %+v", i, ev)
		}
	}
	if h.LastID() != 3 {
		t.Fatalf("LastID = %d, want 3", h.LastID())
	}
}

func TestSubscribeBacklogAndGap(t *testing.T) {
	h := events.New(4)
	for range 6 {
		h.Publish("x", nil)
	}
	// Ring holds 3..6.
	tests := []struct {
		name    string
		lastID  uint64
		want    []uint64
		wantGap bool
	}{
		{"from start, 1 and 2 evicted", 0, rangeIDs(3, 6), true},
		{"missed only evicted 2", 1, rangeIDs(3, 6), true},
		{"oldest kept is next", 2, rangeIDs(3, 6), false},
		{"middle", 4, rangeIDs(5, 6), false},
		{"up to date", 6, nil, false},
		{"from a previous process", 99, rangeIDs(3, 6), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			backlog, _, cancel, gap := h.Subscribe(tc.lastID)
			defer cancel()
			if !equal(ids(backlog), tc.want) || gap != tc.wantGap {
				t.Fatalf("Subscribe(%d) = %v gap=%v, want %v gap=%v", tc.lastID, ids(backlog), gap, tc.want, tc.wantGap)
			}
		})
	}
}

func TestSubscribeEmptyHub(t *testing.T) {
	h := events.New(4)
	backlog, _, cancel, gap := h.Subscribe(0)
	defer cancel()
	if len(backlog) != 0 || gap {
		t.Fatalf("empty hub: backlog %v gap %v", ids(backlog), gap)
	}
	_, _, cancel2, gap := h.Subscribe(3)
	defer cancel2()
	if !gap {
		t.Fatal("an ID ahead of the hub must report a gap")
	}
}

func TestLiveAfterBacklogWithoutLossOrRepeat(t *testing.T) {
	h := events.New(16)
	h.Publish("a", nil)
	h.Publish("b", nil)
	backlog, ch, cancel, _ := h.Subscribe(0)
	defer cancel()
	h.Publish("c", nil)
	got := ids(backlog)
	select {
	case ev := <-ch:
		got = append(got, ev.ID)
	case <-time.After(5 * time.Second):
		t.Fatal("no live event")
	}
	if !equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("got %v", got)
	}
}

func TestSlowSubscriberIsDroppedNotWaitedFor(t *testing.T) {
	h := events.New(16, events.WithSubscriberBuffer(2))
	_, slow, cancelSlow, _ := h.Subscribe(0)
	defer cancelSlow()
	_, fast, cancelFast, _ := h.Subscribe(0)
	defer cancelFast()

	var got []uint64
	for range 5 {
		ev := h.Publish("x", nil) // must return although slow is never read
		got = append(got, (<-fast).ID)
		if ev.ID != got[len(got)-1] {
			t.Fatalf("fast got %d, published %d", got[len(got)-1], ev.ID)
		}
	}
	// slow holds the first 2 events, then its channel is closed.
	var slowGot []uint64
	for ev := range slow {
		slowGot = append(slowGot, ev.ID)
	}
	if !equal(slowGot, []uint64{1, 2}) {
		t.Fatalf("slow got %v before being dropped", slowGot)
	}
	if n := h.Subscribers(); n != 1 {
		t.Fatalf("Subscribers = %d, want 1", n)
	}
	// The dropped client resumes from the ring and misses nothing.
	backlog, _, cancel, gap := h.Subscribe(2)
	defer cancel()
	if gap || !equal(ids(backlog), []uint64{3, 4, 5}) {
		t.Fatalf("resume: %v gap=%v", ids(backlog), gap)
	}
	cancelSlow() // idempotent after a drop
}

func TestCancelClosesAndIsIdempotent(t *testing.T) {
	h := events.New(4)
	_, ch, cancel, _ := h.Subscribe(0)
	cancel()
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("channel still open after cancel")
	}
	h.Publish("x", nil) // no send on a closed channel
	if h.Subscribers() != 0 {
		t.Fatal("subscriber not removed")
	}
}

// Concurrent publishers and subscribers: every subscriber that is not dropped
// sees a strictly increasing, gap-free sequence, and IDs are unique.
func TestConcurrentPublishSubscribe(t *testing.T) {
	const publishers, perPublisher = 8, 200
	h := events.New(64, events.WithSubscriberBuffer(publishers*perPublisher))

	var wg sync.WaitGroup
	results := make(chan []uint64, 4)
	for range 4 {
		backlog, ch, cancel, _ := h.Subscribe(0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel()
			got := ids(backlog)
			for ev := range ch {
				got = append(got, ev.ID)
				if ev.ID == publishers*perPublisher {
					break
				}
			}
			results <- got
		}()
	}
	var pub sync.WaitGroup
	seen := make([][]uint64, publishers)
	for p := range publishers {
		pub.Add(1)
		go func() {
			defer pub.Done()
			for range perPublisher {
				seen[p] = append(seen[p], h.Publish("x", p).ID)
			}
		}()
	}
	pub.Wait()
	wg.Wait()
	close(results)

	unique := map[uint64]bool{}
	for _, s := range seen {
		for _, id := range s {
			if unique[id] {
				t.Fatalf("ID %d published twice", id)
			}
			unique[id] = true
		}
	}
	for got := range results {
		if !equal(got, rangeIDs(1, publishers*perPublisher)) {
			t.Fatalf("subscriber saw %d events, not 1..%d in order", len(got), publishers*perPublisher)
		}
	}
}

func TestEpochDiffersPerHub(t *testing.T) {
	a, b := events.New(1), events.New(1)
	if a.Epoch() == "" || a.Epoch() == b.Epoch() {
		t.Fatalf("epochs %q %q", a.Epoch(), b.Epoch())
	}
}
