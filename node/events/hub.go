package events

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/agora-p2p/agora/node/api"
)

const (
	// DefaultCapacity is how many past events a Hub keeps for resuming
	// clients: a few minutes of a busy node, a few hundred KiB of memory.
	DefaultCapacity = 4096
	// DefaultSubscriberBuffer is how many events may queue for one
	// subscriber before it is dropped. A dropped SSE client reconnects and
	// resumes from the ring, so this only has to absorb short stalls.
	DefaultSubscriberBuffer = 256
)

// Option configures a Hub.
type Option func(*Hub)

// WithClock sets the clock that stamps Event.Time; tests inject a fixed one.
func WithClock(now func() time.Time) Option {
	return func(h *Hub) {
		if now != nil {
			h.now = now
		}
	}
}

// WithSubscriberBuffer sets the per-subscriber channel size (values below 1
// keep the default).
func WithSubscriberBuffer(n int) Option {
	return func(h *Hub) {
		if n > 0 {
			h.subBuf = n
		}
	}
}

// Hub numbers and fans out events. It is safe for concurrent use.
//
// Publish never blocks: a subscriber whose channel is full is dropped and its
// channel closed, and it is expected to Subscribe again with the last ID it
// saw. Event.Data is shared by every subscriber and the ring, so a publisher
// must not modify it after Publish.
type Hub struct {
	now    func() time.Time
	subBuf int
	epoch  string

	mu     sync.Mutex
	ring   []api.Event // ring[(start+i)%len(ring)] for i < n, oldest first
	start  int
	n      int
	lastID uint64
	subs   map[*subscriber]struct{}
}

type subscriber struct {
	ch chan api.Event
}

// New returns a Hub that keeps the last capacity events (DefaultCapacity when
// capacity < 1).
func New(capacity int, opts ...Option) *Hub {
	if capacity < 1 {
		capacity = DefaultCapacity
	}
	h := &Hub{
		now:    time.Now,
		subBuf: DefaultSubscriberBuffer,
		epoch:  newEpoch(),
		ring:   make([]api.Event, capacity),
		subs:   make(map[*subscriber]struct{}),
	}
	for _, o := range opts {
		o(h)
	}
	return h
}

func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail on supported platforms
	return hex.EncodeToString(b[:])
}

// Epoch identifies this Hub's ID sequence. IDs restart at 1 with every Hub
// (every node process), so a client that remembers an ID must also remember
// the Epoch it belongs to; an ID from another epoch means nothing here.
func (h *Hub) Epoch() string { return h.epoch }

// LastID is the ID of the latest published event, 0 before the first.
func (h *Hub) LastID() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastID
}

// Publish records an event and offers it to every subscriber. IDs start at 1
// and increase by one per event.
func (h *Hub) Publish(typ string, data any) api.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastID++
	ev := api.Event{ID: h.lastID, Type: typ, Time: h.now().UnixMilli(), Data: data}
	if h.n < len(h.ring) {
		h.ring[(h.start+h.n)%len(h.ring)] = ev
		h.n++
	} else {
		h.ring[h.start] = ev
		h.start = (h.start + 1) % len(h.ring)
	}
	for s := range h.subs {
		select {
		case s.ch <- ev:
		default:
			// Dropping rather than waiting keeps one stuck client from
			// stalling the node; it resumes from the ring.
			delete(h.subs, s)
			close(s.ch)
		}
	}
	return ev
}

// Subscribe returns the buffered events with ID > lastID and a channel of the
// events published after them, with nothing missed or repeated in between.
// gap is true when some events after lastID are no longer buffered, and also
// when lastID is ahead of this Hub (an ID from a previous process), in which
// case the backlog is everything buffered.
//
// The channel is closed when the subscriber falls behind by more than its
// buffer, or by cancel. cancel is idempotent and must be called to release the
// subscription.
func (h *Hub) Subscribe(lastID uint64) (backlog []api.Event, ch <-chan api.Event, cancel func(), gap bool) {
	h.mu.Lock()
	defer h.mu.Unlock()

	if lastID > h.lastID {
		lastID, gap = 0, true
	}
	oldest := h.lastID - uint64(h.n) + 1 // ID of ring's first element
	skip := 0
	if lastID+1 < oldest {
		gap = true
	} else {
		skip = int(lastID + 1 - oldest)
	}
	if skip < h.n {
		backlog = make([]api.Event, 0, h.n-skip)
		for i := skip; i < h.n; i++ {
			backlog = append(backlog, h.ring[(h.start+i)%len(h.ring)])
		}
	}

	s := &subscriber{ch: make(chan api.Event, h.subBuf)}
	h.subs[s] = struct{}{}
	var once sync.Once
	cancel = func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if _, ok := h.subs[s]; ok {
				delete(h.subs, s)
				close(s.ch)
			}
		})
	}
	return backlog, s.ch, cancel, gap
}

// Subscribers is the number of live subscriptions, for metrics and tests.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}
