package task

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/agora-p2p/agora/protocol/canon"
)

func canonMarshal(v any) ([]byte, error) { return canon.Marshal(v) }

func FuzzDecode(f *testing.F) {
	for _, fr := range frames(f) {
		b, err := Encode(fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Encode(fr)
		if err != nil {
			t.Fatalf("decoded frame does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatal("a frame decoded from a non-canonical encoding")
		}
	})
}

func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	for _, fr := range frames(f) {
		_ = Write(&buf, fr)
	}
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for range 20 {
			if _, err := Read(r, MaxFrame); err != nil {
				return
			}
		}
	})
}

func FuzzDecodeReceipt(f *testing.F) {
	r, k := sampleReceipt(f)
	raw, err := r.Sign(k)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Fuzz(func(t *testing.T, b []byte) {
		// Whatever DecodeReceipt takes, DecodeStoredReceipt takes too.
		st, stErr := DecodeStoredReceipt(b)
		if stErr == nil {
			// The signing input cut out of the encoding is the one
			// encoded afresh, and putting the signature back gives the
			// encoding.
			slow, err := st.signingInput()
			if err != nil {
				t.Fatal(err)
			}
			if fast, ok := unsignedFrom(b); !ok || !bytes.Equal(fast, slow) {
				t.Fatalf("signing input cut from the encoding (%v): %x, encoded: %x", ok, fast, slow)
			}
			if enc, ok := signedFrom(slow, st.Sig); !ok || !bytes.Equal(enc, b) {
				t.Fatalf("encoding from the signing input (%v): %x, want %x", ok, enc, b)
			}
		}
		r, err := DecodeReceipt(b)
		if err != nil {
			return
		}
		if stErr != nil || st.CID() != r.CID() {
			t.Fatalf("DecodeReceipt took it, DecodeStoredReceipt: %v", stErr)
		}
		if !bytes.Equal(r.Raw(), b) {
			t.Fatal("receipt raw differs from its input")
		}
	})
}

// FuzzValidNames checks ValidID and ValidSkill against the regular
// expressions that define them (docs/protocol.md).
func FuzzValidNames(f *testing.F) {
	id := regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`)
	skill := regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)
	for _, s := range []string{"", "text.stats", "Text.stats", ".x", "abcdefgh", "abc_EFG-h", "abcdefg", strings.Repeat("a", 64), strings.Repeat("a", 65),
		strings.Repeat("b", 128), strings.Repeat("b", 129), "a b", "é", "a\x00", "x-y_z.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidID(s), id.MatchString(s); got != want {
			t.Errorf("ValidID(%q) = %v, the expression says %v", s, got, want)
		}
		if got, want := ValidSkill(s), skill.MatchString(s); got != want {
			t.Errorf("ValidSkill(%q) = %v, the expression says %v", s, got, want)
		}
	})
}
