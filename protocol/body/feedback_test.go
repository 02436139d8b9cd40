package body

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/agora-p2p/agora/protocol/canon"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/agora-p2p/agora/protocol/task"
)

const feedbackEnded = 1767225600000

// signedReceipt returns a receipt the executor key signed for a task the
// requester asked for in community.
func signedReceipt(t testing.TB, executor crypto.PrivKey, requester peer.ID, community cid.Cid) *task.Receipt {
	t.Helper()
	rc := &task.Receipt{Task: "abcdefghijklmnopqrstuvwxyz", Community: community, Requester: requester, Agent: "echo",
		Skill: "text.stats", Input: task.Hash([]byte(`{"text":"a"}`)), Output: task.Hash([]byte(`{"words":1}`)),
		Status: task.StatusCompleted, Started: feedbackEnded - 20, Ended: feedbackEnded}
	if _, err := rc.Sign(executor); err != nil {
		t.Fatal(err)
	}
	return rc
}

func peerOf(t testing.TB, k crypto.PrivKey) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestFeedbackRoundTrip(t *testing.T) {
	exec, req := newKey(t), newKey(t)
	community := recordID(t, "community")
	f := Feedback{Receipt: signedReceipt(t, exec, peerOf(t, req), community), Score: 900, Comment: "fast\nand right"}
	rec, err := record.Sign(req, record.KindFeedback, community, f, time.UnixMilli(feedbackEnded+1000))
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	got := b.(Feedback)
	if got.Score != 900 || got.Comment != f.Comment || got.Receipt.CID() != f.Receipt.CID() || got.Receipt.Executor != peerOf(t, exec) {
		t.Fatalf("got %+v", got)
	}
	// The minimal form: no comment, score 0.
	f.Comment, f.Score = "", 0
	if _, err := DecodeFeedback(mustMarshal(t, f)); err != nil {
		t.Fatal(err)
	}
}

func TestFeedbackInvalid(t *testing.T) {
	exec, req, other := newKey(t), newKey(t), newKey(t)
	community := recordID(t, "community")
	good := signedReceipt(t, exec, peerOf(t, req), community)
	self := signedReceipt(t, req, peerOf(t, req), community)
	tampered := append([]byte(nil), good.Raw()...)
	tampered[len(tampered)-3] ^= 1 // inside the ended time or the signature
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"score over", mustMarshal(t, feedbackWire{Score: 1001, Receipt: good.Raw()})},
		{"score negative", mustMarshal(t, feedbackWire{Score: -1, Receipt: good.Raw()})},
		{"no receipt", mustMarshal(t, feedbackWire{Score: 5})},
		{"receipt not a receipt", mustMarshal(t, feedbackWire{Score: 5, Receipt: []byte{0xa0}})},
		{"tampered receipt", mustMarshal(t, feedbackWire{Score: 5, Receipt: tampered})},
		{"self receipt", mustMarshal(t, feedbackWire{Score: 5, Receipt: self.Raw()})},
		{"comment too long", mustMarshal(t, feedbackWire{Score: 5, Receipt: good.Raw(), Comment: strings.Repeat("x", MaxCommentBytes+1)})},
		{"comment escape", mustMarshal(t, feedbackWire{Score: 5, Receipt: good.Raw(), Comment: "\x1b[2J"})},
		{"oversize", make([]byte, task.MaxReceipt+MaxCommentBytes+feedbackWireExtra+1)},
	} {
		if _, err := DecodeFeedback(tc.raw); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, err)
		}
	}

	// The envelope: only the requester, only the receipt's community, not
	// before the task ended.
	f := Feedback{Receipt: good, Score: 700}
	for _, tc := range []struct {
		name      string
		key       crypto.PrivKey
		community cid.Cid
		created   int64
	}{
		{"not the requester", other, community, feedbackEnded + 1},
		{"the executor", exec, community, feedbackEnded + 1},
		{"another community", req, recordID(t, "elsewhere"), feedbackEnded + 1},
		{"before the task", req, community, feedbackEnded - record.MaxClockSkew.Milliseconds() - 1},
	} {
		rec, err := record.Sign(tc.key, record.KindFeedback, tc.community, f, time.UnixMilli(tc.created))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeRecord(rec); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, err)
		}
	}
	// The same body re-encoded with an empty comment present is not canonical.
	raw, err := canon.Marshal(map[string]any{"score": 5, "comment": "", "receipt": good.Raw()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeFeedback(raw); err == nil {
		t.Error("an empty comment key was accepted")
	}
}
