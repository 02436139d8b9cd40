package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/canon"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
)

var ctx = context.Background()

func TestIngestRules(t *testing.T) {
	home := communityID(t, "home")
	other := communityID(t, "elsewhere")
	f := newFixture(t, func(o *Options) {
		o.Member = func(c cid.Cid) bool { return c == home }
	})
	alice, bob := newKey(t), newKey(t)
	now := f.clock.Now()

	// Records the cases below refer to.
	target, targetRaw := sign(t, alice, home, record.KindAttestation, attestation("text.summarize", 1), now.Add(-time.Hour))
	if res, err := f.store.Ingest(ctx, targetRaw); err != nil || !res.New {
		t.Fatalf("ingest target: %+v, %v", res, err)
	}
	revOfTarget, revOfTargetRaw := sign(t, alice, home, record.KindRevocation, body.Revocation{Target: target.CID()}, now)
	_, foreignRaw := sign(t, alice, other, record.KindAttestation, attestation("x", 1), now)
	_, otherCommunityTargetRaw := sign(t, alice, other, record.KindAttestation, attestation("y", 1), now)

	forged := bytes.Clone(targetRaw)
	forged[bytes.Index(forged, target.Sig)+5] ^= 1

	unknownKind, err := canon.Marshal(map[string]any{
		"v": 1, "kind": "gossip", "community": home.Bytes(), "author": []byte(idOf(t, alice)),
		"created": now.UnixMilli(), "body": map[string]any{}, "sig": make([]byte, 64),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, proposalRaw := sign(t, alice, home, record.KindProposal, map[string]any{"title": "x"}, now)
	_, badBodyRaw := sign(t, alice, home, record.KindAttestation, map[string]any{
		"subject": map[string]any{"type": "skill", "id": "x"}, "predicate": "no scheme", "verdict": "pass",
	}, now)
	_, newerBodyRaw := sign(t, alice, home, record.KindAttestation, map[string]any{
		"subject": map[string]any{"type": "dataset", "id": "x"}, "predicate": "agora:x", "verdict": "pass",
	}, now)
	_, futureRaw := sign(t, alice, home, record.KindAttestation, attestation("z", 1), now.Add(record.MaxClockSkew+time.Second))
	_, byBobRaw := sign(t, bob, home, record.KindRevocation, body.Revocation{Target: target.CID()}, now)
	_, unknownTargetRaw := sign(t, alice, home, record.KindRevocation, body.Revocation{Target: communityID(t, "nothing")}, now)
	_, revOfRevRaw := sign(t, alice, home, record.KindRevocation, body.Revocation{Target: revOfTarget.CID()}, now.Add(time.Second))
	_, backdatedRevRaw := sign(t, alice, home, record.KindRevocation, body.Revocation{Target: target.CID(), Reason: "early"}, now.Add(-2*time.Hour))
	_, genesisRaw := sign(t, alice, cid.Undef, record.KindCommunity, map[string]any{"name": "x"}, now)
	_, advertRaw := sign(t, alice, home, record.KindAdvert, body.Advert{Seq: 1, Expires: now.Add(time.Minute).UnixMilli()}, now)

	// A target in another community, stored by a node that is a member of both.
	both := newFixture(t, nil)
	both.clock = f.clock
	otherTarget, _ := record.Decode(otherCommunityTargetRaw)
	_, crossRevRaw := sign(t, alice, home, record.KindRevocation, body.Revocation{Target: otherTarget.CID()}, now)

	tests := []struct {
		name      string
		store     *Store
		raw       []byte
		wantNew   bool
		want      error // nil: no error
		fault     bool
		retryable bool
		reason    string
	}{
		{name: "valid attestation", raw: func() []byte {
			_, r := sign(t, alice, home, record.KindAttestation, attestation("a", 2), now)
			return r
		}(), wantNew: true},
		{name: "duplicate is a no-op", raw: targetRaw},
		{name: "oversized", raw: make([]byte, record.MaxSize+1), want: record.ErrTooLarge, fault: true, reason: "too-large"},
		{name: "malformed CBOR", raw: []byte{0xff, 0x00}, want: record.ErrMalformed, fault: true, reason: "malformed"},
		{name: "forged signature", raw: forged, want: record.ErrBadSignature, fault: true, reason: "bad-signature"},
		{name: "unknown kind", raw: unknownKind, want: record.ErrUnknownKind, reason: "unknown-kind"},
		{name: "proposal without choices", raw: proposalRaw, want: body.ErrInvalid, fault: true, reason: "invalid-body"},
		{name: "genesis not supported yet", raw: genesisRaw, want: body.ErrNotSupported, reason: "unsupported-kind"},
		{name: "adverts are never stored", raw: advertRaw, want: ErrEphemeral, fault: true, reason: "ephemeral-kind"},
		{name: "not a member of the community", raw: foreignRaw, want: ErrNotMember, reason: "not-member"},
		{name: "from the future", raw: futureRaw, want: record.ErrFromFuture, reason: "from-future"},
		{name: "invalid attestation body", raw: badBodyRaw, want: body.ErrInvalid, fault: true, reason: "invalid-body"},
		{name: "body from a newer node", raw: newerBodyRaw, want: body.ErrUnknownField, reason: "unknown-field"},
		{name: "revocation by someone else", raw: byBobRaw, want: ErrNotAuthor, fault: true, reason: "not-author"},
		{name: "revocation of an unknown record", raw: unknownTargetRaw, want: ErrUnknownReference, retryable: true, reason: "unknown-reference"},
		{name: "revocation dated before its target", raw: backdatedRevRaw, want: ErrBadReference, fault: true, reason: "bad-reference"},
		{name: "valid revocation", raw: revOfTargetRaw, wantNew: true},
		{name: "revocation of a revocation", raw: revOfRevRaw, want: ErrBadReference, fault: true, reason: "bad-reference"},
		{name: "revocation of another community's record", store: both.store, raw: crossRevRaw, want: ErrBadReference, fault: true, reason: "bad-reference"},
	}
	if _, err := both.store.Ingest(ctx, otherCommunityTargetRaw); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := f.store
			if tt.store != nil {
				s = tt.store
			}
			before := s.Count(home)
			res, err := s.Ingest(ctx, tt.raw)
			if err != res.Err {
				t.Fatalf("returned error %v differs from Result.Err %v", err, res.Err)
			}
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Ingest error = %v, want %v", err, tt.want)
			}
			if res.New != tt.wantNew {
				t.Fatalf("New = %v, want %v", res.New, tt.wantNew)
			}
			if got := IsSenderFault(err); got != tt.fault {
				t.Errorf("IsSenderFault = %v, want %v", got, tt.fault)
			}
			if got := IsRetryable(err); got != tt.retryable {
				t.Errorf("IsRetryable = %v, want %v", got, tt.retryable)
			}
			if got := Reason(err); got != tt.reason {
				t.Errorf("Reason = %q, want %q", got, tt.reason)
			}
			stored := 0
			if tt.wantNew {
				stored = 1
			}
			if got := s.Count(home) - before; got != stored {
				t.Errorf("count grew by %d, want %d", got, stored)
			}
			if err != nil && res.CID.Defined() && s.Has(res.CID) {
				t.Errorf("a refused record was stored")
			}
		})
	}

	st, err := f.store.Get(target.CID())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Revoked || st.RevokedBy != revOfTarget.CID() {
		t.Fatalf("target: Revoked = %v by %s, want revoked by %s", st.Revoked, st.RevokedBy, revOfTarget.CID())
	}
	if !bytes.Equal(st.Raw, targetRaw) || st.Record.CID() != target.CID() {
		t.Fatal("Get returned another record")
	}
	if st, _ := f.store.Get(revOfTarget.CID()); st == nil || st.Revoked {
		t.Fatalf("the revocation itself must not be revoked: %+v", st)
	}
	if _, err := f.store.Get(communityID(t, "nothing")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing record: %v", err)
	}
	stats := f.store.Stats()
	if stats.Rejected["not-author"] != 1 || stats.Duplicates != 1 {
		t.Fatalf("stats: %+v", stats)
	}
}

