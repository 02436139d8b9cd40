package replicate

import (
	"maps"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestPenaltyStats(t *testing.T) {
	p := NewPenalties(nil, quiet)
	id := peer.ID("x")
	for _, r := range []string{"gossip:bad-signature", "topic:malformed", "sync:a frame too large", "advert:stale", "made-up:thing", "no prefix"} {
		p.Fault(id, r)
	}
	st := p.Stats()
	want := map[string]uint64{"gossip": 1, "topic": 1, "sync": 1, "advert": 1, "other": 2}
	if !maps.Equal(st.Faults, want) {
		t.Errorf("faults = %v, want %v", st.Faults, want)
	}
	if st.Drops != 0 {
		t.Errorf("drops = %d without a host to drop from", st.Drops)
	}
	st.Faults["gossip"] = 99
	if p.Stats().Faults["gossip"] != 1 {
		t.Error("Stats returned the table itself, not a copy")
	}
}
