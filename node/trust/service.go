// Package trust is the node's view of reputation and certification: it
// follows the registry's feedback, attestation and revocation records,
// recomputes the personal and community trust vectors (registry/reputation)
// and the certifications (registry/certify) in the background, debounced,
// and answers the hot-path questions (how much does this node trust a
// provider, is it certified, what gossip score does a peer get) from the
// last result without computing anything. It also files this node's
// feedback records.
package trust

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/community"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/agora-p2p/agora/protocol/task"
	"github.com/agora-p2p/agora/registry"
	"github.com/agora-p2p/agora/registry/certify"
	"github.com/agora-p2p/agora/registry/reputation"
)

// Communities is what the service needs to know about the communities the
// node is in.
type Communities interface {
	Joined() []cid.Cid
	// Genesis returns a joined community's genesis: its founders seed
	// trust, its policy holds the certification rule.
	Genesis(c cid.Cid) (community.Genesis, bool)
}

// Config wires a Service.
type Config struct {
	Store       *registry.Store
	DB          *badger.DB // the owner's trusted peers
	Key         crypto.PrivKey
	Communities Communities
	// Publish sends a stored record to its community (gossip).
	Publish func(ctx context.Context, community cid.Cid, raw []byte) error
	// Policy, if set, gives a community's current policy (governance);
	// default the genesis policy.
	Policy func(c cid.Cid) community.Policy
	// Founders, if set, gives a community's current founders (governance
	// may add and remove them); default the genesis founders.
	Founders func(c cid.Cid) []peer.ID
	// Banned, if set, reports a peer the community banned: it is never
	// chosen and its gossip score goes below the graylist threshold.
	Banned func(c cid.Cid, p peer.ID) bool
	// Decided, if set, gives the subjects the community certified and
	// decertified by vote (subject → proposal ID); they override what the
	// attestations say.
	Decided func(c cid.Cid) (certified, decertified map[string]string)
	Now     func() time.Time
	// Debounce is how long the service waits after a change before it
	// recomputes, so a burst of records costs one computation. Default
	// 200 ms. When the last computation took longer than a tenth of that,
	// the wait is ten times its cost instead (see paced).
	Debounce time.Duration
	// Refresh is the longest time between recomputations (decay and the
	// community epoch move on). Default one minute.
	Refresh time.Duration
	// Params tune EigenTrust (zero: reputation.DefaultParams).
	Params reputation.Params
	// FeedbackRate bounds the feedback records this node files (the
	// registry accepts 60 a minute per author with a burst of 600). Default
	// 1 a second, burst 300.
	FeedbackRate  rate.Limit
	FeedbackBurst int
	Registerer    prometheus.Registerer
	Log           *slog.Logger
	// OnUpdate, if set, is called after every recomputation.
	OnUpdate func()
}

// CommunityEpoch is the granularity of the community trust vector's cut:
// it counts the feedback created before the start of the current epoch, so
// every node that holds the same records computes the same vector during
// the epoch. Ten seconds is well above gossip delay, so nodes disagree only
// about records that arrive late, and briefly; it is short enough that
// good work counts (for certification) within seconds.
const CommunityEpoch = 10 * time.Second

// Gossip scores (gossipsub's application-specific score, weight 1): a
// distrusted peer goes below the gossip threshold (-100), and trusted
// peers earn a little.
const (
	DistrustedScore = -300
	MaxTrustedScore = 10
	// BannedScore is below gossipsub's graylist threshold (-1000): a banned
	// peer's messages are not even looked at.
	BannedScore = -2000
)

// Service is safe for concurrent use.
type Service struct {
	cfg   Config
	notes <-chan *registry.Stored // the registry's notifications
	self  peer.ID
	log   *slog.Logger

	dirty   chan struct{}
	stop    context.CancelFunc
	wg      sync.WaitGroup
	feed    chan feedbackJob
	limiter *rate.Limiter
	metrics *metrics

	mu      sync.RWMutex
	comms   map[cid.Cid]*state
	trusted map[peer.ID]int64 // peer → added (unix ms)
	scores  map[peer.ID]float64

	computations atomic.Int64
	gen          atomic.Uint64 // bumped by Changed: the inputs changed
	last         computed      // the last recomputation; computeMu guards it
	computeMu    sync.Mutex    // one recomputation at a time
}

