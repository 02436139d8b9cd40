// Package governance is the node's view of its communities' governance: it
// follows the registry's proposals, votes and tallies, computes every
// proposal's tally (registry/governance, a pure function of the proposal,
// the votes and the community trust at the proposal's start), derives each
// community's policy from its genesis and the passed proposals, publishes
// this node's own tally once a vote has closed, and compares it with the
// tallies other members published.
package governance

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/community"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/agora-p2p/agora/registry"
	gov "github.com/agora-p2p/agora/registry/governance"
	"github.com/agora-p2p/agora/registry/reputation"
)

// Communities is what governance needs to know about the node's
// communities.
type Communities interface {
	Joined() []cid.Cid
	Genesis(c cid.Cid) (community.Genesis, bool)
}

// Trust computes community trust at a point in time.
type Trust interface {
	// CommunityAt is the community trust vector over the feedback created
	// before at, seeded by seeds, ages measured at at.
	CommunityAt(c cid.Cid, at int64, seeds []peer.ID) reputation.Result
}

// Config wires a Service.
type Config struct {
	Store       *registry.Store
	DB          *badger.DB
	Self        peer.ID
	Communities Communities
	Trust       Trust
	// Publish signs, stores and gossips one of this node's records.
	Publish func(ctx context.Context, c cid.Cid, kind record.Kind, b any) (*record.Record, error)
	// Resync reconciles with a peer whose tally disagrees with ours.
	Resync func(ctx context.Context, p peer.ID, c cid.Cid)
	// OnPolicy is called when a community's derived policy changes.
	OnPolicy func(c cid.Cid)
	Now      func() time.Time
	Debounce time.Duration // default 100 ms
	Log      *slog.Logger
}

// Status of a proposal that breaks a rule no single record shows (its
// proposer was under the trust floor): it is listed but never applied.
const StatusInvalid = "invalid"

// closeWindow is how soon after end+grace a running node must notice a
// vote's close to judge lateness itself; a node that comes up later
// (offline during the close) adopts the founders' late lists instead.
const closeWindow = 30 * time.Second

// Outcome is a proposal and its tally as this node computes it.
type Outcome struct {
	ID       cid.Cid
	Proposer peer.ID
	Created  int64
	Proposal body.Proposal
	Status   string
	Reason   string // why invalid
	Result   gov.Result
	// Final says the grace period is over: the result no longer changes
	// (but for records a partition held back) and its action applies.
	Final bool
	// Tallies are the tallies members published, by author.
	Tallies       map[peer.ID]body.Tally
	Disagreements []Disagreement
}

// Disagreement is a member's published tally that differs from ours.
type Disagreement struct {
	Peer        peer.ID
	Fingerprint []byte
	Status      string
	Voters      uint64
}

// Policy is a community's derived policy.
type Policy struct {
	Policy   community.Policy
	State    gov.PolicyState
	Skipped  []string
	Genesis  community.Genesis
	Computed time.Time
}

// Service is safe for concurrent use.
type Service struct {
	cfg   Config
	notes <-chan *registry.Stored // the registry's notifications
	log   *slog.Logger
	stop  context.CancelFunc
	wg    sync.WaitGroup

	dirty chan struct{}

	mu       sync.RWMutex
	comms    map[cid.Cid]*state
	late     map[cid.Cid]bool // votes this node saw after their proposal closed
	closed   map[cid.Cid]bool // proposals whose close this node saw
	resynced map[string]bool  // proposal/peer/fingerprint already reconciled
	// unwritten are late marks not yet on disk.
	unwritten []cid.Cid
	ctx       context.Context

	computeMu sync.Mutex   // one computation at a time, so none overwrites a newer one
	followed  atomic.Int64 // notifications taken in (tests wait on it)
}

