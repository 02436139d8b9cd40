package record

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agora-p2p/agora/protocol/canon"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// The golden record pins the wire format: if either constant changes, every
// record ever signed changes its CID. Do not update them to make a test pass.
const (
	goldenHex = "a7" +
		"6176" + "01" + // v: 1
		"63736967" + "5840" + "3702f0c4f2fe6e9964501efa4e3c3f39214732bc61a1ee706150fbab10948770" +
		"b2345f4a8e5d0a5a0a83b6623f3e0f6c41f9b6ee802622a2907acc0a18035104" + // sig
		"64626f6479" + "a3" + "636d7367" + "6b68656c6c6f2061676f7261" + "6474616773" + "82" + "6161" + "6162" +
		"6573636f7265" + "190393" + // body: {msg: "hello agora", tags: ["a", "b"], score: 915}
		"646b696e64" + "68666565646261636b" + // kind: "feedback"
		"66617574686f72" + "5826" + "002408011220" + "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8" + // author
		"6763726561746564" + "1b0000019b76daa800" + // created: 1767225600000
		"69636f6d6d756e697479" + "5824" + "01711220" + "c0643084121dcbbca14bdb6724eb782223550ae030a07a07337e7e8597cb45a3" // community
	goldenCID = "bafyreiblaicbx6fnmx5ukfnohlyko4h4l7submbk3wlv3bopa4m5fywshu"
)

var goldenCreated = time.UnixMilli(1767225600000) // 2026-01-01T00:00:00Z

type goldenBody struct {
	Msg   string   `cbor:"msg"`
	Score int64    `cbor:"score"`
	Tags  []string `cbor:"tags"`
}

func seedKey(t testing.TB, seed []byte) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func goldenKey(t testing.TB) crypto.PrivKey {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i)
	}
	return seedKey(t, seed)
}

func newKey(t testing.TB) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testCommunity is a well-formed community ID that is not the CID of any
// real genesis; record does not care.
var testCommunity = mustSum([]byte("agora golden community"))

func mustSum(b []byte) cid.Cid {
	c := sum(b)
	if !c.Defined() {
		panic("sum failed")
	}
	return c
}

func goldenRecord(t testing.TB) *Record {
	t.Helper()
	r, err := Sign(goldenKey(t), KindFeedback, testCommunity,
		goldenBody{Msg: "hello agora", Score: 915, Tags: []string{"a", "b"}}, goldenCreated)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestGolden(t *testing.T) {
	r := goldenRecord(t)
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b); got != goldenHex {
		t.Errorf("golden encoding changed:\n got %s\nwant %s", got, goldenHex)
	}
	if got := r.CID().String(); got != goldenCID {
		t.Errorf("golden CID changed: got %s, want %s", got, goldenCID)
	}
	want, err := hex.DecodeString(goldenHex)
	if err != nil {
		t.Fatal(err)
	}
	o, err := Open(want, goldenCreated)
	if err != nil {
		t.Fatalf("Open(golden) = %v", err)
	}
	if o.CID().String() != goldenCID {
		t.Errorf("decoded golden CID = %s", o.CID())
	}
}

func signT(t testing.TB, key crypto.PrivKey, kind Kind, community cid.Cid, body any) *Record {
	t.Helper()
	r, err := Sign(key, kind, community, body, goldenCreated)
	if err != nil {
		t.Fatalf("Sign(%s) = %v", kind, err)
	}
	return r
}

