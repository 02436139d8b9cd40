package tasks

// Journal tests, in-package to reach the journal itself. The node package
// (node.LocalAgents) cannot be imported here (it imports this package), so
// mnJournalLocal adapts an agents.Manager as node/work.go does.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/agora-p2p/agora/protocol/task"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/ristretto/v2/z"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"

	"github.com/agora-p2p/agora/node/agents"
	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/capindex"
	"github.com/agora-p2p/agora/registry"
)

type mnJournalLocal struct{ m *agents.Manager }

func (l mnJournalLocal) Has(skill string) bool { _, _, ok := l.m.Skill(skill); return ok }

func (l mnJournalLocal) Admit(skill string, input json.RawMessage, from peer.ID, c cid.Cid) (Job, error) {
	adm, err := l.m.Admit(skill, input, c.String(), from != "")
	if err != nil {
		return nil, err
	}
	return &mnJournalJob{m: l.m, agent: adm.Agent, skill: skill, input: input, release: adm.Release}, nil
}

type mnJournalJob struct {
	m       *agents.Manager
	agent   string
	skill   string
	input   json.RawMessage
	release func()
}

func (j *mnJournalJob) Agent() string { return j.agent }
func (j *mnJournalJob) Release()      { j.release() }
func (j *mnJournalJob) Run(ctx context.Context, p agents.Progress) (json.RawMessage, error) {
	return j.m.RunAdmitted(ctx, j.skill, j.input, p)
}

var mnJournalComm = func() cid.Cid {
	h, _ := mh.Sum([]byte("journal tests"), mh.SHA2_256, -1)
	return cid.NewCidV1(cid.DagCBOR, h)
}()

// mnJournalNode is one node whose Service can be stopped and restarted on
// the same badger directory.
type mnJournalNode struct {
	t     *testing.T
	key   crypto.PrivKey
	h     host.Host
	dir   string
	m     *agents.Manager
	db    *badger.DB
	svc   *Service
	ready chan struct{} // closed at the first progress event of any task
}