// state is one community's records and results.
type state struct {
	ratings map[cid.Cid]reputation.Rating // by feedback record ID
	atts    map[cid.Cid]certify.Attestation
	revoked map[cid.Cid]bool // revocation targets seen

	personal, communal reputation.Result
	cut                int64 // the community vector's cut (unix ms)
	seeds              map[peer.ID]bool
	founders           map[peer.ID]bool
	certs              map[string]certify.Decision
	certsBy            certInputs          // what certs were computed from
	at                 map[string]atResult // CommunityAt's cache
}

// certInputs is what a community's certifications were computed from,
// besides its attestations (which only change with the generation): a
// recomputation that finds the same keeps them instead of deciding every
// subject again. On an idle node with many attestations, that is most of
// the work and garbage of the periodic refresh.
type certInputs struct {
	set      bool // false: nothing computed yet (a state just loaded)
	gen      uint64
	levels   []peerLevel // the community trust level of every ranked peer
	policy   certify.Policy
	yes, no  map[string]string // the community's votes (Decided)
	validTil int64             // unix ms: the earliest expiry after the computation (0: none)
}

type peerLevel struct {
	peer  peer.ID
	level int64
}

func (a certInputs) same(b certInputs, now int64) bool {
	return a.set && b.set && a.gen == b.gen && a.policy == b.policy && slices.Equal(a.levels, b.levels) &&
		maps.Equal(a.yes, b.yes) && maps.Equal(a.no, b.no) && (a.validTil == 0 || now < a.validTil)
}

func levelsOf(r reputation.Result) []peerLevel {
	out := make([]peerLevel, len(r.Entries))
	for i, e := range r.Entries {
		out[i] = peerLevel{e.Peer, r.Level(e.Peer)}
	}
	return out
}

// computed is what the last recomputation saw, to tell whether the next
// scheduled one would change anything.
type computed struct {
	at         time.Time
	gen        uint64
	cut        int64 // the community vector's cut
	newest     int64 // the newest rating's creation time (unix ms)
	nextExpiry int64 // the earliest attestation expiry after it (0: none)
}

type atResult struct {
	gen int // len(ratings) when computed: ratings only grow
	res reputation.Result
}

func newState() *state {
	return &state{ratings: map[cid.Cid]reputation.Rating{}, atts: map[cid.Cid]certify.Attestation{},
		revoked: map[cid.Cid]bool{}, certs: map[string]certify.Decision{}, at: map[string]atResult{}}
}

type metrics struct {
	filed, dropped prometheus.Counter
	compute        prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		filed: prometheus.NewCounter(prometheus.CounterOpts{Name: "agora_feedback_filed_total",
			Help: "Feedback records this node filed about tasks other members ran for it."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "agora_feedback_dropped_total",
			Help: "Automatic feedback not filed because the node delegated faster than it may publish records."}),
		compute: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "agora_trust_compute_seconds",
			Help: "Time to recompute one community's trust vectors and certifications.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8)}),
	}
	if reg != nil {
		reg.MustRegister(m.filed, m.dropped, m.compute)
	}
	return m
}