func TestRoundTripEveryKind(t *testing.T) {
	key := newKey(t)
	for _, kind := range Kinds() {
		t.Run(string(kind), func(t *testing.T) {
			community := testCommunity
			if kind == KindCommunity {
				community = cid.Undef
			}
			body := goldenBody{Msg: string(kind), Score: -1, Tags: []string{}}
			r := signT(t, key, kind, community, body)
			b, err := r.Encode()
			if err != nil {
				t.Fatal(err)
			}
			o, err := Open(b, goldenCreated.Add(time.Hour))
			if err != nil {
				t.Fatalf("Open = %v", err)
			}
			if o.Kind != kind || o.Community != community || o.Author != r.Author ||
				o.Created != goldenCreated.UnixMilli() || o.V != Version {
				t.Fatalf("round trip changed fields: %+v", o)
			}
			if !o.CreatedTime().Equal(goldenCreated) {
				t.Fatalf("CreatedTime = %v", o.CreatedTime())
			}
			if o.CID() != r.CID() || o.CID() != sum(b) {
				t.Fatal("CID not stable across encode/decode")
			}
			var got goldenBody
			if err := o.DecodeBody(&got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, body) {
				t.Fatalf("body = %+v, want %+v", got, body)
			}
			if p := o.CID().Prefix(); p.Version != 1 || p.Codec != cid.DagCBOR || p.MhType != mh.SHA2_256 {
				t.Fatalf("CID prefix = %+v", p)
			}
			// Verify cuts the signing input out of the received bytes; it
			// must be exactly what Sign signed.
			input, err := o.signingInput()
			if err != nil {
				t.Fatal(err)
			}
			cut, ok := cutSig(o.raw, o.Sig)
			if !ok || !bytes.Equal(cut, input) {
				t.Fatalf("cutSig = %x, %v; want %x", cut, ok, input)
			}
			if !bytes.Equal(o.Raw(), b) {
				t.Fatal("Raw is not the encoding")
			}
		})
	}
}

// cutSig declines anything not laid out as a canonical envelope, and Verify
// then falls back to encoding the signing input.
func TestCutSigDeclines(t *testing.T) {
	r := goldenRecord(t)
	raw := r.Raw()
	if _, ok := cutSig(raw, r.Sig); !ok {
		t.Fatal("cutSig declined the golden record")
	}
	other := bytes.Clone(r.Sig)
	other[0] ^= 1
	for name, c := range map[string]struct{ raw, sig []byte }{
		"other sig":    {raw, other},
		"short":        {raw[:40], r.Sig},
		"empty":        {nil, r.Sig},
		"not a map":    {append([]byte{0x80}, raw[1:]...), r.Sig},
		"other v":      {append([]byte{raw[0], 0x61, 'v', 2}, raw[4:]...), r.Sig},
		"sig not next": {append(append([]byte{}, raw[:4]...), raw[5:]...), r.Sig},
	} {
		if _, ok := cutSig(c.raw, c.sig); ok {
			t.Errorf("%s: cutSig accepted", name)
		}
	}
	lit := &Record{V: r.V, Kind: r.Kind, Community: r.Community, Author: r.Author, Created: r.Created, Body: r.Body, Sig: r.Sig}
	if err := lit.Verify(); err != nil {
		t.Fatalf("Verify of a literal record (no raw) = %v", err)
	}
}

// A record built by hand (not by Sign or Decode) encodes and hashes the same.
func TestLiteralRecordMatches(t *testing.T) {
	r := goldenRecord(t)
	lit := &Record{V: r.V, Kind: r.Kind, Community: r.Community, Author: r.Author, Created: r.Created, Body: r.Body, Sig: r.Sig}
	a, _ := r.Encode()
	b, err := lit.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) || lit.CID() != r.CID() {
		t.Fatal("literal record encodes differently")
	}
	if err := lit.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestEncodeReturnsCopy(t *testing.T) {
	r := goldenRecord(t)
	b, _ := r.Encode()
	id := r.CID()
	b[0] ^= 0xff
	again, _ := r.Encode()
	if again[0] == b[0] || r.CID() != id {
		t.Fatal("Encode exposed the cached encoding")
	}
}

type bodyAB struct {
	Alpha string `cbor:"alpha"`
	B     int64  `cbor:"b"`
	Items []int  `cbor:"items"`
}

