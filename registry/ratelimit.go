package registry

import (
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// RateLimit is a token bucket: Burst records at once, then Records per Per.
// It applies per author and community.
//
// It is flood control for live traffic, not a validity rule, so it applies
// only to fresh records: those created less than Options.CatchUpAge before
// now. Older records are catch-up (sync after a restart, a partition or a
// late join), and a late joiner must be able to take in a year of a busy
// author's records in one go. A record refused for its rate is not the
// sender's fault and is retryable: once it is older than CatchUpAge, sync
// offers it again and it is accepted. So every node still converges on the
// same set of records; the limit only spreads a burst out over time.
//
// An author who backdates records past CatchUpAge escapes the limit, but
// gains nothing a late joiner would not see anyway: such records are not
// fresh, so gossip should not carry them (the gossip validator ignores
// records older than CatchUpAge, see IsCatchUp) and they travel only by
// sync, which each node pulls at its own pace. Limiting an author for good
// is governance (a ban), not ingest.
type RateLimit struct {
	Records int
	Per     time.Duration
	Burst   int
}

var (
	// DefaultRatePerAuthor allows a busy agent's steady flow (one record a
	// second) and bursts of ten minutes' worth.
	DefaultRatePerAuthor = RateLimit{Records: 60, Per: time.Minute, Burst: 600}
	// Unlimited turns the rate limit off.
	Unlimited = RateLimit{Records: -1}
)

func (r RateLimit) unlimited() bool { return r.Records < 0 }

func (r RateLimit) validate() error {
	if r.unlimited() {
		return nil
	}
	if r.Records == 0 || r.Per <= 0 || r.Burst < 1 {
		return fmt.Errorf("registry: a rate limit needs records > 0, a period > 0 and a burst ≥ 1, not %d per %s with burst %d", r.Records, r.Per, r.Burst)
	}
	return nil
}

// IsCatchUp reports whether a record created at created (unix ms) counts as
// catch-up rather than fresh at now: it is not rate limited, and gossip
// should not relay it (sync carries it).
func (s *Store) IsCatchUp(created int64) bool {
	return created < s.opts.Now().Add(-s.opts.CatchUpAge).UnixMilli()
}

type bucketKey struct {
	community cid.Cid
	author    peer.ID
}

type bucket struct {
	tokens float64
	last   time.Time
}

// limiter is used by the committer only, so it needs no lock.
type limiter struct {
	rate      RateLimit
	perNano   float64 // tokens per nanosecond
	buckets   map[bucketKey]*bucket
	lastPrune time.Time
}

func newLimiter(r RateLimit) *limiter {
	l := &limiter{rate: r, buckets: map[bucketKey]*bucket{}}
	if !r.unlimited() {
		l.perNano = float64(r.Records) / float64(r.Per)
	}
	return l
}

func (l *limiter) allow(c cid.Cid, a peer.ID, now time.Time) bool {
	if l.rate.unlimited() {
		return true
	}
	k := bucketKey{c, a}
	b := l.buckets[k]
	if b == nil {
		b = &bucket{tokens: float64(l.rate.Burst), last: now}
		l.buckets[k] = b
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(float64(l.rate.Burst), b.tokens+float64(d)*l.perNano)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// prune forgets buckets that have refilled, which behave exactly like new
// ones, so the map holds only recently busy authors.
func (l *limiter) prune(now time.Time) {
	if l.rate.unlimited() || now.Sub(l.lastPrune) < time.Minute {
		return
	}
	l.lastPrune = now
	for k, b := range l.buckets {
		if b.tokens+float64(now.Sub(b.last))*l.perNano >= float64(l.rate.Burst) {
			delete(l.buckets, k)
		}
	}
}