type state struct {
	proposals map[cid.Cid]*proposal
	votes     map[cid.Cid]map[cid.Cid]ballot // proposal → vote ID
	tallies   map[cid.Cid]map[peer.ID]tallyRec
	outcomes  map[cid.Cid]*Outcome
	policy    Policy
	// waiting are votes and tallies whose proposal has not arrived; the
	// registry refuses them, so this is empty unless records race.
}

type proposal struct {
	id      cid.Cid
	author  peer.ID
	created int64
	b       body.Proposal
	seen    time.Time // when this node took it in
}

type ballot struct {
	id      cid.Cid
	voter   peer.ID
	created int64
	v       body.Vote
}

type tallyRec struct {
	id      cid.Cid
	created int64
	t       body.Tally
}

func newState() *state {
	return &state{proposals: map[cid.Cid]*proposal{}, votes: map[cid.Cid]map[cid.Cid]ballot{},
		tallies: map[cid.Cid]map[peer.ID]tallyRec{}, outcomes: map[cid.Cid]*Outcome{}}
}

// Key families in the node's datastore.
const (
	lateKey   = "gov/late/"   // + vote CID → empty
	closedKey = "gov/closed/" // + proposal CID → unix ms
)

// New loads the governance records and starts following the registry.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.DB == nil || cfg.Communities == nil || cfg.Trust == nil || cfg.Publish == nil {
		return nil, errors.New("governance: Config needs Store, DB, Communities, Trust and Publish")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = 100 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Resync == nil {
		cfg.Resync = func(context.Context, peer.ID, cid.Cid) {}
	}
	s := &Service{cfg: cfg, log: cfg.Log, dirty: make(chan struct{}, 1), comms: map[cid.Cid]*state{},
		late: map[cid.Cid]bool{}, closed: map[cid.Cid]bool{}, resynced: map[string]bool{}}
	if err := s.loadMarks(); err != nil {
		return nil, err
	}
	notes, unsubscribe := cfg.Store.Subscribe(4096)
	s.notes = notes
	if err := s.reload(); err != nil {
		unsubscribe()
		return nil, err
	}
	s.ctx, s.stop = context.WithCancel(context.Background())
	s.compute(false)
	ctx := s.ctx
	s.wg.Add(2)
	go func() { defer s.wg.Done(); defer unsubscribe(); s.follow(ctx, notes) }()
	go func() { defer s.wg.Done(); s.loop(ctx) }()
	return s, nil
}

// Close stops the service.
func (s *Service) Close() {
	s.stop()
	s.wg.Wait()
}

// Changed asks for a recomputation soon (trust or membership changed).
func (s *Service) Changed() {
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

// Refresh reads the registry again and recomputes now (tests, and the API
// when asked to).
func (s *Service) Refresh() error {
	if err := s.reload(); err != nil {
		return err
	}
	s.compute(true)
	return nil
}

func (s *Service) loadMarks() error {
	return s.cfg.DB.View(func(txn *badger.Txn) error {
		for _, fam := range []struct {
			prefix string
			set    map[cid.Cid]bool
		}{{lateKey, s.late}, {closedKey, s.closed}} {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(fam.prefix)})
			for it.Rewind(); it.Valid(); it.Next() {
				if c, err := cid.Decode(strings.TrimPrefix(string(it.Item().Key()), fam.prefix)); err == nil {
					fam.set[c] = true
				}
			}
			it.Close()
		}
		return nil
	})
}

func (s *Service) mark(prefix string, c cid.Cid, at time.Time) {
	err := s.cfg.DB.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte(prefix+c.String()), binary.BigEndian.AppendUint64(nil, uint64(at.UnixMilli())))
	})
	if err != nil {
		s.log.Warn("cannot record a governance mark", "key", prefix, "cid", c, "err", err)
	}
}

func (s *Service) follow(ctx context.Context, notes <-chan *registry.Stored) {
	for {
		select {
		case <-ctx.Done():
			return
		case st, ok := <-notes:
			if !ok {
				return
			}
			s.mu.Lock()
			changed := s.take(st, true)
			late := s.unwritten
			s.unwritten = nil
			s.mu.Unlock()
			for _, c := range late {
				s.mark(lateKey, c, s.cfg.Now())
			}
			s.followed.Add(1)
			if changed {
				s.Changed()
			}
		}
	}
}