type bodyBA struct {
	Items []int  `cbor:"items"`
	B     int64  `cbor:"b"`
	Alpha string `cbor:"alpha"`
}

func TestBodyKeyOrderIndependent(t *testing.T) {
	key := goldenKey(t)
	bodies := []any{
		bodyAB{Alpha: "x", B: 2, Items: []int{1, 2}},
		bodyBA{Alpha: "x", B: 2, Items: []int{1, 2}},
		map[string]any{"items": []int{1, 2}, "alpha": "x", "b": 2},
	}
	var first cid.Cid
	for i, body := range bodies {
		r := signT(t, key, KindVote, testCommunity, body)
		if i == 0 {
			first = r.CID()
			continue
		}
		if r.CID() != first {
			t.Fatalf("body %d (%T) has CID %s, want %s", i, body, r.CID(), first)
		}
	}
}

func TestSignRejects(t *testing.T) {
	key := newKey(t)
	secp, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v0, err := cid.Decode("QmPZ9gcCEpqKTo6aq61g2nXGUhM4iCL3ewB6LDXZCtioEB")
	if err != nil {
		t.Fatal(err)
	}
	raw := cid.NewCidV1(cid.Raw, testCommunity.Hash())
	body := goldenBody{Msg: "x"}
	tests := []struct {
		name      string
		key       crypto.PrivKey
		kind      Kind
		community cid.Cid
		body      any
		created   time.Time
		want      error
	}{
		{"nil key", nil, KindVote, testCommunity, body, goldenCreated, ErrBadAuthor},
		{"secp256k1 key", secp, KindVote, testCommunity, body, goldenCreated, ErrBadAuthor},
		{"unknown kind", key, "bogus", testCommunity, body, goldenCreated, ErrUnknownKind},
		{"empty kind", key, "", testCommunity, body, goldenCreated, ErrUnknownKind},
		{"no community", key, KindVote, cid.Undef, body, goldenCreated, ErrBadCommunity},
		{"cidv0 community", key, KindVote, v0, body, goldenCreated, ErrBadCommunity},
		{"raw codec community", key, KindVote, raw, body, goldenCreated, ErrBadCommunity},
		{"float body", key, KindVote, testCommunity, map[string]any{"x": 0.5}, goldenCreated, ErrMalformed},
		{"int body", key, KindVote, testCommunity, 7, goldenCreated, ErrMalformed},
		{"nil body", key, KindVote, testCommunity, nil, goldenCreated, ErrMalformed},
		{"array body", key, KindVote, testCommunity, []int{1}, goldenCreated, ErrMalformed},
		{"epoch created", key, KindVote, testCommunity, body, time.UnixMilli(0), ErrMalformed},
		{"too large", key, KindVote, testCommunity, goldenBody{Msg: strings.Repeat("x", MaxSize)}, goldenCreated, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Sign(tt.key, tt.kind, tt.community, tt.body, tt.created)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Sign = %v, %v; want %v", r, err, tt.want)
			}
		})
	}
}

func TestSignLargestBody(t *testing.T) {
	key := goldenKey(t)
	// Find the largest message that fits; records right at the limit work.
	base := signT(t, key, KindVote, testCommunity, goldenBody{})
	b, _ := base.Encode()
	n := MaxSize - len(b) - 3 // the text header grows by up to 3 bytes
	r := signT(t, key, KindVote, testCommunity, goldenBody{Msg: strings.Repeat("x", n)})
	enc, _ := r.Encode()
	if len(enc) > MaxSize {
		t.Fatalf("signed record of %d bytes exceeds MaxSize", len(enc))
	}
	if _, err := Open(enc, goldenCreated); err != nil {
		t.Fatal(err)
	}
}

