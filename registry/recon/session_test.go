package recon

import (
	"errors"
	"fmt"
	"testing"

	wire "github.com/agora-p2p/agora/protocol/recon"
)

func TestReconcileExact(t *testing.T) {
	type tc struct {
		n, diffs int
		span     uint64
	}
	var cases []tc
	for _, n := range []int{10_000, 100_000} {
		for _, d := range []int{0, 1, 10, n / 100} {
			cases = append(cases, tc{n, d, 365 * 24 * 3600 * 1000})
		}
	}
	// Many equal times: bounds need ID prefixes.
	cases = append(cases, tc{10_000, 100, 50}, tc{10_000, 100, 1})
	if testing.Short() {
		cases = cases[:4]
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("n=%d/diffs=%d/span=%d", c.n, c.diffs, c.span), func(t *testing.T) {
			// Differences on both sides: half only at A, half only at B.
			p := makePair(t, uint64(i), c.n-c.diffs, c.diffs/2, c.diffs-c.diffs/2, c.span)
			r := syncOnce(t, p.a, p.b, cfg(), cfg(), nil)
			checkExact(t, "have", r.have, p.onlyA)
			checkExact(t, "need", r.need, p.onlyB)
			if !r.complete {
				t.Fatal("not complete")
			}
			if r.differed != (c.diffs > 0) {
				t.Fatalf("responder Differed = %v", r.differed)
			}
			t.Log(r)
		})
	}
}

func TestReconcileSmallAndLopsided(t *testing.T) {
	tests := []struct {
		name                string
		common, onlyA, only int
	}{
		{"both empty", 0, 0, 0},
		{"empty initiator", 0, 0, 10_000},
		{"empty responder", 0, 10_000, 0},
		{"one vs none", 0, 1, 0},
		{"none vs one", 0, 0, 1},
		{"below the ID list threshold", 20, 5, 5},
		{"at the threshold", 31, 1, 0},
		{"one common, many new", 1, 3000, 3000},
		{"disjoint", 0, 5000, 5000},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := makePair(t, 100+uint64(i), tt.common, tt.onlyA, tt.only, 3_600_000)
			r := syncOnce(t, p.a, p.b, cfg(), cfg(), nil)
			checkExact(t, "have", r.have, p.onlyA)
			checkExact(t, "need", r.need, p.onlyB)
			if !r.complete {
				t.Fatal("not complete")
			}
			t.Log(r)
		})
	}
}

func TestIdenticalSetsTakeOneRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 31, 32, 10_000} {
		p := makePair(t, uint64(n), n, 0, 0, 1_000_000)
		r := syncOnce(t, p.a, p.b, cfg(), cfg(), nil)
		if r.rounds != 1 || !r.complete || len(r.have)+len(r.need) != 0 {
			t.Fatalf("n=%d: %v, complete=%v; want one round trip", n, r, r.complete)
		}
		if r.differed {
			t.Fatalf("n=%d: responder saw a difference", n)
		}
	}
}

// Frames never exceed the configured limit, and what does not fit is carried
// over to later rounds without losing anything.
func TestFrameBudget(t *testing.T) {
	small := Config{Community: testCommunity, FrameSizeLimit: MinFrameSizeLimit}
	tests := []struct {
		name                  string
		common, onlyA, onlyB  int
		minRounds, maxRounds  int
		initiatorSmall, respS bool
	}{
		{"empty initiator, small responder frames", 0, 0, 20_000, 100, 400, false, true},
		{"empty responder, small initiator frames", 0, 20_000, 0, 1, 1, true, false},
		{"1% differences, both small", 20_000, 100, 100, 3, 100, true, true},
		{"disjoint, both small", 0, 5_000, 5_000, 10, 400, true, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := makePair(t, 200+uint64(i), tt.common, tt.onlyA, tt.onlyB, 86_400_000)
			ca, cb := cfg(), cfg()
			if tt.initiatorSmall {
				ca = small
			}
			if tt.respS {
				cb = small
			}
			r := syncOnce(t, p.a, p.b, ca, cb, nil)
			checkExact(t, "have", r.have, p.onlyA)
			checkExact(t, "need", r.need, p.onlyB)
			if !r.complete || r.rounds < tt.minRounds || r.rounds > tt.maxRounds {
				t.Fatalf("%v complete=%v; want %d..%d rounds", r, r.complete, tt.minRounds, tt.maxRounds)
			}
			t.Log(r)
		})
	}
}

// An interrupted sync is rerun from scratch; it picks up where the first
// stopped because what was fetched now matches.
func TestResume(t *testing.T) {
	p := makePair(t, 300, 5_000, 3_000, 3_000, 86_400_000)
	limited := Config{Community: testCommunity, FrameSizeLimit: MinFrameSizeLimit, MaxRounds: 3}
	r1 := syncOnce(t, p.a, p.b, limited, cfg(), nil)
	if r1.complete || r1.rounds != 3 {
		t.Fatalf("first run: %v complete=%v; want 3 rounds, incomplete", r1, r1.complete)
	}
	if len(r1.need) == 0 {
		t.Fatal("first run learned nothing")
	}
	// The initiator fetches what it learned it needs.
	a := p.a
	for _, c := range r1.need {
		a = mustInsert(t, a, find(t, p.onlyB, c))
	}
	r2 := syncOnce(t, a, p.b, cfg(), cfg(), nil)
	if !r2.complete {
		t.Fatal("second run incomplete")
	}
	checkExact(t, "need (both runs)", append(r1.need, r2.need...), p.onlyB)
	// The responder fetched nothing (sync is pull), so all of A's extras
	// are reported again.
	checkExact(t, "have (second run)", r2.have, p.onlyA)
}

func mustInsert(t *testing.T, v *Vector, it Item) *Vector {
	t.Helper()
	w, err := v.Insert(it)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func find(t *testing.T, items []Item, id []byte) Item {
	t.Helper()
	for _, it := range items {
		if string(it.ID) == string(id) {
			return it
		}
	}
	t.Fatalf("%x is not among the items", id)
	return Item{}
}

func TestNewSessionConfig(t *testing.T) {
	v := mustVector(t, nil)
	for _, c := range []Config{
		{},
		{Community: testCommunity[:10]},
		{Community: testCommunity, FrameSizeLimit: MinFrameSizeLimit - 1},
		{Community: testCommunity, FrameSizeLimit: wire.MaxFrameSize + 1},
		{Community: testCommunity, MaxRounds: -1},
	} {
		if _, err := NewSession(v, c); err == nil {
			t.Fatalf("NewSession accepted %+v", c)
		}
	}
	if _, err := NewSession(nil, cfg()); err == nil {
		t.Fatal("NewSession accepted no store")
	}
	s, err := NewSession(v, cfg())
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.FrameSizeLimit != wire.MaxFrameSize || s.cfg.MaxRounds != DefaultMaxRounds {
		t.Fatalf("defaults not applied: %+v", s.cfg)
	}
	if _, err := s.Initiate(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Initiate(); !errors.Is(err, ErrSessionOver) {
		t.Fatalf("second Initiate: %v", err)
	}
}
