package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
)

func cidsOf(sts []*Stored) []cid.Cid {
	out := make([]cid.Cid, len(sts))
	for i, st := range sts {
		out[i] = st.CID()
	}
	return out
}

func TestQuery(t *testing.T) {
	home, other := communityID(t, "home"), communityID(t, "other")
	f := newFixture(t, nil)
	alice, bob := newKey(t), newKey(t)
	base := f.clock.Now().Add(-time.Hour)

	ingest := func(r *record.Record, raw []byte) *record.Record {
		if res, err := f.store.Ingest(ctx, raw); err != nil || !res.New {
			t.Fatalf("ingest: %+v %v", res, err)
		}
		return r
	}
	// Five attestations by alice about "a" at base+0..4 s, two by bob about
	// "b" in the same millisecond, one in another community, a revocation.
	var aliceAtts []*record.Record
	for i := range 5 {
		aliceAtts = append(aliceAtts, ingest(sign(t, alice, home, record.KindAttestation, attestation("a", i), base.Add(time.Duration(i)*time.Second))))
	}
	var bobAtts []*record.Record
	for i := range 2 {
		bobAtts = append(bobAtts, ingest(sign(t, bob, home, record.KindAttestation, attestation("b", i), base.Add(10*time.Second))))
	}
	ingest(sign(t, alice, other, record.KindAttestation, attestation("a", 9), base))
	rev := ingest(sign(t, alice, home, record.KindRevocation, body.Revocation{Target: aliceAtts[0].CID()}, base.Add(20*time.Second)))

	// Newest first; same-millisecond records in descending CID order.
	sort := func(rs ...*record.Record) []cid.Cid {
		rs = slices.Clone(rs)
		slices.SortFunc(rs, func(a, b *record.Record) int {
			if a.Created != b.Created {
				return int(b.Created - a.Created)
			}
			return strings.Compare(b.CID().KeyString(), a.CID().KeyString())
		})
		out := make([]cid.Cid, len(rs))
		for i, r := range rs {
			out[i] = r.CID()
		}
		return out
	}
	allHome := append(append(slices.Clone(aliceAtts), bobAtts...), rev)
	subjA := body.Subject{Type: body.SubjectSkill, ID: "a"}.String()

	tests := []struct {
		name string
		q    Query
		want []cid.Cid
	}{
		{"whole community", Query{Community: home}, sort(allHome...)},
		{"by kind", Query{Community: home, Kind: record.KindAttestation}, sort(append(slices.Clone(aliceAtts), bobAtts...)...)},
		{"by revocation kind", Query{Community: home, Kind: record.KindRevocation}, sort(rev)},
		{"by author", Query{Community: home, Author: idOf(t, bob)}, sort(bobAtts...)},
		{"by author and kind", Query{Community: home, Author: idOf(t, alice), Kind: record.KindRevocation}, sort(rev)},
		{"by subject", Query{Community: home, Subject: subjA}, sort(aliceAtts...)},
		{"by subject prefix matches nothing", Query{Community: home, Subject: subjA[:len(subjA)-1]}, nil},
		{"revocations of a target", Query{Community: home, Subject: aliceAtts[0].CID().String()}, sort(rev)},
		{"limit", Query{Community: home, Subject: subjA, Limit: 2}, sort(aliceAtts...)[:2]},
		{"before", Query{Community: home, Subject: subjA, Before: aliceAtts[3].Created}, sort(aliceAtts[:3]...)},
		{"after", Query{Community: home, Subject: subjA, After: aliceAtts[2].Created}, sort(aliceAtts[3:]...)},
		{"unknown author", Query{Community: home, Author: idOf(t, newKey(t))}, nil},
		{"malformed author", Query{Community: home, Author: "x"}, nil},
	}
	if got, _ := f.store.Query(Query{Community: other}); len(got) != 1 {
		t.Fatalf("other community: %d records, want 1", len(got))
	}
	for _, tt := range tests[:len(tests)-2] {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.store.Query(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cidsOf(got), tt.want) {
				t.Fatalf("got  %v\nwant %v", cidsOf(got), tt.want)
			}
		})
	}
	for _, tt := range tests[len(tests)-2:] {
		if got, err := f.store.Query(tt.q); err != nil || len(got) != 0 {
			t.Fatalf("%s: %d results, %v", tt.name, len(got), err)
		}
	}

	// Paging one record at a time visits everything once, ties included.
	var paged []cid.Cid
	q := Query{Community: home, Limit: 1}
	for {
		page, err := f.store.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page[0].CID())
		q.Before, q.BeforeCID = page[0].Record.Created, page[0].CID()
	}
	if !slices.Equal(paged, sort(allHome...)) {
		t.Fatalf("paging:\n got %v\nwant %v", paged, sort(allHome...))
	}
	// Revocation status comes with query results.
	got, _ := f.store.Query(Query{Community: home, Subject: subjA})
	for _, st := range got {
		if st.Revoked != (st.CID() == aliceAtts[0].CID()) {
			t.Fatalf("%s: Revoked = %v", st.CID(), st.Revoked)
		}
	}
	if _, err := f.store.Query(Query{}); err == nil {
		t.Fatal("a query without a community must fail")
	}
}

