package registry

import (
	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// BadgerOptions is the badger tuning a node opens its datastore with
// (node/repo.OpenDatastore starts from it). It lives here, next to the
// registry that writes most of the datastore, so that the registry's tests
// and benchmarks run on exactly the options a node uses; the registry may
// not import node/.
//
// Badger's defaults target servers (64 MiB memtables, 256 MiB block cache,
// 4 compactors); an Agora node holds megabytes, not terabytes, and must
// idle near zero CPU. Hence no compactors: the owner of the database must
// drive compaction itself (node/repo does, calling Flatten when a level is
// over its target; tests do the same).
//
// Blocks are compressed with Snappy rather than ZSTD (level 1): in the
// ingest benchmark ZSTD on memtable flushes and compactions took about a
// tenth of the CPU of ingesting a record, Snappy a fifth of that. Much of a
// record (signature, keys, hashes) does not compress anyway. Badger records
// each table's compression in its manifest, so tables written with ZSTD by
// an older node stay readable.
//
// SyncWrites: badger syncs the write-ahead log after every transaction, in
// its write goroutine. The registry acknowledges a record as durable when
// its transaction commits and relies on this (see "Durability" in
// commit.go: db.Sync alone misses a memtable that filled up in between).
// Other subsystems write rarely and in batches, so the syncs cost them
// little.
func BadgerOptions(dir string) badger.Options {
	return badger.DefaultOptions(dir).
		WithLogger(nil).
		WithSyncWrites(true).
		WithNumCompactors(0).
		WithNumMemtables(2).
		WithMemTableSize(8 << 20).
		WithBaseTableSize(2 << 20).
		WithBaseLevelSize(10 << 20).
		WithNumLevelZeroTables(L0Compact).
		WithNumLevelZeroTablesStall(12).
		WithValueLogFileSize(64 << 20).
		WithValueThreshold(1 << 10). // records are small: keep them in the LSM
		WithBlockCacheSize(16 << 20).
		WithIndexCacheSize(8 << 20).
		WithCompression(options.Snappy).
		WithMetricsEnabled(false)
}

// L0Compact is the level-0 table count at which the owner of a database
// opened with BadgerOptions should compact, well below the count at which
// badger stalls writes.
const L0Compact = 3
