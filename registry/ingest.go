package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"

	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
)

// Result is the outcome of ingesting one record.
//
//   - Err == nil, New == true: the record was stored and is durable.
//   - Err == nil, New == false: the record was already stored (durably); a
//     duplicate is not an error.
//   - Err != nil: the record was not stored. Classify with IsSenderFault,
//     IsRetryable and Reason.
//
// CID is set as soon as the record decodes, whatever the outcome.
type Result struct {
	CID cid.Cid
	New bool
	Err error
}

// maxJobItems bounds the records one request hands the committer, so one
// large IngestBatch cannot make a commit unboundedly large.
const maxJobItems = 1024

// item is one record on its way through the pipeline. The caller's
// goroutine fills rec and body; the committer fills res, which the caller
// reads only after the job's done channel is closed.
type item struct {
	rec  *record.Record
	raw  []byte // owned by the registry: stored and handed to subscribers
	id   cid.Cid
	seq  uint64 // Store.seq before admit looked the record up
	body body.Body
	res  Result
	// revokes is set by the committer on a revocation that becomes its
	// target's revoked-by entry.
	revokes bool
}

type job struct {
	items []*item
	done  chan struct{}
}

// Ingest checks one encoded record and stores it if it is valid and new.
// The checks, in order: size; envelope decoding; duplicate (by ID, before
// any cryptography); signature; clock; community membership; the kind's
// rules (body schema; a revocation's target must be stored, in the same
// community and by the same author); the author's rate; then the record is
// stored with its indexes, made durable, and subscribers are notified.
//
// Ingest returns once the record is durable, or with ctx's error if ctx ends
// first (the record may then still be stored). The error is also in
// Result.Err.
func (s *Store) Ingest(ctx context.Context, raw []byte) (Result, error) {
	it, done := s.decode(ctx, raw)
	return s.ingest(ctx, it, done)
}

// IngestRecord is Ingest for a record that record.Decode returned (the
// gossip validator decodes a record to route it; decoding it again here
// would cost a third of its signature check). rec must be unchanged since
// Decode: the checks read its fields, the signature covers its encoding,
// and the encoding is what is stored. A record without its encoding is
// refused.
func (s *Store) IngestRecord(ctx context.Context, rec *record.Record) (Result, error) {
	if rec == nil || rec.Raw() == nil {
		err := errors.New("registry: IngestRecord takes a record with its encoding, from record.Decode")
		return Result{Err: err}, err
	}
	it, done := s.admit(ctx, rec)
	return s.ingest(ctx, it, done)
}

// ingest takes a decoded record that is not settled yet through the
// verifiers and the committer.
func (s *Store) ingest(ctx context.Context, it *item, done bool) (Result, error) {
	res := it.res
	if !done {
		j := &job{items: []*item{it}, done: make(chan struct{})}
		err := s.enqueueTo(ctx, s.verifyQ, j)
		if err == nil {
			err = s.wait(ctx, j)
		}
		if err != nil {
			res = Result{CID: it.id, Err: err} // a verifier or the committer may still own it.res
		} else {
			res = it.res
		}
	}
	s.count(res)
	return res, res.Err
}

// verify is a verifier: it checks the signatures of single records (Ingest,
// IngestRecord) in batches, then the rest of their rules, settles the
// refusals and passes the records that remain to the committer.
//
// A record's caller hands it over and waits; the verifier first yields, so
// that the callers the committer has just woken with it (a commit
// acknowledges tens of records at once) queue theirs too, then takes all
// that wait, up to verifyChunk: with one record at a time, a batch is one
// signature, checked as fast as alone; with many, a batch of 64 costs
// about half of 64 single checks. The registry's verify benchmark against
// Go's crypto/ed25519 in docs/perf.md says what that does to the ingest
// rate.
func (s *Store) verify() {
	defer s.verifiers.Done()
	var jobs []*job
	var recs []*record.Record
	for j := range s.verifyQ {
		// Yield while more arrive.
		for n := len(s.verifyQ); n < verifyChunk; {
			runtime.Gosched()
			m := len(s.verifyQ)
			if m == n {
				break
			}
			n = m
		}
		jobs, recs = append(jobs, j), append(recs, j.items[0].rec)
	drain:
		for len(recs) < verifyChunk {
			select {
			case j, ok := <-s.verifyQ:
				if !ok {
					break drain
				}
				jobs, recs = append(jobs, j), append(recs, j.items[0].rec)
			default:
				break drain
			}
		}
		s.stats.verifyBatches.Add(1)
		s.stats.verified.Add(uint64(len(recs)))
		// Refusals first, then the committer: a full commit queue must
		// not hold up a refusal (a gossip validator that times out
		// Ignores a forgery it should Reject).
		pass := jobs[:0]
		for k, err := range record.VerifyBatch(recs) {
			j := jobs[k]
			it := j.items[0]
			if err != nil {
				it.res.Err = err
				close(j.done)
				continue
			}
			if s.checkRest(it) {
				close(j.done)
				continue
			}
			pass = append(pass, j)
		}
		for _, j := range pass {
			select {
			case s.queue <- j:
			default:
				// The queue is full: wait for it beside, so this verifier
				// goes on with the records behind. The queue stays open
				// until every verifier and these have returned (Close).
				s.verifiers.Add(1)
				go func() {
					defer s.verifiers.Done()
					s.queue <- j
				}()
			}
		}
		clear(jobs)
		clear(recs)
		jobs, recs = jobs[:0], recs[:0]
	}
}

