package replicate

import (
	"maps"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestPenaltyStats(t *testing.T) {
	p := NewPenalties(nil, quiet)
	id := peer.ID("x")
	for _, r := range []string{"gossip:bad-signature", "topic:malformed", "sync:a frame too large", "advert:stale", "made-up:thing", "no prefix", "gossip:Not A Code"} {
		p.Fault(id, r)
	}
	st := p.Stats()
	want := map[string]uint64{"gossip:bad-signature": 1, "topic:malformed": 1, "sync": 1, "advert:stale": 1, "other": 2, "gossip:other": 1}
	if !maps.Equal(st.Faults, want) {
		t.Errorf("faults = %v, want %v", st.Faults, want)
	}
	if st.Drops != 0 {
		t.Errorf("drops = %d without a host to drop from", st.Drops)
	}
	st.Faults["sync"] = 99
	if p.Stats().Faults["sync"] != 1 {
		t.Error("Stats returned the table itself, not a copy")
	}
}
