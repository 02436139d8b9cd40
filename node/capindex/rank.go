package capindex

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Score is a provider's rank score, higher first: the product of
//
//   - its success rate (Laplace-smoothed, so an untried provider has 0.5),
//   - a latency factor 1 / (1 + latency/250 ms), 0.8 when no latency has
//     been observed (between a fast and a slow one),
//   - a load factor 1 - 0.75·load (a fully loaded provider keeps a quarter
//     of its score: it may still answer, but later),
//   - a trust factor 0.5 + Trust/1000 (a newcomer keeps half its score, the
//     most trusted peer gets half again as much),
//   - ×1.25 when its agent or node is certified.
//
// A distrusted provider scores 0 and Rank puts it last.
func Score(p Provider) float64 {
	if p.Distrusted {
		return 0
	}
	lat := 0.8
	if p.Stats.LatencyMS > 0 {
		lat = 1 / (1 + p.Stats.LatencyMS/250)
	}
	load := 1 - 0.75*math.Min(math.Max(p.Load, 0), 1)
	s := p.Stats.SuccessRate() * lat * load * (0.5 + float64(min(max(p.Trust, 0), 1000))/1000)
	if p.Certified {
		s *= 1.25
	}
	return s
}

// Rank orders providers by Score, best first; ties go to the lower load,
// then the lower peer ID, then agent name, so the order is deterministic.
// It returns a new slice.
func Rank(ps []Provider) []Provider { return rank(ps, nil) }

// RankFrom is Rank as seen by requester self: ties of score and load go
// to the provider that ranks first in rendezvous hashing of (self,
// provider), not to the lowest peer ID. Every requester orders the same
// providers the same way each time, but different requesters spread over
// equally good providers instead of all choosing the same one (which a
// fresh community, where nobody has observed anybody yet, is all ties).
func RankFrom(self peer.ID, ps []Provider) []Provider {
	return rank(ps, func(p Provider) uint64 {
		h := sha256.New()
		h.Write([]byte(self))
		h.Write([]byte{0})
		h.Write([]byte(p.Peer))
		return binary.BigEndian.Uint64(h.Sum(nil))
	})
}

func rank(ps []Provider, weight func(Provider) uint64) []Provider {
	out := slices.Clone(ps)
	var w map[peer.ID]uint64
	if weight != nil {
		w = make(map[peer.ID]uint64, len(out))
		for _, p := range out {
			w[p.Peer] = weight(p)
		}
	}
	slices.SortStableFunc(out, func(a, b Provider) int {
		sa, sb := Score(a), Score(b)
		switch {
		case a.Distrusted != b.Distrusted:
			if b.Distrusted {
				return -1
			}
			return 1
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		case a.Load != b.Load:
			if a.Load < b.Load {
				return -1
			}
			return 1
		case w != nil && w[a.Peer] != w[b.Peer]:
			if w[a.Peer] > w[b.Peer] {
				return -1
			}
			return 1
		case a.Peer != b.Peer:
			if a.Peer < b.Peer {
				return -1
			}
			return 1
		case a.Agent < b.Agent:
			return -1
		case a.Agent > b.Agent:
			return 1
		}
		return 0
	})
	return out
}
