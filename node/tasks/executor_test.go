package tasks_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	mh "github.com/multiformats/go-multihash"

	"github.com/agora-p2p/agora/node/agents"
	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/tasks"
	"github.com/agora-p2p/agora/protocol/task"
)

// TestMnLoopAndHops: a request naming a task in flight on the executor in
// its ancestry is refused with "loop"; a request with no hops left runs.
func TestMnLoopAndHops(t *testing.T) {
	dir := t.TempDir()
	net := mnNewNet(t)
	req := net.add(mnOptions{})
	client := net.add(mnOptions{noService: true})
	ex := net.add(mnOptions{agentFiles: map[string]string{"slow": mnSlowAgent("slow", "slow.echo", filepath.Join(dir, "pids"), "30", 4, "")}})
	net.linkAll()

	got, err := req.svc.Submit(context.Background(), tasks.Request{Skill: "slow.echo", Input: []byte(`{}`), Peer: ex.id, Timeout: 40 * time.Second, HopsLeft: -1})
	if err != nil {
		t.Fatal(err)
	}
	// In flight on the executor once it has journaled its acceptance.
	ex.events.wait(t, 20*time.Second, "executor accepted", func(e mnEvent) bool {
		return e.TaskID == got.ID && e.Role == "executor" && e.Ev.Type == "accepted"
	})

	// A subtask of it coming back (from any peer) is a loop.
	for _, ancestry := range [][]string{{got.ID}, {"rootrootroot", got.ID}, {got.ID, "childchild"}} {
		r := mnRequest("text.stats", mnStatsInput)
		r.Ancestry = ancestry
		st := mnRaw(t, client, ex, r)
		f := mnReadFrame(t, st)
		rj, ok := f.(*task.Rejected)
		if !ok || rj.Code != tasks.CodeLoop || rj.ID != r.ID || rj.Reason == "" {
			t.Errorf("ancestry %v: %T %+v", ancestry, f, f)
		}
		st.Close()
	}
	// An unrelated ancestry is no loop.
	r := mnRequest("text.stats", mnStatsInput)
	r.Ancestry = []string{"unrelated-task"}
	st := mnRaw(t, client, ex, r)
	if f := mnReadFrame(t, st); f.Type() != task.TypeAccepted {
		t.Fatalf("unrelated ancestry: %T %+v", f, f)
	}
	if res, ok := mnReadEnd(t, st).(*task.Result); !ok {
		t.Fatalf("unrelated ancestry did not complete: %+v", res)
	}

	// No hops left: the task still runs (it just cannot delegate further).
	r = mnRequest("text.stats", mnStatsInput)
	r.HopsLeft = 0
	st = mnRaw(t, client, ex, r)
	if f := mnReadFrame(t, st); f.Type() != task.TypeAccepted {
		t.Fatalf("hops 0: %T %+v", f, f)
	}
	res, ok := mnReadEnd(t, st).(*task.Result)
	if !ok {
		t.Fatal("hops 0 did not complete")
	}
	mnJSONEqual(t, res.Output, mnStatsOutput)
	rc, err := task.DecodeReceipt(res.Receipt)
	if err != nil || rc.Executor != ex.id || rc.Requester != client.id || rc.Task != r.ID {
		t.Fatalf("receipt %+v %v", rc, err)
	}
	// And through the requester's API with HopsLeft 0.
	sub, err := req.svc.Submit(context.Background(), tasks.Request{Skill: "text.stats", Input: []byte(mnStatsInput), Peer: ex.id, HopsLeft: 0})
	if err != nil {
		t.Fatal(err)
	}
	if end := mnWait(t, req.svc, sub.ID, 20*time.Second); end.Status != tasks.StatusCompleted {
		t.Fatalf("hops 0 via Submit: %+v", end)
	}

	if err := req.svc.Cancel(got.ID); err != nil {
		t.Fatal(err)
	}
	mnWait(t, ex.svc, got.ID, 10*time.Second)
}

