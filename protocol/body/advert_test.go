package body

import (
	"errors"
	"strings"
	"testing"

	"github.com/agora-p2p/agora/protocol/canon"
	"github.com/agora-p2p/agora/protocol/record"
)

func validAdvert() Advert {
	return Advert{
		Seq: 3, Expires: 2_000_000, Load: 250,
		Addrs: []string{"/ip4/127.0.0.1/tcp/4242"},
		Agents: []AdvertAgent{{
			Name: "builtin", Description: "Deterministic skills", Version: "1",
			Skills: []AdvertSkill{{
				ID: "text.stats", Description: "Counts words", Tags: []string{"text"},
				Input: []byte(`{"type":"object"}`), Output: []byte(`{"type":"object"}`),
			}},
		}},
	}
}

func TestAdvertRoundTrip(t *testing.T) {
	a := validAdvert()
	raw, err := canon.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Decode(record.KindAdvert, raw)
	if err != nil {
		t.Fatal(err)
	}
	got := b.(Advert)
	if got.Seq != 3 || got.Agents[0].Skills[0].ID != "text.stats" || string(got.Agents[0].Skills[0].Input) != `{"type":"object"}` {
		t.Fatalf("decoded %+v", got)
	}
	// An advert with no agents is valid: a node that shares nothing.
	empty := Advert{Seq: 1, Expires: 10}
	raw, _ = canon.Marshal(empty)
	if _, err := DecodeAdvert(raw); err != nil {
		t.Fatalf("empty advert: %v", err)
	}
}

func TestAdvertInvalid(t *testing.T) {
	for name, mutate := range map[string]func(*Advert){
		"seq 0":           func(a *Advert) { a.Seq = 0 },
		"no expiry":       func(a *Advert) { a.Expires = 0 },
		"load":            func(a *Advert) { a.Load = MaxLoad + 1 },
		"bad addr":        func(a *Advert) { a.Addrs = []string{"nope"} },
		"bad agent":       func(a *Advert) { a.Agents[0].Name = "Bad Name" },
		"twice":           func(a *Advert) { a.Agents = append(a.Agents, a.Agents[0]) },
		"bad skill":       func(a *Advert) { a.Agents[0].Skills[0].ID = "" },
		"schema":          func(a *Advert) { a.Agents[0].Skills[0].Input = []byte("{") },
		"no schema":       func(a *Advert) { a.Agents[0].Skills[0].Output = nil },
		"tag space":       func(a *Advert) { a.Agents[0].Skills[0].Tags = []string{"a b"} },
		"control in desc": func(a *Advert) { a.Agents[0].Description = "a\x1b[2J" },
		"huge schema": func(a *Advert) {
			a.Agents[0].Skills[0].Input = []byte(`"` + strings.Repeat("x", MaxAdvertSchemaBytes) + `"`)
		},
	} {
		a := validAdvert()
		mutate(&a)
		raw, err := canon.Marshal(a)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := DecodeAdvert(raw); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	// Lifetime relative to the record's creation.
	a := validAdvert()
	a.Expires = 1000 + MaxAdvertLifetime + 1
	if err := a.Validate(1000); !errors.Is(err, ErrInvalid) {
		t.Fatalf("too long a lifetime: %v", err)
	}
	if err := a.Validate(a.Expires); !errors.Is(err, ErrInvalid) {
		t.Fatalf("expired at creation: %v", err)
	}
}
