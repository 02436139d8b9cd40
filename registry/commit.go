package registry

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/skl"
	"github.com/ipfs/go-cid"
)

// Group commit.
//
// One committer goroutine owns every write. It takes whatever requests are
// queued (up to MaxBatch records), decides each record's fate against the
// datastore and the rest of the batch, writes the accepted records with
// their indexes, makes them durable, and only then acknowledges them
// (closes the requests' done channels) and notifies subscribers. While one
// batch is written and synced, new requests queue up: the batch grows with
// the load, and the cost of a sync is shared by every record waiting for it.
//
// Durability. With BadgerOptions (SyncWrites), badger syncs the memtable's
// write-ahead log inside its write goroutine right after writing each
// transaction, so a committed transaction is durable. Calling db.Sync after
// the write instead is not enough when writes are pipelined (or another
// subsystem writes to the same database in between): db.Sync syncs only the
// current memtable's log, and a write that fills the memtable moves the
// previous batch's records into an immutable memtable whose log nobody
// syncs until it is flushed to level 0. So the registry relies on
// SyncWrites, and falls back to db.Sync after each write only on a
// database opened without it (tools, tests).
//
// Signatures are verified before a request is queued (by the verifiers for
// single records, by IngestBatch's workers for batches); the committer does
// only what needs a single writer:
// duplicates within a batch, references, rate limits and writing.

// written is a batch the committer has written (or failed to).
type written struct {
	jobs     []*job
	accepted []*item
	// dups are the records that repeat another of the same batch (dup →
	// the one written): they are as stored as it is.
	dups   map[*item]*item
	err    error         // the write or the sync failed
	synced chan struct{} // closed once durable; see Store.unsynced
}

func (s *Store) run() {
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	for {
		var j *job
		var ok bool
		select {
		case j, ok = <-s.queue:
		default:
			// Nothing waits. The transaction opened for the next batch
			// holds badger's read watermark back, and with it the
			// cleaning of its conflict tracking and of old versions:
			// give it up if nothing comes for a while.
			if s.next != nil {
				idle.Reset(s.nextIdle)
				select {
				case j, ok = <-s.queue:
				case <-idle.C:
					s.next.Discard()
					s.next = nil
					if s.testIdle != nil {
						s.testIdle()
					}
					j, ok = <-s.queue
				}
				idle.Stop()
			} else {
				j, ok = <-s.queue
			}
		}
		if !ok {
			break
		}
		batch := []*job{j}
		n := len(j.items)
	drain:
		for n < s.opts.MaxBatch {
			select {
			case j, ok := <-s.queue:
				if !ok {
					break drain
				}
				batch = append(batch, j)
				n += len(j.items)
			default:
				break drain
			}
		}
		s.finish(s.commit(batch))
	}
	if s.next != nil {
		s.next.Discard()
		s.next = nil
	}
	close(s.done)
}

// nextTxnIdle is how long the committer keeps the transaction it opened for
// its next batch while no record comes.
const nextTxnIdle = time.Second

// commit decides, writes and syncs one batch.
func (s *Store) commit(batch []*job) *written {
	w := &written{jobs: batch}
	w.accepted, w.dups = s.decide(batch, s.opts.Now())
	if len(w.accepted) == 0 {
		return w
	}
	w.synced = make(chan struct{})
	s.unsyncedMu.Lock()
	for _, it := range w.accepted {
		s.unsynced[it.id] = w.synced
	}
	s.unsyncedMu.Unlock()

	w.err = s.write(w.accepted)
	if w.err == nil && !s.db.Opts().SyncWrites {
		if err := s.db.Sync(); err != nil {
			w.err = fmt.Errorf("%w: sync: %v", ErrStorage, err)
		}
		s.stats.syncs.Add(1)
	}
	seq := s.seq.Load() + 1
	if w.err == nil {
		for _, it := range w.accepted {
			s.filter.add(it.id)
		}
		s.recent.add(seq, w.accepted)
	} else {
		s.recent.reset(seq) // some may be written: look them up again
	}
	s.seq.Store(seq) // after the filter and recent: see admit
	return w
}

