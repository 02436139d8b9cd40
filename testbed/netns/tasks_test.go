//go:build linux

package netns

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/agora-p2p/agora/node/api"
)

// TestDelegationUnderFaults: a community of six hosts on links of 40 ms ±
// 10 ms with 1% loss runs 300 delegated tasks while one executor is killed
// with SIGKILL and restarted. Every task must end completed or with a
// recorded reason, none may be lost, and no request may complete on two
// executors.
func TestDelegationUnderFaults(t *testing.T) {
	t.Parallel()
	const hosts, total = 6, 300
	link := Link{Delay: 40 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.01}
	b := NewBed(t, agoraBin, hosts, link)
	b.StartAll()
	start := time.Now()
	id := community(t, b)
	joined := time.Since(start)
	victim := b.Hosts[hosts-1]
	requesters := b.Hosts[:hosts-1]

	// Adverts: every requester sees text.stats on every other host.
	advStart := time.Now()
	Eventually(t, 60*time.Second, "every host sees every other host's text.stats", func() (bool, string) {
		for _, h := range b.Hosts {
			c, cancel := ctx(5 * time.Second)
			offers, err := h.Client.Skills(c, id, "text.stats")
			cancel()
			if err != nil {
				return false, err.Error()
			}
			seen := map[string]bool{}
			for _, o := range offers {
				for _, p := range o.Providers {
					seen[p.PeerID] = true
				}
			}
			for _, o := range b.Hosts {
				if o != h && !seen[o.PeerID] {
					return false, fmt.Sprintf("%s does not see %s", h.Name, o.Name)
				}
			}
		}
		return true, ""
	})
	adverts := time.Since(advStart)

	// 300 tasks at 10 a second from five requesters, eight at a time each;
	// every fifth asks for the victim by name, so some are in flight on it
	// when it dies. The victim dies after task 100 is submitted and comes
	// back after task 200.
	type outcome struct {
		requester *Host
		task      api.Task
		err       error
	}
	results := make([]outcome, total)
	pace := rate.NewLimiter(10, 1)
	var next atomic.Int64
	killAt, restartAt := int64(100), int64(200)
	var lifecycle sync.Mutex // kill and restart happen in submission order
	killed, restarted := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	for _, r := range requesters {
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= total {
						return
					}
					c, cancel := ctx(2 * time.Minute)
					pace.Wait(c)
					switch i {
					case killAt:
						lifecycle.Lock()
						victim.Kill9()
						close(killed)
						lifecycle.Unlock()
					case restartAt:
						<-killed
						lifecycle.Lock()
						if err := victim.start(); err != nil {
							t.Error(err)
						}
						close(restarted)
						lifecycle.Unlock()
					}
					req := api.TaskRequest{Community: id, Skill: "text.stats", Remote: true, Wait: true, TimeoutMS: 20_000,
						Input: json.RawMessage(fmt.Sprintf(`{"text":"task %d from %s"}`, i, r.Name))}
					if i%5 == 0 {
						req.Peer = victim.PeerID
					}
					task, err := r.Client.SubmitTask(c, req)
					cancel()
					results[i] = outcome{r, task, err}
				}
			}()
		}
	}
	wg.Wait()
	<-restarted
	elapsed := time.Since(start)

	// Every task ended, completed or with a reason, on the requester's
	// own journal too.
	status := map[string]int{}
	reasons := map[string]int{}
	completedBy := map[string]string{} // task ID → executor, by the requester
	for i, o := range results {
		if o.err != nil {
			t.Errorf("task %d: the submission failed: %v", i, o.err)
			continue
		}
		c, cancel := ctx(10 * time.Second)
		task, err := o.requester.Client.Task(c, o.task.ID)
		cancel()
		if err != nil {
			t.Errorf("task %d (%s) is not in %s's journal: %v", i, o.task.ID, o.requester.Name, err)
			continue
		}
		status[task.Status]++
		switch task.Status {
		case "completed":
			if task.Receipt == nil {
				t.Errorf("task %s completed without a receipt", task.ID)
			}
			completedBy[task.ID] = task.Executor
		case "failed", "rejected", "canceled":
			if task.Error == "" && task.Code == "" {
				t.Errorf("task %s ended %s with no reason", task.ID, task.Status)
			}
			reasons[task.Code]++
		default:
			t.Errorf("task %s is still %s after its call returned", task.ID, task.Status)
		}
	}

	// No request completed on two executors, and the executor that
	// completed it agrees with the requester.
	runs := map[string][]string{} // task ID → executors that completed it
	interrupted := 0
	for _, h := range b.Hosts {
		c, cancel := ctx(30 * time.Second)
		tasks, err := h.Client.Tasks(c, 5000)
		cancel()
		if err != nil {
			t.Fatalf("%s tasks: %v", h.Name, err)
		}
		for _, task := range tasks {
			if task.Role != "executor" {
				continue
			}
			switch task.Status {
			case "completed":
				runs[task.ID] = append(runs[task.ID], h.PeerID)
			case "working", "submitted":
				t.Errorf("%s still shows task %s as %s", h.Name, task.ID, task.Status)
			default:
				if h == victim {
					interrupted++
				}
			}
		}
	}
	for id, ex := range runs {
		if len(ex) > 1 {
			t.Errorf("task %s completed on %d executors: %v", id, len(ex), ex)
		}
	}
	for id, ex := range completedBy {
		got := runs[id]
		if len(got) == 0 && ex == victim.PeerID {
			// A builtin task is pure: its journal line is group-committed
			// (up to 50 ms later), so a kill -9 right after it completed may
			// lose that line of the victim's history, by design
			// (docs/architecture.md); the requester holds the signed receipt.
			continue
		}
		if len(got) != 1 || got[0] != ex {
			t.Errorf("task %s: the requester says %s completed it, the executors say %v", id, ex, got)
		}
	}
	if status["completed"] < total/2 {
		t.Errorf("only %d of %d tasks completed: %v", status["completed"], total, status)
	}

	codes := slices.Collect(maps.Keys(reasons))
	sort.Strings(codes)
	var rs []string
	for _, c := range codes {
		rs = append(rs, fmt.Sprintf("%s=%d", c, reasons[c]))
	}
	st := b.Fabric.Stats()
	t.Logf("figures: %d hosts, links %v; joined in %v, adverts everywhere in %v; %d tasks in %v: %v; "+
		"failure codes: %s; victim's own journal: %d executor tasks not completed; fabric: %d packets, %d lost",
		hosts, link, joined.Round(time.Millisecond), adverts.Round(time.Millisecond), total, elapsed.Round(time.Millisecond),
		status, strings.Join(rs, " "), interrupted, st.Forwarded, st.Lost)
}