// verifyChunk is how many records of an IngestBatch one worker decodes and
// checks together: signatures are checked in batches of at most this many.
const verifyChunk = 64

// IngestBatch ingests records as Ingest does and returns their results in
// the same order. Checks run in parallel, and the records go to the
// committer together, so a revocation and its target in one batch are
// stored together (sync fetches records in batches like this).
func (s *Store) IngestBatch(ctx context.Context, raws [][]byte) []Result {
	items := make([]*item, len(raws))
	pending := make([]bool, len(raws))
	// Each worker decodes a chunk, checks the signatures that need it in
	// one batch (record.VerifyBatch), then finishes the chunk.
	var wg sync.WaitGroup
	next := make(chan [2]int)
	for range min(runtime.GOMAXPROCS(0), len(raws)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var idx []int
			var recs []*record.Record
			for c := range next {
				idx, recs = idx[:0], recs[:0]
				for i := c[0]; i < c[1]; i++ {
					var done bool
					items[i], done = s.decode(ctx, raws[i])
					if !done {
						idx = append(idx, i)
						recs = append(recs, items[i].rec)
					}
				}
				if len(recs) > 0 {
					s.stats.verifyBatches.Add(1)
					s.stats.verified.Add(uint64(len(recs)))
				}
				for k, err := range record.VerifyBatch(recs) {
					i := idx[k]
					if err != nil {
						items[i].res.Err = err
						continue
					}
					pending[i] = !s.checkRest(items[i])
				}
			}
		}()
	}
	for lo := 0; lo < len(raws); lo += verifyChunk {
		next <- [2]int{lo, min(lo+verifyChunk, len(raws))}
	}
	close(next)
	wg.Wait()

	out := make([]Result, len(items))
	var jobs []*job
	var cur *job
	for i, it := range items {
		if !pending[i] {
			out[i] = it.res
			continue
		}
		if cur == nil || len(cur.items) == maxJobItems {
			cur = &job{done: make(chan struct{})}
			jobs = append(jobs, cur)
		}
		cur.items = append(cur.items, it)
	}
	// Queue every job before waiting for any, so they can share a commit.
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		errs[i] = s.enqueue(ctx, j)
	}
	failed := map[*item]error{}
	for i, j := range jobs {
		if errs[i] == nil {
			errs[i] = s.wait(ctx, j)
		}
		if errs[i] != nil {
			for _, it := range j.items {
				failed[it] = errs[i]
			}
		}
	}
	for i, it := range items {
		if !pending[i] {
			continue
		}
		if err, ok := failed[it]; ok {
			out[i] = Result{CID: it.id, Err: err} // the committer may still own it.res
		} else {
			out[i] = it.res
		}
	}
	for _, r := range out {
		s.count(r)
	}
	return out
}

// decode runs the checks before the signature's on the caller's goroutine:
// done reports that the record is settled (in it.res) without one;
// otherwise the verifiers take it on (verify).
func (s *Store) decode(ctx context.Context, raw []byte) (it *item, done bool) {
	rec, err := record.Decode(raw)
	if err != nil {
		return &item{res: Result{Err: err}}, true
	}
	return s.admit(ctx, rec)
}

