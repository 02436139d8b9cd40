package tasks

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/ristretto/v2/z"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/protocol/task"
)

// Journal keys: "tasks/t/" + created (8 bytes, big endian ms) + id holds a
// task's JSON; "tasks/i/" + id holds the former key, to find a task by ID.
const (
	keyTasks = "tasks/t/"
	keyByID  = "tasks/i/"
	// keyChild + parent + "/" + child marks a subtask.
	keyChild = "tasks/c/"
	// maxEvents bounds a task's timeline; further progress events replace
	// the last progress event.
	maxEvents = 200
	// flushEvery is how long a journal write may wait to join a batch: a
	// task that ends within it is written once.
	flushEvery = 50 * time.Millisecond
	// minFilterIDs is the least number of task IDs the journal's Bloom
	// filter is sized for (at a 1% false-positive rate, 78 KiB).
	minFilterIDs = 1 << 16
)

// Terminal reports whether a status is final.
func Terminal(status string) bool {
	switch status {
	case StatusCompleted, StatusFailed, StatusCanceled, StatusRejected:
		return true
	}
	return false
}

// Task statuses.
const (
	StatusSubmitted = "submitted"
	StatusWorking   = "working"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
	StatusCanceled  = "canceled"
	StatusRejected  = "rejected"
)

// ErrNotFound is a task ID the journal does not know.
var ErrNotFound = errors.New("no task with that ID")

// snapshotter gives a task's current state; it is read when the journal
// writes, so a task that changes many times in a batch is encoded once.
// stored encodes the state as the journal keeps it (compact), with what
// the journal's keys need.
type snapshotter interface {
	snapshot() api.Task
	stored() (stored, error)
}

// stored is a task encoded for the journal.
type stored struct {
	id, parent string
	created    int64
	value      []byte
}

func encodeStored(t *api.Task, receipt []byte) (stored, error) {
	v, err := encodeTask(t, receipt)
	return stored{id: t.ID, parent: t.Parent, created: t.Created, value: v}, err
}

type fixed api.Task

func (f fixed) snapshot() api.Task { return api.Task(f) }
func (f fixed) stored() (stored, error) {
	t := api.Task(f)
	return encodeStored(&t, nil)
}

// journal writes tasks to badger off the caller's path: updates collect in
// a map and one goroutine writes them in batches (group commit), so a
// delegation's round trip never waits for the disk.
type journal struct {
	db  *badger.DB
	log *slog.Logger

	mu    sync.Mutex
	dirty map[string]snapshotter
	// flushing holds the batch being written, so a reader never finds a
	// task in neither place.
	flushing map[string]snapshotter
	// waiters are told the result of the first write that starts after
	// they asked (durable).
	waiters []chan error
	// ids is a Bloom filter of every task ID in the journal, guarded by
	// mu: get answers "not found" without reading badger when it says
	// no. An executor asks that of every request it receives, and a badger
	// read transaction waits for badger's watermark goroutine, a scheduling
	// round trip on the request's critical path. It is sized at open for
	// four times the tasks then journaled; beyond that its false positives
	// grow, costing lookups, never answers.
	ids    *z.Bloom
	kick   chan struct{}
	urgent chan struct{} // someone waits (durable): write now
	done   chan struct{}
	stop   chan struct{}
}

func openJournal(db *badger.DB, log *slog.Logger, now time.Time) (*journal, error) {
	j := &journal{db: db, log: log, dirty: map[string]snapshotter{}, kick: make(chan struct{}, 1), urgent: make(chan struct{}, 1), done: make(chan struct{}), stop: make(chan struct{})}
	if err := j.loadIDs(); err != nil {
		return nil, err
	}
	if err := j.recover(now); err != nil {
		return nil, err
	}
	go j.run()
	return j, nil
}

// loadIDs builds the filter of task IDs from the journal's by-ID keys.
func (j *journal) loadIDs() error {
	var ids []uint64
	err := j.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(keyByID)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			ids = append(ids, z.MemHash(it.Item().Key()[len(keyByID):]))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the task journal: %w", err)
	}
	j.ids = z.NewBloomFilter(float64(max(4*len(ids), minFilterIDs)), 0.01)
	for _, h := range ids {
		j.ids.Add(h)
	}
	return nil
}

// recover ends the tasks a previous run left in flight.
func (j *journal) recover(now time.Time) error {
	var stale []api.Task
	err := j.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(keyTasks), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var t api.Task
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &t) }); err != nil {
				j.log.Warn("skipping a damaged task in the journal", "key", string(it.Item().Key()), "err", err)
				continue
			}
			if !Terminal(t.Status) {
				stale = append(stale, t)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the task journal: %w", err)
	}
	for _, t := range stale {
		ms := now.UnixMilli()
		t.Status, t.Code = StatusFailed, "node-restarted"
		t.Error = "the node stopped while the task was running"
		t.Updated = ms
		t.DurationMS = ms - t.Created
		t.Events = append(t.Events, api.TaskEvent{Seq: len(t.Events) + 1, Time: ms, Type: StatusFailed, Code: t.Code, Message: t.Error})
		j.put(t.ID, fixed(t))
	}
	return j.flush()
}

