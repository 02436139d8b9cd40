package task

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

func community(t testing.TB) cid.Cid {
	t.Helper()
	sum, err := mh.Sum([]byte("community"), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.DagCBOR, sum)
}

func frames(t testing.TB) []Frame {
	return []Frame{
		&Request{ID: "task-0001", Community: community(t), Skill: "text.stats", Input: []byte(`{"text":"a b"}`), Deadline: 1700000000000, HopsLeft: 2, Ancestry: []string{"root-task-1"}},
		&Request{ID: "task-0002", Community: community(t), Skill: "math.eval", Input: []byte(`{}`), Deadline: 1},
		&Accepted{ID: "task-0001", Agent: "builtin"},
		&Rejected{ID: "task-0001", Code: "busy", Reason: "agent builtin runs 4 tasks already"},
		&Rejected{ID: "task-0001", Code: "busy"},
		&Progress{ID: "task-0001", Seq: 1, Message: "half way", Percent: 50},
		&Progress{ID: "task-0001", Seq: 2, Percent: -1},
		&Result{ID: "task-0001", Output: []byte(`{"words":2}`), Receipt: []byte{1, 2, 3}},
		&Failed{ID: "task-0001", Code: "timeout", Reason: "deadline passed"},
		&Cancel{ID: "task-0001"},
		&Cancel{ID: "task-0001", Reason: "user"},
	}
}

func TestRoundTrip(t *testing.T) {
	var stream bytes.Buffer
	for _, f := range frames(t) {
		b, err := Encode(f)
		if err != nil {
			t.Fatalf("%s: %v", f.Type(), err)
		}
		g, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: decode: %v", f.Type(), err)
		}
		if again, _ := Encode(g); !bytes.Equal(again, b) {
			t.Fatalf("%s: round trip changed the frame", f.Type())
		}
		if err := Write(&stream, f); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range frames(t) {
		got, err := Read(&stream, MaxFrame)
		if err != nil {
			t.Fatal(err)
		}
		if got.Type() != want.Type() {
			t.Fatalf("read %s, want %s", got.Type(), want.Type())
		}
	}
	if _, err := Read(&stream, MaxFrame); err != io.EOF {
		t.Fatalf("end of stream: %v, want io.EOF", err)
	}
}

