package capindex

import (
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agora-p2p/agora/protocol/body"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Provider is one member offering one skill, as the index knows it.
type Provider struct {
	Peer    peer.ID
	Agent   string
	Skill   body.AdvertSkill
	Load    float64 // 0..1, from the advert
	Addrs   []string
	Expires time.Time
	Stats   Stats
	// Standing is what the trust layer says about the provider (zero when
	// no judge is set: a newcomer's).
	Standing
}

// Standing is this node's view of a provider's reputation.
type Standing struct {
	// Trust is the personal trust level, in thousandths of the most
	// trusted peer's.
	Trust int64
	// Certified says the provider's node or agent is certified.
	Certified bool
	// Distrusted says the evidence against the provider outweighs its
	// trust: it is never chosen.
	Distrusted bool
	// Banned says the community banned the provider: it is not even
	// listed.
	Banned bool
}

// JudgeFunc gives the standing of peer p's agent in community c. It is
// called while listing providers and must be fast.
type JudgeFunc func(c cid.Cid, p peer.ID, agent string) Standing

// Stats are this node's observations of a provider's skill.
type Stats struct {
	Attempts  int
	Successes int
	// LatencyMS is an exponentially weighted moving average of completed
	// round trips (0 when none yet).
	LatencyMS float64
	LastSeen  time.Time
}

// SuccessRate is the Laplace-smoothed rate (successes+1)/(attempts+2): a
// provider never tried is at 0.5, not at 0 or 1.
func (s Stats) SuccessRate() float64 {
	return float64(s.Successes+1) / float64(s.Attempts+2)
}

type advert struct {
	seq     uint64
	created int64
	adv     body.Advert
	raw     []byte // the signed record, to hand to a peer that asks
}

type statKey struct {
	peer  peer.ID
	skill string
}

// Index is safe for concurrent use.
type Index struct {
	now func() time.Time

	mu      sync.RWMutex
	adverts map[cid.Cid]map[peer.ID]advert
	stats   map[statKey]Stats
	changed chan struct{}
	judge   atomic.Pointer[JudgeFunc]
}

// Standing returns peer p's standing in community c (zero without a
// judge).
func (x *Index) Standing(c cid.Cid, p peer.ID, agent string) Standing {
	if j := x.judge.Load(); j != nil {
		return (*j)(c, p, agent)
	}
	return Standing{}
}

// SetJudge sets the function that gives providers their standing.
func (x *Index) SetJudge(j JudgeFunc) { x.judge.Store(&j) }

// New returns an empty index; now is its clock (time.Now when nil).
func New(now func() time.Time) *Index {
	if now == nil {
		now = time.Now
	}
	return &Index{now: now, adverts: map[cid.Cid]map[peer.ID]advert{}, stats: map[statKey]Stats{}, changed: make(chan struct{}, 1)}
}

// Update records an advert author published in community at created (unix
// ms). It returns false, and changes nothing, when the index holds the
// author's advert with the same or a newer seq, or when the advert has
// expired.
func (x *Index) Update(community cid.Cid, author peer.ID, created int64, a body.Advert) bool {
	return x.update(community, author, created, a, nil)
}

func (x *Index) update(community cid.Cid, author peer.ID, created int64, a body.Advert, raw []byte) bool {
	if a.Expires <= x.now().UnixMilli() {
		return false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	m := x.adverts[community]
	if m == nil {
		m = map[peer.ID]advert{}
		x.adverts[community] = m
	}
	if old, ok := m[author]; ok && old.seq >= a.Seq {
		return false
	}
	m[author] = advert{seq: a.Seq, created: created, adv: a, raw: raw}
	x.signal()
	return true
}

// Records returns the signed advert records the index holds for community
// that have not expired, at most max of them (the ones it took in as
// records: a peer's, or this node's own once published).
func (x *Index) Records(community cid.Cid, max int) [][]byte {
	now := x.now().UnixMilli()
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out [][]byte
	for _, a := range x.adverts[community] {
		if len(out) == max {
			break
		}
		if a.raw != nil && a.adv.Expires > now {
			out = append(out, a.raw)
		}
	}
	return out
}

// Seq returns the seq of author's advert in community, 0 if none.
func (x *Index) Seq(community cid.Cid, author peer.ID) uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.adverts[community][author].seq
}

// Forget drops a community (the node left it).
func (x *Index) Forget(community cid.Cid) {
	x.mu.Lock()
	delete(x.adverts, community)
	x.mu.Unlock()
	x.signal()
}

// Expire drops adverts past their expiry and returns how many.
func (x *Index) Expire() int {
	now := x.now().UnixMilli()
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	for _, m := range x.adverts {
		for p, a := range m {
			if a.adv.Expires <= now {
				delete(m, p)
				n++
			}
		}
	}
	if n > 0 {
		x.signal()
	}
	return n
}

// Changed is signalled (coalesced) when adverts come or go.
func (x *Index) Changed() <-chan struct{} { return x.changed }

func (x *Index) signal() {
	select {
	case x.changed <- struct{}{}:
	default:
	}
}

// Observe records the outcome of one delegation to p's skill. latency is
// counted only for successes.
func (x *Index) Observe(p peer.ID, skill string, latency time.Duration, ok bool) {
	const alpha = 0.3
	x.mu.Lock()
	defer x.mu.Unlock()
	k := statKey{p, skill}
	s := x.stats[k]
	s.Attempts++
	if ok {
		s.Successes++
		ms := float64(latency) / float64(time.Millisecond)
		if s.LatencyMS == 0 {
			s.LatencyMS = ms
		} else {
			s.LatencyMS = alpha*ms + (1-alpha)*s.LatencyMS
		}
	}
	s.LastSeen = x.now()
	x.stats[k] = s
}

// Providers lists who offers skill in community (all communities when
// community is cid.Undef), unranked, excluding expired adverts.
func (x *Index) Providers(community cid.Cid, skill string) []Provider {
	now := x.now().UnixMilli()
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []Provider
	var comms []cid.Cid
	seen := map[statKey]bool{}
	for c, m := range x.adverts {
		if community.Defined() && c != community {
			continue
		}
		for p, a := range m {
			if a.adv.Expires <= now {
				continue
			}
			for _, ag := range a.adv.Agents {
				for _, s := range ag.Skills {
					if s.ID != skill || seen[statKey{p, ag.Name + "\x00" + s.ID}] {
						continue
					}
					seen[statKey{p, ag.Name + "\x00" + s.ID}] = true
					out = append(out, Provider{
						Peer: p, Agent: ag.Name, Skill: s, Load: float64(a.adv.Load) / body.MaxLoad,
						Addrs: a.adv.Addrs, Expires: time.UnixMilli(a.adv.Expires), Stats: x.stats[statKey{p, skill}],
					})
					comms = append(comms, c)
				}
			}
		}
	}
	if j := x.judge.Load(); j != nil {
		for i := range out {
			out[i].Standing = (*j)(comms[i], out[i].Peer, out[i].Agent)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Peer != out[j].Peer {
			return out[i].Peer < out[j].Peer
		}
		return out[i].Agent < out[j].Agent
	})
	return out
}

// SkillInfo is one skill and everyone who offers it.
type SkillInfo struct {
	ID          string
	Description string
	Providers   []Provider
}

// Skills lists every advertised skill in community (all when cid.Undef),
// sorted by ID, each with its providers ranked.
func (x *Index) Skills(community cid.Cid) []SkillInfo {
	now := x.now().UnixMilli()
	x.mu.RLock()
	ids := map[string]string{}
	for c, m := range x.adverts {
		if community.Defined() && c != community {
			continue
		}
		for _, a := range m {
			if a.adv.Expires <= now {
				continue
			}
			for _, ag := range a.adv.Agents {
				for _, s := range ag.Skills {
					if _, ok := ids[s.ID]; !ok || ids[s.ID] == "" {
						ids[s.ID] = s.Description
					}
				}
			}
		}
	}
	x.mu.RUnlock()
	keys := make([]string, 0, len(ids))
	for k := range ids {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]SkillInfo, 0, len(keys))
	for _, k := range keys {
		out = append(out, SkillInfo{ID: k, Description: ids[k], Providers: Rank(x.Providers(community, k))})
	}
	return out
}

// Peers returns the authors of live adverts in community.
func (x *Index) Peers(community cid.Cid) []peer.ID {
	now := x.now().UnixMilli()
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []peer.ID
	for p, a := range x.adverts[community] {
		if a.adv.Expires > now {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}
