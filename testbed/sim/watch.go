package sim

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// advertWatch records when adverts reach capability indexes: for each
// watched pair (at, author), the first time node at's index holds an advert
// of author's with a seq above a threshold. It wakes on the nodes' own
// skills.changed events (the event hub the API's clients follow), with a
// slow tick as a backstop for events a busy hub dropped.
type advertWatch struct {
	c *cluster

	mu    sync.Mutex
	want  map[int][]watchPair // by the node whose index is read
	left  int
	got   map[[2]int]time.Time
	first map[int]uint64 // author → first seq above its threshold seen in its own index
	done  chan struct{}
}

type watchPair struct {
	author int
	above  uint64
}

func newAdvertWatch(c *cluster) *advertWatch {
	return &advertWatch{c: c, want: map[int][]watchPair{}, got: map[[2]int]time.Time{}, first: map[int]uint64{}, done: make(chan struct{})}
}

// expect watches for an advert of author's above seq in at's index.
func (w *advertWatch) expect(at, author int, above uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.want[at] = append(w.want[at], watchPair{author, above})
	w.left++
}

// run follows node at until ctx ends or every pair has arrived. Start it
// after the node is up and its pairs are expected.
func (w *advertWatch) run(ctx context.Context, at int) {
	n := w.c.nodes[at].n
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last uint64
	for {
		backlog, ch, cancel, _ := n.Hub.Subscribe(last)
		if len(backlog) > 0 {
			last = backlog[len(backlog)-1].ID
		}
		w.scan(at)
		open := true
		for open {
			select {
			case <-ctx.Done():
				cancel()
				return
			case <-w.done:
				cancel()
				return
			case <-tick.C:
				w.scan(at)
			case ev, ok := <-ch:
				if !ok {
					open = false // dropped for being slow: subscribe again
					break
				}
				last = ev.ID
				if ev.Type == "skills.changed" {
					w.scan(at)
				}
			}
		}
		cancel()
	}
}

func (w *advertWatch) scan(at int) {
	m := w.c.nodes[at]
	if m.n == nil {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	pairs := w.want[at]
	kept := pairs[:0]
	for _, p := range pairs {
		seq := m.n.Index.Seq(w.c.comm, w.c.nodes[p.author].id)
		if seq <= p.above {
			kept = append(kept, p)
			continue
		}
		w.got[[2]int{at, p.author}] = now
		if at == p.author {
			w.first[p.author] = seq
		}
		w.left--
	}
	w.want[at] = kept
	if w.left == 0 {
		select {
		case <-w.done:
		default:
			close(w.done)
		}
	}
}

// missing counts the pairs still waited for.
func (w *advertWatch) missing() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.left
}

// missingAuthors lists the authors whose advert some node still lacks.
func (w *advertWatch) missingAuthors() map[int]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[int]int{}
	for _, ps := range w.want {
		for _, p := range ps {
			out[p.author]++
		}
	}
	return out
}

// arrival is when at's index got author's advert (zero: not yet).
func (w *advertWatch) arrival(at, author int) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.got[[2]int{at, author}]
}

// published is the creation time of author's advert as its own index
// first held it: the advertiser sets seq to the signing time in unix ms.
func (w *advertWatch) published(author int) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.first[author]
	return time.UnixMilli(int64(s)), ok
}

// listedBy reports how many running nodes' indexes list p.
func (c *cluster) listedBy(p peer.ID) int {
	n := 0
	for _, m := range c.running() {
		for _, q := range m.n.Index.Peers(c.comm) {
			if q == p {
				n++
				break
			}
		}
	}
	return n
}
