package replicate

import (
	"log/slog"
	"math"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Penalty arithmetic. A fault costs faultCost points; points halve every
// penaltyHalfLife. Gossipsub sees -points as the application score, so two
// fresh faults put a peer under the gossip threshold (-100) and a peer at
// dropAt points is disconnected and refused until it decays below it.
const (
	faultCost       = 60.0
	dropAt          = 200.0
	penaltyHalfLife = 10 * time.Minute
)

// Penalties remembers which peers broke the rules recently. Safe for
// concurrent use.
type Penalties struct {
	h   host.Host
	log *slog.Logger
	now func() time.Time

	mu     sync.Mutex
	points map[peer.ID]penalty
	logged map[peer.ID]bool // each peer's first fault is logged at warn
	faults map[string]uint64
	drops  uint64
}

// PenaltyStats counts faults by reason and the disconnections they caused.
// A reason is where the fault was seen and, for the record rules, which
// rule: "gossip:bad-signature", "topic:wrong-topic", "advert:malformed",
// "task:malformed";
// sync faults count as "sync", anything else as "other", so a peer cannot
// grow the table.
type PenaltyStats struct {
	Faults map[string]uint64
	Drops  uint64
}

var faultSources = map[string]bool{"gossip": true, "topic": true, "advert": true, "task": true}

// reasonCode matches the registry's and the record package's reason codes.
var reasonCode = regexp.MustCompile(`^[a-z][a-z-]{0,39}$`)

func faultReason(reason string) string {
	src, code, _ := strings.Cut(reason, ":")
	switch {
	case faultSources[src] && reasonCode.MatchString(code):
		return src + ":" + code
	case faultSources[src]:
		return src + ":other"
	case src == "sync":
		return "sync"
	}
	return "other"
}

// Stats returns a copy of the counters.
func (p *Penalties) Stats() PenaltyStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := PenaltyStats{Faults: make(map[string]uint64, len(p.faults)), Drops: p.drops}
	for k, v := range p.faults {
		st.Faults[k] = v
	}
	return st
}

type penalty struct {
	points float64
	at     time.Time
}

// NewPenalties returns an empty table; h may be nil in tests that only
// compute scores.
func NewPenalties(h host.Host, log *slog.Logger) *Penalties {
	return &Penalties{h: h, log: log, now: time.Now, points: map[peer.ID]penalty{}, logged: map[peer.ID]bool{},
		faults: map[string]uint64{}}
}

func (p *Penalties) decayed(e penalty, now time.Time) float64 {
	return e.points * math.Exp2(-now.Sub(e.at).Seconds()/penaltyHalfLife.Seconds())
}

// Fault records that id provably broke the protocol, logs it once per peer,
// and drops the connection when the peer has done so too often.
func (p *Penalties) Fault(id peer.ID, reason string) {
	now := p.now()
	p.mu.Lock()
	pts := p.decayed(p.points[id], now) + faultCost
	p.points[id] = penalty{pts, now}
	first := !p.logged[id]
	p.logged[id] = true
	p.faults[faultReason(reason)]++
	drop := pts >= dropAt && p.h != nil
	if drop {
		p.drops++
	}
	p.mu.Unlock()
	if first {
		p.log.Warn("peer sent invalid data; scoring it down", "peer", id, "reason", reason)
	} else {
		p.log.Debug("peer sent invalid data", "peer", id, "reason", reason)
	}
	if drop {
		p.h.ConnManager().TagPeer(id, "agora-misbehaving", -1000)
		p.h.Network().ClosePeer(id)
	}
}

// Score is gossipsub's application-specific score for id: zero for a
// well-behaved peer, negative for one that faulted recently.
func (p *Penalties) Score(id peer.ID) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.points[id]
	if !ok {
		return 0
	}
	return -p.decayed(e, p.now())
}

// Dropped reports whether id is refused for now.
func (p *Penalties) Dropped(id peer.ID) bool { return -p.Score(id) >= dropAt }
