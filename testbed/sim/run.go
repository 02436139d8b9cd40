package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agora-p2p/agora/node/repo"
	"github.com/agora-p2p/agora/node/tasks"
)

// Report is what a simulation measured. Durations are in milliseconds
// (distributions) or seconds (phases).
type Report struct {
	Nodes         int     `json:"nodes"`
	LinkLatencyMS float64 `json:"link_latency_ms"`
	Degree        int     `json:"degree"`
	Seed          uint64  `json:"seed"`
	GoMaxProcs    int     `json:"gomaxprocs"`
	Dir           string  `json:"dir"` // where the repos were

	// SetupS is from the first node's start until every index lists every
	// member; AdvertsForced counts the authors whose first advert the
	// network lost before its meshes formed and the harness had
	// republished (see capindex's joinRepeat).
	SetupS        float64 `json:"setup_s"`
	AdvertsForced int     `json:"adverts_forced_at_setup"`
	// Connections is the average number of peers a node is connected to
	// after setup and at the end.
	Connections    float64 `json:"connections_per_node"`
	ConnectionsEnd float64 `json:"connections_per_node_end"`

	// AdvertPropagation is, per node, from its advert's signing until
	// every other node's capability index holds it.
	AdvertPropagation Dist `json:"advert_propagation"`

	Delegations DelegationFigures `json:"delegations"`
	Records     RecordFigures     `json:"records"`
	Churn       ChurnFigures      `json:"churn"`

	MemorySetup Memory `json:"memory_after_setup"`
	MemoryEnd   Memory `json:"memory_at_end"`

	// Warnings counts the nodes' warnings and errors by message.
	Warnings  map[string]int `json:"warnings"`
	DurationS float64        `json:"duration_s"`

	samples struct {
		adverts, delegations, records, churn []time.Duration
	}
}

// DelegationFigures are the delegation phase's.
type DelegationFigures struct {
	Requested       int            `json:"requested"`
	Completed       int            `json:"completed"`
	EndedWithReason int            `json:"ended_with_reason"`
	Lost            int            `json:"lost"`
	Reasons         map[string]int `json:"reasons,omitempty"`
	Latency         Dist           `json:"latency"` // submit → completed, as the requester sees it
	MeanAttempts    float64        `json:"mean_attempts"`
	WallS           float64        `json:"wall_s"`
	PerSecond       float64        `json:"per_second"`
}

// RecordFigures are the records phase's.
type RecordFigures struct {
	Published  int     `json:"published"`
	Publishers int     `json:"publishers"`
	PublishS   float64 `json:"publish_s"` // first publish → last publish returned
	// Convergence is, per record, from its publication until the last node
	// stored it.
	Convergence Dist `json:"convergence"`
	// AllStoredS and EqualFingerprintS are from the first publication
	// until every node stored every record, and until every node's
	// fingerprint of the whole range was the same.
	AllStoredS        float64 `json:"all_stored_s"`
	EqualFingerprintS float64 `json:"equal_fingerprint_s"`
	// Total is the community's record count at the end of the phase
	// (the attestations, plus the feedback of the delegations).
	Total int `json:"total_records"`
	// NotifyDropped counts store notifications dropped on all nodes, for
	// every subscriber (the API events, reputation, replication, this
	// harness).
	NotifyDropped uint64 `json:"notify_dropped"`
}

// ChurnFigures are the churn phase's.
type ChurnFigures struct {
	Restarted        int `json:"restarted"`
	RecordsWhileAway int `json:"records_while_away"`
	// CatchUp is, per restarted node, from its restart until its
	// fingerprint equals the others'.
	CatchUp Dist `json:"catch_up"`
	// Relisted is, per restarted node, from its restart until every other
	// node's index holds its new advert.
	Relisted Dist `json:"relisted"`
	// IndexComplete is, per restarted node whose index listed every member
	// again by IndexWaitS after the last restart, the time from its
	// restart; IndexIncomplete counts the others, and IndexListedShare is
	// the share of members the restarted nodes' indexes listed then, on
	// average.
	IndexComplete    Dist    `json:"index_complete"`
	IndexIncomplete  int     `json:"index_incomplete"`
	IndexListedShare float64 `json:"index_listed_share"`
	IndexWaitS       float64 `json:"index_wait_s"`
}

