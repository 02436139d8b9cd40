package tasks_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/agora-p2p/agora/node/agents"
	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/tasks"
)

// TestMnFiftyNodes: fifty nodes learn each other's skills over gossipsub
// (adverts, validated into the index) and delegate text.stats across the
// network, with receipts that verify.
func TestMnFiftyNodes(t *testing.T) {
	const size = 50
	net := mnNewNet(t)
	begin := time.Now()
	t.Cleanup(func() { t.Logf("cleanup started after %s", time.Since(begin)) })
	for range size {
		net.add(mnOptions{})
	}
	t.Logf("%d nodes up in %s", size, time.Since(begin))
	net.linkAll()
	// A sparse overlay, as a real community is: a ring with chords, six
	// connections a node. An advert reaches the members its author is not
	// connected to through the relays' gossipsub meshes; one relayed before
	// those meshes formed is lost until the author refreshes it (half its
	// lifetime), so the advertisers here use a 20 s lifetime (10 s refresh)
	// instead of the node's 10 minutes.
	for i, n := range net.nodes {
		for _, d := range []int{1, 2, 7} {
			net.connect(n, net.nodes[(i+d)%size])
		}
	}
	t.Logf("overlay up after %s", time.Since(begin))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, n := range net.nodes {
		n.joinAdverts(t, ctx, &wg, 20*time.Second)
	}

	// Every index lists every provider of text.stats.
	start := time.Now()
	// Generous: with go test running other packages beside it on two cores
	// (the reputation simulation keeps both busy), gossip can crawl.
	deadline := time.NewTimer(150 * time.Second)
	defer deadline.Stop()
	all := make([]peer.ID, 0, size)
	for _, n := range net.nodes {
		all = append(all, n.id)
	}
	slices.Sort(all)
	for i, n := range net.nodes {
		for {
			ps := n.idx.Providers(mnCommunity, "text.stats")
			if len(ps) == size {
				got := make([]peer.ID, 0, size)
				for _, p := range ps {
					got = append(got, p.Peer)
					if p.Agent != "builtin" || p.Skill.ID != "text.stats" || len(p.Skill.Input) == 0 {
						t.Fatalf("node %d lists %+v", i, p)
					}
				}
				if !slices.Equal(got, all) {
					t.Fatalf("node %d lists providers %v", i, got)
				}
				break
			}
			select {
			case <-n.idx.Changed():
			case <-deadline.C:
				t.Fatalf("node %d lists %d of %d providers of text.stats; %s", i, len(ps), size, mnMissing(net, n))
			}
		}
	}

	t.Logf("every index complete after %s", time.Since(start))
	start = time.Now()

	// Delegation: ten requesters with Remote set, five with Peer set.
	type ask struct {
		from *mnNode
		peer *mnNode // nil: any provider
		id   string
	}
	var asks []*ask
	for i := range 10 {
		asks = append(asks, &ask{from: net.nodes[i*5]})
	}
	for i := range 5 {
		asks = append(asks, &ask{from: net.nodes[i*7+1], peer: net.nodes[(i*7+20)%size]})
	}
	for _, a := range asks {
		r := tasks.Request{Skill: "text.stats", Input: []byte(mnStatsInput), Remote: true, Timeout: 30 * time.Second, HopsLeft: -1}
		if a.peer != nil {
			r.Remote, r.Peer = false, a.peer.id
		}
		got, err := a.from.svc.Submit(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		a.id = got.ID
	}
	byID := map[peer.ID]*mnNode{}
	for _, n := range net.nodes {
		byID[n.id] = n
	}
	for i, a := range asks {
		got := mnWait(t, a.from.svc, a.id, 30*time.Second)
		if got.Status != tasks.StatusCompleted {
			t.Fatalf("ask %d: %s %s %s (events %+v)", i, got.Status, got.Code, got.Error, got.Events)
		}
		mnJSONEqual(t, got.Output, mnStatsOutput)
		exec, err := peer.Decode(got.Executor)
		if err != nil {
			t.Fatal(err)
		}
		if exec == a.from.id {
			t.Fatalf("ask %d ran on its requester despite Remote", i)
		}
		if a.peer != nil && exec != a.peer.id {
			t.Fatalf("ask %d ran on %s, not on the peer asked for %s", i, exec, a.peer.id)
		}
		if got.Role != "requester" || got.Agent != "builtin" || got.Attempts < 1 {
			t.Errorf("ask %d: %+v", i, got)
		}
		mnCheckReceipt(t, got, a.from.id, exec, mnStatsInput)
		// The last "accepted" event names the executor.
		var accepted []string
		for _, ev := range got.Events {
			if ev.Type == "accepted" {
				accepted = append(accepted, ev.Peer)
			}
		}
		if len(accepted) == 0 || accepted[len(accepted)-1] != exec.String() {
			t.Errorf("ask %d: accepted events %v, executor %s", i, accepted, exec)
		}
		en := byID[exec]
		if en == nil {
			t.Fatalf("executor %s is not in the network", exec)
		}
		et := mnWait(t, en.svc, a.id, 10*time.Second)
		if et.Role != "executor" || et.Status != tasks.StatusCompleted || et.Requester != a.from.id.String() ||
			et.Executor != exec.String() || et.Skill != "text.stats" || et.Receipt == nil || et.Receipt.CID != got.Receipt.CID {
			t.Errorf("ask %d: executor's journal has %+v", i, et)
		}
		mnJSONEqual(t, et.Output, mnStatsOutput)
	}
	t.Logf("%d delegations in %s", len(asks), time.Since(start))
}

// TestMnProviderVanishes: the executor's host closes during a slow task;
// the requester retries on the other provider and completes.
func TestMnProviderVanishes(t *testing.T) {
	dir := t.TempDir()
	net := mnNewNet(t)
	req := net.add(mnOptions{})
	pids := [2]string{filepath.Join(dir, "a.pids"), filepath.Join(dir, "b.pids")}
	ex := [2]*mnNode{}
	for i := range ex {
		ex[i] = net.add(mnOptions{agentFiles: map[string]string{
			"slow": mnSlowAgent("slow", "slow.echo", pids[i], "30", 4, ""),
		}})
	}
	net.linkAll()
	// Whichever executor the requester tries first is made slow; the other
	// answers at once.
	net.advertiseDirect(ex[0], req)
	net.advertiseDirect(ex[1], req)

	got, err := req.svc.Submit(context.Background(), tasks.Request{Skill: "slow.echo", Input: []byte(`{"n":1}`), Timeout: 40 * time.Second, HopsLeft: -1})
	if err != nil {
		t.Fatal(err)
	}
	// The first attempt is under way once the executor reports progress.
	req.events.wait(t, 20*time.Second, "progress", func(e mnEvent) bool {
		return e.TaskID == got.ID && e.Ev.Type == "progress"
	})
	tk, _ := req.svc.Get(got.ID)
	gone := slices.IndexFunc(ex[:], func(n *mnNode) bool { return n.id.String() == tk.Executor })
	if gone < 0 {
		t.Fatalf("the task runs on %s, not on an executor", tk.Executor)
	}
	other := ex[1-gone]
	// The other executor is quick.
	if err := other.agents.Remove("slow"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.agents.Add(context.Background(), []byte(mnSlowAgent("slow", "slow.echo", pids[1-gone], "0", 4, "")), false); err != nil {
		t.Fatal(err)
	}
	goneAt := time.Now()
	if err := ex[gone].h.Close(); err != nil {
		t.Fatal(err)
	}

	end := mnWait(t, req.svc, got.ID, 30*time.Second)
	if end.Status != tasks.StatusCompleted {
		t.Fatalf("%s %s %s; events %+v", end.Status, end.Code, end.Error, end.Events)
	}
	if time.Since(goneAt) > tasks.Silence+5*time.Second {
		t.Errorf("the retry took %s", time.Since(goneAt))
	}
	if end.Attempts != 2 || end.Executor != other.id.String() {
		t.Errorf("attempts %d, executor %s (want 2, %s)", end.Attempts, end.Executor, other.id)
	}
	mnJSONEqual(t, end.Output, `{"n":1}`)
	retry := slices.IndexFunc(end.Events, func(e api.TaskEvent) bool { return e.Type == "retry" })
	if retry < 0 || end.Events[retry].Code != tasks.CodeVanished || end.Events[retry].Peer != other.id.String() {
		t.Errorf("no retry event for the vanished provider: %+v", end.Events)
	}
	mnCheckReceipt(t, end, req.id, other.id, `{"n":1}`)

	// The vanished executor's own task ends too (its host is gone, so the
	// stream is), and its child is killed.
	et := mnWait(t, ex[gone].svc, got.ID, 15*time.Second)
	if et.Status != tasks.StatusCanceled && et.Status != tasks.StatusFailed {
		t.Errorf("the vanished executor's task is %s", et.Status)
	}
	for _, pid := range mnReadPids(t, pids[gone]) {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("child %d of the vanished executor still exists: %v", pid, err)
		}
	}
}

// TestMnCancelReachesExecutor: Cancel on the requester ends the task on
// the executor, which kills its child.
func TestMnCancelReachesExecutor(t *testing.T) {
	dir := t.TempDir()
	net := mnNewNet(t)
	req := net.add(mnOptions{})
	pidfile := filepath.Join(dir, "pids")
	ex := net.add(mnOptions{agentFiles: map[string]string{"slow": mnSlowAgent("slow", "slow.echo", pidfile, "30", 4, "")}})
	net.linkAll()
	net.advertiseDirect(ex, req)

	got, err := req.svc.Submit(context.Background(), tasks.Request{Skill: "slow.echo", Input: []byte(`{}`), Remote: true, Timeout: 40 * time.Second, HopsLeft: -1})
	if err != nil {
		t.Fatal(err)
	}
	req.events.wait(t, 20*time.Second, "progress", func(e mnEvent) bool { return e.TaskID == got.ID && e.Ev.Type == "progress" })
	pids := mnReadPids(t, pidfile)
	if len(pids) != 1 {
		t.Fatalf("pids %v", pids)
	}
	if err := syscall.Kill(pids[0], 0); err != nil {
		t.Fatalf("the child is not running: %v", err)
	}
	if err := req.svc.Cancel(got.ID); err != nil {
		t.Fatal(err)
	}
	end := mnWait(t, req.svc, got.ID, 10*time.Second)
	if end.Status != tasks.StatusCanceled || end.Code != agents.CodeCanceled {
		t.Errorf("requester: %s %s %s", end.Status, end.Code, end.Error)
	}
	et := mnWait(t, ex.svc, got.ID, 10*time.Second)
	if et.Role != "executor" || et.Status != tasks.StatusCanceled || et.Code != agents.CodeCanceled {
		t.Errorf("executor: %s %s %s %s", et.Role, et.Status, et.Code, et.Error)
	}
	last := et.Events[len(et.Events)-1]
	if last.Type != tasks.StatusCanceled {
		t.Errorf("executor's last event %+v", last)
	}
	// The executor's Run returns only after the child was reaped.
	if err := syscall.Kill(pids[0], 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the child %d still exists after cancel: %v", pids[0], err)
	}
	// The journal (the executor's List) shows it canceled too.
	list, err := ex.svc.List(10)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(list, func(x api.Task) bool { return x.ID == got.ID }); i < 0 || list[i].Status != tasks.StatusCanceled {
		t.Errorf("executor's list %+v", list)
	}
}

// mnMissing says which adverts n lacks, and how many nodes hold each.
func mnMissing(net *mnNet, n *mnNode) string {
	have := map[peer.ID]bool{}
	for _, p := range n.idx.Providers(mnCommunity, "text.stats") {
		have[p.Peer] = true
	}
	var out []string
	for j, m := range net.nodes {
		if have[m.id] {
			continue
		}
		holders := 0
		for _, o := range net.nodes {
			if o.idx.Seq(mnCommunity, m.id) != 0 {
				holders++
			}
		}
		out = append(out, fmt.Sprintf("node %d (seq %d here, own seq %d, held by %d, topic peers %d)", j, n.idx.Seq(mnCommunity, m.id), m.idx.Seq(mnCommunity, m.id), holders, len(m.topic.ListPeers())))
	}
	return "missing " + strings.Join(out, ", ") + fmt.Sprintf("; this node has %d topic peers", len(n.topic.ListPeers()))
}
