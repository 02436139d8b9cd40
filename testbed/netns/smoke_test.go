//go:build linux

package netns

import (
	"testing"
	"time"
)

// TestFabric checks the emulated network itself: two hosts form a
// community over it, and the latency libp2p measures between them is the
// link's round trip.
func TestFabric(t *testing.T) {
	t.Parallel()
	link := Link{Delay: 40 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.01}
	b := NewBed(t, agoraBin, 2, link)
	b.StartAll()
	community(t, b)
	var rtt float64
	Eventually(t, 30*time.Second, "h0 measures h1's latency", func() (bool, string) {
		c, cancel := ctx(5 * time.Second)
		defer cancel()
		ps, err := b.Hosts[0].Client.Peers(c)
		if err != nil {
			return false, err.Error()
		}
		for _, p := range ps {
			if p.PeerID == b.Hosts[1].PeerID && p.LatencyMS > 0 {
				rtt = p.LatencyMS
				return true, ""
			}
		}
		return false, "no latency yet"
	})
	// One way is 40 ± 10 ms, so a round trip is 60–100 ms, plus the hosts'
	// own time.
	if rtt < 55 || rtt > 250 {
		t.Errorf("round trip between h0 and h1 = %.1f ms, want about 80 ms", rtt)
	}
	st := b.Fabric.Stats()
	t.Logf("link %v: rtt %.1f ms; fabric forwarded %d, lost %d, unroutable %d", link, rtt, st.Forwarded, st.Lost, st.Unroutable)
	if st.Forwarded == 0 {
		t.Error("the fabric forwarded nothing")
	}
}