func TestRevokedByIsDeterministic(t *testing.T) {
	home := communityID(t, "home")
	alice := newKey(t)
	f := newFixture(t, nil)
	now := f.clock.Now()
	target, targetRaw := sign(t, alice, home, record.KindAttestation, attestation("s", 1), now.Add(-time.Minute))
	early, earlyRaw := sign(t, alice, home, record.KindRevocation, body.Revocation{Target: target.CID(), Reason: "first"}, now.Add(-time.Second))
	_, lateRaw := sign(t, alice, home, record.KindRevocation, body.Revocation{Target: target.CID(), Reason: "second"}, now)

	// Whatever the arrival order, revoked-by names the earliest revocation.
	for _, order := range [][][]byte{{targetRaw, earlyRaw, lateRaw}, {targetRaw, lateRaw, earlyRaw}} {
		g := newFixture(t, nil)
		for _, raw := range order {
			if _, err := g.store.Ingest(ctx, raw); err != nil {
				t.Fatal(err)
			}
		}
		st, err := g.store.Get(target.CID())
		if err != nil {
			t.Fatal(err)
		}
		if st.RevokedBy != early.CID() {
			t.Fatalf("revoked by %s, want the earliest %s", st.RevokedBy, early.CID())
		}
	}
	// And within one batch.
	for _, r := range f.store.IngestBatch(ctx, [][]byte{lateRaw, earlyRaw, targetRaw}) {
		if r.Err != nil || !r.New {
			t.Fatalf("batch: %+v", r)
		}
	}
	if st, _ := f.store.Get(target.CID()); st.RevokedBy != early.CID() {
		t.Fatalf("batch: revoked by %s, want %s", st.RevokedBy, early.CID())
	}
}