func (s *Service) loop(ctx context.Context) {
	// Drops are counted from the subscription's start: the registry may
	// have dropped notes while the service loaded and computed first.
	var dropped uint64
	for {
		wait := s.nextWake()
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-s.dirty:
			timer.Stop()
			select {
			case <-ctx.Done():
				return
			case <-time.After(s.cfg.Debounce):
			}
		case <-timer.C:
		}
		reload := s.unloaded()
		if d := s.cfg.Store.Dropped(s.notes); d != dropped {
			dropped, reload = d, true
		}
		if reload {
			if err := s.reload(); err != nil {
				s.log.Warn("cannot read the registry for governance", "err", err)
			}
		}
		s.compute(true)
	}
}

// nextWake is the time until the next start, end or end+grace of a
// proposal, at most a minute.
func (s *Service) nextWake() time.Duration {
	now := s.cfg.Now().UnixMilli()
	next := now + time.Minute.Milliseconds()
	s.mu.RLock()
	for _, st := range s.comms {
		grace := st.policy.Policy.VoteGraceSeconds * 1000
		for _, p := range st.proposals {
			for _, t := range []int64{p.b.Start, p.b.End, p.b.End + grace} {
				if t >= now && t+1 < next {
					next = t + 1
				}
			}
		}
	}
	s.mu.RUnlock()
	return time.Duration(next-now) * time.Millisecond
}

func (s *Service) unloaded() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.cfg.Communities.Joined() {
		if s.comms[c] == nil {
			return true
		}
	}
	return false
}

func (s *Service) reload() error {
	next := map[cid.Cid]*state{}
	for _, c := range s.cfg.Communities.Joined() {
		st := newState()
		for _, kind := range []record.Kind{record.KindProposal, record.KindVote, record.KindTally} {
			if err := s.cfg.Store.Each(registry.Query{Community: c, Kind: kind}, func(r *registry.Stored) { st.take(r, time.Time{}) }); err != nil {
				return err
			}
		}
		s.mu.RLock()
		if old := s.comms[c]; old != nil {
			st.policy = old.policy
			for id, p := range old.proposals {
				if np := st.proposals[id]; np != nil {
					np.seen = p.seen
				}
			}
		}
		s.mu.RUnlock()
		next[c] = st
	}
	s.mu.Lock()
	s.comms = next
	s.mu.Unlock()
	return nil
}

// take adds one record; live says it came from the subscription just now,
// so lateness can be judged. s.mu is held.
func (s *Service) take(r *registry.Stored, live bool) bool {
	st := s.comms[r.Record.Community]
	if st == nil {
		// A community joined since the last load: the loop reloads it
		// from the registry, this record included.
		return true
	}
	now := time.Time{}
	if live {
		now = s.cfg.Now()
	}
	if r.Record.Kind == record.KindVote && live {
		if b, err := body.DecodeRecord(r.Record); err == nil {
			v := b.(body.Vote)
			if s.closed[v.Proposal] {
				// This node saw the vote close without this vote: it is
				// late here, whatever it says its time is. (Written to
				// disk by follow, outside the lock.)
				s.late[r.CID()] = true
				s.unwritten = append(s.unwritten, r.CID())
			}
		}
	}
	return st.take(r, now)
}