func mnJournalStart(t *testing.T, agentFiles map[string]string) *mnJournalNode {
	t.Helper()
	n := &mnJournalNode{t: t, dir: t.TempDir()}
	var err error
	if n.key, _, err = crypto.GenerateEd25519Key(rand.Reader); err != nil {
		t.Fatal(err)
	}
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	if n.h, err = mn.AddPeer(n.key, ma.StringCast("/ip4/127.0.0.1/tcp/1")); err != nil {
		t.Fatal(err)
	}
	agDir := filepath.Join(n.dir, "agents")
	if err := os.MkdirAll(agDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if len(agentFiles) > 0 {
		if err := os.WriteFile(filepath.Join(agDir, "builtin.toml"), []byte(agents.BuiltinAgentFile), 0o600); err != nil {
			t.Fatal(err)
		}
		for name, data := range agentFiles {
			if err := os.WriteFile(filepath.Join(agDir, name+".toml"), []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	factories := map[string]agents.Factory{"builtin": agents.BuiltinFactory, "exec": agents.ExecFactory}
	if n.m, err = agents.NewManager(agDir, factories, agents.Env{Dir: agDir}, nil); err != nil {
		t.Fatal(err)
	}
	if err := n.m.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.m.Close() })
	n.open()
	t.Cleanup(func() {
		if n.svc != nil {
			n.svc.Close()
		}
		if n.db != nil {
			n.db.Close()
		}
	})
	return n
}

type mnJournalEvents struct{ progress chan struct{} }

func (e mnJournalEvents) Publish(typ string, data any) api.Event {
	if u, ok := data.(api.TaskUpdate); ok {
		if u.Event.Type == "progress" {
			select {
			case e.progress <- struct{}{}:
			default:
			}
		}
	}
	return api.Event{}
}

// open opens the badger and a Service on it.
func (n *mnJournalNode) open() {
	n.t.Helper()
	var err error
	if n.db, err = badger.Open(registry.BadgerOptions(filepath.Join(n.dir, "db")).WithMemTableSize(4 << 20)); err != nil {
		n.t.Fatal(err)
	}
	n.ready = make(chan struct{}, 1)
	if n.svc, err = New(Config{
		Host: n.h, Key: n.key, DB: n.db, Local: mnJournalLocal{n.m}, Index: capindex.New(nil),
		Member:  func(c cid.Cid) bool { return c.Equals(mnJournalComm) },
		Default: func(string) (cid.Cid, error) { return mnJournalComm, nil },
		Events:  mnJournalEvents{n.ready},
	}); err != nil {
		n.t.Fatal(err)
	}
}

// restart closes the Service and the badger cleanly and reopens both.
func (n *mnJournalNode) restart() {
	n.svc.Close()
	if err := n.db.Close(); err != nil {
		n.t.Fatal(err)
	}
	n.open()
}

// crash stops the node as a kill would: the journal stops writing first,
// so whatever happens after (the tasks being canceled) never reaches the
// disk; then badger is closed and the Service's goroutines are stopped.
func (n *mnJournalNode) crash() {
	n.svc.j.close()
	if err := n.db.Close(); err != nil {
		n.t.Fatal(err)
	}
	n.svc.cfg.Host.RemoveStreamHandler("/agora/task/1.0.0")
	n.svc.stop()
	n.svc.wg.Wait()
	n.svc = nil
	n.open()
}

func (n *mnJournalNode) wait(id string) api.Task {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := n.svc.Wait(ctx, id)
	if err != nil || !Terminal(got.Status) {
		n.t.Fatalf("task %s: %+v %v", id, got, err)
	}
	return got
}

// TestMnJournalSurvivesRestart: finished tasks, with their events and
// receipts, are all there after the node restarts.
func TestMnJournalSurvivesRestart(t *testing.T) {
	n := mnJournalStart(t, nil)
	self := n.h.ID()
	inputs := []struct {
		skill, input, status string
	}{
		{"text.stats", `{"text":"a b c"}`, StatusCompleted},
		{"math.eval", `{"expr":"6*7"}`, StatusCompleted},
		{"text.stats", `{"txt":1}`, StatusRejected},             // the only candidate refused it
		{"json.query", `{"data":1,"query":"error(\"x\")"}`, ""}, // fails in the backend
	}
	var ids []string
	for _, in := range inputs {
		got, err := n.svc.Submit(context.Background(), Request{Skill: in.skill, Input: json.RawMessage(in.input), Peer: self, HopsLeft: -1})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got.ID)
	}
	before := map[string]api.Task{}
	for i, id := range ids {
		got := n.wait(id)
		if inputs[i].status != "" && got.Status != inputs[i].status {
			t.Fatalf("task %d: %s %s %s", i, got.Status, got.Code, got.Error)
		}
		if inputs[i].status == "" && got.Status != StatusFailed {
			t.Fatalf("task %d: %s", i, got.Status)
		}
		if got.Status == StatusCompleted && (got.Receipt == nil || got.Receipt.Executor != self.String()) {
			t.Fatalf("task %d has no receipt: %+v", i, got)
		}
		before[id] = got
	}
	n.restart()

	list, err := n.svc.List(100)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(ids) {
		t.Fatalf("after restart List has %d tasks, want %d: %+v", len(list), len(ids), list)
	}
	for _, lt := range list {
		b, ok := before[lt.ID]
		if !ok {
			t.Fatalf("unknown task %s", lt.ID)
		}
		if lt.Status != b.Status || lt.Skill != b.Skill || lt.Role != "requester" || lt.Events != nil || lt.Input != nil {
			t.Errorf("listed %+v, was %+v", lt, b)
		}
	}
	for i := 1; i < len(list); i++ {
		if list[i-1].Created < list[i].Created {
			t.Errorf("List is not newest first")
		}
	}
	for id, b := range before {
		got, err := n.svc.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, b) {
			t.Errorf("task %s after restart:\n%+v\nbefore:\n%+v", id, got, b)
		}
		if len(got.Events) < 2 || got.Events[0].Type != StatusSubmitted || got.Events[len(got.Events)-1].Type != got.Status {
			t.Errorf("task %s events %+v", id, got.Events)
		}
	}
	if _, err := n.svc.Get("no-such-task-id"); err != ErrNotFound {
		t.Errorf("Get of an unknown ID: %v", err)
	}
}

