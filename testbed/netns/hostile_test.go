//go:build linux

package netns

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-p2p/agora/node/agents"
	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/repo"
)

// hostileReport mirrors the JSON agora-hostile prints.
type hostileReport struct {
	PeerID      string            `json:"peer_id"`
	Sent        map[string]int    `json:"sent"`
	BadCIDs     []string          `json:"bad_cids"`
	TaskReplies map[string]int    `json:"task_replies"`
	Reconnect   map[string]string `json:"reconnect"`
	Errors      []string          `json:"errors"`
}

// TestHostileMember: a member that joined honestly turns hostile (the
// agora-hostile program with its identity): it floods the others with task
// requests, sends malformed task and sync frames, and gossips forged,
// oversized, replayed, wrong-community and malformed records. The honest
// hosts keep serving each other, store nothing it sent, fault it, drop it
// and refuse it when it comes back.
func TestHostileMember(t *testing.T) {
	t.Parallel()
	const hosts = 5
	link := Link{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 0.005}
	b := NewBed(t, agoraBin, hosts, link)
	honest, bad := b.Hosts[:hosts-1], b.Hosts[hosts-1]
	// The honest owners cap what one member may ask of their builtin agent
	// (limits.rate_per_peer: 5 a second, bursts of 10), so admission, not
	// the speed of the machine, decides how much of the flood is served.
	for _, h := range honest {
		limited := strings.Replace(agents.BuiltinAgentFile, "rate_per_peer = 200", "rate_per_peer = 5", 1)
		if limited == agents.BuiltinAgentFile {
			t.Fatal("the builtin agent file no longer sets rate_per_peer = 200; update this test")
		}
		if err := os.WriteFile(filepath.Join(h.Repo, repo.AgentsDir, "builtin.toml"), []byte(limited), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.StartAll()
	id := community(t, b)
	c, cancel := ctx(10 * time.Second)
	authored, err := honest[0].Client.Records(c, api.RecordQuery{Community: id, Author: bad.PeerID})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	before, _, _ := syncState(honest[0], id)
	bad.Stop()

	var peers []string
	for _, h := range honest {
		peers = append(peers, fmt.Sprintf("/ip4/%s/tcp/4001/p2p/%s", h.IP, h.PeerID))
	}
	attack := exec.Command("ip", "netns", "exec", bad.NS, hostileBin, "-repo", bad.Repo, "-community", id,
		"-peers", strings.Join(peers, ","), "-listen", "/ip4/"+bad.IP+"/tcp/4001")
	var stdout, stderr bytes.Buffer
	attack.Stdout, attack.Stderr = &stdout, &stderr
	if err := attack.Start(); err != nil {
		t.Fatal(err)
	}
	// While it attacks, the honest hosts delegate to each other.
	type served struct {
		task api.Task
		err  error
	}
	var during []served
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, h := range honest {
		wg.Add(1)
		go func() {
			defer wg.Done()
			to := honest[(i+1)%len(honest)]
			for j := range 10 {
				c, cancel := ctx(60 * time.Second)
				task, err := h.Client.SubmitTask(c, api.TaskRequest{Community: id, Skill: "text.stats", Peer: to.PeerID,
					Wait: true, Input: json.RawMessage(fmt.Sprintf(`{"text":"honest %d"}`, j))})
				cancel()
				mu.Lock()
				during = append(during, served{task, err})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := attack.Wait(); err != nil {
		t.Fatalf("agora-hostile: %v\n%s", err, stderr.String())
	}
	var rep hostileReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("agora-hostile's report %q: %v", stdout.String(), err)
	}
	if rep.PeerID != bad.PeerID {
		t.Fatalf("the hostile host ran as %s, want %s", rep.PeerID, bad.PeerID)
	}
	if len(rep.Errors) > 0 {
		t.Logf("agora-hostile reported: %v", rep.Errors)
	}

	// Honest service went on.
	completed := 0
	for _, s := range during {
		if s.err == nil && s.task.Status == "completed" {
			completed++
		} else {
			t.Errorf("an honest task during the attack: %v %s %s", s.err, s.task.Status, s.task.Error)
		}
	}
	// The flood was refused at admission, not served at the others' cost:
	// each honest host accepts at most its burst plus 5 a second for the
	// 20 s the flood's requests live.
	if limit := len(honest) * (10 + 5*21); rep.TaskReplies["accepted"] > limit || rep.TaskReplies["rejected:rate-limited"] == 0 {
		t.Errorf("the flood of %d requests was not rate-limited (at most %d may be accepted): %v",
			rep.Sent["task-request"], limit, rep.TaskReplies)
	}
	// Nothing it sent is stored anywhere.
	for _, h := range honest {
		for _, cid := range rep.BadCIDs {
			c, cancel := ctx(5 * time.Second)
			_, err := h.Client.Record(c, cid)
			cancel()
			if err == nil {
				t.Errorf("%s stored the hostile record %s", h.Name, cid)
			}
		}
		c, cancel := ctx(10 * time.Second)
		now, err := h.Client.Records(c, api.RecordQuery{Community: id, Author: bad.PeerID})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if len(now) != len(authored) {
			t.Errorf("%s holds %d records by the hostile host, %d before the attack", h.Name, len(now), len(authored))
		}
	}
	if len(rep.BadCIDs) < 3 {
		t.Errorf("the hostile host built only %d decodable bad records", len(rep.BadCIDs))
	}
	// The honest hosts still agree, and on what they had before plus their
	// own feedback, never on anything of the hostile host's.
	Eventually(t, 30*time.Second, "the honest hosts agree", func() (bool, string) { return sameRecords(honest, id, -1) })

	// They faulted it, dropped it, and refuse it.
	rejected := map[string]float64{}
	byReason := map[string]float64{}
	var faults, drops float64
	dropped := 0
	for _, h := range honest {
		m := metrics(t, h)
		faults += Metric(m, "agora_peer_faults_total", "*")
		d := Metric(m, "agora_peers_dropped_total", "")
		drops += d
		for _, line := range strings.Split(m, "\n") {
			if rest, ok := strings.CutPrefix(line, `agora_records_rejected_total{reason="`); ok {
				reason, _, _ := strings.Cut(rest, `"`)
				rejected[reason] += Metric(m, "agora_records_rejected_total", `{reason="`+reason+`"}`)
			}
			if rest, ok := strings.CutPrefix(line, `agora_peer_faults_total{reason="`); ok {
				reason, _, _ := strings.Cut(rest, `"`)
				byReason[reason] += Metric(m, "agora_peer_faults_total", `{reason="`+reason+`"}`)
			}
		}
		if d > 0 {
			dropped++
			if r := rep.Reconnect[h.PeerID]; !strings.HasPrefix(r, "refused") {
				t.Errorf("%s dropped the hostile host but its reconnect was %q", h.Name, r)
			}
		}
	}
	// Every honest host received malformed task frames and bad gossip from
	// it directly, so every one of them drops it.
	if faults == 0 || dropped != len(honest) {
		t.Errorf("the honest hosts counted %v faults and %d of %d dropped the hostile host", faults, dropped, len(honest))
	}
	// And they keep serving each other afterwards.
	c, cancel = ctx(60 * time.Second)
	task, err := honest[0].Client.SubmitTask(c, api.TaskRequest{Community: id, Skill: "text.stats", Peer: honest[3].PeerID,
		Wait: true, Input: json.RawMessage(`{"text":"after"}`)})
	cancel()
	if err != nil || task.Status != "completed" {
		t.Errorf("a task after the attack: %v %s %s", err, task.Status, task.Error)
	}
	after, _, _ := syncState(honest[0], id)

	var sent, replies, reconnect, rejections []string
	for k, v := range rep.Sent {
		sent = append(sent, fmt.Sprintf("%s=%d", k, v))
	}
	for k, v := range rep.TaskReplies {
		replies = append(replies, fmt.Sprintf("%s=%d", k, v))
	}
	for _, h := range honest {
		reconnect = append(reconnect, h.Name+": "+rep.Reconnect[h.PeerID])
	}
	for k, v := range rejected {
		rejections = append(rejections, fmt.Sprintf("registry:%s=%.0f", k, v))
	}
	for k, v := range byReason {
		rejections = append(rejections, fmt.Sprintf("fault:%s=%.0f", k, v))
	}
	for _, s := range [][]string{sent, replies, rejections} {
		sort.Strings(s)
	}
	t.Logf("figures: hostile sent %s; flood replies %s; honest tasks during the attack %d/%d completed; "+
		"rejections and faults by reason (all honest hosts) %s; peer faults %.0f, drops %.0f (%d of %d hosts dropped it); "+
		"reconnect: %s; honest records %d before, %d after (their own feedback)",
		strings.Join(sent, " "), strings.Join(replies, " "), completed, len(during), strings.Join(rejections, " "),
		faults, drops, dropped, len(honest), strings.Join(reconnect, "; "), before, after)
}
