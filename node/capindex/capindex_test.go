package capindex

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

func comm(t testing.TB, s string) cid.Cid {
	sum, _ := mh.Sum([]byte(s), mh.SHA2_256, -1)
	return cid.NewCidV1(cid.DagCBOR, sum)
}

func TestScoreAndRank(t *testing.T) {
	p := func(id string, att, ok int, lat, load float64) Provider {
		return Provider{Peer: peer.ID(id), Agent: "a", Load: load, Stats: Stats{Attempts: att, Successes: ok, LatencyMS: lat}}
	}
	cases := []struct {
		name string
		in   []Provider
		want []string
	}{
		{"untried ties break on load then peer", []Provider{p("b", 0, 0, 0, 0), p("a", 0, 0, 0, 0.5), p("c", 0, 0, 0, 0)}, []string{"b", "c", "a"}},
		{"reliable beats flaky", []Provider{p("flaky", 10, 2, 50, 0), p("good", 10, 10, 50, 0)}, []string{"good", "flaky"}},
		{"fast beats slow at equal success", []Provider{p("slow", 10, 10, 2000, 0), p("fast", 10, 10, 20, 0)}, []string{"fast", "slow"}},
		{"a loaded fast one loses to an idle one", []Provider{p("busy", 10, 10, 20, 1), p("idle", 10, 10, 100, 0)}, []string{"idle", "busy"}},
		{"an untried one beats one that always fails", []Provider{p("bad", 5, 0, 0, 0), p("new", 0, 0, 0, 0)}, []string{"new", "bad"}},
		{"trust breaks an otherwise even match", []Provider{p("stranger", 10, 10, 50, 0), trusted(p("friend", 10, 10, 50, 0), 800, false, false)}, []string{"friend", "stranger"}},
		{"certified beats uncertified", []Provider{p("plain", 10, 10, 50, 0), trusted(p("cert", 10, 10, 50, 0), 0, true, false)}, []string{"cert", "plain"}},
		{"distrusted goes last however good", []Provider{trusted(p("fast", 10, 10, 5, 0), 1000, true, true), p("slow", 10, 5, 900, 0.9)}, []string{"slow", "fast"}},
	}
	for _, c := range cases {
		got := Rank(c.in)
		for i, w := range c.want {
			if string(got[i].Peer) != w {
				t.Errorf("%s: position %d is %s, want %s", c.name, i, got[i].Peer, w)
			}
		}
	}
	// Hand-computed: 10/10 successes → 11/12; 250 ms → 1/2; load 0.5 →
	// 0.625; trust 0 → 0.5, trust 500 → 1, certified ×1.25.
	for _, c := range []struct {
		p    Provider
		want float64
	}{
		{p("x", 10, 10, 250, 0.5), 11.0 / 12 * 0.5 * 0.625 * 0.5},
		{trusted(p("x", 10, 10, 250, 0.5), 500, true, false), 11.0 / 12 * 0.5 * 0.625 * 1 * 1.25},
		{trusted(p("x", 10, 10, 250, 0.5), 500, true, true), 0},
	} {
		if s := Score(c.p); s < c.want-1e-12 || s > c.want+1e-12 {
			t.Fatalf("Score(%+v) = %v, want %v", c.p.Standing, s, c.want)
		}
	}
	if (Stats{}).SuccessRate() != 0.5 {
		t.Fatal("an untried provider's success rate is not 0.5")
	}
}

func trusted(p Provider, level int64, certified, distrusted bool) Provider {
	p.Standing = Standing{Trust: level, Certified: certified, Distrusted: distrusted}
	return p
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.UnixMilli(1_700_000_000_000)} }
func adv(seq uint64, exp time.Time, skills ...string) body.Advert {
	var ss []body.AdvertSkill
	for _, s := range skills {
		ss = append(ss, body.AdvertSkill{ID: s, Input: []byte(`{}`), Output: []byte(`{}`)})
	}
	return body.Advert{Seq: seq, Expires: exp.UnixMilli(), Agents: []body.AdvertAgent{{Name: "a", Skills: ss}}}
}