func TestReconItemsAndGetMany(t *testing.T) {
	home := communityID(t, "home")
	f := newFixture(t, nil)
	alice := newKey(t)
	now := f.clock.Now()
	var raws [][]byte
	var ids [][]byte
	for i := range 20 {
		// Out of time order, some in the same millisecond.
		r, raw := sign(t, alice, home, record.KindAttestation, attestation("s", i), now.Add(-time.Duration(i%7)*time.Second))
		raws = append(raws, raw)
		ids = append(ids, r.CID().Bytes())
	}
	for _, res := range f.store.IngestBatch(ctx, raws) {
		if res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	items, err := f.store.ReconItems(home)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 20 || f.store.Count(home) != 20 {
		t.Fatalf("%d items, Count %d, want 20", len(items), f.store.Count(home))
	}
	for i := 1; i < len(items); i++ {
		a, b := items[i-1], items[i]
		if a.Created > b.Created || a.Created == b.Created && bytes.Compare(a.ID, b.ID) >= 0 {
			t.Fatalf("items %d and %d out of (created, ID) order", i-1, i)
		}
	}
	// Stopping early works.
	n := 0
	for _, err := range f.store.Items(home) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	if items, _ := f.store.ReconItems(communityID(t, "empty")); len(items) != 0 {
		t.Fatal("items of an empty community")
	}

	missing := communityID(t, "missing").Bytes()
	got, err := f.store.GetMany([][]byte{ids[3], missing, {1, 2}, ids[0]})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[0], raws[3]) || got[1] != nil || got[2] != nil || !bytes.Equal(got[3], raws[0]) {
		t.Fatal("GetMany returned the wrong records")
	}
	if _, err := f.store.GetMany(make([][]byte, MaxGetMany+1)); err == nil {
		t.Fatal("GetMany must bound its input")
	}
}