// New loads the trusted peers and every community's records, computes once,
// and starts following the registry.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.DB == nil || cfg.Key == nil || cfg.Communities == nil {
		return nil, errors.New("trust: Config needs Store, DB, Key and Communities")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = 200 * time.Millisecond
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = time.Minute
	}
	if cfg.FeedbackRate <= 0 {
		cfg.FeedbackRate = 1
	}
	if cfg.FeedbackBurst <= 0 {
		cfg.FeedbackBurst = 300
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Publish == nil {
		cfg.Publish = func(context.Context, cid.Cid, []byte) error { return nil }
	}
	self, err := peer.IDFromPrivateKey(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	s := &Service{cfg: cfg, self: self, log: cfg.Log, dirty: make(chan struct{}, 1), feed: make(chan feedbackJob, 1024),
		limiter: rate.NewLimiter(cfg.FeedbackRate, cfg.FeedbackBurst), metrics: newMetrics(cfg.Registerer),
		comms: map[cid.Cid]*state{}, scores: map[peer.ID]float64{}}
	if s.trusted, err = loadTrusted(cfg.DB); err != nil {
		return nil, err
	}
	notes, unsubscribe := cfg.Store.Subscribe(4096)
	s.notes = notes
	if err := s.reload(); err != nil {
		unsubscribe()
		return nil, err
	}
	s.recompute()
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.wg.Add(3)
	go func() { defer s.wg.Done(); defer unsubscribe(); s.follow(ctx, notes) }()
	go func() { defer s.wg.Done(); s.loop(ctx) }()
	go func() { defer s.wg.Done(); s.fileLoop(ctx) }()
	return s, nil
}

// Close stops the service; queued automatic feedback is dropped.
func (s *Service) Close() {
	s.stop()
	s.wg.Wait()
}

// Computations counts recomputations (for tests that wait for one).
func (s *Service) Computations() int64 { return s.computations.Load() }

// Refresh reads the registry again and recomputes now, synchronously.
func (s *Service) Refresh() error {
	if err := s.reload(); err != nil {
		return err
	}
	s.recompute()
	return nil
}

// Changed asks for a recomputation soon (a community joined, the trusted
// peers changed, the policy changed).
func (s *Service) Changed() {
	s.gen.Add(1)
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

// follow takes in newly stored records.
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
			changed := s.take(st)
			s.mu.Unlock()
			if changed {
				s.Changed()
			}
		}
	}
}

// loop recomputes after changes (debounced) and every Refresh.
func (s *Service) loop(ctx context.Context) {
	// Drops are counted from the subscription's start: the registry may
	// have dropped notes while the service loaded and computed first.
	var dropped uint64
	joined := len(s.cfg.Communities.Joined())
	var cost time.Duration // of the last recomputation
	for {
		// Wake at the next community epoch too, so the community vector
		// moves on as soon as every node's does.
		now := s.cfg.Now()
		wait := min(s.cfg.Refresh, now.Truncate(CommunityEpoch).Add(CommunityEpoch).Sub(now)+10*time.Millisecond)
		refresh := time.NewTimer(wait)
		scheduled := false
		select {
		case <-ctx.Done():
			refresh.Stop()
			return
		case <-s.dirty:
			refresh.Stop()
			select {
			case <-ctx.Done():
				return
			case <-time.After(paced(s.cfg.Debounce, cost)):
			}
		case <-refresh.C:
			scheduled = true
		}
		// A missed notification or a new community: read the registry
		// again, which is the truth.
		if d, j := s.cfg.Store.Dropped(s.notes), len(s.cfg.Communities.Joined()); d != dropped || j != joined || s.unloaded() {
			dropped, joined = d, j
			if err := s.reload(); err != nil {
				s.log.Warn("cannot read the registry for reputation", "err", err)
			}
			s.gen.Add(1)
		}
		// A scheduled wake-up is skipped when it would compute the same.
		if scheduled && !s.stale(s.cfg.Now()) {
			continue
		}
		began := time.Now()
		s.recompute()
		cost = time.Since(began)
	}
}