func (st *state) take(r *registry.Stored, now time.Time) bool {
	id := r.CID()
	b, err := body.DecodeRecord(r.Record)
	if err != nil {
		return false
	}
	switch b := b.(type) {
	case body.Proposal:
		st.proposals[id] = &proposal{id: id, author: r.Record.Author, created: r.Record.Created, b: b, seen: now}
	case body.Vote:
		m := st.votes[b.Proposal]
		if m == nil {
			m = map[cid.Cid]ballot{}
			st.votes[b.Proposal] = m
		}
		m[id] = ballot{id: id, voter: r.Record.Author, created: r.Record.Created, v: b}
	case body.Tally:
		m := st.tallies[b.Proposal]
		if m == nil {
			m = map[peer.ID]tallyRec{}
			st.tallies[b.Proposal] = m
		}
		cur, ok := m[r.Record.Author]
		if !ok || r.Record.Created > cur.created || (r.Record.Created == cur.created && id.KeyString() > cur.id.KeyString()) {
			m[r.Record.Author] = tallyRec{id: id, created: r.Record.Created, t: b}
		}
	default:
		return false
	}
	return true
}

// compute tallies every proposal, derives the policies and, when publish
// is set, publishes this node's tallies of newly final proposals.
func (s *Service) compute(publish bool) {
	s.computeMu.Lock()
	defer s.computeMu.Unlock()
	now := s.cfg.Now()
	ms := now.UnixMilli()
	type job struct {
		c       cid.Cid
		genesis community.Genesis
		props   []*proposal
		votes   map[cid.Cid][]ballot
		tallies map[cid.Cid]map[peer.ID]tallyRec
	}
	var jobs []job
	var toClose []cid.Cid
	s.mu.Lock()
	for c, st := range s.comms {
		g, ok := s.cfg.Communities.Genesis(c)
		if !ok {
			continue
		}
		j := job{c: c, genesis: g, votes: map[cid.Cid][]ballot{}, tallies: map[cid.Cid]map[peer.ID]tallyRec{}}
		grace := st.policy.Policy.VoteGraceSeconds * 1000
		if st.policy.Computed.IsZero() {
			grace = g.Policy.VoteGraceSeconds * 1000
		}
		for id, p := range st.proposals {
			j.props = append(j.props, p)
			for _, b := range st.votes[id] {
				j.votes[id] = append(j.votes[id], b)
			}
			j.tallies[id] = maps(st.tallies[id])
			// A running node that held the proposal sees its close and
			// judges late votes itself from now on.
			closeAt := p.b.End + grace
			if !s.closed[id] && ms >= closeAt && ms < closeAt+closeWindow.Milliseconds() && !p.seen.IsZero() && p.seen.UnixMilli() < closeAt {
				s.closed[id] = true
				toClose = append(toClose, id)
			}
		}
		jobs = append(jobs, j)
	}
	late := make(map[cid.Cid]bool, len(s.late))
	for k := range s.late {
		late[k] = true
	}
	closed := make(map[cid.Cid]bool, len(s.closed))
	for k := range s.closed {
		closed[k] = true
	}
	s.mu.Unlock()

	for _, j := range jobs {
		outcomes, pol := s.evaluate(j.c, j.genesis, j.props, j.votes, j.tallies, late, closed, ms)
		pol.Computed = now
		s.mu.Lock()
		var old Policy
		if st := s.comms[j.c]; st != nil {
			old = st.policy
			st.outcomes, st.policy = outcomes, pol
		}
		s.mu.Unlock()
		if s.cfg.OnPolicy != nil && (pol.Policy != old.Policy || !reflect.DeepEqual(pol.State, old.State)) {
			s.cfg.OnPolicy(j.c)
		}
		if publish {
			s.publishTallies(j.c, outcomes)
		}
	}
	// Persisted last: a disk flush must not delay the tallies.
	for _, id := range toClose {
		s.mark(closedKey, id, now)
	}
}