func TestConcurrentIngest(t *testing.T) {
	home := communityID(t, "home")
	f := newFixture(t, nil)
	const writers, each = 16, 100
	raws := make([][][]byte, writers)
	for w := range writers {
		key := newKey(t)
		for i := range each {
			_, raw := sign(t, key, home, record.KindAttestation, attestation(fmt.Sprint("w", w), i), f.clock.Now())
			raws[w] = append(raws[w], raw)
		}
	}
	sub, cancel := f.store.Subscribe(writers * each)
	defer cancel()

	var wg sync.WaitGroup
	errs := make(chan error, writers*each*2)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, raw := range raws[w] {
				res, err := f.store.Ingest(ctx, raw)
				if err != nil || !res.New {
					errs <- fmt.Errorf("ingest: %+v %v", res, err)
				}
				// Every acknowledged record is readable at once.
				if !f.store.Has(res.CID) {
					errs <- fmt.Errorf("%s acknowledged but not stored", res.CID)
				}
			}
			// Offering them again, concurrently with the others, is a no-op.
			for _, raw := range raws[w][:10] {
				if res, err := f.store.Ingest(ctx, raw); err != nil || res.New {
					errs <- fmt.Errorf("duplicate: %+v %v", res, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := f.store.Count(home); n != writers*each {
		t.Fatalf("Count = %d, want %d", n, writers*each)
	}
	st := f.store.Stats()
	if st.Stored != writers*each || st.Duplicates != writers*10 {
		t.Fatalf("stats: %+v", st)
	}
	if st.Syncs >= writers*each {
		t.Fatalf("%d commits for %d records: no group commit", st.Syncs, writers*each)
	}
	t.Logf("%d records in %d commits", st.Stored, st.Syncs)
	seen := map[cid.Cid]bool{}
	for range writers * each {
		seen[(<-sub).CID()] = true
	}
	if len(seen) != writers*each || st.NotifyDropped != 0 {
		t.Fatalf("notified of %d records (%d dropped)", len(seen), st.NotifyDropped)
	}
}

func TestDurability(t *testing.T) {
	home := communityID(t, "home")
	f := newFixture(t, nil)
	alice := newKey(t)
	now := f.clock.Now()
	target, raw := sign(t, alice, home, record.KindAttestation, attestation("s", 1), now)
	rev, revRaw := sign(t, alice, home, record.KindRevocation, body.Revocation{Target: target.CID()}, now)
	for _, r := range [][]byte{raw, revRaw} {
		if _, err := f.store.Ingest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	f.reopen()
	st, err := f.store.Get(target.CID())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(st.Raw, raw) || !st.Revoked || st.RevokedBy != rev.CID() {
		t.Fatalf("after reopen: %+v", st)
	}
	if n := f.store.Count(home); n != 2 {
		t.Fatalf("Count after reopen = %d, want 2", n)
	}
	if res, err := f.store.Ingest(ctx, raw); err != nil || res.New {
		t.Fatalf("re-ingest after reopen: %+v %v", res, err)
	}
	items, _ := f.store.ReconItems(home)
	if len(items) != 2 {
		t.Fatalf("%d items after reopen", len(items))
	}
}

// A record is acknowledged only once durable: by badger syncing each
// transaction it writes (SyncWrites, which BadgerOptions sets; see
// "Durability" in commit.go), or else by a db.Sync after each write.
func TestSyncWrites(t *testing.T) {
	if !BadgerOptions(t.TempDir()).SyncWrites {
		t.Fatal("BadgerOptions must set SyncWrites: the committer relies on it")
	}
	home := communityID(t, "home")
	for _, syncWrites := range []bool{true, false} {
		f := newFixtureDB(t, func(o badger.Options) badger.Options { return o.WithSyncWrites(syncWrites) }, nil)
		_, raw := sign(t, newKey(t), home, record.KindAttestation, attestation("s", 1), f.clock.Now())
		if res, err := f.store.Ingest(ctx, raw); err != nil || !res.New {
			t.Fatalf("SyncWrites %v: %+v %v", syncWrites, res, err)
		}
		if n := f.store.Stats().Syncs; n != 1 {
			t.Fatalf("SyncWrites %v: %d syncs for one record, want 1", syncWrites, n)
		}
	}
}

func TestSchemaVersionChecked(t *testing.T) {
	f := newFixture(t, nil)
	f.store.Close()
	f.store = nil
	if err := f.db.Update(func(txn *badger.Txn) error { return txn.Set(metaVersionKey, []byte{9}) }); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(f.db, f.opts); err == nil || !strings.Contains(err.Error(), "upgrade") {
		t.Fatalf("Open of a newer format: %v", err)
	}
}

func TestSubscribeDropsForSlowSubscriber(t *testing.T) {
	home := communityID(t, "home")
	f := newFixture(t, nil)
	alice := newKey(t)
	slow, cancelSlow := f.store.Subscribe(1)
	fast, cancelFast := f.store.Subscribe(10)
	var raws [][]byte
	for i := range 3 {
		_, raw := sign(t, alice, home, record.KindAttestation, attestation("s", i), f.clock.Now())
		raws = append(raws, raw)
		if _, err := f.store.Ingest(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if st := <-fast; !bytes.Equal(st.Raw, raws[i]) {
			t.Fatalf("fast subscriber: record %d out of order", i)
		}
	}
	if st := <-slow; !bytes.Equal(st.Raw, raws[0]) {
		t.Fatal("slow subscriber should have the first record")
	}
	if d := f.store.Stats().NotifyDropped; d != 2 {
		t.Fatalf("dropped %d, want 2", d)
	}
	// Each subscription counts only what it missed itself.
	if ds, df := f.store.Dropped(slow), f.store.Dropped(fast); ds != 2 || df != 0 {
		t.Fatalf("Dropped: slow %d, fast %d; want 2 and 0", ds, df)
	}
	cancelSlow()
	cancelSlow() // idempotent
	if _, ok := <-slow; ok {
		t.Fatal("channel not closed by cancel")
	}
	if d := f.store.Dropped(slow); d != 0 {
		t.Fatalf("Dropped of a cancelled subscription: %d, want 0", d)
	}
	f.store.Close()
	if _, ok := <-fast; ok {
		t.Fatal("channel not closed by Close")
	}
	cancelFast()
}

func TestClosed(t *testing.T) {
	home := communityID(t, "home")
	f := newFixture(t, nil)
	_, raw := sign(t, newKey(t), home, record.KindAttestation, attestation("s", 1), f.clock.Now())
	f.store.Close()
	if _, err := f.store.Ingest(ctx, raw); !errors.Is(err, ErrClosed) || !IsRetryable(err) {
		t.Fatalf("Ingest after Close: %v", err)
	}
	if err := f.store.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if ch, _ := f.store.Subscribe(1); ch != nil {
		if _, ok := <-ch; ok {
			t.Fatal("Subscribe after Close must return a closed channel")
		}
	}
}

func TestIngestContextCanceled(t *testing.T) {
	home := communityID(t, "home")
	f := newFixture(t, nil)
	_, raw := sign(t, newKey(t), home, record.KindAttestation, attestation("s", 1), f.clock.Now())
	c, cancel := context.WithCancel(ctx)
	cancel()
	// Either the record made it before the context was seen, or the
	// caller is told it gave up; never a hang or a false success.
	res, err := f.store.Ingest(c, raw)
	if err != nil && (!errors.Is(err, context.Canceled) || Reason(err) != "canceled" || !IsRetryable(err)) {
		t.Fatalf("canceled ingest: %v", err)
	}
	if err == nil && !res.New {
		t.Fatalf("canceled ingest: %+v", res)
	}
}

func TestSign(t *testing.T) {
	home := communityID(t, "home")
	f := newFixture(t, func(o *Options) { o.Member = func(c cid.Cid) bool { return c == home } })
	alice := newKey(t)
	a := attestation("text.summarize", 1)
	rec, err := f.store.Sign(alice, home, record.KindAttestation, a)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Author != idOf(t, alice) || rec.Created != f.clock.Now().UnixMilli() || !f.store.Has(rec.CID()) {
		t.Fatalf("signed record: %+v", rec)
	}
	if _, err := f.store.Sign(alice, home, record.KindAttestation, &a); err != nil {
		t.Fatalf("pointer body, same record again: %v", err)
	}
	rev, err := f.store.Sign(alice, home, record.KindRevocation, body.Revocation{Target: rec.CID(), Reason: "mistake"})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := f.store.Get(rec.CID()); !st.Revoked || st.RevokedBy != rev.CID() {
		t.Fatal("not revoked")
	}
	before := f.store.Count(home)
	bad := a
	bad.Predicate = "not a uri"
	tests := []struct {
		name string
		kind record.Kind
		body any
		want error
	}{
		{"invalid body", record.KindAttestation, bad, body.ErrInvalid},
		{"expiry before now", record.KindAttestation, func() body.Attestation {
			b := a
			b.Expires = f.clock.Now().UnixMilli()
			return b
		}(), body.ErrInvalid},
		{"wrong kind", record.KindRevocation, a, nil},
		{"not a body", record.KindAttestation, map[string]any{"x": 1}, nil},
		{"not a member", record.KindAttestation, a, ErrNotMember},
		{"someone else's record", record.KindRevocation, body.Revocation{Target: rec.CID()}, ErrNotAuthor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			comm, key := home, alice
			if tt.want == ErrNotMember {
				comm = communityID(t, "other")
			}
			if tt.want == ErrNotAuthor {
				key = newKey(t)
			}
			_, err := f.store.Sign(key, comm, tt.kind, tt.body)
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Sign = %v, want %v", err, tt.want)
			}
		})
	}
	if f.store.Count(home) != before {
		t.Fatal("a refused Sign stored a record")
	}
}

// TestBigBatchSplits stores a batch far larger than one badger transaction
// accepts (a 1 MiB memtable takes about 1,500 entries per transaction), both
// with the size estimate and with the ErrTxnTooBig fallback.
func TestBigBatchSplits(t *testing.T) {
	home := communityID(t, "home")
	small := func(o badger.Options) badger.Options { return o.WithMemTableSize(1 << 20) }
	key := newKey(t)
	var raws [][]byte
	for i := range 1000 {
		_, raw := sign(t, key, home, record.KindAttestation, attestation("s", i), newClock().Now())
		raws = append(raws, raw)
	}
	large := attestation("large", 0)
	large.Evidence = strings.Repeat("e", body.MaxEvidenceBytes)
	for j := range body.MaxClaims - 1 {
		large.Claims[fmt.Sprint("c", j)] = strings.Repeat("v", body.MaxClaimValueLen)
	}
	_, raw := sign(t, key, home, record.KindAttestation, large, newClock().Now())
	raws = append(raws, raw)

	for _, name := range []string{"estimate", "fallback"} {
		t.Run(name, func(t *testing.T) {
			f := newFixtureDB(t, small, func(o *Options) { o.RatePerAuthor = Unlimited })
			if name == "fallback" {
				f.store.testBudget = &txnCost{size: 1 << 40, count: 1 << 40} // always "fits"; badger disagrees
			}
			if b := f.store.txnBudget(); int64(len(raws))*7 < 3*b.count {
				t.Fatalf("the batch should need several transactions (%d entries each)", b.count)
			}
			for _, res := range f.store.IngestBatch(ctx, raws) {
				if res.Err != nil || !res.New {
					t.Fatalf("%+v", res)
				}
			}
			if n := f.store.Count(home); n != len(raws) {
				t.Fatalf("Count = %d, want %d", n, len(raws))
			}
			splits := f.store.stats.splits.Load()
			if (name == "fallback") != (splits > 0) {
				t.Fatalf("%d ErrTxnTooBig fallbacks", splits)
			}
			f.reopen()
			if n := f.store.Count(home); n != len(raws) {
				t.Fatalf("Count after reopen = %d, want %d", n, len(raws))
			}
			if items, _ := f.store.ReconItems(home); len(items) != len(raws) {
				t.Fatalf("%d items after reopen", len(items))
			}
		})
	}
}

// FuzzIngest feeds arbitrary bytes to a real store: nothing panics, every
// refusal is classified, and nothing invalid is stored.
func FuzzIngest(f *testing.F) {
	fx := newFixture(f, nil)
	key := newKey(f)
	home := communityID(f, "home")
	_, raw := sign(f, key, home, record.KindAttestation, attestation("s", 1), fx.clock.Now())
	f.Add(raw)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		res, err := fx.store.Ingest(context.Background(), raw)
		if err != nil {
			if Reason(err) == "other" {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if _, err := record.Open(raw, fx.clock.Now()); err != nil {
			t.Fatalf("stored a record that does not open: %v", err)
		}
		if !fx.store.Has(res.CID) {
			t.Fatal("accepted but not stored")
		}
	})
}
