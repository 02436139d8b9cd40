package tasks

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/agora-p2p/agora/protocol/record"
)

// sigBatcher checks the signatures of the receipts that arrive together in
// one batch (record.VerifyByBatch: about a third of the cost of single
// checks in batches of a dozen, with the same answers). Nothing waits for
// a batch to fill: the first requester to check becomes the leader, lets
// the others that are about to check queue theirs (one runtime.Gosched,
// and only while other tasks are in flight), checks everything queued,
// and hands the lead to the first that queued meanwhile. A requester alone
// checks its receipt at once, as record.VerifyBy would.
type sigBatcher struct {
	// waiting counts the remote attempts between sending their request
	// and checking the answer.
	waiting atomic.Int32
	verify  func([]record.BySig) []error

	mu      sync.Mutex
	pending []*sigCheck
	leading bool

	batches, sigs atomic.Int64 // checked so far
}

type sigCheck struct {
	record.BySig
	err  error
	lead bool          // handed the lead rather than an answer
	done chan struct{} // one send: the answer, or the lead
}

func newSigBatcher() *sigBatcher { return &sigBatcher{verify: record.VerifyByBatch} }

// check is record.VerifyBy, batched with the checks made at the same time.
func (b *sigBatcher) check(author peer.ID, msg, sig []byte) error {
	c := &sigCheck{BySig: record.BySig{Author: author, Msg: msg, Sig: sig}, done: make(chan struct{}, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	lead := !b.leading
	b.leading = true
	b.mu.Unlock()
	if !lead {
		<-c.done
		if !c.lead {
			return c.err
		}
	}
	if b.waiting.Load() > 1 {
		// The answers of tasks that ended together arrive in one read of
		// the connection: their requesters are runnable, about to check.
		runtime.Gosched()
	}
	b.mu.Lock()
	batch := b.pending // c among them: queued before it led
	b.pending = nil
	b.mu.Unlock()
	sigs := make([]record.BySig, len(batch))
	for i, x := range batch {
		sigs[i] = x.BySig
	}
	errs := b.verify(sigs)
	b.batches.Add(1)
	b.sigs.Add(int64(len(sigs)))
	for i, x := range batch {
		x.err = errs[i]
		if x != c {
			x.done <- struct{}{}
		}
	}
	b.mu.Lock()
	if len(b.pending) > 0 {
		next := b.pending[0] // stays queued: it takes itself with the rest
		next.lead = true
		next.done <- struct{}{}
	} else {
		b.leading = false
	}
	b.mu.Unlock()
	return c.err
}