// TestMnAdmission checks every rejection of the executor over real
// streams, and that a malformed frame resets the stream while the executor
// keeps serving.
func TestMnAdmission(t *testing.T) {
	dir := t.TempDir()
	net := mnNewNet(t)
	client := net.add(mnOptions{noService: true})
	ex := net.add(mnOptions{agentFiles: map[string]string{
		"slow": mnSlowAgent("slow", "slow.echo", filepath.Join(dir, "pids"), "30", 1, ""),
		"priv": mnSlowAgent("priv", "priv.echo", filepath.Join(dir, "priv.pids"), "0", 4, "[sharing]\nmode = \"private\"\n"),
	}})
	limited := net.add(mnOptions{ratePerPeer: 0.001, burst: 2})
	net.linkAll()

	// The schema error text the executor must pass on.
	badInput := `{"txt":"hello"}`
	var re *agents.RunError
	if err := ex.agents.Check("text.stats", json.RawMessage(badInput)); !errors.As(err, &re) || re.Code != agents.CodeInvalidInput || re.Reason == "" {
		t.Fatalf("the manager's check of a bad input: %v", err)
	}
	schemaErr := re.Reason

	otherComm := func() cid.Cid {
		h, _ := mh.Sum([]byte("another community"), mh.SHA2_256, -1)
		return cid.NewCidV1(cid.DagCBOR, h)
	}()
	big := `{"text":"` + strings.Repeat("a", agents.DefaultMaxInput) + `"}`

	// Busy: the slow agent's only slot is taken by a task held open.
	hold := mnRequest("slow.echo", `{}`)
	holdSt := mnRaw(t, client, ex, hold)
	if f := mnReadFrame(t, holdSt); f.Type() != task.TypeAccepted {
		t.Fatalf("hold: %T %+v", f, f)
	}

	dup := mnRequest("text.stats", mnStatsInput)
	cases := []struct {
		name   string
		req    func() *task.Request
		code   string
		reason string // a part of the reason
	}{
		{"unknown skill", func() *task.Request { return mnRequest("no.such.skill", `{}`) }, agents.CodeUnknownSkill, "no.such.skill"},
		{"private skill", func() *task.Request { return mnRequest("priv.echo", `{}`) }, agents.CodeUnknownSkill, "priv.echo"},
		{"invalid input", func() *task.Request { return mnRequest("text.stats", badInput) }, agents.CodeInvalidInput, schemaErr},
		{"input too large", func() *task.Request { return mnRequest("text.stats", big) }, agents.CodeInputTooBig, "text.stats"},
		{"not a member", func() *task.Request { r := mnRequest("text.stats", mnStatsInput); r.Community = otherComm; return r }, tasks.CodeNotMember, otherComm.String()},
		{"expired", func() *task.Request {
			r := mnRequest("text.stats", mnStatsInput)
			r.Deadline = time.Now().Add(-time.Second).UnixMilli()
			return r
		}, tasks.CodeExpired, "deadline"},
		{"duplicate", func() *task.Request { return dup }, tasks.CodeDuplicate, "ID"},
		{"busy", func() *task.Request { return mnRequest("slow.echo", `{}`) }, agents.CodeBusy, "slow"},
	}
	// The first of dup runs.
	st := mnRaw(t, client, ex, dup)
	if f := mnReadFrame(t, st); f.Type() != task.TypeAccepted {
		t.Fatalf("dup, first: %T %+v", f, f)
	}
	mnReadEnd(t, st)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.req()
			st := mnRaw(t, client, ex, r)
			defer st.Close()
			f := mnReadFrame(t, st)
			rj, ok := f.(*task.Rejected)
			if !ok {
				t.Fatalf("%T %+v, want rejected %s", f, f, c.code)
			}
			if rj.Code != c.code || rj.ID != r.ID || !strings.Contains(rj.Reason, c.reason) {
				t.Fatalf("rejected %q %q, want %q containing %q", rj.Code, rj.Reason, c.code, c.reason)
			}
			// The executor closes the stream after a rejection.
			if _, err := task.Read(st, task.MaxFrame); err == nil {
				t.Fatal("a frame after the rejection")
			}
			// Nothing was journaled for a rejected request.
			if _, err := ex.svc.Get(r.ID); !errors.Is(err, tasks.ErrNotFound) && c.code != tasks.CodeDuplicate {
				t.Errorf("a rejected task is in the journal: %v", err)
			}
		})
	}

	// Rate limit: burst 2, then refused.
	for i := range 3 {
		r := mnRequest("text.stats", mnStatsInput)
		st := mnRaw(t, client, limited, r)
		f := mnReadFrame(t, st)
		if i < 2 {
			if f.Type() != task.TypeAccepted {
				t.Fatalf("request %d under the limit: %T %+v", i, f, f)
			}
			mnReadEnd(t, st)
			continue
		}
		if rj, ok := f.(*task.Rejected); !ok || rj.Code != tasks.CodeRateLimited {
			t.Fatalf("request over the limit: %T %+v", f, f)
		}
	}

	// A malformed frame: a valid length prefix, then garbage.
	st = mnRaw(t, client, ex, nil)
	garbage := []byte("\xff\x00garbage!garbage!garbage!")
	frame := binary.AppendUvarint(nil, uint64(len(garbage)))
	if _, err := st.Write(append(frame, garbage...)); err != nil {
		t.Fatal(err)
	}
	_, err := task.Read(st, task.MaxFrame)
	if err == nil {
		t.Fatal("a frame in answer to garbage")
	}
	if !errors.Is(err, network.ErrReset) {
		t.Errorf("the stream was not reset: %v", err)
	}
	// A length prefix over the cap is a fault of its own kind.
	st = mnRaw(t, client, ex, nil)
	if _, err := st.Write(binary.AppendUvarint(nil, task.MaxFrame+1)); err != nil {
		t.Fatal(err)
	}
	if _, err := task.Read(st, task.MaxFrame); !errors.Is(err, network.ErrReset) {
		t.Errorf("an oversized frame: the stream was not reset: %v", err)
	}
	// A stream that starts with another frame than Request is reset too,
	// but a well-formed frame out of turn is no proof of malice.
	st = mnRaw(t, client, ex, &task.Cancel{ID: tasks.NewID(), Reason: "x"})
	if _, err := task.Read(st, task.MaxFrame); !errors.Is(err, network.ErrReset) {
		t.Errorf("a stream starting with cancel: %v", err)
	}
	if m, l := ex.faultCount(client.id, "task:malformed"), ex.faultCount(client.id, "task:too-large"); m != 1 || l != 1 {
		t.Errorf("the executor faulted the sender %d times for garbage and %d for an oversized frame, want 1 and 1", m, l)
	}
	// The executor still serves.
	r := mnRequest("text.stats", mnStatsInput)
	st = mnRaw(t, client, ex, r)
	if f := mnReadFrame(t, st); f.Type() != task.TypeAccepted {
		t.Fatalf("after garbage: %T %+v", f, f)
	}
	res, ok := mnReadEnd(t, st).(*task.Result)
	if !ok {
		t.Fatal("after garbage: no result")
	}
	mnJSONEqual(t, res.Output, mnStatsOutput)
	if et := mnWait(t, ex.svc, r.ID, 10*time.Second); et.Status != tasks.StatusCompleted || et.Role != "executor" {
		t.Errorf("executor's journal: %+v", et)
	}

	// Releasing the held slot (cancel) makes the slow agent free again.
	if err := task.Write(holdSt, &task.Cancel{ID: hold.ID, Reason: "done"}); err != nil {
		t.Fatal(err)
	}
	if f, ok := mnReadEnd(t, holdSt).(*task.Failed); !ok || f.Code != agents.CodeCanceled || len(f.Receipt) == 0 {
		t.Fatalf("held task: %+v", f)
	}
	if et := mnWait(t, ex.svc, hold.ID, 10*time.Second); et.Status != tasks.StatusCanceled {
		t.Errorf("held task on the executor: %+v", et)
	}
	r = mnRequest("slow.echo", `{"again":true}`)
	st = mnRaw(t, client, ex, r)
	if f := mnReadFrame(t, st); f.Type() != task.TypeAccepted {
		t.Fatalf("after release: %T %+v", f, f)
	}
	// A requester that resets its stream cancels the task. (The executor
	// sends Accepted before it registers the task: wait for that.)
	ex.events.wait(t, 10*time.Second, "executor accepted", func(e mnEvent) bool { return e.TaskID == r.ID && e.Ev.Type == "accepted" })
	_ = st.Reset()
	if et := mnWait(t, ex.svc, r.ID, 10*time.Second); et.Status != tasks.StatusCanceled || et.Code != agents.CodeCanceled {
		t.Errorf("reset task on the executor: %s %s %s", et.Status, et.Code, et.Error)
	}
}