// Memory is the process's memory with the nodes running, after a GC.
type Memory struct {
	Nodes             int     `json:"nodes"`
	HeapInuseMB       float64 `json:"heap_inuse_mb"`
	RSSMB             float64 `json:"rss_mb"`
	HeapPerNodeMB     float64 `json:"heap_per_node_mb"`
	RSSPerNodeMB      float64 `json:"rss_per_node_mb"`
	GoroutinesPerNode float64 `json:"goroutines_per_node"`
	// DiskPerNodeMB is badger's size on disk (LSM and value log).
	DiskPerNodeMB float64 `json:"disk_per_node_mb"`
}

// Run builds the community, runs every phase and closes it again. It
// returns an error when a phase does not finish within its bound or a
// guarantee fails (a delegation lost, nodes that do not converge); the
// report holds what was measured until then.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	begin := time.Now()
	rep = &Report{GoMaxProcs: runtime.GOMAXPROCS(0)}
	if cfg, err = cfg.withDefaults(); err != nil {
		return rep, err
	}
	rep.Nodes, rep.LinkLatencyMS, rep.Degree, rep.Dir = cfg.Nodes, ms(cfg.Latency), cfg.Degree, cfg.Dir
	c, err := newCluster(cfg)
	if err != nil {
		return rep, err
	}
	rep.Seed = c.seed
	defer func() {
		err = errors.Join(err, c.close())
		rep.Warnings = c.warns.snapshot()
		rep.DurationS = time.Since(begin).Seconds()
	}()
	phases := []struct {
		name string
		fn   func(context.Context, *Report) error
	}{
		{"setup", c.setup},
		{"adverts", c.adverts},
		{"delegations", c.delegations},
		{"records", c.records},
		{"churn", c.churn},
	}
	for _, p := range phases {
		pctx, cancel := context.WithTimeout(ctx, cfg.PhaseTimeout)
		start := time.Now()
		err := p.fn(pctx, rep)
		cancel()
		if err != nil {
			return rep, fmt.Errorf("%s phase: %w", p.name, err)
		}
		cfg.Logf("%s phase done in %s", p.name, time.Since(start).Round(time.Millisecond))
	}
	return rep, nil
}

// setup forms the community and waits until every index lists every member.
func (c *cluster) setup(ctx context.Context, rep *Report) error {
	start := time.Now()
	if err := c.form(ctx); err != nil {
		return err
	}
	c.cfg.Logf("community formed in %s", time.Since(start).Round(time.Millisecond))
	// The node's own mechanisms first: adverts on join, the joinRepeat
	// republication, and relays. An advert relayed before the meshes
	// formed is lost until its author refreshes it (half its 10-minute
	// lifetime), which a simulation cannot wait for: after a grace period
	// the harness asks those authors to republish, and says how many.
	grace := time.NewTimer(min(c.cfg.PhaseTimeout/3, 30*time.Second))
	defer grace.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	n := len(c.nodes)
	for {
		missing := map[int]bool{}
		for _, m := range c.nodes {
			if len(m.n.Index.Peers(c.comm)) == n {
				continue
			}
			listed := map[string]bool{}
			for _, p := range m.n.Index.Peers(c.comm) {
				listed[string(p)] = true
			}
			for _, o := range c.nodes {
				if !listed[string(o.id)] {
					missing[o.i] = true
				}
			}
		}
		if len(missing) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the adverts of %d nodes are missing from some index: %w", len(missing), ctx.Err())
		case <-grace.C:
			for i := range missing {
				c.nodes[i].n.Advertiser.MemberJoined(c.comm, "")
			}
			rep.AdvertsForced += len(missing)
			c.cfg.Logf("after the grace period, %d authors' adverts were missing somewhere; asked them to republish", len(missing))
			grace.Reset(min(c.cfg.PhaseTimeout/3, 30*time.Second))
		case <-tick.C:
		}
	}
	rep.SetupS = time.Since(start).Seconds()
	rep.Connections = c.connections()
	rep.MemorySetup = c.memory()
	return nil
}

