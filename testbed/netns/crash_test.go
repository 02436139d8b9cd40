//go:build linux

package netns

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestKilledWhileCatchingUp: a host that was away catches up over a slow
// uplink and is killed with SIGKILL in the middle of ingesting the sync.
// After a restart its store opens, every record it had acknowledged is
// still there and verifies, and it catches up the rest.
func TestKilledWhileCatchingUp(t *testing.T) {
	t.Parallel()
	const hosts, perAuthor = 4, 400
	link := Link{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond}
	b := NewBed(t, agoraBin, hosts, link)
	late := b.Hosts[hosts-1]
	// The late host is on a slow home line (1 Mbit/s up, 2 Mbit/s down):
	// the 1,200 records (about 0.9 MB) take seconds to arrive, so there is
	// a middle to kill it in. (With the uplink alone slow, a catch-up took
	// 0.6 s, and the test's polls could miss its middle.)
	slow := Link{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Rate: 125_000}
	b.Fabric.SetLink(late.Idx, slow)
	b.Fabric.SetDownlink(late.Idx, 250_000)
	b.StartAll()
	id := community(t, b)
	late.Stop()

	var wg sync.WaitGroup
	for _, h := range b.Hosts[:hosts-1] {
		wg.Add(1)
		go func() { defer wg.Done(); publishAttestations(t, h, id, h.PeerID, perAuthor) }()
	}
	wg.Wait()
	Eventually(t, 60*time.Second, "the others agree", func() (bool, string) {
		return sameRecords(b.Hosts[:hosts-1], id, -1)
	})
	want, wantFP, err := syncState(b.Hosts[0], id)
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	late.Start()
	// Kill it once it holds a part of the records but not all.
	var before int
	Eventually(t, 60*time.Second, "the late host is in the middle of its catch-up", func() (bool, string) {
		n, _, err := syncState(late, id)
		if err != nil {
			return false, err.Error()
		}
		before = n
		return n > want/5 && n < want*4/5, fmt.Sprintf("%d of %d", n, want)
	})
	late.Kill9()
	killedAfter := time.Since(start)

	late.Start()
	n, _, err := syncState(late, id)
	if err != nil {
		t.Fatal(err)
	}
	if n < before {
		t.Errorf("after the restart the late host holds %d records, fewer than the %d it had acknowledged", n, before)
	}
	// What it holds verifies: every record it lists reads back verified.
	c, cancel := ctx(30 * time.Second)
	views, err := late.Client.Records(c, recordQuery(id, 200))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		c, cancel := ctx(5 * time.Second)
		r, err := late.Client.Record(c, v.CID)
		cancel()
		if err != nil || !r.Verified {
			t.Errorf("record %s after the restart: verified=%v err=%v", v.CID, r.Verified, err)
		}
	}
	caught := Eventually(t, 120*time.Second, "the late host catches up after the restart", func() (bool, string) {
		n, fp, err := syncState(late, id)
		if err != nil {
			return false, err.Error()
		}
		return n == want && fp == wantFP, fmt.Sprintf("%d of %d", n, want)
	})
	t.Logf("figures: %d records from %d authors; the late host's uplink %v, downlink 2000 kbit/s; killed after %v holding %d of %d; "+
		"%d after the restart; caught up %v after the restart",
		want, hosts-1, slow, killedAfter.Round(time.Millisecond), before, want, n, caught.Round(time.Millisecond))
}