func taskKey(created int64, id string) []byte {
	k := make([]byte, 0, len(keyTasks)+8+len(id))
	k = append(k, keyTasks...)
	k = binary.BigEndian.AppendUint64(k, uint64(created))
	return append(k, id...)
}

// put queues a task for writing.
func (j *journal) put(id string, t snapshotter) {
	j.mu.Lock()
	j.dirty[id] = t
	j.ids.Add(z.MemHashString(id))
	j.mu.Unlock()
	select {
	case j.kick <- struct{}{}:
	default:
	}
}

// durable waits until every update queued before the call is on disk. A
// write that someone waits for starts at once; the updates that arrive
// while it runs join the next one (group commit).
func (j *journal) durable(ctx context.Context) error {
	ch := make(chan error, 1)
	j.mu.Lock()
	j.waiters = append(j.waiters, ch)
	j.mu.Unlock()
	select {
	case j.urgent <- struct{}{}:
	default:
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-j.done:
		select {
		case err := <-ch:
			return err
		default:
			return errors.New("the task journal is closed")
		}
	}
}

func (j *journal) run() {
	defer close(j.done)
	for {
		select {
		case <-j.stop:
			if err := j.flush(); err != nil {
				j.log.Error("could not write the task journal", "err", err)
			}
			return
		case <-j.kick:
			// Let a burst of updates gather into one transaction, unless
			// someone waits for it.
			t := time.NewTimer(flushEvery)
			select {
			case <-t.C:
			case <-j.urgent:
				t.Stop()
			case <-j.stop:
				t.Stop()
			}
		case <-j.urgent:
		}
		if err := j.flush(); err != nil {
			j.log.Error("could not write the task journal", "err", err)
		}
	}
}

func (j *journal) flush() (err error) {
	j.mu.Lock()
	batch := j.dirty
	j.dirty = map[string]snapshotter{}
	j.flushing = batch
	waiters := j.waiters
	j.waiters = nil
	j.mu.Unlock()
	defer func() {
		j.mu.Lock()
		j.flushing = nil
		j.mu.Unlock()
		for _, w := range waiters {
			w <- err
		}
	}()
	if len(batch) == 0 {
		return nil
	}
	wb := j.db.NewWriteBatch()
	defer wb.Cancel()
	for id, e := range batch {
		t, err := e.stored()
		if err != nil {
			// One task that cannot be encoded must not cost the others
			// their write.
			j.log.Error("a task cannot be journaled", "task", id, "err", err)
			continue
		}
		k := taskKey(t.created, t.id)
		if err := wb.Set(k, t.value); err != nil {
			return err
		}
		if err := wb.Set(append([]byte(keyByID), t.id...), k); err != nil {
			return err
		}
		if t.parent != "" {
			if err := wb.Set([]byte(keyChild+t.parent+"/"+t.id), nil); err != nil {
				return err
			}
		}
	}
	return wb.Flush()
}

// encodeTask is a task as the journal stores it, JSON: a receipt is kept
// as its signed encoding alone (raw), without the decoded fields, which
// repeat the task's own and take as many bytes again. get and list decode
// them back (expandReceipt); the stored form decodes into an api.Task
// whose Receipt has Raw only. receipt, when given, is that encoding (a
// live task keeps the receipt, not its view).
func encodeTask(t *api.Task, receipt []byte) ([]byte, error) {
	if receipt == nil && t.Receipt != nil && t.Receipt.Raw != "" {
		raw, err := base64.StdEncoding.DecodeString(t.Receipt.Raw)
		if err != nil {
			// A damaged entry read back: keep it as it was.
			return json.Marshal(t)
		}
		receipt = raw
	}
	if receipt == nil {
		return json.Marshal(t)
	}
	return json.Marshal(compactTask{Task: t, Receipt: compactReceipt{Raw: receipt}})
}

// compactTask's Receipt hides the embedded Task's in JSON (the shallower
// field wins).
type compactTask struct {
	*api.Task
	Receipt compactReceipt `json:"receipt"`
}

// compactReceipt's Raw encodes as base64, as api.Receipt's Raw reads.
type compactReceipt struct {
	Raw []byte `json:"raw"`
}