// finish acknowledges a batch and notifies subscribers of it.
func (s *Store) finish(w *written) {
	if w.synced != nil {
		s.unsyncedMu.Lock()
		for _, it := range w.accepted {
			delete(s.unsynced, it.id)
		}
		s.unsyncedMu.Unlock()
		close(w.synced)
	}
	if w.err != nil {
		s.log.Error("could not store records; they will be refused until the datastore recovers", "records", len(w.accepted), "err", w.err)
	}
	for _, it := range w.accepted {
		if w.err != nil {
			it.res.Err = w.err
		} else {
			it.res.New = true
		}
	}
	for dup, orig := range w.dups {
		dup.res.Err = orig.res.Err // not stored if the one it repeats is not
	}
	for _, j := range w.jobs {
		close(j.done)
	}
	if w.err == nil {
		s.notify(w.accepted)
	}
}

// decide sets the result of every record that will not be written
// (duplicate, bad reference, rate limited) and returns the others in write
// order, and the records that repeat one of them. Revocations are decided
// after everything else, so a revocation and its target in the same batch
// are accepted together.
func (s *Store) decide(batch []*job, now time.Time) ([]*item, map[*item]*item) {
	// The read transaction is opened only when a record needs a lookup
	// (revocations, and records prepared long ago): opening one waits for
	// badger's watermark goroutine, which costs the committer a scheduling
	// round trip per batch on a busy machine.
	var txn *badger.Txn
	rtx := func() *badger.Txn {
		if txn == nil {
			txn = s.db.NewTransaction(false)
		}
		return txn
	}
	defer func() {
		if txn != nil {
			txn.Discard()
		}
	}()
	staged := map[cid.Cid]*item{}
	winners := map[cid.Cid]*item{} // revocation target -> revocation that names it
	var accepted []*item
	var dups map[*item]*item

	catchUp := now.Add(-s.opts.CatchUpAge).UnixMilli()
	consider := func(it *item) {
		if orig, ok := staged[it.id]; ok {
			// A duplicate within the batch: New stays false, and it
			// shares the fate of the one written (finish).
			if dups == nil {
				dups = map[*item]*item{}
			}
			dups[it] = orig
			return
		}
		if s.recent.has(it.id) {
			return // committed since admit looked
		}
		if it.seq < s.recent.floor {
			// Too long ago to know from memory what was committed since.
			if ok, err := exists(rtx(), it.id); err != nil || ok {
				it.res.Err = err
				return
			}
		}
		if err := s.checkReferences(rtx, staged, it); err != nil {
			it.res.Err = err
			return
		}
		if it.rec.Created >= catchUp && !s.limiter.allow(it.rec.Community, it.rec.Author, now) {
			it.res.Err = fmt.Errorf("%w (author %s)", ErrRateLimited, it.rec.Author)
			return
		}
		staged[it.id] = it
		accepted = append(accepted, it)
	}
	// Records that refer to others go second, so that a reference and its
	// target in one batch are stored together.
	for _, refers := range []bool{false, true} {
		for _, j := range batch {
			for _, it := range j.items {
				if refersTo(it.body) == refers {
					consider(it)
				}
			}
		}
	}
	s.limiter.prune(now)

	// revoked-by names the first revocation in (created, CID) order.
	for _, it := range accepted {
		rev, ok := it.body.(body.Revocation)
		if !ok {
			continue
		}
		cur := winners[rev.Target]
		if cur == nil {
			by, created, found, err := revokedBy(rtx(), rev.Target)
			if err != nil {
				it.res.Err = err // write refuses items with an error
				continue
			}
			if found && !before(it.rec.Created, it.id, created, by) {
				continue
			}
		} else if !before(it.rec.Created, it.id, cur.rec.Created, cur.id) {
			continue
		}
		if cur != nil {
			cur.revokes = false
		}
		it.revokes = true
		winners[rev.Target] = it
	}
	out := accepted[:0]
	for _, it := range accepted {
		if it.res.Err == nil {
			out = append(out, it)
		}
	}
	return out, dups
}

func before(ca int64, a cid.Cid, cb int64, b cid.Cid) bool {
	if ca != cb {
		return ca < cb
	}
	return a.KeyString() < b.KeyString()
}

