package recon

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	wire "github.com/agora-p2p/agora/protocol/recon"
)

// le builds a 32-byte little-endian ID from hex written most significant
// byte first, as numbers are usually written.
func le(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) > 32 {
		t.Fatalf("bad test number %q", s)
	}
	out := make([]byte, 32)
	for i, c := range b {
		out[len(b)-1-i] = c
	}
	return out
}

func TestSumArithmetic(t *testing.T) {
	max := "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
	tests := []struct {
		name string
		add  []string
		sub  []string
		want string
	}{
		{"nothing", nil, nil, "00"},
		{"one", []string{"01"}, nil, "01"},
		{"carry within a limb", []string{"ff", "01"}, nil, "0100"},
		{"carry across a limb", []string{"ffffffffffffffff", "01"}, nil, "010000000000000000"},
		{"carry across every limb", []string{"ffffffffffffffffffffffffffffffffffffffffffffffff", "01"}, nil, "01000000000000000000000000000000000000000000000000"},
		{"wraps at 2^256", []string{max, "01"}, nil, "00"},
		{"wraps to max-1", []string{max, max}, nil, "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe"},
		{"borrow below zero", nil, []string{"01"}, max},
		{"borrow across limbs", []string{"010000000000000000"}, []string{"01"}, "ffffffffffffffff"},
		{"add then sub", []string{"1234", "abcdef"}, []string{"1234"}, "abcdef"},
		// With XOR, an ID added twice would cancel out; with addition it
		// doubles.
		{"no XOR cancelling", []string{"0f", "0f"}, nil, "1e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Sum
			for _, a := range tt.add {
				s.Add(le(t, a))
			}
			for _, x := range tt.sub {
				s.Sub(le(t, x))
			}
			got := s.Bytes()
			want := le(t, tt.want)
			if string(got[:]) != string(want) {
				t.Fatalf("sum = %x, want %x (little-endian)", got, want)
			}
		})
	}
}

// The fingerprint vector of docs/protocol.md §8.6, computed independently.
func TestFingerprintVector(t *testing.T) {
	var s Sum
	s.Add(bytesOf(0x01))
	s.Add(bytesOf(0xff))
	b := s.Bytes()
	if got := hex.EncodeToString(b[:]); got != "00"+strings.Repeat("01", 31) {
		t.Fatalf("sum = %s", got)
	}
	for _, tt := range []struct {
		count int
		want  string
	}{
		{2, "a45b81d5bd8f90ade27ed6ec281d7f3e"},
		{300, "9d10a5892c074716dc68c54c1b3e700b"},
	} {
		fp := s.Fingerprint(tt.count)
		if got := hex.EncodeToString(fp[:]); got != tt.want {
			t.Fatalf("count %d: fingerprint %s, want %s", tt.count, got, tt.want)
		}
	}
}

func bytesOf(b byte) []byte { return bytes.Repeat([]byte{b}, wire.IDSize) }

func TestSumProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	items := genItems(rng, 200, 1000)
	var fwd, rev, split Sum
	for _, it := range items {
		fwd.Add(it.digest())
	}
	for _, it := range slices.Backward(items) {
		rev.Add(it.digest())
	}
	if fwd != rev {
		t.Fatal("sum depends on order")
	}
	var lo, hi Sum
	for _, it := range items[:77] {
		lo.Add(it.digest())
	}
	for _, it := range items[77:] {
		hi.Add(it.digest())
	}
	split = lo
	split.AddSum(hi)
	if split != fwd {
		t.Fatal("AddSum of halves differs from the whole")
	}
	split.SubSum(hi)
	if split != lo {
		t.Fatal("SubSum does not undo AddSum")
	}
	if fwd.Fingerprint(200) == fwd.Fingerprint(199) {
		t.Fatal("count does not enter the fingerprint")
	}
	b := fwd.Bytes()
	if fwd.Fingerprint(200) != wire.FingerprintOf(&b, 200) {
		t.Fatal("Fingerprint disagrees with the protocol's definition")
	}
}
