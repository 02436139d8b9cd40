package governance

import (
	"encoding/binary"
	"reflect"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// FuzzTally builds a proposal, weights and ballots from the fuzz bytes and
// checks the invariants every result must hold.
func FuzzTally(f *testing.F) {
	f.Add([]byte{0x03, 0x00, 0x10, 0x20, 0x01, 0x12, 0xff, 0x10, 0x21, 0x00, 0x02, 0x07, 0x33})
	f.Add([]byte{0x42, 0x01, 0x80, 0x80, 0x11, 0x00, 0x01, 0x80, 0x01, 0x00, 0x91, 0x22, 0x13, 0x04})
	f.Add([]byte{0xff, 0x03, 0xff, 0x07, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c})
	f.Add([]byte{0x25, 0x02, 0x00, 0xff, 0xaa, 0x55, 0x0f, 0xf0, 0x3c, 0xc3, 0x99, 0x66, 0x12, 0x34})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		methods := []string{MethodSingle, MethodApproval, MethodRanked, MethodQuadratic}
		p := Proposal{
			ID: "p", Choices: int(data[0]&0x3f) + 1, Method: methods[data[1]&3], Weighting: WeightTrust,
			Quorum: int64(data[2]) * 4, Threshold: int64(data[3]) * 4, Start: 10, End: 200,
		}
		voters := []peer.ID{"a", "b", "c", "d", "e", "f"}
		w := map[peer.ID]uint64{}
		for i, v := range voters[:5] { // f has no weight
			w[v] = uint64(data[i%len(data)]) * uint64(1+i*1000)
		}
		if data[1]&4 != 0 {
			w["a"] = MaxTotalWeight / 2
		}
		exclude := map[string]bool{}
		var ballots []Ballot
		for rest := data[4:]; len(rest) >= 4; {
			h, n := rest[0], int(rest[1]&7)
			b := Ballot{
				ID:      string(rune('A' + h&0x1f)),
				Voter:   voters[int(h>>5)%len(voters)],
				Created: int64(rest[2]),
			}
			if rest[1]&8 != 0 {
				exclude[b.ID] = true
			}
			rest = rest[3:]
			for range n {
				if len(rest) < 2 {
					break
				}
				b.Choices = append(b.Choices, int(int8(rest[0]))%40)
				b.Credits = append(b.Credits, int64(int8(rest[1]))*8)
				rest = rest[2:]
			}
			ballots = append(ballots, b)
		}
		now := int64(binary.LittleEndian.Uint16([]byte{data[2], data[3]}))

		r := Tally(p, ballots, w, exclude, now)
		if p.Validate() != nil {
			if r.Status != StatusInvalid {
				t.Fatalf("invalid proposal tallied: %s", r.Status)
			}
			return
		}
		if r.Status == StatusInvalid {
			t.Fatal("valid proposal reported invalid")
		}
		if r.Winner < -1 || r.Winner >= p.Choices || r.Leader < -1 || r.Leader >= p.Choices || len(r.Counts) != p.Choices {
			t.Fatalf("winner %d leader %d counts %v", r.Winner, r.Leader, r.Counts)
		}
		if r.Winner >= 0 && (r.Status != StatusPassed || r.Winner != r.Leader) {
			t.Fatalf("winner %d with status %s", r.Winner, r.Status)
		}
		distinctVoters, distinctIDs := map[peer.ID]bool{}, map[string]bool{}
		for _, b := range ballots {
			distinctVoters[b.Voter] = true
			distinctIDs[b.ID] = true
		}
		if r.Voters > len(distinctVoters) || r.Voters != len(r.Counted) || len(r.Counted)+len(r.Ignored) != len(distinctIDs) {
			t.Fatalf("%d voters, %d counted, %d ignored, %d voters and %d IDs given", r.Voters, len(r.Counted), len(r.Ignored), len(distinctVoters), len(distinctIDs))
		}
		if !slices.IsSorted(r.Counted) || r.Weight > r.Eligible {
			t.Fatalf("counted %v, weight %d of %d", r.Counted, r.Weight, r.Eligible)
		}
		var sum uint64
		for _, c := range r.Counts {
			sum += c
		}
		switch p.Method {
		case MethodSingle:
			if sum != r.Weight || r.Base != r.Weight {
				t.Fatalf("single: Σ %d, weight %d", sum, r.Weight)
			}
		case MethodApproval:
			if slices.Max(r.Counts) > r.Weight || sum > r.Weight*uint64(p.Choices) {
				t.Fatalf("approval: counts %v, weight %d", r.Counts, r.Weight)
			}
		case MethodRanked:
			prev := r.Weight
			for _, round := range r.Rounds {
				var s uint64
				for _, c := range round {
					s += c
				}
				if s > prev {
					t.Fatalf("ranked: rounds grow: %v (weight %d)", r.Rounds, r.Weight)
				}
				prev = s
			}
			if sum != r.Base || len(r.Rounds) > p.Choices-1 {
				t.Fatalf("ranked: Σ %d, base %d, %d rounds", sum, r.Base, len(r.Rounds))
			}
		case MethodQuadratic:
			if sum != r.Base {
				t.Fatalf("quadratic: Σ %d, base %d", sum, r.Base)
			}
		}
		if counted, ignored := referenceSelect(p, ballots, w, exclude); !slices.Equal(r.Counted, counted) || !reflect.DeepEqual(r.Ignored, ignored) {
			t.Fatalf("selection differs from the reference:\n%v %v\n%v %v", r.Counted, r.Ignored, counted, ignored)
		}
		slices.Reverse(ballots)
		if again := Tally(p, ballots, w, exclude, now); !reflect.DeepEqual(again, r) {
			t.Fatalf("order changed the result:\n%+v\n%+v", again, r)
		}
	})
}