// mutate re-encodes a valid record's wire form after f changed it, without
// re-signing.
func mutate(t testing.TB, r *Record, f func(w *wireRecord)) []byte {
	t.Helper()
	w := r.toWire()
	f(&w)
	b, err := canon.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRejects(t *testing.T) {
	r := goldenRecord(t)
	good, _ := r.Encode()

	secp, _, _ := crypto.GenerateSecp256k1Key(rand.Reader)
	secpID, _ := peer.IDFromPrivateKey(secp)
	hashedID, _ := mh.Sum([]byte("some rsa key"), mh.SHA2_256, -1)
	otherCodec := cid.NewCidV1(cid.Raw, testCommunity.Hash())
	sha512, _ := mh.Sum([]byte("x"), mh.SHA2_512, -1)
	v0, _ := cid.Decode("QmPZ9gcCEpqKTo6aq61g2nXGUhM4iCL3ewB6LDXZCtioEB")
	badPrefixAuthor := append([]byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20}, make([]byte, 31)...)
	// Same key, protobuf with the fields swapped: valid protobuf, wrong form.
	swapped := append([]byte{0x00, 0x24, 0x12, 0x20}, r.Author[6:]...)
	swapped = append(swapped, 0x08, 0x01)

	type env map[string]any
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"too large garbage", bytes.Repeat([]byte{0xff}, MaxSize+1), ErrTooLarge},
		{"too large valid cbor", mutate(t, r, func(w *wireRecord) { w.Body, _ = canon.Marshal(goldenBody{Msg: strings.Repeat("x", MaxSize)}) }), ErrTooLarge},
		{"empty", nil, ErrMalformed},
		{"garbage", []byte("hello"), ErrMalformed},
		{"not a map", []byte{0x01}, ErrMalformed},
		{"array", []byte{0x80}, ErrMalformed},
		{"trailing byte", append(bytes.Clone(good), 0x00), ErrMalformed},
		{"truncated", good[:len(good)-1], ErrMalformed},
		{"unknown field", mustMarshal(t, env{"v": 1, "kind": "vote", "author": []byte(r.Author), "created": 1, "body": map[string]any{}, "sig": r.Sig, "extra": 1}), ErrMalformed},
		{"v wrong type", mustMarshal(t, env{"v": "1", "kind": "vote"}), ErrMalformed},
		{"float created", mustHex(t, "a2 6176 01 67637265617465 64 f93c00"), ErrMalformed},
		{"tag in body", bytes.Replace(good, r.Body, []byte{0xa1, 0x61, 0x61, 0xc1, 0x01}, 1), ErrMalformed},
		{"float in body", bytes.Replace(good, r.Body, []byte{0xa1, 0x61, 0x61, 0xf9, 0x3c, 0x00}, 1), ErrMalformed},
		{"undefined in body", bytes.Replace(good, r.Body, []byte{0xa1, 0x61, 0x61, 0xf7}, 1), ErrMalformed},

		{"unsorted keys", mustHex(t, "a2 64 6b696e64 64 766f7465 61 76 01"), ErrNotCanonical},
		{"long int", mustHex(t, "a1 6176 1801"), ErrNotCanonical},
		{"empty sig present", mustMarshal(t, env{"v": 1, "kind": "vote", "author": []byte(r.Author), "created": 1, "body": map[string]any{}, "sig": []byte{}}), ErrNotCanonical},
		{"missing created", mustMarshal(t, env{"v": 1, "kind": "vote", "author": []byte(r.Author), "body": map[string]any{}, "sig": r.Sig, "community": r.Community.Bytes()}), ErrNotCanonical},
		{"non-canonical body", nonCanonicalBody(t, good), ErrNotCanonical},

		{"version 2", mutate(t, r, func(w *wireRecord) { w.V = 2 }), ErrUnknownVersion},
		{"version 0", mutate(t, r, func(w *wireRecord) { w.V = 0 }), ErrUnknownVersion},
		{"version 2 with new fields", mustMarshal(t, env{"v": 2, "kind": "vote", "new": "field"}), ErrUnknownVersion},

		{"unknown kind", mutate(t, r, func(w *wireRecord) { w.Kind = "bogus" }), ErrUnknownKind},
		{"empty kind", mutate(t, r, func(w *wireRecord) { w.Kind = "" }), ErrUnknownKind},
		{"kind case", mutate(t, r, func(w *wireRecord) { w.Kind = "Vote" }), ErrUnknownKind},

		{"no author", mutate(t, r, func(w *wireRecord) { w.Author = nil }), ErrBadAuthor},
		{"secp256k1 author", mutate(t, r, func(w *wireRecord) { w.Author = []byte(secpID) }), ErrBadAuthor},
		{"hashed author", mutate(t, r, func(w *wireRecord) { w.Author = hashedID }), ErrBadAuthor},
		{"short author", mutate(t, r, func(w *wireRecord) { w.Author = badPrefixAuthor }), ErrBadAuthor},
		{"non-canonical author", mutate(t, r, func(w *wireRecord) { w.Author = swapped }), ErrBadAuthor},

		{"no community", mutate(t, r, func(w *wireRecord) { w.Community = nil }), ErrBadCommunity},
		{"garbage community", mutate(t, r, func(w *wireRecord) { w.Community = []byte{1, 2, 3} }), ErrBadCommunity},
		{"cidv0 community", mutate(t, r, func(w *wireRecord) { w.Community = v0.Bytes() }), ErrBadCommunity},
		{"raw codec community", mutate(t, r, func(w *wireRecord) { w.Community = otherCodec.Bytes() }), ErrBadCommunity},
		{"sha512 community", mutate(t, r, func(w *wireRecord) { w.Community = cid.NewCidV1(cid.DagCBOR, sha512).Bytes() }), ErrBadCommunity},
		{"community trailing byte", mutate(t, r, func(w *wireRecord) { w.Community = append(r.Community.Bytes(), 0) }), ErrBadCommunity},

		{"zero created", mutate(t, r, func(w *wireRecord) { w.Created = 0 }), ErrMalformed},
		{"negative created", mutate(t, r, func(w *wireRecord) { w.Created = -1 }), ErrMalformed},
		{"null body", mutate(t, r, func(w *wireRecord) { w.Body = nil }), ErrMalformed},
		{"int body", mutate(t, r, func(w *wireRecord) { w.Body = canon.RawMessage{0x01} }), ErrMalformed},
		{"array body", mutate(t, r, func(w *wireRecord) { w.Body = canon.RawMessage{0x80} }), ErrMalformed},
		{"missing body", mustMarshal(t, env{"v": 1, "kind": "vote", "author": []byte(r.Author), "created": 1, "sig": r.Sig, "community": r.Community.Bytes()}), ErrNotCanonical},

		{"no sig", mutate(t, r, func(w *wireRecord) { w.Sig = nil }), ErrBadSignature},
		{"short sig", mutate(t, r, func(w *wireRecord) { w.Sig = r.Sig[:63] }), ErrBadSignature},
		{"long sig", mutate(t, r, func(w *wireRecord) { w.Sig = append(bytes.Clone(r.Sig), 0) }), ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %v, want %v", err, tt.want)
			}
			if _, err := Open(tt.in, goldenCreated); !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
		})
	}
}

