package body

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agora-p2p/agora/protocol/canon"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

func newKey(t testing.TB) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func recordID(t testing.TB, s string) cid.Cid {
	t.Helper()
	c, err := recordPrefix.Sum([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func digest(t testing.TB, s string) []byte {
	t.Helper()
	h, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

const testPeer = "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5"

func validAttestation(t testing.TB) Attestation {
	return Attestation{
		Subject:   Subject{Type: SubjectSkill, ID: "text.summarize", Digest: digest(t, "v1.2")},
		Predicate: "agora:audit/deterministic/v1",
		Verdict:   VerdictPass,
		Claims:    map[string]string{"samples": "20", "matched": "20"},
		Evidence:  "re-ran 20 receipts on another provider\noutputs identical",
		Expires:   1767225600000 + 30*24*3600*1000,
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

func TestAttestationRoundTrip(t *testing.T) {
	subjects := []Subject{
		{Type: SubjectPeer, ID: testPeer},
		{Type: SubjectAgent, ID: testPeer + "/summarizer"},
		{Type: SubjectSkill, ID: "text.summarize", Digest: digest(t, "x")},
		{Type: SubjectCode, ID: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},
		{Type: SubjectCode, ID: "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"},
		{Type: SubjectReceipt, ID: recordID(t, "receipt").String()},
		{Type: SubjectRecord, ID: recordID(t, "record").String()},
	}
	for _, s := range subjects {
		t.Run(string(s.Type), func(t *testing.T) {
			a := validAttestation(t)
			a.Subject = s
			raw := mustMarshal(t, a)
			got, err := Decode(record.KindAttestation, raw)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, a) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, a)
			}
			var viaCanon Attestation
			if err := canon.Unmarshal(raw, &viaCanon); err != nil || !reflect.DeepEqual(viaCanon, a) {
				t.Fatalf("canon.Unmarshal = %v, %#v", err, viaCanon)
			}
		})
	}
}

func TestAttestationMinimal(t *testing.T) {
	a := Attestation{Subject: Subject{Type: SubjectPeer, ID: testPeer}, Predicate: "agora:x", Verdict: VerdictWarn}
	raw := mustMarshal(t, a)
	// Optional keys are omitted when empty: exactly subject, verdict, predicate.
	var m map[string]canon.RawMessage
	if err := canon.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 3 {
		t.Fatalf("minimal attestation has keys %v, want subject, verdict, predicate", m)
	}
	if _, err := DecodeAttestation(raw); err != nil {
		t.Fatal(err)
	}
}

// TestAttestationGolden pins the wire form; changing it changes record IDs.
func TestAttestationGolden(t *testing.T) {
	a := Attestation{
		Subject:   Subject{Type: SubjectSkill, ID: "text.summarize"},
		Predicate: "agora:audit/v1",
		Verdict:   VerdictPass,
		Claims:    map[string]string{"n": "3"},
		Expires:   1767225600000,
	}
	const want = "a5" +
		"66636c61696d73" + "a1" + "616e" + "6133" + // claims: {n: "3"}
		"6765787069726573" + "1b0000019b76daa800" + // expires
		"677375626a656374" + "a2" + "626964" + "6e746578742e73756d6d6172697a65" + "6474797065" + "65736b696c6c" + // subject
		"6776657264696374" + "6470617373" + // verdict: pass
		"69707265646963617465" + "6e61676f72613a61756469742f7631" // predicate
	if got := hex.EncodeToString(mustMarshal(t, a)); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
	r := Revocation{Target: recordID(t, "target"), Reason: "wrong"}
	wantRev := "a2" + "66726561736f6e" + "6577726f6e67" + "66746172676574" + "5824" + hex.EncodeToString(r.Target.Bytes())
	if got := hex.EncodeToString(mustMarshal(t, r)); got != wantRev {
		t.Fatalf("revocation encoding\n got %s\nwant %s", got, wantRev)
	}
}

func TestAttestationInvalid(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	claims := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m["k"+strings.Repeat("x", i)] = "v"
		}
		return m
	}
	tests := []struct {
		name   string
		change func(*Attestation)
		want   error
	}{
		{"no subject type", func(a *Attestation) { a.Subject.Type = "" }, ErrInvalid},
		{"unknown subject type", func(a *Attestation) { a.Subject.Type = "dataset" }, ErrUnknownField},
		{"no subject ID", func(a *Attestation) { a.Subject.ID = "" }, ErrInvalid},
		{"subject ID too long", func(a *Attestation) { a.Subject.ID = long(MaxSubjectIDBytes + 1) }, ErrInvalid},
		{"skill ID too long", func(a *Attestation) { a.Subject.ID = long(MaxSubjectNameLen + 1) }, ErrInvalid},
		{"skill ID control char", func(a *Attestation) { a.Subject.ID = "text\x1b[31m" }, ErrInvalid},
		{"skill ID bidi override", func(a *Attestation) { a.Subject.ID = "text\u202e" }, ErrInvalid},
		{"skill ID leading space", func(a *Attestation) { a.Subject.ID = " text" }, ErrInvalid},
		{"peer not a peer ID", func(a *Attestation) { a.Subject = Subject{Type: SubjectPeer, ID: "alice"} }, ErrInvalid},
		{"peer ID as CID", func(a *Attestation) {
			id, _ := peer.Decode(testPeer)
			a.Subject = Subject{Type: SubjectPeer, ID: peer.ToCid(id).String()}
		}, ErrInvalid},
		{"code not a CID", func(a *Attestation) { a.Subject = Subject{Type: SubjectCode, ID: "sha256:abc"} }, ErrInvalid},
		{"code CID not canonical", func(a *Attestation) {
			c := recordID(t, "x")
			s, _ := c.StringOfBase('z')
			a.Subject = Subject{Type: SubjectCode, ID: s}
		}, ErrInvalid},
		{"record subject not a record ID", func(a *Attestation) {
			a.Subject = Subject{Type: SubjectRecord, ID: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"}
		}, ErrInvalid},
		{"digest not a multihash", func(a *Attestation) { a.Subject.Digest = []byte{1, 2, 3} }, ErrInvalid},
		{"digest too long", func(a *Attestation) { a.Subject.Digest = make([]byte, MaxSubjectDigestLen+1) }, ErrInvalid},
		{"no predicate", func(a *Attestation) { a.Predicate = "" }, ErrInvalid},
		{"predicate too long", func(a *Attestation) { a.Predicate = "agora:" + long(MaxPredicateLen) }, ErrInvalid},
		{"predicate with space", func(a *Attestation) { a.Predicate = "agora:audit v1" }, ErrInvalid},
		{"predicate with newline", func(a *Attestation) { a.Predicate = "agora:audit\nv1" }, ErrInvalid},
		{"predicate without scheme", func(a *Attestation) { a.Predicate = "audit/v1" }, ErrInvalid},
		{"predicate empty scheme", func(a *Attestation) { a.Predicate = ":audit" }, ErrInvalid},
		{"predicate nothing after scheme", func(a *Attestation) { a.Predicate = "agora:" }, ErrInvalid},
		{"predicate scheme starts with digit", func(a *Attestation) { a.Predicate = "1agora:x" }, ErrInvalid},
		{"no verdict", func(a *Attestation) { a.Verdict = "" }, ErrInvalid},
		{"unknown verdict", func(a *Attestation) { a.Verdict = "PASS" }, ErrUnknownField},
		{"too many claims", func(a *Attestation) { a.Claims = claims(MaxClaims + 1) }, ErrInvalid},
		{"empty claim key", func(a *Attestation) { a.Claims = map[string]string{"": "v"} }, ErrInvalid},
		{"claim key too long", func(a *Attestation) { a.Claims = map[string]string{long(MaxClaimKeyLen + 1): "v"} }, ErrInvalid},
		{"claim key with space", func(a *Attestation) { a.Claims = map[string]string{"a b": "v"} }, ErrInvalid},
		{"claim value too long", func(a *Attestation) { a.Claims = map[string]string{"k": long(MaxClaimValueLen + 1)} }, ErrInvalid},
		{"claim value control char", func(a *Attestation) { a.Claims = map[string]string{"k": "\x07"} }, ErrInvalid},
		{"evidence too long", func(a *Attestation) { a.Evidence = long(MaxEvidenceBytes + 1) }, ErrInvalid},
		{"evidence multibyte too long", func(a *Attestation) { a.Evidence = strings.Repeat("é", MaxEvidenceBytes/2+1) }, ErrInvalid},
		{"negative expiry", func(a *Attestation) { a.Expires = -1 }, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := validAttestation(t)
			tt.change(&a)
			err := a.Validate(0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Validate = %v, want %v", err, tt.want)
			}
			// The decoder applies the same rules to the same value on the wire.
			raw, merr := canon.Marshal(a)
			if merr != nil {
				return
			}
			if _, derr := DecodeAttestation(raw); !errors.Is(derr, tt.want) {
				t.Fatalf("DecodeAttestation = %v, want %v", derr, tt.want)
			}
			if tt.want == ErrUnknownField && errors.Is(err, record.ErrMalformed) {
				t.Fatalf("an unknown value must not count as malformed: %v", err)
			}
			if tt.want == ErrInvalid && !record.IsSenderFault(err) {
				t.Fatalf("an invalid body must be the sender's fault: %v", err)
			}
		})
	}
}

func TestAttestationLimitsInclusive(t *testing.T) {
	a := validAttestation(t)
	a.Predicate = "agora:" + strings.Repeat("p", MaxPredicateLen-len("agora:"))
	a.Claims = map[string]string{}
	for i := range MaxClaims {
		a.Claims[strings.Repeat("k", i+1)] = strings.Repeat("é", MaxClaimValueLen)
	}
	a.Claims[strings.Repeat("k", MaxClaimKeyLen)] = a.Claims["k"]
	delete(a.Claims, "k")
	a.Evidence = strings.Repeat("e", MaxEvidenceBytes)
	a.Subject = Subject{Type: SubjectAgent, ID: strings.Repeat("ü", MaxSubjectNameLen)}
	if err := a.Validate(1); err != nil {
		t.Fatalf("a body at every limit must be valid: %v", err)
	}
	if _, err := DecodeAttestation(mustMarshal(t, a)); err != nil {
		t.Fatalf("DecodeAttestation at limits: %v", err)
	}
}

func TestAttestationExpiry(t *testing.T) {
	a := validAttestation(t)
	created := a.Expires
	if err := a.Validate(created); !errors.Is(err, ErrInvalid) {
		t.Fatalf("expires == created: %v, want ErrInvalid", err)
	}
	if err := a.Validate(created - 1); err != nil {
		t.Fatalf("expires after created: %v", err)
	}
	a.Expires = 0
	if err := a.Validate(created); err != nil {
		t.Fatalf("no expiry: %v", err)
	}
}

func TestDecodeWireErrors(t *testing.T) {
	good := validAttestation(t).toWire()
	asMap := func(change func(m map[string]any)) []byte {
		m := map[string]any{
			"subject":   map[string]any{"type": good.Subject.Type, "id": good.Subject.ID},
			"predicate": good.Predicate,
			"verdict":   good.Verdict,
		}
		change(m)
		return mustMarshal(t, m)
	}
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"not CBOR", []byte{0xff}, record.ErrMalformed},
		{"not a map", mustMarshal(t, []int{1}), record.ErrMalformed},
		{"not canonical", []byte{0xa1, 0x62, 'i', 'd', 0x18, 0x01}, record.ErrNotCanonical},
		{"unknown key", asMap(func(m map[string]any) { m["score"] = 3 }), ErrUnknownField},
		{"unknown subject key", asMap(func(m map[string]any) {
			m["subject"] = map[string]any{"type": "peer", "id": testPeer, "hash": "x"}
		}), ErrUnknownField},
		{"wrong type", asMap(func(m map[string]any) { m["verdict"] = 1 }), record.ErrMalformed},
		{"claims not strings", asMap(func(m map[string]any) { m["claims"] = map[string]any{"k": 1} }), record.ErrMalformed},
		{"missing predicate", asMap(func(m map[string]any) { delete(m, "predicate") }), ErrInvalid},
		{"explicit empty evidence", asMap(func(m map[string]any) { m["evidence"] = "" }), record.ErrNotCanonical},
		{"explicit zero expiry", asMap(func(m map[string]any) { m["expires"] = 0 }), record.ErrNotCanonical},
		{"explicit empty claims", asMap(func(m map[string]any) { m["claims"] = map[string]string{} }), record.ErrNotCanonical},
		{"explicit empty digest", asMap(func(m map[string]any) {
			m["subject"] = map[string]any{"type": "peer", "id": testPeer, "digest": []byte{}}
		}), record.ErrNotCanonical},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeAttestation(tt.raw)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecodeAttestation = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRevocation(t *testing.T) {
	target := recordID(t, "attestation")
	r := Revocation{Target: target, Reason: "the audit sample was too small"}
	raw := mustMarshal(t, r)
	got, err := Decode(record.KindRevocation, raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip: got %#v, want %#v", got, r)
	}
	if _, err := DecodeRevocation(mustMarshal(t, Revocation{Target: target})); err != nil {
		t.Fatalf("no reason: %v", err)
	}

	rawCID, _ := cid.V1Builder{Codec: cid.Raw, MhType: mh.SHA2_256}.Sum([]byte("x"))
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"no target", mustMarshal(t, map[string]any{"reason": "x"}), ErrInvalid},
		{"target not a CID", mustMarshal(t, map[string]any{"target": []byte{1, 2, 3}}), ErrInvalid},
		{"target with trailing bytes", mustMarshal(t, map[string]any{"target": append(target.Bytes(), 0)}), ErrInvalid},
		{"target not a record ID", mustMarshal(t, map[string]any{"target": rawCID.Bytes()}), ErrInvalid},
		{"target as text", mustMarshal(t, map[string]any{"target": target.String()}), record.ErrMalformed},
		{"reason too long", mustMarshal(t, Revocation{Target: target, Reason: strings.Repeat("r", MaxReasonBytes+1)}), ErrInvalid},
		{"reason escape", mustMarshal(t, Revocation{Target: target, Reason: "\x1b[2J"}), ErrInvalid},
		{"explicit empty reason", mustMarshal(t, map[string]any{"target": target.Bytes(), "reason": ""}), record.ErrNotCanonical},
		{"unknown key", mustMarshal(t, map[string]any{"target": target.Bytes(), "supersedes": true}), ErrUnknownField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeRevocation(tt.raw); !errors.Is(err, tt.want) {
				t.Fatalf("DecodeRevocation = %v, want %v", err, tt.want)
			}
		})
	}
	if err := (Revocation{}).Validate(0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty revocation: %v", err)
	}
}