func TestIndexUpdateExpire(t *testing.T) {
	clk := newClock()
	x := New(clk.Now)
	c := comm(t, "c")
	exp := clk.Now().Add(time.Minute)
	if !x.Update(c, "p1", 1, adv(2, exp, "text.stats")) {
		t.Fatal("first advert refused")
	}
	if x.Update(c, "p1", 1, adv(2, exp, "other")) || x.Update(c, "p1", 1, adv(1, exp, "other")) {
		t.Fatal("an advert with an old seq replaced a newer one")
	}
	if !x.Update(c, "p1", 1, adv(3, exp, "text.stats", "math.eval")) {
		t.Fatal("newer seq refused")
	}
	x.Update(c, "p2", 1, adv(1, exp.Add(time.Hour), "text.stats"))
	if n := len(x.Providers(c, "text.stats")); n != 2 {
		t.Fatalf("%d providers, want 2", n)
	}
	if n := len(x.Providers(comm(t, "other"), "text.stats")); n != 0 {
		t.Fatalf("providers leak across communities: %d", n)
	}
	x.Observe("p1", "text.stats", 40*time.Millisecond, true)
	x.Observe("p1", "text.stats", 0, false)
	for _, p := range x.Providers(c, "text.stats") {
		if p.Peer == "p1" && (p.Stats.Attempts != 2 || p.Stats.Successes != 1 || p.Stats.LatencyMS != 40) {
			t.Fatalf("stats %+v", p.Stats)
		}
	}
	clk.Add(2 * time.Minute)
	if n := x.Expire(); n != 1 {
		t.Fatalf("expired %d, want 1", n)
	}
	sk := x.Skills(c)
	if len(sk) != 1 || sk[0].ID != "text.stats" || len(sk[0].Providers) != 1 || sk[0].Providers[0].Peer != "p2" {
		t.Fatalf("skills after expiry: %+v", sk)
	}
	if x.Update(c, "p3", 1, adv(1, clk.Now().Add(-time.Second), "x")) {
		t.Fatal("an expired advert was taken")
	}
}

func TestAdvertiser(t *testing.T) {
	clk := newClock()
	key, _, _ := crypto.GenerateEd25519Key(nil)
	self, _ := peer.IDFromPrivateKey(key)
	c := comm(t, "c")
	x := New(clk.Now)
	var mu sync.Mutex
	var sent [][]byte
	skills := []string{"text.stats"}
	a, err := NewAdvertiser(AdvertiserConfig{
		Key: key, Index: x, Now: clk.Now,
		Communities: func() []cid.Cid { return []cid.Cid{c} },
		Agents: func(cid.Cid) []body.AdvertAgent {
			mu.Lock()
			defer mu.Unlock()
			return adv(1, clk.Now(), skills...).Agents
		},
		Publish: func(_ context.Context, _ cid.Cid, raw []byte) error {
			mu.Lock()
			sent = append(sent, raw)
			mu.Unlock()
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(sent) }
	a.Sync(ctx)
	a.Sync(ctx)
	if count() != 1 {
		t.Fatalf("%d adverts for an unchanged node, want 1", count())
	}
	mu.Lock()
	skills = append(skills, "math.eval")
	mu.Unlock()
	a.Sync(ctx)
	if count() != 2 {
		t.Fatal("no advert after a change")
	}
	a.MemberJoined(c, "newcomer")
	a.Sync(ctx)
	if count() != 3 {
		t.Fatal("no advert for a newcomer")
	}
	clk.Add(DefaultLifetime / 2)
	a.Sync(ctx)
	if count() != 4 {
		t.Fatal("no refresh before expiry")
	}
	// What was sent verifies, is an advert of increasing seq, and is in the
	// node's own index.
	var last uint64
	for _, raw := range sent {
		rec, err := record.Open(raw, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		fresh := New(clk.Now)
		if ok, err := fresh.Receive(c, rec); err != nil || !ok {
			t.Fatalf("receive own advert: %v %v", ok, err)
		}
		if s := fresh.Seq(c, self); s <= last {
			t.Fatalf("seq %d after %d", s, last)
		} else {
			last = s
		}
	}
	if len(x.Providers(c, "math.eval")) != 1 {
		t.Fatal("own advert not in the index")
	}
}

// TestRankFromSpreadsTies: equally good providers are ordered by
// rendezvous hashing of (requester, provider): the same requester always
// sees the same order, different requesters spread over the providers,
// and a better score still wins.
func TestRankFromSpreadsTies(t *testing.T) {
	var ps []Provider
	for i := range 5 {
		ps = append(ps, Provider{Peer: peer.ID(fmt.Sprintf("provider-%d", i)), Agent: "a"})
	}
	first := map[peer.ID]int{}
	for i := range 1000 {
		self := peer.ID(fmt.Sprintf("requester-%d", i))
		got := RankFrom(self, ps)
		if again := RankFrom(self, slices.Clone(ps)); !slices.EqualFunc(got, again, func(a, b Provider) bool { return a.Peer == b.Peer }) {
			t.Fatalf("%s: two rankings of the same providers differ", self)
		}
		first[got[0].Peer]++
	}
	for _, p := range ps {
		// 1000 requesters over 5 providers: about 200 each.
		if n := first[p.Peer]; n < 120 || n > 280 {
			t.Errorf("%s ranks first for %d of 1000 requesters: %v", p.Peer, n, first)
		}
	}
	better := slices.Clone(ps)
	better[3].Stats = Stats{Attempts: 10, Successes: 10, LatencyMS: 20}
	for i := range 50 {
		if got := RankFrom(peer.ID(fmt.Sprintf("r-%d", i)), better); got[0].Peer != better[3].Peer {
			t.Fatalf("the better provider is not first: %v", got[0].Peer)
		}
	}
}
