package registry

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agora-p2p/agora/protocol/record"
	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Options configure a Store. The zero value of every field means its
// default.
type Options struct {
	// Now is the clock: the future-clock check, rate limits and catch-up
	// age use it. Default time.Now. Called concurrently.
	Now func() time.Time
	// Member reports whether this node is a member of a community. Records
	// of other communities are refused with ErrNotMember. It is called for
	// every record, concurrently, and must be fast and must not block. nil
	// accepts every community (tools and tests); a node must set it.
	Member func(community cid.Cid) bool
	// RatePerAuthor limits how fast one author's fresh records are accepted
	// in one community. Default DefaultRatePerAuthor; Unlimited turns it off.
	RatePerAuthor RateLimit
	// CatchUpAge is the age (by the record's own created time) beyond which
	// a record counts as catch-up and is not rate limited. Default
	// DefaultCatchUpAge. See RateLimit.
	CatchUpAge time.Duration
	// QueueLength bounds the ingest requests waiting for the committer;
	// callers block (or give up with their context) when it is full.
	// Default 1024.
	QueueLength int
	// MaxBatch bounds the records in one commit. Default 4096.
	MaxBatch int
	// Logger receives the registry's logs. Default slog.Default() with
	// subsystem=registry.
	Logger *slog.Logger
}

const (
	// DefaultCatchUpAge is well beyond gossip delay plus MaxClockSkew, and
	// well below the age of anything a late joiner fetches by sync.
	DefaultCatchUpAge  = 10 * time.Minute
	defaultQueueLength = 1024
	defaultMaxBatch    = 4096
)

func (o *Options) setDefaults() error {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RatePerAuthor == (RateLimit{}) {
		o.RatePerAuthor = DefaultRatePerAuthor
	}
	if err := o.RatePerAuthor.validate(); err != nil {
		return err
	}
	if o.CatchUpAge == 0 {
		o.CatchUpAge = DefaultCatchUpAge
	}
	if o.CatchUpAge < 0 {
		return fmt.Errorf("registry: the catch-up age must be positive, not %s", o.CatchUpAge)
	}
	if o.QueueLength == 0 {
		o.QueueLength = defaultQueueLength
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = defaultMaxBatch
	}
	if o.QueueLength < 0 || o.MaxBatch < 0 {
		return errors.New("registry: the queue length and batch size must be positive")
	}
	if o.Logger == nil {
		o.Logger = slog.Default().With("subsystem", "registry")
	}
	return nil
}

// Store is the registry's record store on a badger database. All its
// methods are safe for concurrent use.
type Store struct {
	db   *badger.DB
	opts Options
	log  *slog.Logger

	// mu guards closed and makes sends on queue safe against Close.
	mu     sync.RWMutex
	closed bool
	queue  chan *job
	done   chan struct{} // closed when the committer has exited
	// verifyQ takes single records (Ingest, IngestRecord) to the
	// verifiers, which check their signatures in batches and pass them on
	// to queue.
	verifyQ    chan *job
	verifiers  sync.WaitGroup
	closeQueue sync.Once

	countMu sync.RWMutex
	counts  map[cid.Cid]uint64

	// unsynced holds the records written to badger but not yet synced, with
	// the channel closed once they are: a duplicate is acknowledged only when
	// the original is durable.
	unsyncedMu sync.Mutex
	unsynced   map[cid.Cid]chan struct{}

	limiter *limiter // committer only

	// seq numbers the commits whose records are visible in badger. admit
	// reads it before looking a record up; the committer remembers the IDs
	// of recent commits, so a record that admit did not find and that is
	// not among the commits since needs no second lookup.
	seq    atomic.Uint64
	recent recentIDs // committer only
	// next is the write transaction the committer opened for its next
	// batch right after its last commit (committer only; see writeTxn),
	// given up after nextIdle without records. Tests may set nextIdle and
	// testIdle (called when it is given up) before their first ingest.
	next     *badger.Txn
	nextIdle time.Duration
	testIdle func()
	filter   *idFilter
	// testBudget replaces the transaction budget in tests of the
	// ErrTxnTooBig fallback; testWriteErr, set, fails every write.
	testBudget   *txnCost
	testWriteErr error

	subMu sync.RWMutex
	subs  map[*subscriber]struct{}

	stats stats
}

// Stored is a record as the registry holds it. A Stored from Subscribe is
// shared by every subscriber: treat it, and Raw, as read-only.
type Stored struct {
	Record *record.Record
	// Raw is the record's encoding, exactly as it was received and signed.
	Raw []byte
	// Revoked is true when the record's author has revoked it; RevokedBy is
	// then the revocation's ID (the first in (created, CID) order if there
	// are several).
	Revoked   bool
	RevokedBy cid.Cid
}

// CID returns the stored record's ID.
func (s *Stored) CID() cid.Cid { return s.Record.CID() }

