package sim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/registry/recon"
)

// recordTracker follows the registries of the running nodes: when each
// record was published, and when the last node stored it. It reads each
// node's Store.Subscribe, which sees every record once it is durable,
// whether it came by gossip or by sync.
type recordTracker struct {
	target int // nodes that must hold a record

	mu        sync.Mutex
	seen      map[cid.Cid]*tracked
	published []cid.Cid
	complete  int // published records held by target nodes
	stops     []func()
	wg        sync.WaitGroup
}

type tracked struct {
	pub   time.Time // zero until its publisher returned
	nodes int
	last  time.Time
}

// subscribeBuffer is large enough that a node's tracker never falls behind
// the committer by a whole buffer in this simulation; drops are counted in
// the store's stats and reported.
const subscribeBuffer = 8192

func newRecordTracker(ms []*member, target int) *recordTracker {
	t := &recordTracker{target: target, seen: map[cid.Cid]*tracked{}}
	for _, m := range ms {
		notes, stop := m.n.Store.Subscribe(subscribeBuffer)
		t.stops = append(t.stops, stop)
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			for st := range notes {
				t.stored(st.CID())
			}
		}()
	}
	return t
}

func (t *recordTracker) stored(id cid.Cid) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.seen[id]
	if r == nil {
		r = &tracked{}
		t.seen[id] = r
	}
	r.nodes++
	r.last = now
	if r.nodes == t.target && !r.pub.IsZero() {
		t.complete++
	}
}

// publish notes that id was published at pub (the moment before the call).
func (t *recordTracker) publish(id cid.Cid, pub time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.seen[id]
	if r == nil {
		r = &tracked{}
		t.seen[id] = r
	}
	r.pub = pub
	t.published = append(t.published, id)
	if r.nodes >= t.target {
		t.complete++
	}
}

// progress is how many published records every node holds, of how many.
func (t *recordTracker) progress() (complete, published int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.complete, len(t.published)
}

// convergence returns, per published record held by every node, the time
// from publication until the last node stored it.
func (t *recordTracker) convergence() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]time.Duration, 0, len(t.published))
	for _, id := range t.published {
		if r := t.seen[id]; r.nodes >= t.target {
			out = append(out, r.last.Sub(r.pub))
		}
	}
	return out
}

func (t *recordTracker) close() {
	for _, stop := range t.stops {
		stop()
	}
	t.wg.Wait()
}

// publishRecords publishes count attestations from the publishers through
// the nodes' own Publish (the API's backend), at rate records per second
// over all of them (0: as fast as each goes), and tells the tracker.
func (c *cluster) publishRecords(ctx context.Context, publishers []*member, count int, rate float64, t *recordTracker, tag string) error {
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(len(publishers)) / rate)
	}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for pi, m := range publishers {
		share := count / len(publishers)
		if pi < count%len(publishers) {
			share++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var tick *time.Ticker
			if interval > 0 {
				tick = time.NewTicker(interval)
				defer tick.Stop()
			}
			for k := range share {
				if tick != nil {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
				}
				pub := time.Now()
				res, err := m.n.Publish(ctx, api.PublishRequest{Community: c.comm.String(), Kind: "attestation", Body: map[string]any{
					"subject":   map[string]any{"type": "skill", "id": "text.stats"},
					"predicate": "agora:sim/check/v1",
					"verdict":   "pass",
					"claims":    map[string]any{"run": tag, "seq": fmt.Sprintf("%d-%d", m.i, k)},
				}})
				if err == nil {
					var id cid.Cid
					if id, err = cid.Decode(res.CID); err == nil {
						t.publish(id, pub)
						c.authoredMu.Lock()
						c.authored[m.i]++
						c.authoredMu.Unlock()
						continue
					}
				}
				mu.Lock()
				errs = append(errs, fmt.Errorf("node %d publishing record %d: %w", m.i, k, err))
				mu.Unlock()
				return
			}
		}()
	}
	wg.Wait()
	if len(errs) == 0 && ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.Join(errs...)
}

// fingerprint is node m's reconciliation fingerprint of the community's
// whole range, as its sync responder would compute it, and the count.
func (c *cluster) fingerprint(m *member) (string, int, error) {
	items, err := m.n.Store.ReconItems(c.comm)
	if err != nil {
		return "", 0, err
	}
	its := make([]recon.Item, len(items))
	for i, it := range items {
		its[i] = recon.Item{Created: it.Created, ID: it.ID}
	}
	v, err := recon.NewVector(its)
	if err != nil {
		return "", 0, err
	}
	fp := v.Fingerprint(0, v.Len())
	return fmt.Sprintf("%x", fp[:]), v.Len(), nil
}

// fingerprints returns the distinct fingerprints of the running nodes
// (one when they agree) and the node count behind each.
func (c *cluster) fingerprints(ctx context.Context, ms []*member) (map[string]int, error) {
	var mu sync.Mutex
	out := map[string]int{}
	err := forEach(ctx, ms, 2, func(_ context.Context, m *member) error {
		fp, _, err := c.fingerprint(m)
		if err != nil {
			return fmt.Errorf("node %d: %w", m.i, err)
		}
		mu.Lock()
		out[fp]++
		mu.Unlock()
		return nil
	})
	return out, err
}

// dropped sums the store notifications the running nodes dropped.
func dropped(ms []*member) uint64 {
	var n uint64
	for _, m := range ms {
		n += m.n.Store.Stats().NotifyDropped
	}
	return n
}