// paced is how long to wait after a change before computing again: the
// debounce, or ten times what the last computation cost when that is
// longer. Every computation reads all of a community's ratings and
// attestations, so while records stream in (a new member catching up on
// 10,000 of them, a busy community), recomputing at a fixed pace would
// cost time proportional to the registry per record; this keeps it under
// a tenth of a core, and the result follows within ten costs of the
// last record. While changes keep coming, a costly computation can thus
// move to a new community epoch up to ten costs late: capping the wait at
// the epoch boundary instead tripled trust's share of the CPU in the
// 300-node simulation (5 % → 12 %), every node recomputing every 10 s.
func paced(debounce, cost time.Duration) time.Duration {
	return max(debounce, 10*cost)
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

// reload reads every community's feedback, attestations and revocations.
func (s *Service) reload() error {
	next := map[cid.Cid]*state{}
	for _, c := range s.cfg.Communities.Joined() {
		st := newState()
		for _, kind := range []record.Kind{record.KindRevocation, record.KindFeedback, record.KindAttestation} {
			if err := s.each(c, kind, func(r *registry.Stored) { st.take(r) }); err != nil {
				return err
			}
		}
		next[c] = st
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.comms = next
	// A recomputation under way may still have read the old states; the
	// next one must not take their certifications for current.
	s.gen.Add(1)
	return nil
}

// each calls fn for every stored record of kind in community c, page by
// page.
func (s *Service) each(c cid.Cid, kind record.Kind, fn func(*registry.Stored)) error {
	return s.cfg.Store.Each(registry.Query{Community: c, Kind: kind}, fn)
}

// take adds one stored record to its community's state; s.mu is held.
func (s *Service) take(r *registry.Stored) bool {
	st := s.comms[r.Record.Community]
	if st == nil {
		// A community joined since the last load: the loop reloads it
		// from the registry, this record included.
		return true
	}
	return st.take(r)
}

// take adds a record to the state and reports whether that changed it: a
// record taken in already (a notification that arrives after a reload
// loaded its record) changes nothing and asks for no recomputation.
func (st *state) take(r *registry.Stored) bool {
	id := r.CID()
	switch r.Record.Kind {
	case record.KindFeedback:
		if _, ok := st.ratings[id]; ok {
			return false
		}
		b, err := body.DecodeRecord(r.Record)
		if err != nil {
			return false
		}
		f := b.(body.Feedback)
		st.ratings[id] = reputation.Rating{Rater: r.Record.Author, Ratee: f.Receipt.Executor, Receipt: f.Receipt.CID().String(),
			ID: id.String(), Score: f.Score, Created: r.Record.Created}
	case record.KindAttestation:
		if a, ok := st.atts[id]; ok {
			if a.Revoked || !(r.Revoked || st.revoked[id]) {
				return false
			}
			a.Revoked = true
			st.atts[id] = a
			return true
		}
		b, err := body.DecodeRecord(r.Record)
		if err != nil {
			return false
		}
		a := b.(body.Attestation)
		st.atts[id] = certify.Attestation{ID: id.String(), Author: r.Record.Author, Subject: a.Subject.String(),
			Verdict: string(a.Verdict), Predicate: a.Predicate, Created: r.Record.Created, Expires: a.Expires,
			Revoked: r.Revoked || st.revoked[id]}
	case record.KindRevocation:
		b, err := body.DecodeRecord(r.Record)
		if err != nil {
			return false
		}
		target := b.(body.Revocation).Target
		if st.revoked[target] {
			return false
		}
		st.revoked[target] = true
		if a, ok := st.atts[target]; ok {
			a.Revoked = true
			st.atts[target] = a
		}
	default:
		return false
	}
	return true
}

// stale reports whether a scheduled recomputation at now would compute
// anything new: the inputs changed, a rating created since the last cut
// now falls before the community cut, an attestation expired, or Refresh
// passed (the personal vector's decay moves on; slowly, with a 90-day
// half-life, and every rating decays alike, which normalisation cancels).
// An idle node with many records recomputes once per Refresh instead of at
// every 10 s epoch.
func (s *Service) stale(now time.Time) bool {
	s.computeMu.Lock()
	defer s.computeMu.Unlock()
	l := s.last
	cut := now.Truncate(CommunityEpoch).UnixMilli()
	switch {
	case l.at.IsZero(), s.gen.Load() != l.gen, now.Sub(l.at) >= s.cfg.Refresh:
		return true
	case cut != l.cut && l.newest >= l.cut:
		return true
	case l.nextExpiry != 0 && now.UnixMilli() >= l.nextExpiry:
		return true
	}
	return false
}

// recompute computes every community's vectors and certifications from the
// records taken in so far, then the gossip scores.
func (s *Service) recompute() {
	s.computeMu.Lock()
	defer s.computeMu.Unlock()
	gen := s.gen.Load()
	now := s.cfg.Now()
	ms := now.UnixMilli()
	cut := now.Truncate(CommunityEpoch).UnixMilli()
	var newest, nextExpiry int64
	type input struct {
		id        cid.Cid
		ratings   []reputation.Rating
		seeds     []peer.ID
		founders  []peer.ID
		policy    community.Policy
		expiry    int64 // the earliest attestation expiry after now (0: none)
		prevCerts map[string]certify.Decision
		prevBy    certInputs
	}
	var inputs []input
	s.mu.RLock()
	for id, st := range s.comms {
		g, ok := s.cfg.Communities.Genesis(id)
		if !ok {
			continue
		}
		in := input{id: id, founders: slices.Clone(g.Founders), policy: g.Policy, prevCerts: st.certs, prevBy: st.certsBy}
		if s.cfg.Policy != nil {
			in.policy = s.cfg.Policy(id)
		}
		if s.cfg.Founders != nil {
			in.founders = s.cfg.Founders(id)
		}
		in.ratings = make([]reputation.Rating, 0, len(st.ratings))
		for _, r := range st.ratings {
			in.ratings = append(in.ratings, r)
			newest = max(newest, r.Created)
		}
		for _, a := range st.atts {
			if a.Expires > ms && (in.expiry == 0 || a.Expires < in.expiry) {
				in.expiry = a.Expires
			}
		}
		if in.expiry != 0 && (nextExpiry == 0 || in.expiry < nextExpiry) {
			nextExpiry = in.expiry
		}
		in.seeds = append([]peer.ID{s.self}, in.founders...)
		for p := range s.trusted {
			in.seeds = append(in.seeds, p)
		}
		inputs = append(inputs, in)
	}
	s.mu.RUnlock()

	results := map[cid.Cid]*state{}
	for _, in := range inputs {
		start := time.Now()
		pp := s.cfg.Params
		pp.Now, pp.Before = ms, 0
		personal := reputation.Compute(in.ratings, in.seeds, pp)
		cp := s.cfg.Params
		cp.Now, cp.Before = cut, cut
		communal := reputation.Compute(in.ratings, in.founders, cp)
		pol := certify.Policy{MinAttestations: in.policy.CertifyMinAttestations, MinAuditorTrust: in.policy.CertifyMinAuditorTrust}
		by := certInputs{set: true, gen: gen, levels: levelsOf(communal), policy: pol, validTil: in.expiry}
		if s.cfg.Decided != nil {
			yes, no := s.cfg.Decided(in.id)
			by.yes, by.no = maps.Clone(yes), maps.Clone(no) // kept to compare with the next
		}
		certs := in.prevCerts
		if !in.prevBy.same(by, ms) {
			certs = s.certify(in.id, communal, by, ms)
		}
		st := &state{personal: personal, communal: communal, cut: cut, certs: certs, certsBy: by,
			seeds: setOf(in.seeds), founders: setOf(in.founders)}
		results[in.id] = st
		s.metrics.compute.Observe(time.Since(start).Seconds())
	}

	scores := map[peer.ID]float64{}
	for id, st := range results {
		for _, e := range st.personal.Entries {
			sc := MaxTrustedScore * float64(st.personal.Level(e.Peer)) / 1000
			if Distrusted(e) {
				sc = DistrustedScore
			}
			if s.cfg.Banned != nil && s.cfg.Banned(id, e.Peer) {
				sc = BannedScore
			}
			if cur, ok := scores[e.Peer]; !ok || sc < cur {
				scores[e.Peer] = sc // the worst standing in any community
			}
		}
	}
	s.mu.Lock()
	for id, r := range results {
		if st := s.comms[id]; st != nil {
			st.personal, st.communal, st.cut, st.certs, st.certsBy, st.seeds, st.founders = r.personal, r.communal, r.cut, r.certs, r.certsBy, r.seeds, r.founders
		}
	}
	s.scores = scores
	s.mu.Unlock()
	s.last = computed{at: now, gen: gen, cut: cut, newest: newest, nextExpiry: nextExpiry}
	s.computations.Add(1)
	if s.cfg.OnUpdate != nil {
		s.cfg.OnUpdate()
	}
}

// certify decides every subject of community c's attestations, then applies
// the community's votes.
func (s *Service) certify(c cid.Cid, communal reputation.Result, by certInputs, ms int64) map[string]certify.Decision {
	s.mu.RLock()
	var atts []certify.Attestation
	if st := s.comms[c]; st != nil {
		atts = make([]certify.Attestation, 0, len(st.atts))
		for _, a := range st.atts {
			atts = append(atts, a)
		}
	}
	s.mu.RUnlock()
	decided := certify.All(atts, communal.Level, by.policy, ms)
	certs := make(map[string]certify.Decision, len(decided))
	for _, d := range decided {
		certs[d.Subject] = d
	}
	vote := func(votes map[string]string, certified bool, verb string) {
		for subj, prop := range votes {
			d, ok := certs[subj]
			if !ok {
				d = certify.Decide(subj, nil, communal.Level, by.policy, ms)
			}
			d.Certified = certified
			d.Reasons = append(d.Reasons, verb+" by the community's vote on proposal "+prop)
			certs[subj] = d
		}
	}
	vote(by.yes, true, "certified")
	vote(by.no, false, "decertified")
	return certs
}

func setOf(ps []peer.ID) map[peer.ID]bool {
	m := make(map[peer.ID]bool, len(ps))
	for _, p := range ps {
		m[p] = true
	}
	return m
}

// Distrusted reports whether the evidence against a peer outweighs its
// trust: the distrust that flows to it (its own blame, and that of the
// peers it vouches for) exceeds what it earned, or its standing (trust
// minus damped blame) is negative. Seeds (the node itself, the founders,
// the owner's trusted peers) never are. See registry/reputation.
func Distrusted(e reputation.Entry) bool {
	return !e.Seed && (e.Distrusted || e.Standing < 0)
}

// AppScore is gossipsub's application-specific score for p: BannedScore
// when a community banned p, DistrustedScore when p is distrusted in any
// of the node's communities, otherwise up to MaxTrustedScore by its
// personal trust level. It reads the last result only.
func (s *Service) AppScore(p peer.ID) float64 {
	s.mu.RLock()
	sc, ok := s.scores[p]
	comms := len(s.comms)
	s.mu.RUnlock()
	if !ok && s.cfg.Banned != nil && comms > 0 {
		// A banned peer nobody rated yet.
		for _, c := range s.cfg.Communities.Joined() {
			if s.cfg.Banned(c, p) {
				return BannedScore
			}
		}
	}
	return sc
}

// Judge is what delegation needs to know about a provider.
type Judge struct {
	Level      int64 // personal trust level, thousandths of the most trusted peer's
	Certified  bool  // its node or its agent is certified in the community
	Distrusted bool
	Banned     bool
}

// Judge returns this node's view of provider p's agent in community c.
func (s *Service) Judge(c cid.Cid, p peer.ID, agent string) Judge {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.comms[c]
	if st == nil {
		return Judge{}
	}
	j := Judge{Level: st.personal.Level(p), Certified: st.certified(p, agent)}
	if e, ok := st.personal.Get(p); ok {
		j.Distrusted = Distrusted(e)
	}
	if s.cfg.Banned != nil && s.cfg.Banned(c, p) {
		j.Distrusted, j.Banned = true, true
	}
	if s.cfg.Policy != nil {
		if min := s.cfg.Policy(c).DelegateMinProviderTrust; min > 0 && j.Level < min {
			j.Distrusted = true // under the community's floor for providers
		}
	}
	return j
}

// CommunityAt computes community c's trust vector over the feedback
// created before at, seeded by seeds, with ages measured at at: what
// governance weighs votes with. Results are cached while the feedback set
// is unchanged.
func (s *Service) CommunityAt(c cid.Cid, at int64, seeds []peer.ID) reputation.Result {
	key := fmt.Sprintf("%s/%d/%v", c, at, seeds)
	s.mu.RLock()
	st := s.comms[c]
	if st == nil {
		s.mu.RUnlock()
		return reputation.Result{}
	}
	gen := len(st.ratings)
	if r, ok := st.at[key]; ok && r.gen == gen {
		s.mu.RUnlock()
		return r.res
	}
	ratings := make([]reputation.Rating, 0, len(st.ratings))
	for _, r := range st.ratings {
		if r.Created < at {
			ratings = append(ratings, r)
		}
	}
	s.mu.RUnlock()
	p := s.cfg.Params
	p.Now, p.Before = at, at
	res := reputation.Compute(ratings, seeds, p)
	s.mu.Lock()
	if st := s.comms[c]; st != nil {
		if len(st.at) > 256 {
			clear(st.at)
		}
		st.at[key] = atResult{gen: gen, res: res}
	}
	s.mu.Unlock()
	return res
}

// AgentSubject is the attestation subject ID of an agent: "<peer>/<name>".
func AgentSubject(p peer.ID, agent string) string { return p.String() + "/" + agent }

func (st *state) certified(p peer.ID, agent string) bool {
	if d, ok := st.certs["peer:"+p.String()]; ok && d.Certified {
		return true
	}
	d, ok := st.certs["agent:"+AgentSubject(p, agent)]
	return ok && d.Certified
}

// Kind of trust vector.
const (
	Personal  = "personal"
	Community = "community"
)

// Reputation returns community c's vector of the given kind.
func (s *Service) Reputation(c cid.Cid, kind string) (reputation.Result, map[peer.ID]bool, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.comms[c]
	if st == nil {
		return reputation.Result{}, nil, false
	}
	if kind == Community {
		return st.communal, st.founders, true
	}
	return st.personal, st.seeds, true
}

// CommunityCut is the cut of community c's current community vector.
func (s *Service) CommunityCut(c cid.Cid) int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if st := s.comms[c]; st != nil {
		return st.cut
	}
	return 0
}

// Certifications returns community c's decisions, sorted by subject.
func (s *Service) Certifications(c cid.Cid) []certify.Decision {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.comms[c]
	if st == nil {
		return nil
	}
	out := make([]certify.Decision, 0, len(st.certs))
	for _, d := range st.certs {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b certify.Decision) int {
		switch {
		case a.Subject < b.Subject:
			return -1
		case a.Subject > b.Subject:
			return 1
		}
		return 0
	})
	return out
}