// adverts has every node publish a fresh advert (as when a member joins)
// and measures how long each takes to reach every other index.
func (c *cluster) adverts(ctx context.Context, rep *Report) error {
	w := newAdvertWatch(c)
	for _, a := range c.nodes {
		base := a.n.Index.Seq(c.comm, a.id)
		for _, m := range c.nodes {
			w.expect(m.i, a.i, base)
		}
	}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	for _, m := range c.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); w.run(wctx, m.i) }()
	}
	// Spread the republications so the phase measures propagation, not a
	// synthetic storm: 20 ms apart (6 s for 300 nodes).
	pace := time.NewTicker(20 * time.Millisecond)
	for _, i := range c.rng.Perm(len(c.nodes)) {
		select {
		case <-ctx.Done():
		case <-pace.C:
		}
		c.nodes[i].n.Advertiser.MemberJoined(c.comm, "")
	}
	pace.Stop()
	select {
	case <-w.done:
	case <-ctx.Done():
		return fmt.Errorf("%d adverts had not reached every index (missing pairs by author: %v): %w", len(w.missingAuthors()), w.missingAuthors(), ctx.Err())
	}
	for _, a := range c.nodes {
		pub, ok := w.published(a.i)
		if !ok {
			return fmt.Errorf("node %d's own index never held its new advert", a.i)
		}
		var last time.Time
		for _, m := range c.nodes {
			if t := w.arrival(m.i, a.i); m.i != a.i && t.After(last) {
				last = t
			}
		}
		rep.samples.adverts = append(rep.samples.adverts, max(last.Sub(pub), 0))
	}
	rep.AdvertPropagation = Summarize(rep.samples.adverts)
	return nil
}

// delegations runs text.stats tasks from every node in turn on another
// member (remote only: the requester's ranking picks the provider) and
// checks that each ends completed or with a reason.
func (c *cluster) delegations(ctx context.Context, rep *Report) error {
	f := &rep.Delegations
	f.Requested = c.cfg.Delegations
	f.Reasons = map[string]int{}
	var mu sync.Mutex
	attempts := 0
	start := time.Now()
	sem := make(chan struct{}, c.cfg.InFlight)
	var wg sync.WaitGroup
	for d := range c.cfg.Delegations {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			mu.Lock()
			f.Lost += c.cfg.Delegations - d
			mu.Unlock()
			break
		}
		m := c.nodes[d%len(c.nodes)]
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			input, _ := json.Marshal(map[string]string{"text": fmt.Sprintf("Delegation %d of the scale simulation.\nIt counts words and lines.", d)})
			t0 := time.Now()
			t, err := m.n.Tasks.Submit(ctx, tasks.Request{Skill: "text.stats", Input: input, Remote: true, Timeout: time.Minute, HopsLeft: -1})
			if err == nil {
				t, err = m.n.Tasks.Wait(ctx, t.ID)
			}
			took := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			attempts += t.Attempts
			switch {
			case err != nil:
				f.EndedWithReason++
				f.Reasons["refused: "+clipReason(err.Error())]++
			case t.Status == tasks.StatusCompleted:
				f.Completed++
				rep.samples.delegations = append(rep.samples.delegations, took)
			case tasks.Terminal(t.Status) && (t.Code != "" || t.Error != ""):
				f.EndedWithReason++
				f.Reasons[t.Status+": "+firstNonEmpty(t.Code, clipReason(t.Error))]++
			default:
				f.Lost++
			}
		}()
	}
	wg.Wait()
	f.WallS = time.Since(start).Seconds()
	f.PerSecond = float64(f.Completed) / max(f.WallS, 1e-9)
	f.MeanAttempts = float64(attempts) / float64(max(f.Requested, 1))
	f.Latency = Summarize(rep.samples.delegations)
	if f.Lost > 0 {
		return fmt.Errorf("%d of %d delegations were lost (neither completed nor ended with a reason)", f.Lost, f.Requested)
	}
	return nil
}

// records publishes the attestations from many nodes and measures when
// every node holds each, then when every node's fingerprint agrees.
func (c *cluster) records(ctx context.Context, rep *Report) error {
	f := &rep.Records
	pubs := c.pick(c.nodes, c.cfg.Publishers)
	f.Publishers = len(pubs)
	t := newRecordTracker(c.nodes, len(c.nodes))
	defer t.close()
	start := time.Now()
	if err := c.publishRecords(ctx, pubs, c.cfg.Records, c.cfg.RecordRate, t, "records"); err != nil {
		return err
	}
	f.PublishS = time.Since(start).Seconds()
	f.Published = c.cfg.Records
	if err := c.waitStored(ctx, t, c.cfg.Records); err != nil {
		return err
	}
	f.AllStoredS = time.Since(start).Seconds()
	total, err := c.waitEqual(ctx, c.nodes)
	if err != nil {
		return err
	}
	f.EqualFingerprintS = time.Since(start).Seconds()
	f.Total = total
	f.NotifyDropped = dropped(c.nodes)
	rep.samples.records = t.convergence()
	f.Convergence = Summarize(rep.samples.records)
	return nil
}