func TestIngestBatchTargetAndRevocationTogether(t *testing.T) {
	home := communityID(t, "home")
	alice := newKey(t)
	f := newFixture(t, nil)
	now := f.clock.Now()
	target, targetRaw := sign(t, alice, home, record.KindAttestation, attestation("s", 1), now)
	rev, revRaw := sign(t, alice, home, record.KindRevocation, body.Revocation{Target: target.CID()}, now)
	// The revocation comes first, as sync may deliver it; the duplicate and
	// the garbage do not disturb the others.
	res := f.store.IngestBatch(ctx, [][]byte{revRaw, targetRaw, targetRaw, {0x00}})
	if res[0].Err != nil || !res[0].New || res[0].CID != rev.CID() {
		t.Fatalf("revocation: %+v", res[0])
	}
	if res[1].Err != nil || !res[1].New {
		t.Fatalf("target: %+v", res[1])
	}
	if res[2].Err != nil || res[2].New || res[2].CID != target.CID() {
		t.Fatalf("duplicate in the batch: %+v", res[2])
	}
	if !errors.Is(res[3].Err, record.ErrMalformed) {
		t.Fatalf("garbage: %+v", res[3])
	}
	if st, _ := f.store.Get(target.CID()); !st.Revoked {
		t.Fatal("target not marked revoked")
	}
	if n := f.store.Count(home); n != 2 {
		t.Fatalf("Count = %d, want 2", n)
	}
}

func TestRateLimit(t *testing.T) {
	home := communityID(t, "home")
	f := newFixture(t, func(o *Options) {
		o.RatePerAuthor = RateLimit{Records: 1, Per: time.Minute, Burst: 2}
	})
	alice, bob := newKey(t), newKey(t)
	n := 0
	ingest := func(key crypto.PrivKey, created time.Time) error {
		n++
		_, raw := sign(t, key, home, record.KindAttestation, attestation("s", n), created)
		_, err := f.store.Ingest(ctx, raw)
		return err
	}
	now := f.clock.Now()
	for i := range 2 {
		if err := ingest(alice, now); err != nil {
			t.Fatalf("within burst, record %d: %v", i, err)
		}
	}
	err := ingest(alice, now)
	if !errors.Is(err, ErrRateLimited) || IsSenderFault(err) || !IsRetryable(err) {
		t.Fatalf("over the burst: %v", err)
	}
	if err := ingest(bob, now); err != nil {
		t.Fatalf("another author has its own bucket: %v", err)
	}
	// Catch-up: records older than CatchUpAge are never limited.
	for i := range 10 {
		if err := ingest(alice, now.Add(-DefaultCatchUpAge-time.Millisecond)); err != nil {
			t.Fatalf("catch-up record %d: %v", i, err)
		}
	}
	if !f.store.IsCatchUp(now.Add(-DefaultCatchUpAge-time.Millisecond).UnixMilli()) || f.store.IsCatchUp(now.UnixMilli()) {
		t.Fatal("IsCatchUp disagrees with the limiter")
	}
	// The bucket refills with time.
	f.clock.Add(time.Minute)
	if err := ingest(alice, f.clock.Now()); err != nil {
		t.Fatalf("after a minute: %v", err)
	}
	if err := ingest(alice, f.clock.Now()); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("one token per minute: %v", err)
	}
}

