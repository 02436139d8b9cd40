package repo

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/agora-p2p/agora/node/config"
	"github.com/agora-p2p/agora/registry"
)

// Datastore is the repo's badger database with its own compaction driver.
//
// Badger's compactors each poll every 50 ms; two of them (the least badger
// allows) cost about 1% of a core on an idle node, twenty times the rest of
// the node. So badger runs with no compactors, and the driver here looks at
// the LSM shape every few seconds and compacts (db.Flatten) only when a
// level is over its target. An Agora node writes little, so this is rare.
type Datastore struct {
	*badger.DB
	log  *slog.Logger
	stop chan struct{}
	done sync.WaitGroup
	once sync.Once
	// compacting serialises Compact: badger's Flatten stops and restarts
	// its (here absent) compactors unguarded, so two at once race.
	compacting sync.Mutex
}

const (
	compactCheckEvery = 2 * time.Second
	valueLogGCEvery   = 10 * time.Minute
	// l0Compact is the L0 table count that triggers compaction, well below
	// the count at which badger stalls writes.
	l0Compact = registry.L0Compact
)

// OpenDatastore opens badger tuned for a home machine (see
// registry.BadgerOptions).
func OpenDatastore(dir, profile string) (*Datastore, error) {
	log := slog.Default().With("subsystem", "datastore")
	// The tuning is the registry's, which writes most of the datastore; its
	// tests and benchmarks run on the same options.
	opt := registry.BadgerOptions(dir).WithLogger(badgerLogger{log})
	if profile == config.ProfileLowPower {
		opt = opt.WithMemTableSize(4 << 20).WithBlockCacheSize(4 << 20).WithIndexCacheSize(2 << 20)
	}
	db, err := badger.Open(opt)
	if err != nil {
		return nil, fmt.Errorf("open datastore %s: %w", dir, err)
	}
	d := &Datastore{DB: db, log: log, stop: make(chan struct{})}
	d.done.Add(1)
	go d.drive()
	return d, nil
}

// NeedsCompaction reports whether the LSM is out of shape.
func (d *Datastore) NeedsCompaction() bool {
	for _, l := range d.DB.Levels() {
		if (l.Level == 0 && l.NumTables >= l0Compact) || (l.Level > 0 && l.Score > 1) {
			return true
		}
	}
	return false
}

// Compact brings the LSM back in shape if it needs it.
func (d *Datastore) Compact() error {
	d.compacting.Lock()
	defer d.compacting.Unlock()
	// Memtables still being flushed land in L0 while Flatten runs, so go
	// again while that leaves the LSM out of shape (at most a few passes:
	// badger holds only NumMemtables of them).
	for pass := 0; pass < 4 && d.NeedsCompaction(); pass++ {
		if err := d.DB.Flatten(1); err != nil {
			return fmt.Errorf("compact datastore: %w", err)
		}
	}
	return nil
}

func (d *Datastore) drive() {
	defer d.done.Done()
	check := time.NewTicker(compactCheckEvery)
	defer check.Stop()
	gc := time.NewTicker(valueLogGCEvery)
	defer gc.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-check.C:
			if err := d.Compact(); err != nil {
				d.log.Warn("compaction failed; will retry", "err", err)
			}
		case <-gc.C:
			for d.DB.RunValueLogGC(0.5) == nil {
			}
		}
	}
}

// Close stops the driver and closes badger, flushing it to disk.
func (d *Datastore) Close() error {
	d.once.Do(func() { close(d.stop) })
	d.done.Wait()
	return d.DB.Close()
}

type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error(fmt.Sprintf(f, a...)) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn(fmt.Sprintf(f, a...)) }
func (b badgerLogger) Infof(f string, a ...any)    { b.l.Debug(fmt.Sprintf(f, a...)) }
func (b badgerLogger) Debugf(f string, a ...any)   { b.l.Debug(fmt.Sprintf(f, a...)) }