// waitStored waits until every tracked node holds all count records.
func (c *cluster) waitStored(ctx context.Context, t *recordTracker, count int) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	report := time.Now()
	for {
		done, pub := t.progress()
		if done >= count {
			return nil
		}
		if time.Since(report) > 10*time.Second {
			report = time.Now()
			c.cfg.Logf("records: %d of %d on every node", done, pub)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("only %d of %d records reached every node: %w", done, count, ctx.Err())
		case <-tick.C:
		}
	}
}

// waitEqual waits until the nodes' fingerprints agree and returns the
// record count behind it.
func (c *cluster) waitEqual(ctx context.Context, ms []*member) (int, error) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		fps, err := c.fingerprints(ctx, ms)
		if err != nil {
			return 0, err
		}
		if len(fps) == 1 {
			_, n, err := c.fingerprint(ms[0])
			return n, err
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("the nodes' fingerprints still differ (%d distinct): %w", len(fps), ctx.Err())
		case <-tick.C:
		}
	}
}

// churn closes a share of the nodes, publishes records while they are
// away, restarts them on their repos and measures their catch-up.
func (c *cluster) churn(ctx context.Context, rep *Report) error {
	f := &rep.Churn
	k := churned(c.cfg)
	if k == 0 {
		rep.MemoryEnd = c.memory()
		return nil
	}
	gone := c.pick(c.nodes[1:], k) // node 0, the founder, stays: it is every invite's bootstrap peer
	f.Restarted = len(gone)
	pre := map[int]uint64{}
	isGone := map[int]bool{}
	for _, m := range gone {
		pre[m.i] = m.n.Index.Seq(c.comm, m.id)
		isGone[m.i] = true
	}
	if err := forEach(ctx, gone, 8, func(_ context.Context, m *member) error { return c.stop(m) }); err != nil {
		return err
	}
	alive := c.running()
	c.cfg.Logf("churn: %d nodes closed", len(gone))

	// Records published while they are away: the restarted nodes get them
	// by sync only.
	if c.cfg.ChurnRecords > 0 {
		t := newRecordTracker(alive, len(alive))
		err := c.publishRecords(ctx, c.pickFresh(alive, c.cfg.Publishers), c.cfg.ChurnRecords, c.cfg.RecordRate, t, "churn")
		if err == nil {
			err = c.waitStored(ctx, t, c.cfg.ChurnRecords)
		}
		t.close()
		if err != nil {
			return err
		}
		f.RecordsWhileAway = c.cfg.ChurnRecords
	}
	refCount, err := c.waitEqual(ctx, alive)
	if err != nil {
		return err
	}
	ref, _, err := c.fingerprint(c.nodes[0])
	if err != nil {
		return err
	}

	// Others must list each restarted node's new advert; a restarted node's
	// own index, empty at start, should list every member again.
	relist, index := newAdvertWatch(c), newAdvertWatch(c)
	for _, g := range gone {
		for _, m := range c.nodes {
			if m.i != g.i {
				relist.expect(m.i, g.i, pre[g.i])
				index.expect(g.i, m.i, 0)
			}
		}
	}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	for _, m := range alive {
		wg.Add(1)
		go func() { defer wg.Done(); relist.run(wctx, m.i) }()
	}
	restarted := map[int]time.Time{}
	caught := map[int]time.Duration{}
	var mu sync.Mutex
	err = forEach(ctx, gone, 4, func(ctx context.Context, m *member) error {
		t0 := time.Now()
		if err := c.start(ctx, m); err != nil {
			return err
		}
		mu.Lock()
		restarted[m.i] = t0
		mu.Unlock()
		wg.Add(2)
		go func() { defer wg.Done(); relist.run(wctx, m.i) }()
		go func() { defer wg.Done(); index.run(wctx, m.i) }()
		// The daemon's peer book redials the peers it remembers (node 0,
		// from the invite); its start neighbours it meets again here.
		if err := c.connect(ctx, m); err != nil {
			return err
		}
		d, err := c.catchUp(ctx, m, ref, refCount)
		if err != nil {
			return err
		}
		mu.Lock()
		caught[m.i] = d
		mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	select {
	case <-relist.done:
	case <-ctx.Done():
		return fmt.Errorf("the new adverts of %d restarted nodes had not reached every index: %w", len(relist.missingAuthors()), ctx.Err())
	}
	// A restarted node hears at once the adverts of the members that see
	// it join (its neighbours republish); the others' only at their next
	// refresh, up to 5 minutes later. Wait a little, then report rather
	// than fail.
	indexWait := min(c.cfg.PhaseTimeout/4, 10*time.Second)
	f.IndexWaitS = indexWait.Seconds()
	select {
	case <-index.done:
	case <-ctx.Done():
	case <-time.After(indexWait):
	}
	listed := 0
	var relisted, complete []time.Duration
	for _, g := range gone {
		rep.samples.churn = append(rep.samples.churn, caught[g.i])
		var last time.Time
		full := true
		var lastIdx time.Time
		for _, m := range c.nodes {
			if m.i == g.i {
				continue
			}
			last = later(last, relist.arrival(m.i, g.i))
			t := index.arrival(g.i, m.i)
			if t.IsZero() {
				full = false
			} else {
				listed++
			}
			lastIdx = later(lastIdx, t)
		}
		relisted = append(relisted, last.Sub(restarted[g.i]))
		if full {
			complete = append(complete, lastIdx.Sub(restarted[g.i]))
		} else {
			f.IndexIncomplete++
		}
	}
	f.IndexListedShare = float64(listed) / float64(len(gone)*(len(c.nodes)-1))
	f.CatchUp = Summarize(rep.samples.churn)
	f.Relisted = Summarize(relisted)
	f.IndexComplete = Summarize(complete)
	rep.ConnectionsEnd = c.connections()
	rep.MemoryEnd = c.memory()
	return nil
}

// catchUp waits until restarted node m holds what the others hold.
func (c *cluster) catchUp(ctx context.Context, m *member, ref string, refCount int) (time.Duration, error) {
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if m.n.Store.Count(c.comm) >= refCount {
			fp, n, err := c.fingerprint(m)
			if err != nil {
				return 0, err
			}
			if fp == ref {
				return time.Since(start), nil
			}
			if n > refCount {
				// Something new arrived everywhere meanwhile: compare with
				// the founder's current view.
				if ref, refCount, err = c.fingerprint(c.nodes[0]); err != nil {
					return 0, err
				}
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("restarted node %d holds %d of %d records: %w", m.i, m.n.Store.Count(c.comm), refCount, ctx.Err())
		case <-tick.C:
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// pick returns n of ms at random.
func (c *cluster) pick(ms []*member, n int) []*member {
	out := make([]*member, 0, n)
	for _, i := range c.rng.Perm(len(ms))[:min(n, len(ms))] {
		out = append(out, ms[i])
	}
	sort.Slice(out, func(a, b int) bool { return out[a].i < out[b].i })
	return out
}

// pickFresh returns up to n of ms, preferring the nodes that have not
// published yet, so no author goes over its rate limit's burst.
func (c *cluster) pickFresh(ms []*member, n int) []*member {
	var fresh, used []*member
	c.authoredMu.Lock()
	for _, m := range ms {
		if c.authored[m.i] > 0 {
			used = append(used, m)
		} else {
			fresh = append(fresh, m)
		}
	}
	c.authoredMu.Unlock()
	out := c.pick(fresh, n)
	if len(out) < n {
		out = append(out, c.pick(used, n-len(out))...)
	}
	return out
}

// memory measures the process with the running nodes in it.
func (c *cluster) memory() Memory {
	runtime.GC()
	var st runtime.MemStats
	runtime.ReadMemStats(&st)
	ms := c.running()
	n := float64(max(len(ms), 1))
	var disk int64
	for _, m := range ms {
		disk += diskUsage(m.r.Path(repo.DatastoreDir))
	}
	rss := readRSS()
	const mb = 1 << 20
	return Memory{
		Nodes:             len(ms),
		HeapInuseMB:       float64(st.HeapInuse) / mb,
		RSSMB:             float64(rss) / mb,
		HeapPerNodeMB:     float64(st.HeapInuse) / mb / n,
		RSSPerNodeMB:      float64(rss) / mb / n,
		GoroutinesPerNode: float64(runtime.NumGoroutine()) / n,
		DiskPerNodeMB:     float64(disk) / mb / n,
	}
}

// diskUsage is the space the files under dir take (their allocated blocks
// where the system says: badger preallocates sparse files).
func diskUsage(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			} else {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// readRSS is the process's resident set in bytes (0 where /proc is not).
func readRSS() int64 {
	raw, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(raw))
	if len(fields) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

func clipReason(s string) string {
	if r := []rune(s); len(r) > 80 {
		return string(r[:80]) + "…"
	}
	return s
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