func TestBadFrames(t *testing.T) {
	c := community(t)
	long := strings.Repeat("x", MaxReason+1)
	for name, f := range map[string]Frame{
		"short id":        &Cancel{ID: "abc"},
		"bad id chars":    &Cancel{ID: "abc def ghi"},
		"no community":    &Request{ID: "task-0001", Skill: "a", Input: []byte(`{}`), Deadline: 1},
		"bad skill":       &Request{ID: "task-0001", Community: c, Skill: "A B", Input: []byte(`{}`), Deadline: 1},
		"input not json":  &Request{ID: "task-0001", Community: c, Skill: "a", Input: []byte(`{`), Deadline: 1},
		"no input":        &Request{ID: "task-0001", Community: c, Skill: "a", Deadline: 1},
		"no deadline":     &Request{ID: "task-0001", Community: c, Skill: "a", Input: []byte(`{}`)},
		"too many hops":   &Request{ID: "task-0001", Community: c, Skill: "a", Input: []byte(`{}`), Deadline: 1, HopsLeft: MaxHops + 1},
		"bad ancestor":    &Request{ID: "task-0001", Community: c, Skill: "a", Input: []byte(`{}`), Deadline: 1, Ancestry: []string{"x"}},
		"long ancestry":   &Request{ID: "task-0001", Community: c, Skill: "a", Input: []byte(`{}`), Deadline: 1, Ancestry: make([]string, MaxAncestry+1)},
		"no agent":        &Accepted{ID: "task-0001"},
		"no code":         &Rejected{ID: "task-0001"},
		"long reason":     &Rejected{ID: "task-0001", Code: "busy", Reason: long},
		"seq zero":        &Progress{ID: "task-0001"},
		"percent":         &Progress{ID: "task-0001", Seq: 1, Percent: 101},
		"no receipt":      &Result{ID: "task-0001", Output: []byte(`1`)},
		"output not json": &Result{ID: "task-0001", Output: []byte(`nope`), Receipt: []byte{1}},
		"big output":      &Result{ID: "task-0001", Output: bytes.Repeat([]byte(" "), MaxPayload+1), Receipt: []byte{1}},
		"failed no code":  &Failed{ID: "task-0001"},
		"invalid utf8":    &Cancel{ID: "task-0001", Reason: "\xff"},
	} {
		if _, err := Encode(f); !errors.Is(err, ErrBadFrame) {
			t.Errorf("%s: Encode error %v, want ErrBadFrame", name, err)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := Encode(&Cancel{ID: "task-0001"})
	cases := map[string][]byte{
		"empty":        {},
		"not cbor":     {0xff},
		"truncated":    good[:len(good)-1],
		"not a map":    {0x01},
		"unknown type": mustRaw(t, map[string]any{"t": 99, "id": "task-0001"}),
		"foreign key":  mustRaw(t, map[string]any{"t": 7, "id": "task-0001", "skill": "a"}),
	}
	for name, b := range cases {
		if _, err := Decode(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	// A key of another frame type is named in the error; a key of no
	// frame type is an unknown field.
	for key, b := range map[string][]byte{
		"skill":   cases["foreign key"],
		"receipt": mustRaw(t, map[string]any{"t": 2, "id": "task-0001", "agent": "builtin", "receipt": []byte{1}}),
	} {
		_, err := Decode(b)
		if !errors.Is(err, ErrBadFrame) || !strings.Contains(err.Error(), `key "`+key+`"`) {
			t.Errorf("a frame with key %q: %v", key, err)
		}
	}
	_, err := Decode(mustRaw(t, map[string]any{"t": 2, "id": "task-0001", "agent": "builtin", "zzz": 1}))
	if !errors.Is(err, ErrBadFrame) || !strings.Contains(err.Error(), "unknown field") {
		t.Errorf("a frame with an unknown key: %v", err)
	}
	// A length prefix over the limit is refused before reading the body.
	var buf bytes.Buffer
	buf.Write([]byte{0xff, 0xff, 0xff, 0x7f})
	if _, err := Read(&buf, MaxFrame); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("huge prefix: %v", err)
	}
	if _, err := Read(bytes.NewReader([]byte{5, 1}), MaxFrame); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short body: %v", err)
	}
}

func mustRaw(t *testing.T, v map[string]any) []byte {
	t.Helper()
	b, err := canonMarshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newKey(t testing.TB) (crypto.PrivKey, peer.ID) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	return k, id
}

func sampleReceipt(t testing.TB) (*Receipt, crypto.PrivKey) {
	k, _ := newKey(t)
	_, req := newKey(t)
	return &Receipt{
		Task: "task-0001", Community: community(t), Requester: req, Agent: "builtin", Skill: "text.stats",
		Input: Hash([]byte(`{"text":"a"}`)), Output: Hash([]byte(`{"words":1}`)), Status: StatusCompleted,
		Started: 1700000000000, Ended: 1700000000005,
	}, k
}

func TestReceipt(t *testing.T) {
	r, k := sampleReceipt(t)
	raw, err := r.Sign(k)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeReceipt(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.Executor != r.Executor || got.Task != r.Task || got.Duration().Milliseconds() != 5 {
		t.Fatalf("decoded %+v", got)
	}
	if got.CID() != r.CID() {
		t.Fatal("CID differs after decoding")
	}
	// Any flipped bit breaks it.
	for i := range raw {
		bad := bytes.Clone(raw)
		bad[i] ^= 0x01
		if _, err := DecodeReceipt(bad); err == nil {
			t.Fatalf("flipped byte %d still decodes", i)
		}
	}
	// Another key cannot sign as the executor.
	other, _ := newKey(t)
	r2, _ := sampleReceipt(t)
	raw2, _ := r2.Sign(other)
	w := r2.toWire()
	w.Executor = []byte(r.Executor)
	forged, _ := canonMarshal(w)
	if _, err := DecodeReceipt(forged); !errors.Is(err, ErrBadReceipt) || raw2 == nil {
		t.Fatalf("forged executor: %v", err)
	}
	// DecodeStoredReceipt reads what DecodeReceipt reads, checks everything
	// but the signature, and so takes the forgery (it is only for receipts
	// checked on arrival), but not a malformed one.
	if st, err := DecodeStoredReceipt(raw); err != nil || st.CID() != r.CID() || !bytes.Equal(st.Raw(), raw) {
		t.Fatalf("stored receipt: %v", err)
	}
	if st, err := DecodeStoredReceipt(forged); err != nil || st.Executor != r.Executor {
		t.Fatalf("stored forgery: %v", err)
	}
	for _, bad := range [][]byte{nil, {0xa0}, raw[:len(raw)-1]} {
		if _, err := DecodeStoredReceipt(bad); !errors.Is(err, ErrBadReceipt) {
			t.Fatalf("stored %x: %v", bad, err)
		}
	}
	// Bad fields are refused when signing.
	r3, k3 := sampleReceipt(t)
	r3.Status = "done"
	if _, err := r3.Sign(k3); !errors.Is(err, ErrBadReceipt) {
		t.Fatalf("bad status signed: %v", err)
	}
}
