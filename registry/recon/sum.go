package recon

import (
	"encoding/binary"
	"math/bits"

	wire "github.com/agora-p2p/agora/protocol/recon"
)

// Sum is a sum of wire IDs modulo 2^256, each ID read as a little-endian
// 256-bit integer. Its limbs are little-endian too. The zero value is the
// sum of no IDs. Because addition has an inverse, the sum of a range is the
// difference of two prefix sums.
type Sum [4]uint64

// Add adds a wire ID (wire.IDSize bytes) to s.
func (s *Sum) Add(id []byte) {
	var c uint64
	for i := range s {
		s[i], c = bits.Add64(s[i], binary.LittleEndian.Uint64(id[8*i:]), c)
	}
}

// Sub subtracts a wire ID from s.
func (s *Sum) Sub(id []byte) {
	var b uint64
	for i := range s {
		s[i], b = bits.Sub64(s[i], binary.LittleEndian.Uint64(id[8*i:]), b)
	}
}

// AddSum adds o to s.
func (s *Sum) AddSum(o Sum) {
	var c uint64
	for i := range s {
		s[i], c = bits.Add64(s[i], o[i], c)
	}
}

// SubSum subtracts o from s.
func (s *Sum) SubSum(o Sum) {
	var b uint64
	for i := range s {
		s[i], b = bits.Sub64(s[i], o[i], b)
	}
}

// Bytes returns s as 32 little-endian bytes.
func (s Sum) Bytes() [32]byte {
	var b [32]byte
	for i, l := range s {
		binary.LittleEndian.PutUint64(b[8*i:], l)
	}
	return b
}

// Fingerprint returns the fingerprint of count items whose IDs sum to s.
func (s Sum) Fingerprint(count int) wire.Fingerprint {
	b := s.Bytes()
	return wire.FingerprintOf(&b, uint64(count))
}
