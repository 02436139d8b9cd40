package governance

import (
	"math"

	"github.com/libp2p/go-libp2p/core/peer"
)

// MemberWeight is one member's vote under WeightMember.
const MemberWeight = 1000

// TrustScale turns a community trust share (the shares sum to 1) into an
// integer weight under WeightTrust.
const TrustScale = 1_000_000

// MemberWeights gives MemberWeight to every peer whose level (its community
// trust in thousandths, or whatever level the caller ranks members by) is
// above floor, and no weight to the others.
func MemberWeights(levels map[peer.ID]int64, floor int64) map[peer.ID]uint64 {
	w := make(map[peer.ID]uint64, len(levels))
	for id, l := range levels {
		if l > floor {
			w[id] = MemberWeight
		}
	}
	return w
}

// TrustWeights gives every peer math.Round(TrustScale·trust): a float64
// product, correctly rounded by IEEE 754, then rounded half away from zero,
// which every platform computes identically. Trust above 1 counts as 1;
// NaN, negative and zero trust give no weight, and such peers are left out.
// The rounded weights of a trust vector that sums to 1 sum to TrustScale
// give or take half a unit per peer.
func TrustWeights(trust map[peer.ID]float64) map[peer.ID]uint64 {
	w := make(map[peer.ID]uint64, len(trust))
	for id, t := range trust {
		if !(t > 0) { // also NaN
			continue
		}
		t = min(t, 1)
		if x := uint64(math.Round(TrustScale * t)); x > 0 {
			w[id] = x
		}
	}
	return w
}