// Open starts a Store on db. The caller owns db: it must close the Store
// before closing db.
func Open(db *badger.DB, opts Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("registry: no database")
	}
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	s := &Store{
		db:       db,
		opts:     opts,
		log:      opts.Logger,
		queue:    make(chan *job, opts.QueueLength),
		verifyQ:  make(chan *job, opts.QueueLength),
		nextIdle: nextTxnIdle,
		done:     make(chan struct{}),
		counts:   map[cid.Cid]uint64{},
		unsynced: map[cid.Cid]chan struct{}{},
		limiter:  newLimiter(opts.RatePerAuthor),
		subs:     map[*subscriber]struct{}{},
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	stored := 0
	for _, n := range s.counts {
		stored += int(n)
	}
	var err error
	if s.filter, err = loadFilter(db, stored); err != nil {
		return nil, err
	}
	go s.run()
	for range runtime.GOMAXPROCS(0) {
		s.verifiers.Add(1)
		go s.verify()
	}
	return s, nil
}

// load checks the schema version (writing it into a fresh database) and
// reads the per-community counts.
func (s *Store) load() error {
	err := s.db.Update(func(txn *badger.Txn) error {
		it, err := txn.Get(metaVersionKey)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			return txn.Set(metaVersionKey, []byte{schemaVersion})
		case err != nil:
			return err
		}
		return it.Value(func(v []byte) error {
			if len(v) != 1 || v[0] != schemaVersion {
				return fmt.Errorf("the registry in this datastore has format %x, this node reads format %d; upgrade Agora", v, schemaVersion)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("registry: open: %w", err)
	}
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{famCount}, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			c, err := cid.Cast(k[1:])
			if err != nil {
				return fmt.Errorf("registry: open: bad count key %x: %w", k, err)
			}
			err = it.Item().Value(func(v []byte) error {
				if len(v) != 8 {
					return fmt.Errorf("registry: open: bad count for %s", c)
				}
				s.counts[c] = binary.BigEndian.Uint64(v)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// Close stops accepting records, commits those already queued, and stops
// the committer and every subscription. It does not close the database.
func (s *Store) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.verifyQ)
	}
	s.mu.Unlock()
	s.verifiers.Wait() // they hand what they hold to the committer
	s.closeQueue.Do(func() { close(s.queue) })
	<-s.done
	s.subMu.Lock()
	for sub := range s.subs {
		delete(s.subs, sub)
		close(sub.ch)
	}
	s.subMu.Unlock()
	return nil
}

// Has reports whether the record is stored.
func (s *Store) Has(c cid.Cid) bool {
	k, err := cidBytes(c)
	if err != nil {
		return false
	}
	err = s.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(recordKey(k))
		return err
	})
	return err == nil
}

// Get returns a stored record with its revocation status.
func (s *Store) Get(c cid.Cid) (*Stored, error) {
	k, err := cidBytes(c)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	var st *Stored
	err = s.db.View(func(txn *badger.Txn) error {
		st, err = loadStored(txn, k)
		return err
	})
	return st, err
}

// loadStored reads a record and its revoked-by entry in txn.
func loadStored(txn *badger.Txn, id []byte) (*Stored, error) {
	it, err := txn.Get(recordKey(id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w (%x)", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: read record: %v", ErrStorage, err)
	}
	raw, err := it.ValueCopy(nil)
	if err != nil {
		return nil, fmt.Errorf("%w: read record: %v", ErrStorage, err)
	}
	rec, err := record.Decode(raw)
	if err != nil {
		// %v, not %w: a damaged datastore is nobody's fault on the wire.
		return nil, fmt.Errorf("%w: stored record %x is damaged: %v", ErrStorage, id, err)
	}
	st := &Stored{Record: rec, Raw: raw}
	rb, err := txn.Get(revokedByKey(id))
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return st, nil
	case err != nil:
		return nil, fmt.Errorf("%w: read revocation: %v", ErrStorage, err)
	}
	err = rb.Value(func(v []byte) error {
		if len(v) != tailLen {
			return fmt.Errorf("%w: revoked-by entry of %x is damaged", ErrStorage, id)
		}
		by, err := cid.Cast(bytes.Clone(v[8:]))
		if err != nil {
			return fmt.Errorf("%w: revoked-by entry of %x is damaged: %v", ErrStorage, id, err)
		}
		st.Revoked, st.RevokedBy = true, by
		return nil
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// Count returns how many records of the community are stored.
func (s *Store) Count(community cid.Cid) int {
	s.countMu.RLock()
	defer s.countMu.RUnlock()
	return int(s.counts[community])
}

// Query selects records of one community, newest first.
type Query struct {
	// Community is required.
	Community cid.Cid
	// Kind, Author and Subject filter when set. Subject is an attestation's
	// subject ("type:id", body.Subject.String) or a revocation's target
	// record ID.
	Kind    record.Kind
	Author  peer.ID
	Subject string
	// After and Before bound created (unix ms), both exclusive; 0 is no
	// bound. To page, pass the last result's created as Before and its ID as
	// BeforeCID: the next page starts just after it in (created, CID) order,
	// so records created in the same millisecond are neither lost nor
	// repeated.
	After     int64
	Before    int64
	BeforeCID cid.Cid
	// Limit bounds the results: default DefaultQueryLimit, at most
	// MaxQueryLimit.
	Limit int
}

const (
	DefaultQueryLimit = 100
	MaxQueryLimit     = 10000
)

// Each calls fn for every record matching q (Limit is the page size),
// newest first, page by page, and stops at the first error.
func (s *Store) Each(q Query, fn func(*Stored)) error {
	if q.Limit <= 0 {
		q.Limit = MaxQueryLimit
	}
	for {
		page, err := s.Query(q)
		if err != nil {
			return err
		}
		for _, r := range page {
			fn(r)
		}
		if len(page) < min(q.Limit, MaxQueryLimit) {
			return nil
		}
		last := page[len(page)-1]
		q.Before, q.BeforeCID = last.Record.Created, last.CID()
	}
}

// Query returns the records matching q, newest first.
func (s *Store) Query(q Query) ([]*Stored, error) {
	if !q.Community.Defined() {
		return nil, errors.New("a query must name a community")
	}
	comm, err := cidBytes(q.Community)
	if err != nil {
		return nil, fmt.Errorf("the query names an invalid community: %w", record.ErrBadCommunity)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultQueryLimit
	}
	limit = min(limit, MaxQueryLimit)
	if len(q.Kind) > maxKind || len(q.Subject) > maxSubj || (q.Author != "" && len(q.Author) != authorLen) {
		return nil, nil // no stored record can match
	}
	var prefix []byte
	switch {
	case q.Subject != "":
		prefix = subjectPrefix(comm, q.Subject)
	case q.Author != "":
		prefix = authorPrefix(comm, q.Author)
	case q.Kind != "":
		prefix = kindPrefix(comm, string(q.Kind))
	default:
		prefix = timePrefix(comm)
	}
	// Seek (in reverse) to the greatest key at or below the upper bound.
	seek := append(bytes.Clone(prefix), bytes.Repeat([]byte{0xff}, tailLen+1)...)
	var cursor []byte
	if q.Before > 0 {
		seek = binary.BigEndian.AppendUint64(bytes.Clone(prefix), uint64(q.Before))
		if q.BeforeCID.Defined() {
			seek = append(seek, q.BeforeCID.Bytes()...)
			cursor = seek
		}
	}
	var out []*Stored
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true})
		defer it.Close()
		for it.Seek(seek); it.ValidForPrefix(prefix) && len(out) < limit; it.Next() {
			key := it.Item().Key()
			if cursor != nil && bytes.Equal(key, cursor) {
				continue
			}
			created, id, ok := splitTail(key, len(prefix))
			if !ok {
				continue // a longer subject or kind sharing the prefix bytes cannot happen; be safe
			}
			if q.After > 0 && created <= uint64(q.After) {
				break
			}
			st, err := loadStored(txn, id)
			if err != nil {
				return err
			}
			if (q.Kind != "" && st.Record.Kind != q.Kind) || (q.Author != "" && st.Record.Author != q.Author) {
				continue
			}
			out = append(out, st)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Stats are counters since Open, for metrics.
type Stats struct {
	Stored     uint64            // records newly stored
	Duplicates uint64            // records offered again
	Rejected   map[string]uint64 // by Reason
	// Syncs counts disk syncs: one per transaction the committer writes,
	// which is one per group commit unless a commit is too big for one
	// badger transaction.
	Syncs uint64
	// NotifyDropped counts notifications not delivered to a subscriber
	// whose channel was full.
	NotifyDropped uint64
	Queued        int // ingest requests waiting for a verifier or the committer now
	// VerifyBatches and Verified count the signature batches checked (by
	// the verifiers for Ingest and IngestRecord, and by IngestBatch) and
	// the records in them.
	VerifyBatches, Verified uint64
}

type stats struct {
	stored, dups, syncs, dropped atomic.Uint64
	splits                       atomic.Uint64 // ErrTxnTooBig fallbacks
	verifyBatches, verified      atomic.Uint64
	mu                           sync.Mutex
	rejected                     map[string]uint64
}

func (st *stats) reject(err error) {
	st.mu.Lock()
	if st.rejected == nil {
		st.rejected = map[string]uint64{}
	}
	st.rejected[Reason(err)]++
	st.mu.Unlock()
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	out := Stats{
		Stored:        s.stats.stored.Load(),
		Duplicates:    s.stats.dups.Load(),
		Syncs:         s.stats.syncs.Load(),
		NotifyDropped: s.stats.dropped.Load(),
		VerifyBatches: s.stats.verifyBatches.Load(),
		Verified:      s.stats.verified.Load(),
		Queued:        len(s.queue) + len(s.verifyQ),
		Rejected:      map[string]uint64{},
	}
	s.stats.mu.Lock()
	for k, v := range s.stats.rejected {
		out.Rejected[k] = v
	}
	s.stats.mu.Unlock()
	return out
}
