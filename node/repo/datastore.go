package repo

import (
	"fmt"
	"log/slog"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/agora-p2p/agora/node/config"
)

// OpenDatastore opens badger tuned for a home machine. Badger's defaults
// target servers (64 MiB memtables, 256 MiB block cache, 4 compactors each
// polling every 50 ms); an Agora node holds megabytes, not terabytes, and
// must idle near zero CPU.
func OpenDatastore(dir, profile string) (*badger.DB, error) {
	opt := badger.DefaultOptions(dir).
		WithLogger(badgerLogger{slog.Default().With("subsystem", "badger")}).
		WithNumCompactors(2).          // the minimum badger allows; each is a 50 ms poller
		WithNumMemtables(2).           //
		WithMemTableSize(8 << 20).     // flushes often enough for a small node
		WithBaseTableSize(2 << 20).    //
		WithBaseLevelSize(10 << 20).   //
		WithNumLevelZeroTables(4).     //
		WithNumLevelZeroTablesStall(8) //
	opt = opt.
		WithValueLogFileSize(64 << 20).
		WithValueThreshold(1 << 10). // records are small: keep them in the LSM
		WithBlockCacheSize(16 << 20).
		WithIndexCacheSize(8 << 20).
		WithCompression(options.ZSTD).
		WithZSTDCompressionLevel(1).
		WithMetricsEnabled(false)
	if profile == config.ProfileLowPower {
		opt = opt.WithMemTableSize(4 << 20).WithBlockCacheSize(4 << 20).WithIndexCacheSize(2 << 20)
	}
	db, err := badger.Open(opt)
	if err != nil {
		return nil, fmt.Errorf("open datastore %s: %w", dir, err)
	}
	return db, nil
}

type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error(fmt.Sprintf(f, a...)) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn(fmt.Sprintf(f, a...)) }
func (b badgerLogger) Infof(f string, a ...any)    { b.l.Debug(fmt.Sprintf(f, a...)) }
func (b badgerLogger) Debugf(f string, a ...any)   { b.l.Debug(fmt.Sprintf(f, a...)) }
