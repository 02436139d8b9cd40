package registry

import (
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.UnixMilli(1767225600000)} } // 2026-01-01

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// openDB opens badger with the node's options (BadgerOptions, which
// node/repo.OpenDatastore uses) and drives compaction the way node/repo's
// Datastore does, since those options run no compactors of badger's own:
// every couple of seconds, Flatten when level 0 has L0Compact tables or a
// level is over its target. (The driver is duplicated here because the
// registry may not import node/.)
func openDB(t testing.TB, dir string, change func(badger.Options) badger.Options) *badger.DB {
	t.Helper()
	o := BadgerOptions(dir)
	if change != nil {
		o = change(o)
	}
	db, err := badger.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if needsCompaction(db) {
					if err := db.Flatten(1); err != nil {
						t.Logf("compaction: %v", err)
					}
				}
			}
		}
	}()
	drivers.Lock()
	drivers.m[db] = func() { close(stop); <-done }
	drivers.Unlock()
	return db
}

// closeDB stops the compaction driver of a database from openDB and closes it.
func closeDB(db *badger.DB) error {
	drivers.Lock()
	stop := drivers.m[db]
	delete(drivers.m, db)
	drivers.Unlock()
	if stop != nil {
		stop()
	}
	return db.Close()
}

var drivers = struct {
	sync.Mutex
	m map[*badger.DB]func()
}{m: map[*badger.DB]func(){}}

func needsCompaction(db *badger.DB) bool {
	for _, l := range db.Levels() {
		if (l.Level == 0 && l.NumTables >= L0Compact) || (l.Level > 0 && l.Score > 1) {
			return true
		}
	}
	return false
}

type fixture struct {
	t      testing.TB
	dbOpts func(badger.Options) badger.Options
	dir    string
	db     *badger.DB
	store  *Store
	clock  *clock
	opts   Options
}

// newFixture opens a store on a fresh badger in a temp dir, with an
// injected clock; change opts before it is used via f.reopen.
func newFixture(t testing.TB, change func(*Options)) *fixture {
	t.Helper()
	return newFixtureDB(t, nil, change)
}

// newFixtureDB is newFixture with changed badger options.
func newFixtureDB(t testing.TB, dbOpts func(badger.Options) badger.Options, change func(*Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, dbOpts: dbOpts, dir: t.TempDir(), clock: newClock()}
	f.opts = Options{Now: f.clock.Now}
	if change != nil {
		change(&f.opts)
	}
	f.db = openDB(t, f.dir, dbOpts)
	var err error
	if f.store, err = Open(f.db, f.opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.close)
	return f
}

func (f *fixture) close() {
	if f.store != nil {
		f.store.Close()
		f.store = nil
	}
	if f.db != nil {
		closeDB(f.db)
		f.db = nil
	}
}

// reopen closes the store and the database and opens both again.
func (f *fixture) reopen() {
	f.t.Helper()
	f.close()
	f.db = openDB(f.t, f.dir, f.dbOpts)
	var err error
	if f.store, err = Open(f.db, f.opts); err != nil {
		f.t.Fatal(err)
	}
}

func newKey(t testing.TB) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func idOf(t testing.TB, k crypto.PrivKey) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func communityID(t testing.TB, name string) cid.Cid {
	t.Helper()
	c, err := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: -1}.Sum([]byte(name))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func attestation(subject string, n int) body.Attestation {
	return body.Attestation{
		Subject:   body.Subject{Type: body.SubjectSkill, ID: subject},
		Predicate: "agora:audit/deterministic/v1",
		Verdict:   body.VerdictPass,
		Claims:    map[string]string{"sample": fmt.Sprint(n)},
	}
}

func sign(t testing.TB, key crypto.PrivKey, community cid.Cid, kind record.Kind, b any, created time.Time) (*record.Record, []byte) {
	t.Helper()
	rec, err := record.Sign(key, kind, community, b, created)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rec.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return rec, raw
}