// TestMnTaskIDCollision: a peer that sends a request with the ID of a task
// this node is itself running (here, as requester) must not take that
// task's place. BUG: the Service keys live tasks and the journal by the bare
// task ID, which the remote requester chooses; the executor's begin
// overwrites the requester's live entry and its journal record, and when the
// intruding task ends the requester's task can no longer be canceled and
// Get reports the intruder's record.
func TestMnTaskIDCollision(t *testing.T) {
	dir := t.TempDir()
	net := mnNewNet(t)
	a := net.add(mnOptions{})
	intruder := net.add(mnOptions{noService: true})
	b := net.add(mnOptions{agentFiles: map[string]string{"slow": mnSlowAgent("slow", "slow.echo", filepath.Join(dir, "pids"), "30", 4, "")}})
	net.linkAll()

	got, err := a.svc.Submit(context.Background(), tasks.Request{Skill: "slow.echo", Input: []byte(`{}`), Peer: b.id, Timeout: 40 * time.Second, HopsLeft: -1})
	if err != nil {
		t.Fatal(err)
	}
	b.events.wait(t, 20*time.Second, "executor accepted", func(e mnEvent) bool {
		return e.TaskID == got.ID && e.Role == "executor" && e.Ev.Type == "accepted"
	})

	r := mnRequest("text.stats", mnStatsInput)
	r.ID = got.ID
	st := mnRaw(t, intruder, a, r)
	f := mnReadFrame(t, st)
	if f.Type() == task.TypeAccepted {
		mnReadEnd(t, st)
		// Wait for the intruding task's end on a (its final event).
		a.events.wait(t, 10*time.Second, "intruder's task ended", func(e mnEvent) bool {
			return e.TaskID == got.ID && e.Role == "executor" && tasks.Terminal(e.Status)
		})
	} else if rj, ok := f.(*task.Rejected); ok {
		t.Logf("the colliding request was rejected: %s %s", rj.Code, rj.Reason)
	}

	// a's own task is still a's, still running, and still cancelable.
	cur, err := a.svc.Get(got.ID)
	if err != nil || cur.Role != "requester" || tasks.Terminal(cur.Status) {
		t.Errorf("after a colliding request, Get(%s) = role %q status %q (%v); want the running requester task", got.ID, cur.Role, cur.Status, err)
	}
	if err := a.svc.Cancel(got.ID); err != nil {
		t.Errorf("the requester's task cannot be canceled any more: %v", err)
	}
	// However it went, make sure the slow task ends (cleanup).
	_ = b.svc.Cancel(got.ID)
	mnWait(t, b.svc, got.ID, 10*time.Second)
}