func TestDecodeKinds(t *testing.T) {
	raw := mustMarshal(t, map[string]any{})
	for _, k := range record.Kinds() {
		_, err := Decode(k, raw)
		switch k {
		case record.KindAttestation, record.KindRevocation, record.KindAdvert, record.KindFeedback,
			record.KindProposal, record.KindVote, record.KindTally:
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s with an empty body: %v, want ErrInvalid", k, err)
			}
		default:
			if !errors.Is(err, ErrNotSupported) {
				t.Errorf("%s: %v, want ErrNotSupported", k, err)
			}
		}
	}
	if _, err := Decode("gossip", raw); !errors.Is(err, record.ErrUnknownKind) {
		t.Errorf("unknown kind: %v", err)
	}
}

func TestDecodeRecord(t *testing.T) {
	key := newKey(t)
	community := recordID(t, "community")
	created := time.UnixMilli(1767225600000)
	a := validAttestation(t)
	rec, err := record.Sign(key, record.KindAttestation, community, a, created)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("got %#v, want %#v", got, a)
	}
	var viaRecord Attestation
	if err := rec.DecodeBody(&viaRecord); err != nil || !reflect.DeepEqual(viaRecord, a) {
		t.Fatalf("DecodeBody = %v, %#v", err, viaRecord)
	}

	a.Expires = created.UnixMilli()
	rec, err = record.Sign(key, record.KindAttestation, community, a, created)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeRecord(rec); !errors.Is(err, ErrInvalid) {
		t.Fatalf("expiry at creation: %v, want ErrInvalid", err)
	}
	// A body of the wrong kind is not read as the record's kind.
	rec, err = record.Sign(key, record.KindRevocation, community, validAttestation(t), created)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeRecord(rec); !errors.Is(err, ErrUnknownField) {
		t.Fatalf("attestation body in a revocation: %v", err)
	}
	if _, err := DecodeRecord(nil); !errors.Is(err, record.ErrMalformed) {
		t.Fatalf("nil record: %v", err)
	}
}

func TestErrorsAreSentences(t *testing.T) {
	for _, err := range []error{ErrInvalid, ErrUnknownField, ErrNotSupported} {
		s := err.Error()
		if s == "" || s[0] < 'a' || s[0] > 'z' || !strings.Contains(s, ";") {
			t.Errorf("%q should be a lowercase sentence that says what to do", s)
		}
	}
	if errors.Is(ErrUnknownField, record.ErrMalformed) || errors.Is(ErrNotSupported, record.ErrMalformed) {
		t.Fatal("newer-node errors must not be sender faults")
	}
	if !bytes.Contains([]byte(ErrInvalid.Error()), []byte("compatible")) {
		t.Fatal("ErrInvalid should say the sender is incompatible")
	}
}