// TestMnJournalInFlightAfterCrash: tasks in flight when the node stops
// come back failed with node-restarted, for good.
func TestMnJournalInFlightAfterCrash(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pids")
	slow := fmt.Sprintf(`name = "slow"
backend = "exec"
[exec]
command = ["/bin/sh", "-c", 'echo $$ >> "$PIDFILE"; echo "progress: 10 started" >&2; sleep 30; cat']
env = ["PIDFILE=%s"]
[[skills]]
id = "slow.echo"
`, pidfile)
	n := mnJournalStart(t, map[string]string{"slow": slow})
	got, err := n.svc.Submit(context.Background(), Request{Skill: "slow.echo", Input: json.RawMessage(`{}`), Peer: n.h.ID(), HopsLeft: -1})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.ready:
	case <-time.After(20 * time.Second):
		t.Fatal("the slow task did not start")
	}
	// Also an executor task left "working" by a previous run, written
	// straight into the journal.
	now := time.Now().UnixMilli()
	stale := api.Task{ID: "stale-executor-task", Status: StatusWorking, Role: "executor", Skill: "text.stats",
		Created: now - 1000, Updated: now - 1000, Attempts: 1,
		Events: []api.TaskEvent{{Seq: 1, Time: now - 1000, Type: "accepted"}}}
	n.svc.j.put(stale.ID, fixed(stale))
	n.crash()

	for _, id := range []string{got.ID, stale.ID} {
		for round := range 2 {
			tk, err := n.svc.Get(id)
			if err != nil {
				t.Fatal(err)
			}
			last := tk.Events[len(tk.Events)-1]
			if tk.Status != StatusFailed || tk.Code != "node-restarted" || tk.Error == "" ||
				last.Type != StatusFailed || last.Code != "node-restarted" || last.Seq != len(tk.Events) || tk.DurationMS <= 0 {
				t.Errorf("round %d: task %s after the crash: %+v", round, id, tk)
			}
			if id == got.ID && (len(tk.Events) < 3 || tk.Events[1].Type != "accepted") {
				t.Errorf("the slow task lost its events: %+v", tk.Events)
			}
			if round == 0 {
				n.restart() // the recovery itself was written
			}
		}
	}
}

// TestMnJournalGetDuringFlush: a task must stay readable while the journal
// writes it. BUG: journal.flush swaps the dirty map out before the batch is
// committed, so for the length of the write (a synced badger write) the task
// is neither pending nor on disk and get says ErrNotFound (list leaves it
// out). Service.Wait and Get on a task that just ended hit this.
func TestMnJournalGetDuringFlush(t *testing.T) {
	db, err := badger.Open(registry.BadgerOptions(t.TempDir()).WithMemTableSize(4 << 20))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	j, err := openJournal(db, slog.New(slog.DiscardHandler), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	misses, listMisses := 0, 0
	for round := range 4 {
		now := time.Now().UnixMilli()
		var ids []string
		for i := range 20 {
			tk := api.Task{ID: fmt.Sprintf("task-%02d-%02d", round, i), Status: StatusCompleted, Role: "requester", Skill: "text.stats",
				Created: now, Updated: now, Events: []api.TaskEvent{{Seq: 1, Time: now, Type: StatusCompleted}}}
			j.put(tk.ID, fixed(tk))
			ids = append(ids, tk.ID)
		}
		// Read them back until the batch is surely written (several
		// flush periods), as a client polling the API would.
		end := time.Now().Add(5 * flushEvery)
		for time.Now().Before(end) {
			for _, id := range ids {
				if _, err := j.get(id); err != nil {
					misses++
				}
			}
			if l, err := j.list(10000); err != nil || len(l) != (round+1)*20 {
				listMisses++
			}
		}
	}
	if misses > 0 || listMisses > 0 {
		t.Errorf("tasks vanished while the journal wrote them: %d failed gets, %d short lists", misses, listMisses)
	}
}

func TestNewIDNeverLooksLikeAFlag(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 {
		id := NewID()
		if len(id) != 26 || id[0] == '-' || !task.ValidID(id) || seen[id] {
			t.Fatalf("bad or repeated task ID %q", id)
		}
		seen[id] = true
	}
}

// TestMnJournalDurableBeforeRun: a task on a backend with effects (exec) is
// in badger itself, not only queued, by the time its command starts, so a
// kill at any moment of its run leaves it for the next start to end as
// failed.
func TestMnJournalDurableBeforeRun(t *testing.T) {
	slow := `name = "slow"
backend = "exec"
[exec]
command = ["/bin/sh", "-c", 'echo "progress: 10 started" >&2; sleep 30; cat']
[[skills]]
id = "slow.echo"
`
	n := mnJournalStart(t, map[string]string{"slow": slow})
	onDisk := func(id string) bool {
		err := n.db.View(func(txn *badger.Txn) error {
			_, err := txn.Get([]byte(keyByID + id))
			return err
		})
		if err != nil && err != badger.ErrKeyNotFound {
			t.Fatal(err)
		}
		return err == nil
	}
	got, err := n.svc.Submit(context.Background(), Request{Skill: "slow.echo", Input: json.RawMessage(`{}`), Peer: n.h.ID(), HopsLeft: -1})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.ready:
	case <-time.After(20 * time.Second):
		t.Fatal("the slow task did not start")
	}
	if !onDisk(got.ID) {
		t.Fatal("the exec task runs but its journal entry is not in badger")
	}
	if err := n.svc.Cancel(got.ID); err != nil {
		t.Fatal(err)
	}
	n.wait(got.ID)
}