// admit is decode after the decoding: the duplicate check.
func (s *Store) admit(ctx context.Context, rec *record.Record) (it *item, done bool) {
	it = &item{rec: rec}
	it.id = rec.CID()
	it.res.CID = it.id
	// Load seq before looking: what the filter and badger do not show was
	// committed after it, and the committer knows those (Store.recent).
	it.seq = s.seq.Load()
	if s.filter.mayHave(it.id) && s.Has(it.id) {
		// Stored, but perhaps not yet synced by the commit that wrote it.
		if err := s.waitSynced(ctx, it.id); err != nil {
			it.res.Err = err
		}
		return it, true
	}
	return it, false
}

// checkRest runs the checks after the signature's that need no shared
// state; it reports done as decode does, and otherwise the item goes to the
// committer.
func (s *Store) checkRest(it *item) (done bool) {
	rec := it.rec
	if err := rec.CheckClock(s.opts.Now()); err != nil {
		it.res.Err = err
		return true
	}
	// A genesis names no community; the kind check below refuses it.
	if rec.Community.Defined() && s.opts.Member != nil && !s.opts.Member(rec.Community) {
		it.res.Err = fmt.Errorf("%w (community %s)", ErrNotMember, rec.Community)
		return true
	}
	if rec.Kind == record.KindAdvert {
		it.res.Err = ErrEphemeral
		return true
	}
	var err error
	if it.body, err = body.DecodeRecord(rec); err != nil {
		it.res.Err = err
		return true
	}
	it.raw = rec.Raw() // Decode's own copy: raw is the caller's
	return false
}

// waitSynced waits until the commit that wrote c is durable, if it is not.
func (s *Store) waitSynced(ctx context.Context, c cid.Cid) error {
	s.unsyncedMu.Lock()
	ch := s.unsynced[c]
	s.unsyncedMu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gave up waiting for the record to be written: %w", ctx.Err())
	}
}

// enqueue hands a job to the committer, waiting while the queue is full.
func (s *Store) enqueue(ctx context.Context, j *job) error {
	return s.enqueueTo(ctx, s.queue, j)
}

// enqueueTo hands a job to the verifiers or the committer, waiting while q
// is full.
func (s *Store) enqueueTo(ctx context.Context, q chan<- *job, j *job) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	select {
	case q <- j:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return fmt.Errorf("gave up waiting for the registry's write queue: %w", ctx.Err())
	}
	return nil
}

// wait waits for the committer to finish a job. A job's results are
// readable only after wait returns nil.
func (s *Store) wait(ctx context.Context, j *job) error {
	select {
	case <-j.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gave up waiting for the record to be written (it may still be stored): %w", ctx.Err())
	}
}

func (s *Store) count(res Result) {
	switch {
	case res.Err != nil:
		s.stats.reject(res.Err)
		if s.log.Enabled(context.Background(), slog.LevelDebug) {
			s.log.Debug("record refused", "cid", res.CID, "reason", Reason(res.Err), "err", res.Err)
		}
	case res.New:
		s.stats.stored.Add(1)
	default:
		s.stats.dups.Add(1)
	}
}

// Sign makes a record of this node's: it checks body against the rules of
// kind, signs it with key at the current time, and ingests it. It returns
// once the record is durable. Publishing it to the community is the
// caller's job.
//
// body is a body.Attestation or body.Revocation (or a pointer to one).
// Signing the same body twice in the same millisecond yields the same
// record, which is stored once.
func (s *Store) Sign(key crypto.PrivKey, community cid.Cid, kind record.Kind, b any) (*record.Record, error) {
	bd, ok := b.(body.Body)
	if !ok {
		return nil, fmt.Errorf("registry: sign: %T is not a record body", b)
	}
	if bd.Kind() != kind {
		return nil, fmt.Errorf("registry: sign: a %s body cannot make a %s record", bd.Kind(), kind)
	}
	now := s.opts.Now()
	if err := bd.Validate(now.UnixMilli()); err != nil {
		return nil, err
	}
	if s.opts.Member != nil && !s.opts.Member(community) {
		return nil, fmt.Errorf("%w (community %s)", ErrNotMember, community)
	}
	rec, err := record.Sign(key, kind, community, b, now)
	if err != nil {
		return nil, err
	}
	raw, err := rec.Encode()
	if err != nil {
		return nil, err
	}
	if _, err := s.Ingest(context.Background(), raw); err != nil {
		return nil, err
	}
	return rec, nil
}