func exists(txn *badger.Txn, id cid.Cid) (bool, error) {
	k, err := cidBytes(id)
	if err != nil {
		return false, err
	}
	_, err = txn.Get(recordKey(k))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, badger.ErrKeyNotFound):
		return false, nil
	}
	return false, fmt.Errorf("%w: %v", ErrStorage, err)
}

func revokedBy(txn *badger.Txn, target cid.Cid) (by cid.Cid, created int64, found bool, err error) {
	k, err := cidBytes(target)
	if err != nil {
		return cid.Undef, 0, false, err
	}
	v, err := txn.Get(revokedByKey(k))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return cid.Undef, 0, false, nil
	}
	if err != nil {
		return cid.Undef, 0, false, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	err = v.Value(func(b []byte) error {
		if len(b) != tailLen {
			return fmt.Errorf("%w: revoked-by entry of %s is damaged", ErrStorage, target)
		}
		created = int64(binary.BigEndian.Uint64(b))
		by, err = cid.Cast(append([]byte(nil), b[8:]...))
		return err
	})
	if err != nil {
		return cid.Undef, 0, false, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	return by, created, true, nil
}

// refersTo reports whether a body names another record that must be
// stored first.
func refersTo(b body.Body) bool {
	switch b.(type) {
	case body.Revocation, body.Vote, body.Tally:
		return true
	}
	return false
}

// checkReferences applies the rules of the records that name another.
func (s *Store) checkReferences(rtx func() *badger.Txn, staged map[cid.Cid]*item, it *item) error {
	switch b := it.body.(type) {
	case body.Revocation:
		return s.checkRevocation(rtx(), staged, it, b)
	case body.Vote:
		p, err := s.proposal(rtx(), staged, it, b.Proposal)
		if err != nil {
			return err
		}
		if err := b.CheckAgainst(p); err != nil {
			return err
		}
		if it.rec.Created < p.Start || it.rec.Created > p.End {
			return fmt.Errorf("%w: the vote is dated outside the proposal's voting period", ErrBadReference)
		}
	case body.Tally:
		p, err := s.proposal(rtx(), staged, it, b.Proposal)
		if err != nil {
			return err
		}
		if it.rec.Created < p.End {
			return fmt.Errorf("%w: the tally is dated before the proposal's end", ErrBadReference)
		}
		if len(b.Counts) != len(p.Choices) {
			return fmt.Errorf("%w: the tally counts %d choices, the proposal has %d", ErrBadReference, len(b.Counts), len(p.Choices))
		}
	}
	return nil
}

// lookup finds a referenced record: in this batch or stored.
func (s *Store) lookup(rtx *badger.Txn, staged map[cid.Cid]*item, id cid.Cid, what string) (*record.Record, error) {
	if t, ok := staged[id]; ok {
		return t.rec, nil
	}
	k, err := cidBytes(id)
	if err != nil {
		return nil, err
	}
	st, err := loadStored(rtx, k)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w (%s %s)", ErrUnknownReference, what, id)
	}
	if err != nil {
		return nil, err
	}
	return st.Record, nil
}

// proposal finds the proposal a vote or tally names, in its community.
func (s *Store) proposal(rtx *badger.Txn, staged map[cid.Cid]*item, it *item, id cid.Cid) (body.Proposal, error) {
	rec, err := s.lookup(rtx, staged, id, "proposal")
	if err != nil {
		return body.Proposal{}, err
	}
	if rec.Kind != record.KindProposal || rec.Community != it.rec.Community {
		return body.Proposal{}, fmt.Errorf("%w: %s is not a proposal of this community", ErrBadReference, id)
	}
	b, err := body.DecodeRecord(rec)
	if err != nil {
		return body.Proposal{}, fmt.Errorf("%w: the proposal %s: %w", ErrStorage, id, err)
	}
	return b.(body.Proposal), nil
}

