//go:build linux

package netns

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-p2p/agora/node/api"
)

// partitionFor is how long the community stays split. The issue asks for
// 60 s; AGORA_TESTBED_PARTITION shortens it for a quick local run.
func partitionFor() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("AGORA_TESTBED_PARTITION")); err == nil && d > 0 {
		return d
	}
	return 60 * time.Second
}

// TestPartitionHeal: six hosts split 3|3 while both sides publish
// attestations and vote on an open proposal; after the split heals, every
// host must hold the same record set and compute the same tally within
// 15 s.
func TestPartitionHeal(t *testing.T) {
	t.Parallel()
	const hosts, rounds, perRound = 6, 6, 3
	link := Link{Delay: 40 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.01}
	b := NewBed(t, agoraBin, hosts, link)
	b.StartAll()
	id := community(t, b)
	founder := b.Hosts[0]
	// Votes weigh by community trust (issue 7): a member nobody has rated
	// has none. The founder has a task run on every other host, so its
	// automatic feedback makes them all voters.
	for _, h := range b.Hosts[1:] {
		c, cancel := ctx(60 * time.Second)
		task, err := founder.Client.SubmitTask(c, api.TaskRequest{Community: id, Skill: "text.stats", Peer: h.PeerID,
			Wait: true, Input: json.RawMessage(`{"text":"earn a vote"}`)})
		cancel()
		if err != nil || task.Status != "completed" {
			t.Fatalf("a task on %s: %v %s %s", h.Name, err, task.Status, task.Error)
		}
	}
	Eventually(t, 90*time.Second, "every host trusts every member", func() (bool, string) {
		for _, h := range b.Hosts {
			c, cancel := ctx(5 * time.Second)
			rep, err := h.Client.Reputation(c, id, "community", "")
			cancel()
			if err != nil {
				return false, h.Name + ": " + err.Error()
			}
			trusted := 0
			for _, r := range rep {
				if r.Level > 0 {
					trusted++
				}
			}
			if trusted != hosts {
				return false, fmt.Sprintf("%s: %d members with community trust", h.Name, trusted)
			}
		}
		return true, ""
	})

	c, cancel := ctx(30 * time.Second)
	prop, err := founder.Client.Propose(c, api.ProposeRequest{Community: id, Title: "Split brain",
		Choices: []string{"yes", "no"}})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	Eventually(t, 60*time.Second, "every host sees the proposal", func() (bool, string) {
		for _, h := range b.Hosts {
			c, cancel := ctx(5 * time.Second)
			ps, err := h.Client.Proposals(c, id, "")
			cancel()
			if err != nil {
				return false, err.Error()
			}
			found := false
			for _, p := range ps {
				found = found || p.ID == prop.ID
			}
			if !found {
				return false, h.Name + " does not list it"
			}
		}
		return true, ""
	})
	Eventually(t, 60*time.Second, "every host counts every member as a voter", func() (bool, string) {
		for _, h := range b.Hosts {
			c, cancel := ctx(5 * time.Second)
			tv, err := h.Client.Tally(c, id, prop.ID)
			cancel()
			if err != nil {
				return false, h.Name + ": " + err.Error()
			}
			if tv.Eligible != hosts*1000 {
				return false, fmt.Sprintf("%s: eligible weight %v", h.Name, tv.Eligible)
			}
		}
		return true, ""
	})

	sideA, sideB := b.Hosts[:3], b.Hosts[3:]
	b.Fabric.Partition([]int{0, 1, 2}, []int{3, 4, 5})
	split := partitionFor()
	splitStart := time.Now()
	// Both sides work through the split: each host publishes perRound
	// attestations every split/rounds, votes in the second round, and the
	// first host of each side changes its vote in the fourth.
	var mu sync.Mutex
	published := map[string][]string{} // host → CIDs
	var wg sync.WaitGroup
	tick := split / rounds
	for _, h := range b.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			side := "yes"
			if h.Idx >= 3 {
				side = "no"
			}
			for r := range rounds {
				at := splitStart.Add(time.Duration(r) * tick)
				time.Sleep(time.Until(at)) // the schedule of the scenario, not a wait for a result
				cids := publishAttestations(t, h, id, h.PeerID, perRound)
				mu.Lock()
				published[h.Name] = append(published[h.Name], cids...)
				mu.Unlock()
				vote := ""
				switch {
				case r == 1:
					vote = side
				case r == 3 && (h.Idx == 0 || h.Idx == 3):
					vote = map[string]string{"yes": "no", "no": "yes"}[side]
				}
				if vote != "" {
					c, cancel := ctx(30 * time.Second)
					_, err := h.Client.Vote(c, prop.ID, api.VoteRequest{Community: id, Choices: []string{vote}})
					cancel()
					if err != nil {
						t.Errorf("%s votes: %v", h.Name, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	time.Sleep(time.Until(splitStart.Add(split))) // the split lasts its full time

	// The split held: no host has a record published on the other side.
	for _, pair := range [][2][]*Host{{sideA, sideB}, {sideB, sideA}} {
		for _, h := range pair[0] {
			for _, o := range pair[1] {
				c, cancel := ctx(5 * time.Second)
				_, err := h.Client.Record(c, published[o.Name][0])
				cancel()
				if err == nil {
					t.Fatalf("%s holds a record %s published across the partition", h.Name, o.Name)
				}
			}
		}
	}
	_, beforeA := sameRecords(sideA, id, -1)
	_, beforeB := sameRecords(sideB, id, -1)
	st := b.Fabric.Stats()

	b.Fabric.Heal()
	t.Logf("healed at %s", time.Now().UTC().Format(time.RFC3339Nano))
	records := Eventually(t, 60*time.Second, "every host holds the same records after the heal", func() (bool, string) {
		return sameRecords(b.Hosts, id, -1)
	})
	var tallyFP string
	tallies := Eventually(t, 60*time.Second, "every host computes the same tally after the heal", func() (bool, string) {
		var fps []string
		var counts []map[string]uint64
		for _, h := range b.Hosts {
			c, cancel := ctx(5 * time.Second)
			tv, err := h.Client.Tally(c, id, prop.ID)
			cancel()
			if err != nil {
				return false, h.Name + ": " + err.Error()
			}
			fps = append(fps, tv.Fingerprint)
			counts = append(counts, tv.Counts)
		}
		for i := range fps {
			if fps[i] != fps[0] || !maps.Equal(counts[i], counts[0]) {
				return false, fmt.Sprintf("fingerprints %v counts %v", fps, counts)
			}
		}
		tallyFP = fmt.Sprintf("%s %v", fps[0][:min(12, len(fps[0]))], counts[0])
		return true, ""
	})
	// Everything published on either side is everywhere.
	all := 0
	for _, h := range b.Hosts {
		for _, o := range b.Hosts {
			for _, cid := range published[o.Name] {
				c, cancel := ctx(5 * time.Second)
				_, err := h.Client.Record(c, cid)
				cancel()
				if err != nil {
					t.Errorf("%s lacks %s's record %s after the heal: %v", h.Name, o.Name, cid, err)
				}
			}
		}
		all = 0
		for _, cids := range published {
			all += len(cids)
		}
	}
	// Final tally: yes has sideA's three minus h0 plus h3 = 3, no the same.
	c, cancel = ctx(5 * time.Second)
	tv, err := founder.Client.Tally(c, id, prop.ID)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if tv.Voters != hosts || tv.Counts["yes"] != tv.Counts["no"] || tv.Counts["yes"] == 0 {
		t.Errorf("tally after the heal: %d voters, counts %v; want 6 voters split evenly", tv.Voters, tv.Counts)
	}
	for _, lim := range []struct {
		what string
		d    time.Duration
	}{{"records", records}, {"tallies", tallies}} {
		if lim.d > 15*time.Second {
			t.Errorf("%s converged %v after the heal, want within 15 s", lim.what, lim.d)
		}
	}
	t.Logf("figures: %d hosts, links %v, split 3|3 for %v; %d attestations and 8 votes published during the split; "+
		"before the heal side A %s, side B %s; after the heal: records equal in %v, tallies equal in %v (%s); "+
		"packets dropped by the partition: %d",
		hosts, link, split, all, strings.TrimSpace(beforeA), strings.TrimSpace(beforeB),
		records.Round(time.Millisecond), tallies.Round(time.Millisecond), tallyFP, st.Partitioned)
}