// Decide certifies one subject now, attested or not.
func (s *Service) Decide(c cid.Cid, subject string) (certify.Decision, bool) {
	s.mu.RLock()
	st := s.comms[c]
	if st == nil {
		s.mu.RUnlock()
		return certify.Decision{}, false
	}
	if d, ok := st.certs[subject]; ok {
		s.mu.RUnlock()
		return d, true
	}
	communal := st.communal
	s.mu.RUnlock()
	g, _ := s.cfg.Communities.Genesis(c)
	pol := g.Policy
	if s.cfg.Policy != nil {
		pol = s.cfg.Policy(c)
	}
	return certify.Decide(subject, nil, communal.Level, certify.Policy{MinAttestations: pol.CertifyMinAttestations,
		MinAuditorTrust: pol.CertifyMinAuditorTrust}, s.cfg.Now().UnixMilli()), true
}

// feedbackJob is one feedback record to file.
type feedbackJob struct {
	receipt *task.Receipt
	score   int64
	comment string
}

// File queues an automatic feedback record about a receipt of a task
// another member ran for this node. It never blocks: when the queue is
// full the feedback is dropped and counted.
func (s *Service) File(rc *task.Receipt, score int64, comment string) {
	if rc == nil || rc.Executor == s.self || rc.Requester != s.self {
		return
	}
	select {
	case s.feed <- feedbackJob{receipt: rc, score: score, comment: comment}:
	default:
		s.metrics.dropped.Inc()
	}
}

