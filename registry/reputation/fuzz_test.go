package reputation

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// FuzzCompute builds ratings over a few peers from the fuzz bytes and
// checks the invariants every result must hold.
func FuzzCompute(f *testing.F) {
	f.Add([]byte{0x03, 0x10, 0x20, 0x01, 0x12, 0xff, 0x10, 0x21, 0x00, 0x02})
	f.Add([]byte{0x00, 0x00, 0x00, 0x00, 0x01, 0x80, 0x00, 0x00, 0x10, 0x00, 0x01, 0x80, 0x01, 0x00})
	f.Add([]byte{0xff, 0xff, 0xff, 0x07, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		peers := []peer.ID{"a", "b", "c", "d", "e", "f", "g", "h"}
		// Header: seed mask, damping, caps, half-life and Before.
		var seeds []peer.ID
		for k := range peers {
			if data[0]&(1<<k) != 0 {
				seeds = append(seeds, peers[k])
			}
		}
		p := Params{
			Damping:       float64(data[1]) / 200, // 0 → default, > 1 → 1
			RaterCap:      float64(data[2]&0x0f) / 8,
			PairCap:       float64(data[2] >> 4),
			HalfLife:      time.Duration(int8(data[3])) * time.Millisecond,
			MaxIterations: 200,
		}
		if data[3]&1 != 0 {
			p.Before = int64(data[3] & 0x3f)
		}
		if data[3]&2 != 0 {
			p.Now = -1 << 62
		}
		// Each rating: rater/ratee (3 bits each) and receipt (2 bits),
		// score, created.
		var rs []Rating
		for b := data[4:]; len(b) >= 4; b = b[4:] {
			created := int64(b[3] & 0x3f)
			if b[3]&0x40 != 0 {
				created = int64(b[3]) << 56 // extremes: ages that overflow int64
			}
			rs = append(rs, Rating{
				Rater:   peers[b[0]&7],
				Ratee:   peers[b[0]>>3&7],
				Receipt: string(rune('w' + b[0]>>6)),
				ID:      string(b[1:2]),
				Score:   int64(int16(binary.BigEndian.Uint16(b[1:3]))) / 16,
				Created: created,
			})
		}
		res := Compute(rs, seeds, p)
		checkInvariants(t, res)
		if res.Iterations > p.MaxIterations || math.IsNaN(res.Residual) {
			t.Fatalf("%d iterations, residual %v", res.Iterations, res.Residual)
		}
		// Order does not matter.
		rev := make([]Rating, len(rs))
		for k := range rs {
			rev[len(rs)-1-k] = rs[k]
		}
		again := Compute(rev, seeds, p)
		for k, e := range again.Entries {
			w := res.Entries[k]
			if e.Peer != w.Peer || math.Float64bits(e.Trust) != math.Float64bits(w.Trust) ||
				math.Float64bits(e.Blame) != math.Float64bits(w.Blame) || e.Feedback != w.Feedback {
				t.Fatalf("reversed input: entry %d = %+v, want %+v", k, e, w)
			}
		}
	})
}
