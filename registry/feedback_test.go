package registry

import (
	"testing"
	"time"

	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/agora-p2p/agora/protocol/task"
)

// TestIngestFeedback checks the feedback rules that need the envelope: only
// the receipt's requester, only in the receipt's community; and that a
// stored feedback is found by its receipt.
func TestIngestFeedback(t *testing.T) {
	home := communityID(t, "home")
	f := newFixture(t, nil)
	exec, req, mallory := newKey(t), newKey(t), newKey(t)
	now := f.clock.Now()
	rc := &task.Receipt{Task: "abcdefghijklmnopqrstuvwxyz", Community: home, Requester: idOf(t, req), Agent: "a",
		Skill: "text.stats", Input: task.Hash([]byte(`{}`)), Output: task.Hash([]byte(`{}`)),
		Status: task.StatusCompleted, Started: now.UnixMilli() - 10, Ended: now.UnixMilli()}
	if _, err := rc.Sign(exec); err != nil {
		t.Fatal(err)
	}
	fb := body.Feedback{Receipt: rc, Score: 950}
	good, goodRaw := sign(t, req, home, record.KindFeedback, fb, now)
	res, err := f.store.Ingest(ctx, goodRaw)
	if err != nil || !res.New {
		t.Fatalf("ingest: %+v %v", res, err)
	}
	got, err := f.store.Query(Query{Community: home, Subject: "receipt:" + rc.CID().String()})
	if err != nil || len(got) != 1 || got[0].Record.CID() != good.CID() {
		t.Fatalf("by receipt: %v, %v", got, err)
	}
	for name, raw := range map[string][]byte{
		"by another peer":   second(sign(t, mallory, home, record.KindFeedback, fb, now)),
		"by the executor":   second(sign(t, exec, home, record.KindFeedback, fb, now)),
		"another community": second(sign(t, req, communityID(t, "other"), record.KindFeedback, fb, now)),
	} {
		res, err := f.store.Ingest(ctx, raw)
		if err == nil || !IsSenderFault(err) || Reason(err) != "invalid-body" {
			t.Errorf("%s: %+v, %v (reason %q), want a sender fault", name, res, err, Reason(err))
		}
	}
	// A later feedback by the requester is a new record (it supersedes the
	// first in reputation, which keeps the latest per receipt).
	fb.Score = 100
	_, laterRaw := sign(t, req, home, record.KindFeedback, fb, now.Add(time.Second))
	f.clock.Add(time.Second)
	if res, err := f.store.Ingest(ctx, laterRaw); err != nil || !res.New {
		t.Fatalf("later: %+v %v", res, err)
	}
}

func second[A, B any](_ A, b B) B { return b }

// TestEachPagesThroughTies: records created in the same millisecond across
// page boundaries are each visited once.
func TestEachPagesThroughTies(t *testing.T) {
	home := communityID(t, "home")
	f := newFixture(t, nil)
	key := newKey(t)
	now := f.clock.Now()
	for i := range 25 {
		_, raw := sign(t, key, home, record.KindAttestation, attestation("s", i+1), now)
		if _, err := f.store.Ingest(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]int{}
	if err := f.store.Each(Query{Community: home, Limit: 10}, func(st *Stored) { seen[st.CID().String()]++ }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 25 {
		t.Fatalf("visited %d records, want 25", len(seen))
	}
	for c, n := range seen {
		if n != 1 {
			t.Fatalf("%s visited %d times", c, n)
		}
	}
}