// An explicitly empty community key is a second encoding of a genesis.
func TestDecodeRejectsEmptyCommunityKey(t *testing.T) {
	g := signT(t, goldenKey(t), KindCommunity, cid.Undef, goldenBody{})
	b, err := canon.Marshal(map[string]any{
		"v": g.V, "kind": string(g.Kind), "community": []byte{}, "author": []byte(g.Author),
		"created": g.Created, "body": g.Body, "sig": g.Sig,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(b); !errors.Is(err, ErrNotCanonical) {
		t.Fatalf("Decode = %v, want ErrNotCanonical", err)
	}
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := canon.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nonCanonicalBody swaps the golden body's score for a two-byte encoding of
// the same value inside otherwise valid bytes.
func nonCanonicalBody(t testing.TB, good []byte) []byte {
	t.Helper()
	// score 915 = 0x19 0x0393; write it as 0x1a 0x00000393.
	old := []byte{0x65, 's', 'c', 'o', 'r', 'e', 0x19, 0x03, 0x93}
	i := bytes.Index(good, old)
	if i < 0 {
		t.Fatal("golden score not found")
	}
	out := append([]byte{}, good[:i+6]...)
	out = append(out, 0x1a, 0x00, 0x00, 0x03, 0x93)
	out = append(out, good[i+len(old):]...)
	// the body map header is unchanged, but the body is now 2 bytes longer;
	// RawMessage carries no length of its own, so the envelope stays framed.
	return out
}

func TestTamperedFieldsFailVerify(t *testing.T) {
	r := goldenRecord(t)
	other := signT(t, newKey(t), KindFeedback, testCommunity, goldenBody{})
	tests := []struct {
		name string
		f    func(w *wireRecord)
	}{
		{"body", func(w *wireRecord) {
			w.Body = mustMarshal(t, goldenBody{Msg: "hello agorb", Score: 915, Tags: []string{"a", "b"}})
		}},
		{"created", func(w *wireRecord) { w.Created++ }},
		{"kind", func(w *wireRecord) { w.Kind = string(KindAttestation) }},
		{"author", func(w *wireRecord) { w.Author = []byte(other.Author) }},
		{"community", func(w *wireRecord) { w.Community = mustSum([]byte("other")).Bytes() }},
		{"sig", func(w *wireRecord) { w.Sig = bytes.Clone(w.Sig); w.Sig[10] ^= 1 }},
		{"sig from other record", func(w *wireRecord) { w.Sig = other.Sig }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mutate(t, r, tt.f)
			d, err := Decode(b)
			if err != nil {
				t.Fatalf("tampered record should decode: %v", err)
			}
			if err := d.Verify(); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Verify = %v, want ErrBadSignature", err)
			}
			if _, err := Open(b, goldenCreated); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Open = %v, want ErrBadSignature", err)
			}
		})
	}
}