func (s *Service) fileLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-s.feed:
			if !s.limiter.Allow() {
				// Filing faster than the registry lets an author publish
				// would only see the records refused.
				s.metrics.dropped.Inc()
				continue
			}
			if _, err := s.sign(ctx, j); err != nil && ctx.Err() == nil {
				s.log.Warn("cannot file feedback", "task", j.receipt.Task, "err", err)
			}
		}
	}
}

// Rate files a feedback record now (the owner's own rating) and returns it.
func (s *Service) Rate(ctx context.Context, rc *task.Receipt, score int64, comment string) (*record.Record, error) {
	if rc.Requester != s.self {
		return nil, fmt.Errorf("only the task's requester %s may rate it", rc.Requester)
	}
	if rc.Executor == s.self {
		return nil, errors.New("the task ran on this node; only tasks another member ran can be rated")
	}
	return s.sign(ctx, feedbackJob{receipt: rc, score: score, comment: comment})
}

func (s *Service) sign(ctx context.Context, j feedbackJob) (*record.Record, error) {
	rec, err := s.cfg.Store.Sign(s.cfg.Key, j.receipt.Community, record.KindFeedback,
		body.Feedback{Receipt: j.receipt, Score: j.score, Comment: j.comment})
	if err != nil {
		return nil, err
	}
	s.metrics.filed.Inc()
	if err := s.cfg.Publish(ctx, rec.Community, rec.Raw()); err != nil {
		// Stored: sync carries it to the others.
		s.log.Debug("feedback stored but not gossiped", "cid", rec.CID(), "err", err)
	}
	return rec, nil
}