// TestIngestBatchForgedAmongMany: a batch larger than a verification chunk
// with forged signatures scattered through it stores every honest record
// and none of the forged ones, each result in its place.
func TestIngestBatchForgedAmongMany(t *testing.T) {
	home := communityID(t, "home")
	keys := []crypto.PrivKey{newKey(t), newKey(t), newKey(t)}
	f := newFixture(t, func(o *Options) { o.RatePerAuthor = Unlimited })
	now := f.clock.Now()
	const n = 3*verifyChunk + 7
	raws := make([][]byte, n)
	forged := map[int]bool{}
	for i := range raws {
		r, raw := sign(t, keys[i%len(keys)], home, record.KindAttestation, attestation(fmt.Sprint("s", i), 1), now)
		if i%17 == 3 {
			raw = bytes.Clone(raw)
			raw[bytes.Index(raw, r.Sig)+9] ^= 0x10
			forged[i] = true
		}
		raws[i] = raw
	}
	res := f.store.IngestBatch(ctx, raws)
	for i, r := range res {
		if forged[i] {
			if !errors.Is(r.Err, record.ErrBadSignature) {
				t.Fatalf("forged record %d: %+v", i, r)
			}
			continue
		}
		if r.Err != nil || !r.New {
			t.Fatalf("honest record %d: %+v", i, r)
		}
	}
	if got, want := f.store.Count(home), n-len(forged); got != want {
		t.Fatalf("Count = %d, want %d", got, want)
	}
}

// TestIngestRecordMatchesIngest: a record the gossip validator decoded
// goes through the same checks as its encoding would (duplicate,
// signature, rules), and a record that did not come from record.Decode is
// refused.
func TestIngestRecordMatchesIngest(t *testing.T) {
	home := communityID(t, "home")
	key := newKey(t)
	f := newFixture(t, func(o *Options) { o.Member = func(c cid.Cid) bool { return c == home } })
	now := f.clock.Now()
	decoded := func(raw []byte) *record.Record {
		t.Helper()
		rec, err := record.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	rec, raw := sign(t, key, home, record.KindAttestation, attestation("s", 1), now)
	if res, err := f.store.IngestRecord(ctx, decoded(raw)); err != nil || !res.New || res.CID != rec.CID() {
		t.Fatalf("a fresh record: %+v, %v", res, err)
	}
	if res, err := f.store.IngestRecord(ctx, decoded(raw)); err != nil || res.New {
		t.Fatalf("the same again: %+v, %v; want a duplicate", res, err)
	}
	forged, forgedRaw := sign(t, key, home, record.KindAttestation, attestation("s", 2), now)
	forgedRaw = bytes.Clone(forgedRaw)
	forgedRaw[bytes.Index(forgedRaw, forged.Sig)+9] ^= 0x10
	if _, err := f.store.IngestRecord(ctx, decoded(forgedRaw)); !errors.Is(err, record.ErrBadSignature) {
		t.Fatalf("a forged record: %v, want a bad signature", err)
	}
	other := communityID(t, "elsewhere")
	_, foreignRaw := sign(t, key, other, record.KindAttestation, attestation("s", 3), now)
	_, errRaw := f.store.Ingest(ctx, foreignRaw)
	_, errRec := f.store.IngestRecord(ctx, decoded(foreignRaw))
	if errRaw == nil || errRec == nil || Reason(errRaw) != Reason(errRec) {
		t.Fatalf("another community's record: Ingest says %v, IngestRecord %v; want the same refusal", errRaw, errRec)
	}
	if _, err := f.store.IngestRecord(ctx, nil); err == nil {
		t.Fatal("a nil record was not refused")
	}
	if got := f.store.Count(home); got != 1 {
		t.Fatalf("Count = %d, want 1", got)
	}
}

// TestIngestForgedAmongManySingles: single records ingested at once share
// the verifiers' signature batches; a forged one fails alone, its honest
// batch mates are stored, and a wrong-community record among them is
// refused for what it is.
func TestIngestForgedAmongManySingles(t *testing.T) {
	home, away := communityID(t, "home"), communityID(t, "away")
	keys := []crypto.PrivKey{newKey(t), newKey(t), newKey(t)}
	f := newFixture(t, func(o *Options) {
		o.RatePerAuthor = Unlimited
		o.Member = func(c cid.Cid) bool { return c == home }
	})
	now := f.clock.Now()
	const n = 3*verifyChunk + 7
	raws := make([][]byte, n)
	want := make([]error, n)
	for i := range raws {
		comm := home
		if i%23 == 5 {
			comm, want[i] = away, ErrNotMember
		}
		r, raw := sign(t, keys[i%len(keys)], comm, record.KindAttestation, attestation(fmt.Sprint("s", i), 1), now)
		if i%17 == 3 {
			raw = bytes.Clone(raw)
			raw[bytes.Index(raw, r.Sig)+9] ^= 0x10
			want[i] = record.ErrBadSignature
		}
		raws[i] = raw
	}
	got := make([]Result, n)
	var wg sync.WaitGroup
	for i := range raws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = f.store.Ingest(ctx, raws[i])
		}()
	}
	wg.Wait()
	stored := 0
	for i, r := range got {
		switch {
		case want[i] != nil && !errors.Is(r.Err, want[i]):
			t.Fatalf("record %d: %+v, want %v", i, r, want[i])
		case want[i] == nil && (r.Err != nil || !r.New):
			t.Fatalf("honest record %d: %+v", i, r)
		case want[i] == nil:
			stored++
		}
	}
	if got := f.store.Count(home); got != stored {
		t.Fatalf("Count = %d, want %d", got, stored)
	}
	if st := f.store.Stats(); st.Verified != uint64(n) || st.VerifyBatches == 0 {
		t.Fatalf("verifier stats %+v, want %d records checked", st, n)
	}
}

