package tasks_test

// The requester's side of the trust layer: the capability index's standing
// of each provider (capindex.Index.SetJudge) decides who is tried, the
// request may ask for certified providers only or exclude some, and
// Config.Done hears of every remote task that ran with a receipt.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/agora-p2p/agora/node"
	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/capindex"
	"github.com/agora-p2p/agora/node/tasks"
	"github.com/agora-p2p/agora/protocol/task"
)

// trustJudge gives the standings in m (the zero Standing to everyone
// else) and fails the test when asked about another community or agent
// than the ones the tests advertise.
func trustJudge(t *testing.T, m map[peer.ID]capindex.Standing) capindex.JudgeFunc {
	return func(c cid.Cid, p peer.ID, agent string) capindex.Standing {
		if !c.Equals(mnCommunity) || agent == "" {
			t.Errorf("judge asked about %s in %s, agent %q", p, c, agent)
		}
		return m[p]
	}
}

// trustRun submits r on n and waits for its end.
func trustRun(t *testing.T, n *mnNode, r tasks.Request) api.Task {
	t.Helper()
	if r.Skill == "" {
		r.Skill, r.Input = "text.stats", []byte(mnStatsInput)
	}
	if r.Timeout == 0 {
		r.Timeout = 20 * time.Second
	}
	r.HopsLeft = -1
	got, err := n.svc.Submit(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return mnWait(t, n.svc, got.ID, 30*time.Second)
}

// trustTried lists the peers a requester's task was sent to, in order.
func trustTried(end api.Task) []string {
	var out []string
	for _, ev := range end.Events {
		if ev.Type == "attempt" {
			out = append(out, ev.Peer)
		}
	}
	return out
}

// trustNeverSaw checks that n never heard of task id.
func trustNeverSaw(t *testing.T, n *mnNode, id string) {
	t.Helper()
	if got, err := n.svc.Get(id); !errors.Is(err, tasks.ErrNotFound) {
		t.Errorf("peer %s got task %s: %+v %v", n.id, id, got, err)
	}
}

// trustCompletedOn checks that end completed on exec at the first attempt.
func trustCompletedOn(t *testing.T, end api.Task, exec *mnNode) {
	t.Helper()
	if end.Status != tasks.StatusCompleted {
		t.Fatalf("%s %s %s; events %+v", end.Status, end.Code, end.Error, end.Events)
	}
	if end.Executor != exec.id.String() {
		t.Errorf("ran on %s, want %s", end.Executor, exec.id)
	}
	if tried := trustTried(end); !slices.Equal(tried, []string{exec.id.String()}) {
		t.Errorf("sent to %v, want only %s", tried, exec.id)
	}
	mnJSONEqual(t, end.Output, mnStatsOutput)
}

// trustNoProvider checks that end failed before anything was sent.
func trustNoProvider(t *testing.T, end api.Task, reason string) {
	t.Helper()
	if end.Status != tasks.StatusFailed || end.Code != tasks.CodeNoProvider || !strings.Contains(end.Error, reason) {
		t.Errorf("%s %s %q, want failed %s mentioning %q", end.Status, end.Code, end.Error, tasks.CodeNoProvider, reason)
	}
	if tried := trustTried(end); len(tried) != 0 || end.Attempts != 0 {
		t.Errorf("sent to %v (%d attempts), want nowhere", tried, end.Attempts)
	}
}

// trustCut unlinks and disconnects a and b, so a's next stream to b fails.
func trustCut(t *testing.T, net *mnNet, a, b *mnNode) {
	t.Helper()
	_ = net.mn.DisconnectPeers(a.id, b.id)
	if err := net.mn.UnlinkPeers(a.id, b.id); err != nil {
		t.Fatal(err)
	}
}

// TestTrustDistrustedNeverTried: a distrusted provider is not a
// candidate, whatever else its standing says: alone it leaves the task
// without a provider, and when the other provider fails the requester
// gives up rather than fall back on it.
func TestTrustDistrustedNeverTried(t *testing.T) {
	net := mnNewNet(t)
	req := net.add(mnOptions{})
	good := net.add(mnOptions{})
	bad := net.add(mnOptions{})
	net.linkAll()
	// Otherwise the best provider there is: fully trusted and certified.
	req.idx.SetJudge(trustJudge(t, map[peer.ID]capindex.Standing{bad.id: {Trust: 1000, Certified: true, Distrusted: true}}))

	net.advertiseDirect(bad, req)
	if ps := req.idx.Providers(mnCommunity, "text.stats"); len(ps) != 1 || !ps[0].Distrusted {
		t.Fatalf("the index lists %+v", ps)
	}
	end := trustRun(t, req, tasks.Request{Remote: true})
	trustNoProvider(t, end, "text.stats")
	trustNeverSaw(t, bad, end.ID)

	net.advertiseDirect(good, req)
	end = trustRun(t, req, tasks.Request{Remote: true})
	trustCompletedOn(t, end, good)
	trustNeverSaw(t, bad, end.ID)

	// The other provider cannot be reached: no retry on the distrusted one.
	trustCut(t, net, req, good)
	end = trustRun(t, req, tasks.Request{Remote: true})
	if end.Status != tasks.StatusFailed || end.Code != tasks.CodeVanished {
		t.Errorf("%s %s %s, want failed %s", end.Status, end.Code, end.Error, tasks.CodeVanished)
	}
	if tried := trustTried(end); !slices.Equal(tried, []string{good.id.String()}) {
		t.Errorf("sent to %v, want only %s", tried, good.id)
	}
	trustNeverSaw(t, bad, end.ID)
}

// TestTrustCertifiedOnly: CertifiedOnly skips every provider that is not
// certified, even a better-ranked one, fails with no-provider when none
// is, and still lets this node's own agents run the task.
func TestTrustCertifiedOnly(t *testing.T) {
	net := mnNewNet(t)
	req := net.add(mnOptions{})
	plain := net.add(mnOptions{})
	cert := net.add(mnOptions{})
	net.linkAll()
	net.advertiseDirect(plain, req)
	net.advertiseDirect(cert, req)
	// The uncertified provider ranks first: trust counts more than the
	// certification's bonus.
	standings := map[peer.ID]capindex.Standing{plain.id: {Trust: 1000}, cert.id: {Certified: true}}
	req.idx.SetJudge(trustJudge(t, standings))
	if ranked := capindex.Rank(req.idx.Providers(mnCommunity, "text.stats")); len(ranked) != 2 || ranked[0].Peer != plain.id {
		t.Fatalf("ranked %+v, want %s first", ranked, plain.id)
	}

	end := trustRun(t, req, tasks.Request{Remote: true})
	trustCompletedOn(t, end, plain)

	end = trustRun(t, req, tasks.Request{Remote: true, CertifiedOnly: true})
	trustCompletedOn(t, end, cert)
	trustNeverSaw(t, plain, end.ID)

	// This node's own agents count as certified.
	end = trustRun(t, req, tasks.Request{CertifiedOnly: true})
	if end.Status != tasks.StatusCompleted || end.Executor != req.id.String() {
		t.Errorf("a local certified-only task: %s on %s", end.Status, end.Executor)
	}

	// The certified provider fails: no fallback on the uncertified one.
	trustCut(t, net, req, cert)
	end = trustRun(t, req, tasks.Request{Remote: true, CertifiedOnly: true})
	if end.Status != tasks.StatusFailed || !slices.Equal(trustTried(end), []string{cert.id.String()}) {
		t.Errorf("%s %s, sent to %v; want failed, sent only to %s", end.Status, end.Code, trustTried(end), cert.id)
	}
	trustNeverSaw(t, plain, end.ID)

	// Nobody is certified.
	req.idx.SetJudge(trustJudge(t, map[peer.ID]capindex.Standing{plain.id: {Trust: 1000}, cert.id: {Trust: 1000}}))
	end = trustRun(t, req, tasks.Request{Remote: true, CertifiedOnly: true})
	trustNoProvider(t, end, "certified")
	trustNeverSaw(t, plain, end.ID)
	trustNeverSaw(t, cert, end.ID)
}

// TestTrustExclude: the peers a request excludes are never sent the task.
func TestTrustExclude(t *testing.T) {
	net := mnNewNet(t)
	req := net.add(mnOptions{})
	a := net.add(mnOptions{})
	b := net.add(mnOptions{})
	net.linkAll()
	net.advertiseDirect(a, req)
	net.advertiseDirect(b, req)
	byID := map[peer.ID]*mnNode{a.id: a, b.id: b}
	ranked := capindex.Rank(req.idx.Providers(mnCommunity, "text.stats"))
	if len(ranked) != 2 {
		t.Fatalf("ranked %+v", ranked)
	}
	first, second := byID[ranked[0].Peer], byID[ranked[1].Peer]

	end := trustRun(t, req, tasks.Request{Remote: true, Exclude: []peer.ID{first.id}})
	trustCompletedOn(t, end, second)
	trustNeverSaw(t, first, end.ID)

	// The other way round, though second has a success to its name now.
	end = trustRun(t, req, tasks.Request{Remote: true, Exclude: []peer.ID{second.id}})
	trustCompletedOn(t, end, first)
	trustNeverSaw(t, second, end.ID)

	end = trustRun(t, req, tasks.Request{Remote: true, Exclude: []peer.ID{a.id, b.id}})
	trustNoProvider(t, end, "text.stats")
	trustNeverSaw(t, a, end.ID)
	trustNeverSaw(t, b, end.ID)
}

// TestTrustPreferred: of two providers alike in all but trust, the
// trusted one is tried first; it is the one the tie-break on peer IDs
// would not have chosen.
func TestTrustPreferred(t *testing.T) {
	net := mnNewNet(t)
	req := net.add(mnOptions{})
	x := net.add(mnOptions{})
	y := net.add(mnOptions{})
	net.linkAll()
	net.advertiseDirect(x, req)
	net.advertiseDirect(y, req)
	lo, hi := x, y
	if hi.id < lo.id {
		lo, hi = hi, lo
	}
	if ranked := capindex.Rank(req.idx.Providers(mnCommunity, "text.stats")); len(ranked) != 2 || ranked[0].Peer != lo.id {
		t.Fatalf("without trust, ranked %+v; want %s first", ranked, lo.id)
	}
	req.idx.SetJudge(trustJudge(t, map[peer.ID]capindex.Standing{hi.id: {Trust: 1000}, lo.id: {Trust: 0}}))
	end := trustRun(t, req, tasks.Request{Remote: true})
	trustCompletedOn(t, end, hi)
	trustNeverSaw(t, lo, end.ID)
}

// trustFailingAgent is an exec agent whose skill fail.echo reads its
// input and exits non-zero.
const trustFailingAgent = `name = "flaky"
backend = "exec"

[exec]
command = ["/bin/sh", "-c", 'cat >/dev/null; echo "boom" >&2; exit 3']

[[skills]]
id = "fail.echo"
tags = ["deterministic", "flaky"]
`

// trustWithDone replaces n's tasks service with one that tells done of
// the tasks other members ran for n.
func trustWithDone(t *testing.T, n *mnNode, done func(tasks.Done)) {
	t.Helper()
	n.svc.Close()
	var err error
	if n.svc, err = tasks.New(tasks.Config{
		Host: n.h, Key: n.key, DB: n.db, Local: node.LocalAgents(n.agents), Index: n.idx,
		Member: func(c cid.Cid) bool { return c.Equals(mnCommunity) }, Default: mnDefault, Events: n.events,
		Done: done,
	}); err != nil {
		t.Fatal(err)
	}
}

// TestTrustDone: Config.Done is called once for a remote task that
// completed and once for one that failed after its executor accepted it,
// each with the receipt, the input, the output and the skill's advertised
// tags; it is not called for a local task, for one every provider
// refused, nor for one that failed without a receipt. Done runs before
// the task's Wait returns, so a Done not received by then never comes.
func TestTrustDone(t *testing.T) {
	net := mnNewNet(t)
	req := net.add(mnOptions{})
	ex := net.add(mnOptions{agentFiles: map[string]string{"flaky": trustFailingAgent}})
	net.linkAll()
	dones := make(chan tasks.Done, 16)
	trustWithDone(t, req, func(d tasks.Done) { dones <- d })
	net.advertiseDirect(ex, req)
	tags := func(skill string) []string {
		ps := req.idx.Providers(mnCommunity, skill)
		if len(ps) != 1 {
			t.Fatalf("providers of %s: %+v", skill, ps)
		}
		return ps[0].Skill.Tags
	}
	statsTags, failTags := tags("text.stats"), tags("fail.echo")
	if !slices.Contains(statsTags, "deterministic") || !slices.Equal(failTags, []string{"deterministic", "flaky"}) {
		t.Fatalf("advertised tags %v and %v", statsTags, failTags)
	}
	// next returns the one Done of a task that ended.
	next := func(end api.Task) tasks.Done {
		t.Helper()
		var d tasks.Done
		select {
		case d = <-dones:
		default:
			t.Fatalf("no Done for task %s (%s)", end.ID, end.Status)
		}
		select {
		case d2 := <-dones:
			t.Fatalf("a second Done: %+v", d2)
		default:
		}
		return d
	}
	none := func(end api.Task) {
		t.Helper()
		select {
		case d := <-dones:
			t.Errorf("Done for task %s (%s): %+v", end.ID, end.Status, d)
		default:
		}
	}

	// Completed.
	end := trustRun(t, req, tasks.Request{Remote: true})
	trustCompletedOn(t, end, ex)
	d := next(end)
	if d.Task != end.ID || d.Skill != "text.stats" || !d.Community.Equals(mnCommunity) || d.Status != tasks.StatusCompleted ||
		d.Code != "" || d.Audit {
		t.Errorf("Done %+v", d)
	}
	if d.Receipt == nil || d.Receipt.CID().String() != end.Receipt.CID || d.Receipt.Executor != ex.id ||
		d.Receipt.Requester != req.id || d.Receipt.Status != task.StatusCompleted {
		t.Errorf("Done's receipt %+v, the task's %+v", d.Receipt, end.Receipt)
	}
	if string(d.Input) != mnStatsInput || string(d.Output) != string(end.Output) {
		t.Errorf("Done's input %s and output %s; the task's output %s", d.Input, d.Output, end.Output)
	}
	if !slices.Equal(d.Tags, statsTags) {
		t.Errorf("Done's tags %v, advertised %v", d.Tags, statsTags)
	}

	// Failed after acceptance, with a receipt.
	end = trustRun(t, req, tasks.Request{Skill: "fail.echo", Input: []byte(`{ "n" : 1 }`)})
	if end.Status != tasks.StatusFailed || end.Code == "" || end.Executor != ex.id.String() || end.Receipt == nil {
		t.Fatalf("%s %s %s on %s, receipt %v; events %+v", end.Status, end.Code, end.Error, end.Executor, end.Receipt, end.Events)
	}
	if !slices.ContainsFunc(end.Events, func(e api.TaskEvent) bool { return e.Type == "accepted" && e.Peer == ex.id.String() }) {
		t.Errorf("the executor never accepted: %+v", end.Events)
	}
	d = next(end)
	if d.Task != end.ID || d.Skill != "fail.echo" || d.Status != tasks.StatusFailed || d.Code != end.Code || d.Audit {
		t.Errorf("Done %+v", d)
	}
	if d.Receipt == nil || d.Receipt.CID().String() != end.Receipt.CID || d.Receipt.Executor != ex.id ||
		d.Receipt.Status != task.StatusFailed {
		t.Errorf("Done's receipt %+v", d.Receipt)
	}
	if string(d.Input) != `{"n":1}` || len(d.Output) != 0 {
		t.Errorf("Done's input %s and output %s", d.Input, d.Output)
	}
	if !slices.Equal(d.Tags, failTags) {
		t.Errorf("Done's tags %v, advertised %v", d.Tags, failTags)
	}

	// Local: this node ran it, nobody to give feedback on.
	end = trustRun(t, req, tasks.Request{Peer: req.id})
	if end.Status != tasks.StatusCompleted || end.Executor != req.id.String() || end.Receipt == nil {
		t.Fatalf("local: %s on %s, receipt %v", end.Status, end.Executor, end.Receipt)
	}
	none(end)

	// Refused by every provider: nothing ran.
	end = trustRun(t, req, tasks.Request{Skill: "text.stats", Input: []byte(`{"txt":"hello"}`), Remote: true})
	if end.Status != tasks.StatusRejected || !slices.Equal(trustTried(end), []string{ex.id.String()}) {
		t.Fatalf("refused: %s %s %s, sent to %v", end.Status, end.Code, end.Error, trustTried(end))
	}
	none(end)

	// No provider at all.
	end = trustRun(t, req, tasks.Request{Skill: "no.such.skill", Remote: true})
	if end.Status != tasks.StatusFailed || end.Code != tasks.CodeNoProvider {
		t.Fatalf("no provider: %s %s", end.Status, end.Code)
	}
	none(end)

	// Failed without a receipt: the provider could not be reached.
	trustCut(t, net, req, ex)
	end = trustRun(t, req, tasks.Request{Remote: true})
	if end.Status != tasks.StatusFailed || end.Code != tasks.CodeVanished || end.Receipt != nil {
		t.Fatalf("unreachable: %s %s, receipt %v", end.Status, end.Code, end.Receipt)
	}
	none(end)
}