// openTestJournal opens a badger in dir with the node's options and a
// journal on it.
func openTestJournal(t *testing.T, dir string) (*badger.DB, *journal) {
	t.Helper()
	db, err := badger.Open(registry.BadgerOptions(dir).WithMemTableSize(4 << 20))
	if err != nil {
		t.Fatal(err)
	}
	j, err := openJournal(db, slog.New(slog.DiscardHandler), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return db, j
}

// checkAcrossRestart runs check on j, then closes j and db and runs it
// again on a journal opened afresh on dir.
func checkAcrossRestart(t *testing.T, dir string, db *badger.DB, j *journal, check func(when string, j *journal)) {
	t.Helper()
	check("written in this run", j)
	j.close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, j = openTestJournal(t, dir)
	defer db.Close()
	defer j.close()
	check("after a restart", j)
}

// TestJournalFilterKnowsEveryTask: the filter that lets get skip badger
// never hides a journaled task, whether it was written in this run or
// read back from disk by the next one, and unknown IDs are not found.
func TestJournalFilterKnowsEveryTask(t *testing.T) {
	dir := t.TempDir()
	db, j := openTestJournal(t, dir)
	now := time.Now().UnixMilli()
	var ids []string
	for i := range 500 {
		tk := api.Task{ID: fmt.Sprintf("filter-%03d", i), Status: StatusCompleted, Role: "executor", Skill: "text.stats",
			Created: now, Updated: now, Events: []api.TaskEvent{{Seq: 1, Time: now, Type: StatusCompleted}}}
		j.put(tk.ID, fixed(tk))
		ids = append(ids, tk.ID)
	}
	if err := j.durable(context.Background()); err != nil {
		t.Fatal(err)
	}
	check := func(when string, j *journal) {
		t.Helper()
		for _, id := range ids {
			if got, err := j.get(id); err != nil || got.ID != id {
				t.Fatalf("%s: get(%s) = %q, %v", when, id, got.ID, err)
			}
			if ok, err := j.has(id); !ok || err != nil {
				t.Fatalf("%s: has(%s) = %v, %v", when, id, ok, err)
			}
		}
		for i := range 2000 {
			id := fmt.Sprintf("unknown-%04d", i)
			if _, err := j.get(id); err != ErrNotFound {
				t.Fatalf("%s: an unknown ID: %v, want ErrNotFound", when, err)
			}
			if ok, err := j.has(id); ok || err != nil {
				t.Fatalf("%s: has(%s) = %v, %v", when, id, ok, err)
			}
		}
	}
	checkAcrossRestart(t, dir, db, j, check)
}

// TestJournalStoresReceiptsCompactly: the journal keeps a receipt as its
// signed encoding only and gives back every decoded field on get and list,
// before and after a restart; an entry in the older, decoded form reads as
// it was; a receipt that no longer decodes comes back as stored, unverified.
func TestJournalStoresReceiptsCompactly(t *testing.T) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	self, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	comm, err := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: -1}.Sum([]byte("compact"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	rc := &task.Receipt{Task: "compact-task-01", Community: comm, Requester: self, Agent: "builtin", Skill: "text.stats",
		Input: task.Hash([]byte(`{"text":"a b"}`)), Output: task.Hash([]byte(`{"words":2}`)), Status: task.StatusCompleted,
		Started: now, Ended: now}
	if _, err := rc.Sign(key); err != nil {
		t.Fatal(err)
	}
	view := receiptView(rc)
	mk := func(id string, r *api.Receipt) api.Task {
		return api.Task{ID: id, Status: StatusCompleted, Role: "requester", Skill: "text.stats", Created: now, Updated: now,
			Receipt: r, Events: []api.TaskEvent{{Seq: 1, Time: now, Type: StatusCompleted}}}
	}
	dir := t.TempDir()
	db, j := openTestJournal(t, dir)
	fresh := mk("compact-task-01", view)
	j.put(fresh.ID, fixed(fresh))
	damaged := mk("compact-task-02", &api.Receipt{Raw: "bm90IGEgcmVjZWlwdA==", Verified: true})
	j.put(damaged.ID, fixed(damaged))
	if err := j.durable(context.Background()); err != nil {
		t.Fatal(err)
	}
	// An entry as journals wrote them before: the decoded fields stored.
	old := mk("compact-task-03", view)
	oldJSON, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error {
		k := taskKey(old.Created, old.ID)
		if err := txn.Set(k, oldJSON); err != nil {
			return err
		}
		return txn.Set(append([]byte(keyByID), old.ID...), k)
	}); err != nil {
		t.Fatal(err)
	}
	j.ids.Add(z.MemHashString(old.ID))

	var stored []byte
	if err := db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(taskKey(fresh.Created, fresh.ID))
		if err != nil {
			return err
		}
		stored, err = it.ValueCopy(nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored, []byte(`"input_hash"`)) || !bytes.Contains(stored, []byte(view.Raw)) {
		t.Fatalf("the journal stored the receipt's fields, not its encoding alone: %s", stored)
	}
	if len(stored) >= len(oldJSON) {
		t.Fatalf("compact entry %d bytes, the decoded form %d", len(stored), len(oldJSON))
	}
	check := func(when string, j *journal) {
		t.Helper()
		for _, want := range []api.Task{fresh, old} {
			got, err := j.get(want.ID)
			if err != nil {
				t.Fatalf("%s: get %s: %v", when, want.ID, err)
			}
			if !reflect.DeepEqual(got.Receipt, want.Receipt) {
				t.Fatalf("%s: get %s: receipt\n%+v\nwant\n%+v", when, want.ID, got.Receipt, want.Receipt)
			}
		}
		got, err := j.get(damaged.ID)
		if err != nil || got.Receipt == nil || got.Receipt.Raw != damaged.Receipt.Raw || got.Receipt.Verified || got.Receipt.CID != "" {
			t.Fatalf("%s: damaged receipt: %+v, %v", when, got.Receipt, err)
		}
		list, err := j.list(10)
		if err != nil || len(list) != 3 {
			t.Fatalf("%s: list: %d tasks, %v", when, len(list), err)
		}
		for _, lt := range list {
			if lt.ID == damaged.ID {
				continue
			}
			want := *view
			want.Raw = ""
			if lt.Receipt == nil || *lt.Receipt != want {
				t.Fatalf("%s: list %s: receipt %+v, want %+v", when, lt.ID, lt.Receipt, want)
			}
		}
	}
	checkAcrossRestart(t, dir, db, j, check)
}

// unencodable is a journal entry whose encoding fails.
type unencodable struct{ fixed }

func (unencodable) stored() (stored, error) { return stored{}, errors.New("cannot encode") }

// TestJournalSkipsAnEntryItCannotEncode: one task that cannot be encoded
// does not cost the rest of its batch their write.
func TestJournalSkipsAnEntryItCannotEncode(t *testing.T) {
	dir := t.TempDir()
	db, j := openTestJournal(t, dir)
	good := api.Task{ID: "good-task-0001", Status: StatusCompleted, Role: "executor", Skill: "text.stats", Created: 1}
	j.put("bad-task-00001", unencodable{fixed(api.Task{ID: "bad-task-00001", Created: 2})})
	j.put(good.ID, fixed(good))
	if err := j.flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	checkAcrossRestart(t, dir, db, j, func(when string, j *journal) {
		if got, err := j.get(good.ID); err != nil || got.Status != StatusCompleted {
			t.Fatalf("%s: the good task: %+v, %v", when, got, err)
		}
		if _, err := j.get("bad-task-00001"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: the bad task: %v", when, err)
		}
	})
}