func maps[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// evaluate is the pure part of compute for one community, in the order
// that makes it well defined: proposals by end (then ID), each tallied with
// the policy derived from the proposals that were final before it started.
func (s *Service) evaluate(c cid.Cid, g community.Genesis, props []*proposal, votes map[cid.Cid][]ballot,
	tallies map[cid.Cid]map[peer.ID]tallyRec, late, closed map[cid.Cid]bool, now int64) (map[cid.Cid]*Outcome, Policy) {
	sort.Slice(props, func(i, k int) bool {
		if props[i].b.End != props[k].b.End {
			return props[i].b.End < props[k].b.End
		}
		return props[i].id.KeyString() < props[k].id.KeyString()
	})
	genesisValues := policyValues(g.Policy)
	validKey := func(key string, value int64) error {
		_, err := g.Policy.With(key, value)
		return err
	}
	// policyAt derives the policy from the proposals final before t.
	var passed []gov.Passed
	policyAt := func(t int64) (community.Policy, gov.PolicyState, []string) {
		var before []gov.Passed
		for _, p := range passed {
			if p.End <= t { // End here is the time the action applies
				before = append(before, p)
			}
		}
		state, skipped := gov.Derive(genesisValues, g.Founders, before, validKey)
		return toPolicy(g.Policy, state), state, skipped
	}

	outcomes := map[cid.Cid]*Outcome{}
	for _, p := range props {
		pol, state, _ := policyAt(p.b.Start)
		o := &Outcome{ID: p.id, Proposer: p.author, Created: p.created, Proposal: p.b, Tallies: map[peer.ID]body.Tally{}}
		for a, t := range tallies[p.id] {
			o.Tallies[a] = t.t
		}
		founders := state.Founders
		levels := s.cfg.Trust.CommunityAt(c, p.b.Start, founders)
		if pol.ProposeMinTrust > 0 && levels.Level(p.author) < pol.ProposeMinTrust && !slices.Contains(founders, p.author) {
			o.Status = StatusInvalid
			o.Reason = fmt.Sprintf("the proposer's community trust level at the start, %d, is under the floor propose.min_trust=%d", levels.Level(p.author), pol.ProposeMinTrust)
			outcomes[p.id] = o
			continue
		}
		// The policy in force at the start is a floor: a proposal cannot
		// pass with less quorum, threshold or time than the community asks.
		if why := BelowPolicy(p.b, pol); why != "" {
			o.Status, o.Reason = StatusInvalid, why
			outcomes[p.id] = o
			continue
		}
		var w map[peer.ID]uint64
		if p.b.Weighting == body.WeightTrust {
			tr := map[peer.ID]float64{}
			for _, e := range levels.Entries {
				tr[e.Peer] = e.Trust
			}
			w = gov.TrustWeights(tr)
		} else {
			lv := map[peer.ID]int64{}
			for _, e := range levels.Entries {
				lv[e.Peer] = levels.Level(e.Peer)
			}
			w = gov.MemberWeights(lv, pol.VoteMemberFloor)
		}
		// Banned peers do not vote.
		for who := range state.Banned {
			delete(w, who)
		}
		exclude := map[string]bool{}
		for _, b := range votes[p.id] {
			if late[b.id] {
				exclude[b.id.String()] = true
			}
		}
		// A node that did not see the close itself adopts the late votes
		// the founders' tallies name; one that did trusts its own eyes.
		if !closed[p.id] {
			for a, t := range tallies[p.id] {
				if slices.Contains(founders, a) {
					for _, l := range t.t.Late {
						exclude[l.String()] = true
					}
				}
			}
		}
		gp := gov.Proposal{ID: p.id.String(), Choices: len(p.b.Choices), Method: p.b.Method, Weighting: p.b.Weighting,
			Quorum: p.b.Quorum, Threshold: p.b.Threshold, Start: p.b.Start, End: p.b.End}
		bs := make([]gov.Ballot, 0, len(votes[p.id]))
		for _, b := range votes[p.id] {
			gb := gov.Ballot{ID: b.id.String(), Voter: b.voter, Created: b.created}
			for _, ch := range b.v.Choices {
				gb.Choices = append(gb.Choices, int(ch))
			}
			for _, cr := range b.v.Credits {
				gb.Credits = append(gb.Credits, int64(cr))
			}
			bs = append(bs, gb)
		}
		o.Result = gov.Tally(gp, bs, w, exclude, now)
		o.Status = o.Result.Status
		grace := pol.VoteGraceSeconds * 1000
		o.Final = now >= p.b.End+grace
		if o.Final {
			fp := fingerprint(o.Result.Fingerprint)
			for a, t := range tallies[p.id] {
				if a == s.cfg.Self {
					continue
				}
				if string(t.t.Fingerprint) != string(fp) || t.t.Status != o.Status {
					o.Disagreements = append(o.Disagreements, Disagreement{Peer: a, Fingerprint: t.t.Fingerprint, Status: t.t.Status, Voters: t.t.Voters})
				}
			}
			sort.Slice(o.Disagreements, func(i, k int) bool { return o.Disagreements[i].Peer < o.Disagreements[k].Peer })
			if o.Status == gov.StatusPassed && o.Result.Winner == 0 && p.b.Action != nil {
				passed = append(passed, gov.Passed{Proposal: p.id.String(), End: p.b.End + grace, Action: toAction(*p.b.Action)})
			}
		}
		outcomes[p.id] = o
	}
	pol, state, skipped := policyAt(now)
	return outcomes, Policy{Policy: pol, State: state, Skipped: skipped, Genesis: g}
}

// fingerprint is a tally's vote-set fingerprint as a sha2-256 multihash.
func fingerprint(sum [32]byte) []byte {
	out, _ := mh.Encode(sum[:], mh.SHA2_256)
	return out
}

func toAction(a body.Action) gov.Action {
	ga := gov.Action{Type: a.Type, Key: a.Key, Value: a.Value, Peer: a.Peer, Subject: a.Subject}
	if a.Target.Defined() {
		ga.Target = a.Target.String()
	}
	return ga
}

// policyValues lists a policy as dotted key → value.
func policyValues(p community.Policy) map[string]int64 {
	out := map[string]int64{}
	for _, k := range community.PolicyKeys() {
		v, _ := p.Get(k.Name)
		out[k.Name] = v
	}
	return out
}

// toPolicy applies derived values over the genesis policy.
func toPolicy(base community.Policy, st gov.PolicyState) community.Policy {
	p := base
	for k, v := range st.Values {
		if next, err := p.With(k, v); err == nil {
			p = next
		}
	}
	return p
}

// publishTallies publishes this node's tally of every proposal that became
// final and that it has not tallied yet, and reconciles with members whose
// tally differs.
func (s *Service) publishTallies(c cid.Cid, outcomes map[cid.Cid]*Outcome) {
	for id, o := range outcomes {
		if !o.Final || o.Status == StatusInvalid {
			continue
		}
		t := body.Tally{Proposal: id, Status: o.Status, Winner: int64(o.Result.Winner), Counts: o.Result.Counts,
			Voters: uint64(o.Result.Voters), Weight: o.Result.Weight, Eligible: o.Result.Eligible,
			Fingerprint: fingerprint(o.Result.Fingerprint)}
		for vid, why := range o.Result.Ignored {
			if why == gov.ReasonExcluded && len(t.Late) < body.MaxLate {
				if v, err := cid.Decode(vid); err == nil {
					t.Late = append(t.Late, v)
				}
			}
		}
		slices.SortFunc(t.Late, func(a, b cid.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) })
		// Published once at the close, and again (superseding) when a late
		// vote or a healed partition changes what this node counts.
		if own, done := o.Tallies[s.cfg.Self]; !done || string(own.Fingerprint) != string(t.Fingerprint) || !slices.Equal(own.Late, t.Late) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if _, err := s.cfg.Publish(ctx, c, record.KindTally, t); err != nil {
				s.log.Warn("cannot publish a tally", "proposal", id, "err", err)
			}
			cancel()
		}
		for _, d := range o.Disagreements {
			s.resync(c, id, d)
		}
	}
}

