package registry

import (
	"crypto/ed25519"
	"crypto/sha256"
	"flag"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/canon"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/libp2p/go-libp2p/core/crypto"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// The benchmarks report ingest against its raw baseline, as docs/perf.md
// wants: the ratio of BenchmarkIngest's rate to BenchmarkVerifyBaseline's,
// measured in the same run, on the same records, with the same goroutines;
// BenchmarkBaselineBadgerWrite is the other raw baseline, the same records
// written to badger with the same durability. cmd/agora-bench runs all three:
//
//	go test -run '^$' -bench 'Ingest$|VerifyBaseline|BaselineBadgerWrite' -benchtime 50000x ./registry
//
// Ingest needs many callers in flight to fill its group commits (each caller
// waits for the disk sync), as gossip validation provides; the verify
// baseline is CPU-bound and does not care, but runs with the same
// parallelism for a like-for-like comparison. -ingest.parallelism changes
// it. Both report cpu-ns/op, the process CPU time per record, which is the
// fairer comparison on a machine shared with other work.
var benchParallelism = flag.Int("ingest.parallelism", 64, "goroutines per GOMAXPROCS in BenchmarkIngest and BenchmarkVerifyBaseline")

type benchRecord struct {
	raw []byte
	msg []byte // what the signature covers
	sig []byte
	pub ed25519.PublicKey
}

var benchPool struct {
	sync.Mutex
	keys []crypto.PrivKey
	recs []benchRecord
}

// benchRecords returns n distinct signed attestations by 64 authors, of a
// realistic size (about 600 bytes), made once and reused across runs.
func benchRecords(b *testing.B, n int) []benchRecord {
	b.Helper()
	benchPool.Lock()
	defer benchPool.Unlock()
	for len(benchPool.keys) < 64 {
		benchPool.keys = append(benchPool.keys, newKey(b))
	}
	home := communityID(b, "bench")
	created := newClock().Now()
	for i := len(benchPool.recs); i < n; i++ {
		key := benchPool.keys[i%len(benchPool.keys)]
		subject := idOf(b, key).String()
		a := body.Attestation{
			Subject:   body.Subject{Type: body.SubjectPeer, ID: subject},
			Predicate: "agora:audit/deterministic/v1",
			Verdict:   body.VerdictPass,
			Claims:    map[string]string{"sample": fmt.Sprint(i), "skill": "text.summarize", "matched": "20/20"},
			Evidence:  strings.Repeat("receipt bafyreiexampleexampleexampleexample ", 5),
		}
		rec, raw := sign(b, key, home, record.KindAttestation, a, created)
		msg, err := canon.Marshal(map[string]any{
			"v": rec.V, "kind": string(rec.Kind), "community": rec.Community.Bytes(),
			"author": []byte(rec.Author), "created": rec.Created, "body": rec.Body,
		})
		if err != nil {
			b.Fatal(err)
		}
		msg = append([]byte(record.SigPrefix), msg...)
		pk, _ := record.AuthorKey(rec.Author)
		rawPub, _ := pk.Raw()
		r := benchRecord{raw: raw, msg: msg, sig: rec.Sig, pub: ed25519.PublicKey(rawPub)}
		if !ed25519.Verify(r.pub, r.msg, r.sig) {
			b.Fatal("baseline signing input does not verify")
		}
		benchPool.recs = append(benchPool.recs, r)
	}
	return benchPool.recs[:n]
}

// BenchmarkIngest ingests pre-signed records from many goroutines into a
// real badger in a temp dir, opened with the node's options (BadgerOptions)
// and compacted the way the node does (see openDB): every op is a record
// made durable.
func BenchmarkIngest(b *testing.B) {
	recs := benchRecords(b, b.N)
	f := newFixture(b, func(o *Options) { o.RatePerAuthor = Unlimited })
	var next atomic.Int64
	b.SetParallelism(*benchParallelism)
	b.SetBytes(int64(len(recs[0].raw)))
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := recs[next.Add(1)-1]
			if res, err := f.store.Ingest(ctx, r.raw); err != nil || !res.New {
				b.Errorf("ingest: %+v %v", res, err)
				return
			}
		}
	})
	b.StopTimer()
	if cpu0 >= 0 {
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	}
	st := f.store.Stats()
	b.ReportMetric(float64(st.Stored)/float64(max(st.Syncs, 1)), "records/sync")
	b.ReportMetric(float64(st.Verified)/float64(max(st.VerifyBatches, 1)), "sigs/batch")
}

// reportCPU starts counting the process's CPU time; the function it returns
// reports it per op (cpu-ns/op).
func reportCPU(b *testing.B) func() {
	cpu0 := cpuTime()
	return func() {
		if cpu0 >= 0 {
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		}
	}
}

// BenchmarkVerifyBaseline is the raw Ed25519 verification of the same
// records, with the same parallelism: the floor of any ingest.
func BenchmarkVerifyBaseline(b *testing.B) {
	recs := benchRecords(b, b.N)
	var next atomic.Int64
	b.SetParallelism(*benchParallelism)
	b.SetBytes(int64(len(recs[0].raw)))
	defer reportCPU(b)()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := recs[next.Add(1)-1]
			if !ed25519.Verify(r.pub, r.msg, r.sig) {
				b.Error("verify failed")
				return
			}
		}
	})
}

