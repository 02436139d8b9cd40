package replicate

import (
	"context"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/record"
)

// TestGossipValidator checks what a member does with each kind of record
// that gossip brings: store and relay, ignore, or reject and score the
// forwarding peer down.
func TestGossipValidator(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tn := newTestNet(t, 2, nodeOptions{}) // periodic syncs in a minute: none during the test
	c := tn.community(ctx)
	v, holder := tn.nodes[0], tn.nodes[1]
	waitSyncsDone(t, ctx, v.repl, 1) // the one a new member on the topic causes

	author, other := newKey(t), newKey(t)
	authorID, _ := peer.IDFromPrivateKey(author)
	now := time.Now()
	att := func(n int, at time.Time) []byte {
		_, raw := signed(t, author, c, record.KindAttestation, attestation(authorID, n), at)
		return raw
	}
	fresh := att(1, now)
	freshRec, _ := record.Decode(fresh)
	forged := forge(t, att(2, now))
	_, foreign := signed(t, author, testCommunity(t, "elsewhere"), record.KindAttestation, attestation(authorID, 3), now)
	_, notAuthor := signed(t, other, c, record.KindRevocation, body.Revocation{Target: freshRec.CID()}, now)

	for _, tc := range []struct {
		name   string
		data   []byte
		want   pubsub.ValidationResult
		stored bool // the record is stored afterwards
		fault  bool // the forwarding peer is scored down
	}{
		{"fresh attestation", fresh, pubsub.ValidationAccept, true, false},
		{"duplicate", fresh, pubsub.ValidationIgnore, true, false},
		{"bad signature", forged, pubsub.ValidationReject, false, true},
		{"not a record", []byte{0xa1, 0x61, 0x76, 0x01}, pubsub.ValidationReject, false, true},
		{"older than the catch-up age", att(4, now.Add(-time.Hour)), pubsub.ValidationIgnore, false, false},
		{"from the future", att(5, now.Add(time.Hour)), pubsub.ValidationIgnore, false, false},
		{"another community", foreign, pubsub.ValidationIgnore, false, false},
		{"revocation by another author", notAuthor, pubsub.ValidationReject, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := randomPeer(t)
			if got := v.repl.ValidateRecord(ctx, c, from, tc.data); got != tc.want {
				t.Errorf("validation %v, want %v", got, tc.want)
			}
			if rec, err := record.Decode(tc.data); err == nil && v.store.Has(rec.CID()) != tc.stored {
				t.Errorf("stored %v, want %v", !tc.stored, tc.stored)
			}
			if score := v.repl.Penalties().Score(from); (score < 0) != tc.fault {
				t.Errorf("the forwarding peer's score is %v; scored down %v, want %v", score, score < 0, tc.fault)
			}
		})
	}
	if n := v.store.Count(c); n != 1 {
		t.Fatalf("%d records stored, want the fresh attestation only", n)
	}

	// A revocation whose target this node lacks: ignored for now, and the
	// peer that forwarded it (which must hold the target) is synced with.
	target, targetRaw := signed(t, author, c, record.KindAttestation, attestation(authorID, 6), now)
	_, revRaw := signed(t, author, c, record.KindRevocation, body.Revocation{Target: target.CID(), Reason: "withdrawn"}, now.Add(time.Millisecond))
	ingestAll(t, holder.store, [][]byte{targetRaw, revRaw})
	before := v.repl.Stats().SessionsInitiated
	if got := v.repl.ValidateRecord(ctx, c, holder.id, revRaw); got != pubsub.ValidationIgnore {
		t.Fatalf("revocation of an unknown record: %v, want ignore", got)
	}
	if score := v.repl.Penalties().Score(holder.id); score != 0 {
		t.Fatalf("the peer that forwarded the revocation scored %v, want 0", score)
	}
	if err := v.waitCount(ctx, c, 3); err != nil {
		t.Fatal(err)
	}
	st, err := v.store.Get(target.CID())
	if err != nil || !st.Revoked {
		t.Fatalf("after the sync the target is %+v, %v; want it stored and revoked", st, err)
	}
	waitSyncsDone(t, ctx, v.repl, before+1) // the records came by that sync, the only way they could
}

// waitSyncsDone waits until s has initiated n syncs and runs none, polling
// its counters (they have no event to wait on).
func waitSyncsDone(t *testing.T, ctx context.Context, s *Service, n int) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		done := s.stats.SessionsInitiated >= n && len(s.outgoing) == 0
		s.mu.Unlock()
		if done {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("waiting for %d initiated syncs: %+v", n, s.Stats())
		}
	}
}

// forge returns raw with one bit of its signature flipped.
func forge(t testing.TB, raw []byte) []byte {
	t.Helper()
	r, err := record.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	// A decoded Record caches its encoding: copy the fields to re-encode.
	f := record.Record{V: r.V, Kind: r.Kind, Community: r.Community, Author: r.Author, Created: r.Created, Body: r.Body,
		Sig: append([]byte{r.Sig[0] ^ 1}, r.Sig[1:]...)}
	out, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func randomPeer(t testing.TB) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return id
}