// resync reconciles with a member whose tally of proposal id differs,
// once per member and fingerprint, in the background: a member that holds
// votes this node lacks (or lacks some) converges by sync, and a member
// that publishes a false tally cannot make this node sync again and again.
func (s *Service) resync(c, id cid.Cid, d Disagreement) {
	key := id.String() + "/" + d.Peer.String() + "/" + string(d.Fingerprint)
	s.mu.Lock()
	if s.resynced[key] {
		s.mu.Unlock()
		return
	}
	if len(s.resynced) > 4096 {
		clear(s.resynced)
	}
	s.resynced[key] = true
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		defer cancel()
		s.cfg.Resync(ctx, d.Peer, c)
		s.Changed()
	}()
}

// Outcomes lists community c's proposals, newest end first.
func (s *Service) Outcomes(c cid.Cid) []*Outcome {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.comms[c]
	if st == nil {
		return nil
	}
	out := make([]*Outcome, 0, len(st.outcomes))
	for _, o := range st.outcomes {
		out = append(out, o)
	}
	sort.Slice(out, func(i, k int) bool {
		if out[i].Proposal.End != out[k].Proposal.End {
			return out[i].Proposal.End > out[k].Proposal.End
		}
		return out[i].ID.KeyString() < out[k].ID.KeyString()
	})
	return out
}