// BenchmarkVerifyBatchBaseline is the raw check of the same signatures the
// fastest way the registry checks them: curve25519-voi's batch
// verification under ZIP-215, 64 signatures a batch, with every author's key
// expanded beforehand, on the same goroutines. Ingest batches only the
// records that wait together (see Store.verify), so against this baseline
// it shows what is left of the pipeline once verification is as cheap as it
// gets; against BenchmarkVerifyBaseline (Go's crypto/ed25519, one at a
// time: the baseline) it includes the faster verification.
func BenchmarkVerifyBatchBaseline(b *testing.B) {
	recs := benchRecords(b, b.N)
	zip215 := &voi.Options{Verify: voi.VerifyOptionsZIP_215}
	keys := map[string]*voi.ExpandedPublicKey{}
	for _, r := range recs[:b.N] {
		if keys[string(r.pub)] == nil {
			x, err := voi.NewExpandedPublicKey(voi.PublicKey(r.pub))
			if err != nil {
				b.Fatal(err)
			}
			keys[string(r.pub)] = x
		}
	}
	var next atomic.Int64
	b.SetParallelism(*benchParallelism)
	b.SetBytes(int64(len(recs[0].raw)))
	defer reportCPU(b)()
	b.ResetTimer()
	// Each core checks batches; the goroutines take records one at a time,
	// as the callers of Ingest do.
	batches := make(chan []benchRecord, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range batches {
				bv := voi.NewBatchVerifierWithCapacity(len(batch))
				for _, r := range batch {
					bv.AddExpandedWithOptions(keys[string(r.pub)], r.msg, r.sig, zip215)
				}
				if ok, _ := bv.Verify(nil); !ok {
					b.Error("batch verify failed")
				}
			}
		}()
	}
	var mu sync.Mutex
	var batch []benchRecord
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := recs[next.Add(1)-1]
			mu.Lock()
			batch = append(batch, r)
			if len(batch) == 64 {
				batches <- batch
				batch = nil
			}
			mu.Unlock()
		}
	})
	if len(batch) > 0 {
		batches <- batch
	}
	close(batches)
	wg.Wait()
}

// BenchmarkBaselineBadgerWrite is the raw badger write of the same records
// with the same parallelism, into a badger opened with the node's options
// (BadgerOptions: SyncWrites, no compactors, the node's compaction driver):
// each op is one record set under its 32-byte hash and acknowledged once
// durable, with no verification, decoding, indexes or checks.
//
// "txn-each": every caller commits its record in its own transaction
// (badger groups the transactions that arrive together into one write and
// one log sync). "group-commit": callers hand their record to one
// committer, which writes all the records waiting (up to 1,024) in one
// transaction and acknowledges them when its commit returns, as the
// registry's committer does: the floor of BenchmarkIngest.
func BenchmarkBaselineBadgerWrite(b *testing.B) {
	b.Run("txn-each", func(b *testing.B) {
		recs := benchRecords(b, b.N)
		db := openDB(b, b.TempDir(), nil)
		defer closeDB(db)
		var next atomic.Int64
		b.SetParallelism(*benchParallelism)
		b.SetBytes(int64(len(recs[0].raw)))
		cpu0 := cpuTime()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r := recs[next.Add(1)-1]
				key := sha256.Sum256(r.raw)
				if err := db.Update(func(txn *badger.Txn) error { return txn.Set(key[:], r.raw) }); err != nil {
					b.Errorf("badger write: %v", err)
					return
				}
			}
		})
		b.StopTimer()
		if cpu0 >= 0 {
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		}
	})
	b.Run("group-commit", func(b *testing.B) {
		recs := benchRecords(b, b.N)
		db := openDB(b, b.TempDir(), nil)
		defer closeDB(db)
		type write struct {
			raw  []byte
			done chan error
		}
		queue := make(chan write, 4096)
		var commits atomic.Int64
		committed := make(chan struct{})
		go func() {
			defer close(committed)
			for w := range queue {
				batch := []write{w}
			more:
				for len(batch) < 1024 {
					select {
					case w, ok := <-queue:
						if !ok {
							break more
						}
						batch = append(batch, w)
					default:
						break more
					}
				}
				err := db.Update(func(txn *badger.Txn) error {
					for _, w := range batch {
						key := sha256.Sum256(w.raw)
						if err := txn.Set(key[:], w.raw); err != nil {
							return err
						}
					}
					return nil
				})
				commits.Add(1)
				for _, w := range batch {
					w.done <- err
				}
			}
		}()
		var next atomic.Int64
		b.SetParallelism(*benchParallelism)
		b.SetBytes(int64(len(recs[0].raw)))
		cpu0 := cpuTime()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			done := make(chan error, 1)
			for pb.Next() {
				queue <- write{recs[next.Add(1)-1].raw, done}
				if err := <-done; err != nil {
					b.Errorf("badger write: %v", err)
					return
				}
			}
		})
		b.StopTimer()
		close(queue)
		<-committed
		if cpu0 >= 0 {
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		}
		b.ReportMetric(float64(b.N)/float64(max(commits.Load(), 1)), "records/sync")
	})
}