// TestCloseWhileIngesting: Close while single and batch ingests run ends
// them all with a result (stored, or refused as closed), panics nothing,
// and every record reported stored is stored.
func TestCloseWhileIngesting(t *testing.T) {
	home := communityID(t, "home")
	key := newKey(t)
	f := newFixture(t, func(o *Options) { o.RatePerAuthor = Unlimited })
	now := f.clock.Now()
	const n = 400
	raws := make([][]byte, n)
	for i := range raws {
		_, raws[i] = sign(t, key, home, record.KindAttestation, attestation(fmt.Sprint("c", i), 1), now)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var stored []cid.Cid
	keep := func(r Result) {
		switch {
		case r.Err == nil && r.New:
			mu.Lock()
			stored = append(stored, r.CID)
			mu.Unlock()
		case r.Err != nil && !errors.Is(r.Err, ErrClosed):
			t.Errorf("ingest during Close: %v", r.Err)
		}
	}
	started := make(chan struct{}, n)
	for i := 0; i < n/2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started <- struct{}{}
			r, _ := f.store.Ingest(ctx, raws[i])
			keep(r)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		started <- struct{}{}
		for _, r := range f.store.IngestBatch(ctx, raws[n/2:]) {
			keep(r)
		}
	}()
	for range n/2 + 1 {
		<-started
	}
	f.store.Close()
	wg.Wait()
	f.store.Close() // twice is fine
	db := f.db
	f.store = nil
	st, err := Open(db, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, c := range stored {
		if !st.Has(c) {
			t.Fatalf("record %s was reported stored and is not", c)
		}
	}
}

// TestCommitterGivesUpItsIdleTransaction: the transaction the committer
// opens for its next batch is given up when no record comes, and the next
// record is stored all the same.
func TestCommitterGivesUpItsIdleTransaction(t *testing.T) {
	home := communityID(t, "home")
	key := newKey(t)
	f := newFixture(t, nil)
	gaveUp := make(chan struct{}, 1)
	f.store.nextIdle = time.Millisecond
	f.store.testIdle = func() { gaveUp <- struct{}{} }
	now := f.clock.Now()
	for i := range 2 {
		_, raw := sign(t, key, home, record.KindAttestation, attestation(fmt.Sprint("idle", i), 1), now)
		if res, err := f.store.Ingest(ctx, raw); err != nil || !res.New {
			t.Fatalf("record %d: %+v %v", i, res, err)
		}
		<-gaveUp
	}
	if got := f.store.Count(home); got != 2 {
		t.Fatalf("Count = %d, want 2", got)
	}
}

// TestDuplicateInAFailedBatchIsNotStored: a record that repeats another of
// its batch shares its fate: when the write fails, both report the error,
// not "already stored".
func TestDuplicateInAFailedBatchIsNotStored(t *testing.T) {
	home := communityID(t, "home")
	key := newKey(t)
	f := newFixture(t, nil)
	f.store.testWriteErr = errors.New("disk full")
	_, raw := sign(t, key, home, record.KindAttestation, attestation("dup", 1), f.clock.Now())
	res := f.store.IngestBatch(ctx, [][]byte{raw, raw})
	for i, r := range res {
		if !errors.Is(r.Err, ErrStorage) {
			t.Fatalf("record %d of a failed write: %+v, want %v", i, r, ErrStorage)
		}
	}
	if f.store.Has(res[0].CID) {
		t.Fatal("the record is stored after all")
	}
}