// TestMnSubmitWithoutDefault: tasks.New accepts a Config without Default
// (it is not among the fields New requires), so Submit must cope with it.
// BUG: Submit calls s.cfg.Default unconditionally (requester.go, "if c, err
// := s.cfg.Default(r.Community)") and panics with a nil pointer.
func TestMnSubmitWithoutDefault(t *testing.T) {
	net := mnNewNet(t)
	n := net.add(mnOptions{noDefault: true})
	var got api.Task
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("Submit panicked: %v", p)
			}
		}()
		got, err = n.svc.Submit(context.Background(), tasks.Request{Skill: "text.stats", Input: []byte(mnStatsInput), Peer: n.id, HopsLeft: -1})
	}()
	if err != nil {
		// Refusing is acceptable; panicking is not.
		t.Logf("Submit refused: %v", err)
		return
	}
	if end := mnWait(t, n.svc, got.ID, 10*time.Second); end.Status != tasks.StatusCompleted {
		t.Errorf("local task without a community: %+v", end)
	}
}

// TestMnRequesterVanishes: the requester's host goes away mid-task; the
// executor stops the work (and kills the child) instead of running it to
// its deadline.
func TestMnRequesterVanishes(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "pids")
	net := mnNewNet(t)
	client := net.add(mnOptions{noService: true})
	ex := net.add(mnOptions{agentFiles: map[string]string{"slow": mnSlowAgent("slow", "slow.echo", pidfile, "30", 4, "")}})
	net.linkAll()
	r := mnRequest("slow.echo", `{}`)
	st := mnRaw(t, client, ex, r)
	if f := mnReadFrame(t, st); f.Type() != task.TypeAccepted {
		t.Fatalf("%T %+v", f, f)
	}
	ex.events.wait(t, 10*time.Second, "progress", func(e mnEvent) bool { return e.TaskID == r.ID && e.Ev.Type == "progress" })
	if err := client.h.Close(); err != nil {
		t.Fatal(err)
	}
	et := mnWait(t, ex.svc, r.ID, 10*time.Second)
	if et.Status != tasks.StatusCanceled || et.Code != agents.CodeCanceled {
		t.Errorf("executor: %s %s %s", et.Status, et.Code, et.Error)
	}
	for _, pid := range mnReadPids(t, pidfile) {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("child %d still exists: %v", pid, err)
		}
	}
}