// checkRevocation applies the rules that need the target: it must be
// stored (or in this batch), be by the same author in the same community,
// not be a revocation or a genesis, and not be newer than the revocation.
func (s *Store) checkRevocation(rtx *badger.Txn, staged map[cid.Cid]*item, it *item, rev body.Revocation) error {
	target, err := s.lookup(rtx, staged, rev.Target, "revocation target")
	if err != nil {
		return err
	}
	switch {
	case target.Author != it.rec.Author:
		return fmt.Errorf("%w: %s is by %s, the revocation by %s", ErrNotAuthor, rev.Target, target.Author, it.rec.Author)
	case target.Community != it.rec.Community:
		return fmt.Errorf("%w: the revocation target %s belongs to another community", ErrBadReference, rev.Target)
	case target.Kind == record.KindRevocation || target.Kind == record.KindCommunity:
		return fmt.Errorf("%w: a %s record cannot be revoked", ErrBadReference, target.Kind)
	case it.rec.Created < target.Created:
		return fmt.Errorf("%w: the revocation is dated before its target %s", ErrBadReference, rev.Target)
	}
	return nil
}

// write stores the accepted records. Each record goes into one transaction
// with all its index entries, so a crash never leaves half a record; a
// batch too big for one transaction is split between records.
func (s *Store) write(items []*item) error {
	if s.testWriteErr != nil {
		return fmt.Errorf("%w: write: %v", ErrStorage, s.testWriteErr)
	}
	budget := s.txnBudget()
	if s.testBudget != nil {
		budget = *s.testBudget
	}
	for len(items) > 0 {
		// Take as many records as fit the budget, at least one.
		n, size := 0, int64(0)
		for n < len(items) {
			e := s.estimate(items[n])
			if n > 0 && (size+e.size >= budget.size || int64(n+1)*e.count >= budget.count) {
				break
			}
			size += e.size
			n++
		}
		for {
			err := s.writeTxn(items[:n])
			if errors.Is(err, badger.ErrTxnTooBig) && n > 1 {
				s.stats.splits.Add(1)
				n /= 2 // the estimate was off; split further
				continue
			}
			if err != nil {
				return fmt.Errorf("%w: write: %v", ErrStorage, err)
			}
			break
		}
		items = items[n:]
	}
	return nil
}

type txnCost struct{ size, count int64 }

// txnBudget is 80% of what badger accepts in one transaction (see
// badger's Txn.checkSize), leaving room for the count keys.
func (s *Store) txnBudget() txnCost {
	maxSize := 15 * s.db.Opts().MemTableSize / 100
	return txnCost{size: maxSize * 8 / 10, count: maxSize / int64(skl.MaxNodeSize) * 8 / 10}
}

// estimate is an upper bound of a record's cost in a badger transaction:
// per entry, key and value plus badger's overhead (see Txn.checkSize).
func (s *Store) estimate(it *item) txnCost {
	const perEntry = 2 + 10
	size := int64(1+cidLen+len(it.raw)+perEntry) + // record
		int64(1+cidLen+1+len(it.rec.Kind)+tailLen+perEntry) + // by kind
		int64(1+cidLen+len(it.rec.Author)+tailLen+perEntry) + // by author
		int64(1+cidLen+tailLen+perEntry) + // by time
		int64(1+cidLen+2+len(subjectOf(it))+tailLen+perEntry) + // by subject
		int64(1+cidLen+tailLen+perEntry) + // revoked-by
		int64(1+cidLen+8+perEntry) // count
	return txnCost{size: size, count: 7}
}

// subjectOf is the record's key in the subject index, "" for none.
func subjectOf(it *item) string {
	switch b := it.body.(type) {
	case body.Attestation:
		return b.Subject.String()
	case body.Revocation:
		return b.Target.String()
	case body.Feedback:
		return "receipt:" + b.Receipt.CID().String()
	case body.Vote:
		return body.ProposalSubject(b.Proposal)
	case body.Tally:
		return body.ProposalSubject(b.Proposal)
	}
	return ""
}