// expandReceipt decodes a receipt that compact stored as its encoding back
// into its fields. Its signature was checked when the task received it, so
// it is not checked again (a list of 10,000 tasks would cost as many
// signature checks); the rest of the decoding checks are made, and a
// receipt that fails them (a damaged journal) stays as it was stored, with
// Verified false, and is logged. Entries written before compact existed
// carry their fields and are left alone.
func (j *journal) expandReceipt(t *api.Task) {
	r := t.Receipt
	if r == nil || r.CID != "" || r.Raw == "" {
		return
	}
	raw, err := base64.StdEncoding.DecodeString(r.Raw)
	if err == nil {
		var rc *task.Receipt
		if rc, err = task.DecodeStoredReceipt(raw); err == nil {
			t.Receipt = receiptView(rc)
			return
		}
	}
	j.log.Warn("a journaled task's receipt no longer decodes", "task", t.ID, "err", err)
}

func (j *journal) close() {
	close(j.stop)
	<-j.done
}

// pending returns the task with this ID waiting to be written, if any
// (ok), and whether badger may hold it (maybe: the filter does not rule it
// out).
func (j *journal) pending(id string) (e snapshotter, ok, maybe bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if e, ok = j.dirty[id]; !ok {
		e, ok = j.flushing[id]
	}
	return e, ok, ok || j.ids.Has(z.MemHashString(id))
}

// has reports whether the journal holds a task with this ID, pending or
// written, without reading it.
func (j *journal) has(id string) (bool, error) {
	_, ok, maybe := j.pending(id)
	if ok || !maybe {
		return ok, nil
	}
	err := j.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(append([]byte(keyByID), id...))
		return err
	})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, badger.ErrKeyNotFound):
		return false, nil
	}
	return false, err
}

// get reads a task, the pending version first.
func (j *journal) get(id string) (api.Task, error) {
	e, ok, maybe := j.pending(id)
	if ok {
		return e.snapshot(), nil
	}
	if !maybe {
		return api.Task{}, ErrNotFound
	}
	var t api.Task
	err := j.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(append([]byte(keyByID), id...))
		if err != nil {
			return err
		}
		k, err := it.ValueCopy(nil)
		if err != nil {
			return err
		}
		item, err := txn.Get(k)
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error { return json.Unmarshal(v, &t) })
	})
	if err == nil {
		j.expandReceipt(&t)
	}
	if errors.Is(err, badger.ErrKeyNotFound) {
		return api.Task{}, ErrNotFound
	}
	return t, err
}

// list returns up to limit tasks, newest first, without events or payloads.
func (j *journal) list(limit int) ([]api.Task, error) {
	j.mu.Lock()
	pending := make(map[string]api.Task, len(j.dirty)+len(j.flushing))
	for k, v := range j.flushing {
		pending[k] = v.snapshot()
	}
	for k, v := range j.dirty {
		pending[k] = v.snapshot()
	}
	j.mu.Unlock()
	var out []api.Task
	var stored []int // indexes in out of the tasks read from badger
	seen := map[string]bool{}
	err := j.db.View(func(txn *badger.Txn) error {
		opts := badger.IteratorOptions{Prefix: []byte(keyTasks), Reverse: true, PrefetchValues: true, PrefetchSize: 64}
		it := txn.NewIterator(opts)
		defer it.Close()
		seek := append([]byte(keyTasks), 0xff)
		for it.Seek(seek); it.Valid() && len(out) < limit; it.Next() {
			var t api.Task
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &t) }); err != nil {
				continue
			}
			if p, ok := pending[t.ID]; ok {
				t = p
			} else {
				stored = append(stored, len(out))
			}
			seen[t.ID] = true
			out = append(out, t)
		}
		return nil
	})
	// Outside the read transaction: decoding receipts holds it open.
	for _, i := range stored {
		j.expandReceipt(&out[i])
	}
	for i := range out {
		out[i] = summary(out[i])
	}
	for id, t := range pending {
		if !seen[id] {
			out = append(out, summary(t))
		}
	}
	sortNewest(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, err
}

func summary(t api.Task) api.Task {
	t.Events, t.Input, t.Output = nil, nil, nil
	if t.Receipt != nil {
		r := *t.Receipt
		r.Raw = ""
		t.Receipt = &r
	}
	return t
}

func sortNewest(ts []api.Task) {
	slices.SortFunc(ts, func(a, b api.Task) int {
		switch {
		case a.Created != b.Created:
			return cmp.Compare(b.Created, a.Created)
		default:
			return cmp.Compare(b.ID, a.ID)
		}
	})
}

// children lists the IDs of the journaled subtasks of parent.
func (j *journal) children(parent string) []string {
	var out []string
	j.mu.Lock()
	for _, m := range []map[string]snapshotter{j.dirty, j.flushing} {
		for id, e := range m {
			if e.snapshot().Parent == parent {
				out = append(out, id)
			}
		}
	}
	j.mu.Unlock()
	prefix := []byte(keyChild + parent + "/")
	_ = j.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			out = append(out, string(it.Item().Key()[len(prefix):]))
		}
		return nil
	})
	return out
}