// Outcome returns one proposal's outcome.
func (s *Service) Outcome(c cid.Cid, id cid.Cid) (*Outcome, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.comms[c]
	if st == nil {
		return nil, false
	}
	o, ok := st.outcomes[id]
	return o, ok
}

// Proposal returns a proposal this node holds.
func (s *Service) Proposal(c cid.Cid, id cid.Cid) (body.Proposal, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.comms[c]
	if st == nil {
		return body.Proposal{}, false
	}
	p, ok := st.proposals[id]
	if !ok {
		return body.Proposal{}, false
	}
	return p.b, true
}

// Policy returns community c's derived policy (the genesis policy until
// governance has run).
func (s *Service) Policy(c cid.Cid) Policy {
	s.mu.RLock()
	st := s.comms[c]
	var p Policy
	if st != nil {
		p = st.policy
	}
	s.mu.RUnlock()
	if p.Computed.IsZero() {
		g, _ := s.cfg.Communities.Genesis(c)
		st, _ := gov.Derive(policyValues(g.Policy), g.Founders, nil, nil)
		return Policy{Policy: g.Policy, State: st, Genesis: g}
	}
	return p
}

// Banned reports whether p is banned in community c.
func (s *Service) Banned(c cid.Cid, p peer.ID) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.comms[c]
	if st == nil {
		return false
	}
	_, ok := st.policy.State.Banned[p]
	return ok
}

// BannedAnywhere reports whether p is banned in any of the node's
// communities.
func (s *Service) BannedAnywhere(p peer.ID) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, st := range s.comms {
		if _, ok := st.policy.State.Banned[p]; ok {
			return true
		}
	}
	return false
}

// Founders returns community c's founders as governance derived them.
func (s *Service) Founders(c cid.Cid) []peer.ID {
	return s.Policy(c).State.Founders
}

// BelowPolicy says why a proposal asks for less than the policy in force
// at its start ("" when it does not).
func BelowPolicy(p body.Proposal, pol community.Policy) string {
	switch {
	case p.Quorum < pol.VoteQuorum:
		return fmt.Sprintf("its quorum %d is under the community's vote.quorum=%d", p.Quorum, pol.VoteQuorum)
	case p.Threshold < pol.VoteThreshold:
		return fmt.Sprintf("its threshold %d is under the community's vote.threshold=%d", p.Threshold, pol.VoteThreshold)
	case p.End-p.Start < pol.VoteDurationSeconds*1000:
		return fmt.Sprintf("its voting period of %d s is under the community's vote.duration_s=%d", (p.End-p.Start)/1000, pol.VoteDurationSeconds)
	}
	return ""
}