// writeTxn writes records in one transaction, with the new counts of their
// communities, and updates the in-memory counts once it has committed.
func (s *Store) writeTxn(items []*item) error {
	txn := s.next
	s.next = nil
	if txn == nil {
		txn = s.db.NewTransaction(true)
	}
	defer txn.Discard()
	s.countMu.RLock()
	counts := map[cid.Cid]uint64{}
	for _, it := range items {
		if _, ok := counts[it.rec.Community]; !ok {
			counts[it.rec.Community] = s.counts[it.rec.Community]
		}
	}
	s.countMu.RUnlock()
	for _, it := range items {
		if err := stage(txn, it); err != nil {
			return err
		}
		counts[it.rec.Community]++
	}
	for c, n := range counts {
		k, err := cidBytes(c)
		if err != nil {
			return err
		}
		if err := txn.Set(countKey(k), binary.BigEndian.AppendUint64(nil, n)); err != nil {
			return err
		}
	}
	if err := txn.Commit(); err != nil {
		return err
	}
	// Open the next batch's transaction now, before this batch's callers
	// are woken. Opening one waits until badger's watermark goroutine has
	// taken in this commit; Commit has just woken that goroutine into this
	// P's next slot, and waking the callers would push it behind every
	// caller verifying its next record: the committer would wait for them
	// (a millisecond and more a batch, measured with the scheduler-latency
	// profile of go tool trace), and the disk would idle meanwhile.
	s.next = s.db.NewTransaction(true)
	if s.db.Opts().SyncWrites {
		s.stats.syncs.Add(1) // badger synced the transaction
	}
	s.countMu.Lock()
	for c, n := range counts {
		s.counts[c] = n
	}
	s.countMu.Unlock()
	return nil
}

// stage adds a record and its index entries to txn.
func stage(txn *badger.Txn, it *item) error {
	id, err := cidBytes(it.id)
	if err != nil {
		return err
	}
	comm, err := cidBytes(it.rec.Community)
	if err != nil {
		return err
	}
	if len(it.rec.Kind) > maxKind {
		return fmt.Errorf("%w: kind too long", ErrStorage)
	}
	created := it.rec.Created
	keys := [][]byte{
		indexKey(kindPrefix(comm, string(it.rec.Kind)), created, id),
		indexKey(authorPrefix(comm, it.rec.Author), created, id),
		indexKey(timePrefix(comm), created, id),
	}
	if subj := subjectOf(it); subj != "" {
		if len(subj) > maxSubj {
			return fmt.Errorf("%w: subject too long", ErrStorage)
		}
		keys = append(keys, indexKey(subjectPrefix(comm, subj), created, id))
	}
	for _, k := range keys {
		if err := txn.Set(k, nil); err != nil {
			return err
		}
	}
	if it.revokes {
		target, err := cidBytes(it.body.(body.Revocation).Target)
		if err != nil {
			return err
		}
		if err := txn.Set(revokedByKey(target), revokedByValue(created, id)); err != nil {
			return err
		}
	}
	return txn.Set(recordKey(id), it.raw)
}

// recentIDs remembers the record IDs of the last commits, so the committer
// can tell a record committed since admit looked it up without reading
// badger again. A record prepared before floor is looked up again.
type recentIDs struct {
	ids     map[cid.Cid]struct{}
	commits []recentCommit // oldest first
	floor   uint64
}

type recentCommit struct {
	seq uint64
	ids []cid.Cid
}

// maxRecentIDs bounds the memory of recentIDs; a record admitted before
// the last commits of this many records pays one more lookup.
const maxRecentIDs = 1 << 16

func (r *recentIDs) has(id cid.Cid) bool {
	_, ok := r.ids[id]
	return ok
}

func (r *recentIDs) add(seq uint64, items []*item) {
	if r.ids == nil {
		r.ids = map[cid.Cid]struct{}{}
	}
	c := recentCommit{seq: seq, ids: make([]cid.Cid, len(items))}
	for i, it := range items {
		c.ids[i] = it.id
		r.ids[it.id] = struct{}{}
	}
	r.commits = append(r.commits, c)
	for len(r.ids) > maxRecentIDs && len(r.commits) > 1 {
		old := r.commits[0]
		for _, id := range old.ids {
			delete(r.ids, id)
		}
		r.commits = r.commits[1:]
		r.floor = old.seq
	}
}

func (r *recentIDs) reset(seq uint64) {
	clear(r.ids)
	r.commits = nil
	r.floor = seq
}
