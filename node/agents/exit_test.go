package agents

import (
	"slices"
	"strings"
	"testing"
)

func TestResolveExit(t *testing.T) {
	peers := ExitSpec{Delegate: "peers", Peers: []string{"P1", "P2"}}
	perSkill := ExitSpec{Delegate: "community", Skills: map[string]string{"text.summarize": "never", "math.eval": "peers:P3"}}
	cases := []struct {
		name    string
		origin  string
		private bool
		spec    ExitSpec
		skill   string
		mode    string
		peers   []string
		rule    string
		allowP1 bool
	}{
		{"owner", "", true, ExitSpec{Delegate: "never"}, "x", ExitCommunity, nil, "owner", true},
		{"shared default", "a", false, ExitSpec{}, "x", ExitCommunity, nil, "no exit rule", true},
		{"private default", "a", true, ExitSpec{}, "x", ExitNever, nil, "private", false},
		{"private but allowed", "a", true, ExitSpec{Delegate: "community"}, "x", ExitCommunity, nil, "exit.delegate", true},
		{"shared but never", "a", false, ExitSpec{Delegate: "never"}, "x", ExitNever, nil, "exit.delegate = \"never\"", false},
		{"peers list", "a", false, peers, "x", ExitPeers, []string{"P1", "P2"}, "exit.delegate", true},
		{"per skill never", "a", false, perSkill, "text.summarize", ExitNever, nil, "exit.skills.\"text.summarize\"", false},
		{"per skill peers", "a", false, perSkill, "math.eval", ExitPeers, []string{"P3"}, "exit.skills.\"math.eval\"", false},
		{"per skill falls back", "a", false, perSkill, "text.stats", ExitCommunity, nil, "exit.delegate", true},
	}
	for _, c := range cases {
		e := ResolveExit(c.origin, c.private, c.spec, c.skill)
		if e.Mode != c.mode || !slices.Equal(e.Peers, c.peers) || !strings.Contains(e.Rule, c.rule) {
			t.Errorf("%s: %+v, want mode %s peers %v rule containing %q", c.name, e, c.mode, c.peers, c.rule)
		}
		if got := e.AllowsPeer("P1", false); got != c.allowP1 {
			t.Errorf("%s: AllowsPeer(P1) = %v", c.name, got)
		}
		if !e.AllowsPeer("anyone", true) {
			t.Errorf("%s: this node itself must always be allowed", c.name)
		}
	}
}

func TestExitSpecChecked(t *testing.T) {
	for _, bad := range []string{
		`exit = { delegate = "sometimes" }`,
		`exit = { delegate = "peers" }`,
		`exit = { delegate = "never", peers = ["P1"] }`,
		`exit = { skills = { "text.stats" = "peers" } }`,
		`exit = { skills = { "Bad Skill" = "never" } }`,
		`exit = { delegate = "never:P1" }`,
	} {
		data := "name = \"a\"\nbackend = \"builtin\"\n" + bad + "\n"
		if _, err := ParseSpec("a.toml", []byte(data)); err == nil || !strings.Contains(err.Error(), "exit") {
			t.Errorf("%s: %v", bad, err)
		}
	}
	good := "name = \"a\"\nbackend = \"builtin\"\n[exit]\ndelegate = \"peers\"\npeers = [\"P1\"]\n[exit.skills]\n\"text.stats\" = \"never\"\n"
	if _, err := ParseSpec("a.toml", []byte(good)); err != nil {
		t.Fatal(err)
	}
}