// Flipping any bit of a record must make Open fail: nothing in the encoding
// is outside the signature or the canonical form.
func TestEveryBitFlipRejected(t *testing.T) {
	good, _ := goldenRecord(t).Encode()
	for i := range good {
		for bit := 0; bit < 8; bit++ {
			b := bytes.Clone(good)
			b[i] ^= 1 << bit
			if _, err := Open(b, goldenCreated.Add(time.Hour)); err == nil {
				t.Fatalf("flipping bit %d of byte %d was accepted", bit, i)
			}
		}
	}
}

func TestCheckClock(t *testing.T) {
	now := goldenCreated
	tests := []struct {
		name    string
		created int64
		want    error
	}{
		{"now", now.UnixMilli(), nil},
		{"past", 1, nil},
		{"at skew limit", now.Add(MaxClockSkew).UnixMilli(), nil},
		{"just past skew", now.Add(MaxClockSkew).UnixMilli() + 1, ErrFromFuture},
		{"far future", math.MaxInt64, ErrFromFuture},
		{"zero", 0, ErrMalformed},
		{"negative", math.MinInt64, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Record{Created: tt.created}
			err := r.CheckClock(now)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("CheckClock = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestOpenFromFuture(t *testing.T) {
	r := goldenRecord(t)
	b, _ := r.Encode()
	if _, err := Open(b, goldenCreated.Add(-MaxClockSkew-time.Millisecond)); !errors.Is(err, ErrFromFuture) {
		t.Fatalf("Open = %v, want ErrFromFuture", err)
	}
}

func TestDecodeBodyStrict(t *testing.T) {
	r := goldenRecord(t)
	var wrong struct {
		Msg string `cbor:"msg"`
	}
	if err := r.DecodeBody(&wrong); !errors.Is(err, ErrMalformed) {
		t.Fatalf("DecodeBody into a struct missing fields = %v, want ErrMalformed", err)
	}
	var typed struct {
		Msg   int64    `cbor:"msg"`
		Score int64    `cbor:"score"`
		Tags  []string `cbor:"tags"`
	}
	if err := r.DecodeBody(&typed); !errors.Is(err, ErrMalformed) {
		t.Fatalf("DecodeBody with a wrong type = %v, want ErrMalformed", err)
	}
}

func TestAuthorKeyMatchesLibp2p(t *testing.T) {
	for i := 0; i < 10; i++ {
		k := newKey(t)
		id, err := peer.IDFromPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		pk, err := AuthorKey(id)
		if err != nil {
			t.Fatalf("AuthorKey(%s) = %v", id, err)
		}
		if !pk.Equals(k.GetPublic()) {
			t.Fatal("AuthorKey returned another key")
		}
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		err   error
		code  string
		fault bool
	}{
		{nil, "", false},
		{errors.New("x"), "other", false},
		{fmt.Errorf("wrapped: %w", ErrTooLarge), "too-large", true},
		{ErrMalformed, "malformed", true},
		{ErrNotCanonical, "not-canonical", true},
		{ErrUnknownVersion, "unknown-version", false},
		{ErrUnknownKind, "unknown-kind", false},
		{ErrBadAuthor, "bad-author", true},
		{ErrBadSignature, "bad-signature", true},
		{ErrFromFuture, "from-future", false},
		{ErrBadCommunity, "bad-community", true},
	}
	for _, tt := range tests {
		if got := Reason(tt.err); got != tt.code {
			t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.code)
		}
		if got := IsSenderFault(tt.err); got != tt.fault {
			t.Errorf("IsSenderFault(%v) = %v, want %v", tt.err, got, tt.fault)
		}
	}
}

func TestKinds(t *testing.T) {
	seen := map[Kind]bool{}
	for _, k := range Kinds() {
		if !k.Valid() || seen[k] {
			t.Fatalf("kind %q invalid or repeated", k)
		}
		seen[k] = true
	}
	if len(seen) != 8 {
		t.Fatalf("%d kinds", len(seen))
	}
	for _, k := range []Kind{"", "Vote", "votes", "community "} {
		if k.Valid() {
			t.Fatalf("%q is valid", k)
		}
	}
}

func FuzzDecode(f *testing.F) {
	key := goldenKey(f)
	g := goldenRecord(f)
	gb, _ := g.Encode()
	f.Add(gb)
	for _, kind := range Kinds() {
		community := testCommunity
		if kind == KindCommunity {
			community = cid.Undef
		}
		r := signT(f, key, kind, community, map[string]any{"n": 1, "s": "x", "l": []any{nil, true, []byte{1}}})
		b, _ := r.Encode()
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xa0})
	f.Add(mustHex(f, "a1 6176 02"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decode(data)
		if err != nil {
			if r != nil {
				t.Fatal("Decode returned a record and an error")
			}
			if Reason(err) == "other" {
				t.Fatalf("Decode error without a reason: %v", err)
			}
			return
		}
		b, err := r.Encode()
		if err != nil {
			t.Fatalf("Encode after Decode: %v", err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("Encode changed the bytes:\n in %x\nout %x", data, b)
		}
		if r.CID() != sum(data) {
			t.Fatal("CID is not the hash of the input")
		}
		lit := &Record{V: r.V, Kind: r.Kind, Community: r.Community, Author: r.Author, Created: r.Created, Body: r.Body, Sig: r.Sig}
		if lit.CID() != r.CID() {
			t.Fatal("fields re-encode to another CID")
		}
		_ = r.Verify()
		_ = r.CheckClock(goldenCreated)
		var v any
		_ = r.DecodeBody(&v)
	})
}
