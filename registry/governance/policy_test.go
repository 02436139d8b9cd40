package governance

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

func validVoteKeys(key string, v int64) error {
	if key != "vote_quorum" && key != "vote_threshold" {
		return fmt.Errorf("unknown policy key %q", key)
	}
	if v < 0 || v > 1000 {
		return errors.New("out of range")
	}
	return nil
}

// str is how a peer appears in a reason: its base58 text.
func str(id peer.ID) string { return id.String() }

func TestDerive(t *testing.T) {
	genesis := map[string]int64{"vote_quorum": 200, "vote_threshold": 500}
	founders := []peer.ID{"f2", "f1"}
	tests := []struct {
		name    string
		passed  []Passed
		check   func(t *testing.T, s PolicyState)
		skipped []string
	}{
		{"genesis", nil, func(t *testing.T, s PolicyState) {
			want := PolicyState{
				Values: genesis, SetBy: map[string]string{"vote_quorum": "", "vote_threshold": ""},
				Founders: []peer.ID{"f1", "f2"}, Banned: map[peer.ID]string{},
				Certified: map[string]string{}, Decertified: map[string]string{},
			}
			if !reflect.DeepEqual(s, want) {
				t.Errorf("%+v", s)
			}
		}, nil},
		{"order by End then ID", []Passed{
			{"p3", 30, Action{Type: ActionSetPolicy, Key: "vote_quorum", Value: 300}},
			{"p2", 20, Action{Type: ActionSetPolicy, Key: "vote_quorum", Value: 250}},
			{"b", 40, Action{Type: ActionSetPolicy, Key: "vote_threshold", Value: 700}},
			{"a", 40, Action{Type: ActionSetPolicy, Key: "vote_threshold", Value: 600}},
		}, func(t *testing.T, s PolicyState) {
			if s.Values["vote_quorum"] != 300 || s.SetBy["vote_quorum"] != "p3" {
				t.Errorf("quorum %d by %q", s.Values["vote_quorum"], s.SetBy["vote_quorum"])
			}
			if s.Values["vote_threshold"] != 700 || s.SetBy["vote_threshold"] != "b" {
				t.Errorf("threshold %d by %q", s.Values["vote_threshold"], s.SetBy["vote_threshold"])
			}
		}, nil},
		{"invalid keys are skipped", []Passed{
			{"p1", 10, Action{Type: ActionSetPolicy, Key: "vote_quorum", Value: 1001}},
			{"p2", 20, Action{Type: ActionSetPolicy, Key: "nonsense", Value: 1}},
			{"p3", 30, Action{Type: ActionSetPolicy, Value: 1}},
		}, func(t *testing.T, s PolicyState) {
			if s.Values["vote_quorum"] != 200 || len(s.Values) != 2 {
				t.Errorf("values %v", s.Values)
			}
		}, []string{"proposal p1: out of range", `proposal p2: unknown policy key "nonsense"`, "proposal p3: the action names no policy key"}},
		{"ban and unban", []Passed{
			{"p1", 10, Action{Type: ActionBan, Peer: "m"}},
			{"p2", 20, Action{Type: ActionBan, Peer: "m"}},
			{"p3", 30, Action{Type: ActionUnban, Peer: "m"}},
			{"p4", 40, Action{Type: ActionUnban, Peer: "m"}},
			{"p5", 50, Action{Type: ActionBan, Peer: "n"}},
			{"p6", 60, Action{Type: ActionBan}},
		}, func(t *testing.T, s PolicyState) {
			if !reflect.DeepEqual(s.Banned, map[peer.ID]string{"n": "p5"}) {
				t.Errorf("banned %v", s.Banned)
			}
		}, []string{"proposal p2: peer " + str("m") + " is banned already", "proposal p4: peer " + str("m") + " is not banned", "proposal p6: the action names no peer"}},
		{"founders, and never the last", []Passed{
			{"p1", 10, Action{Type: ActionAddFounder, Peer: "f0"}},
			{"p2", 20, Action{Type: ActionAddFounder, Peer: "f1"}},
			{"p3", 30, Action{Type: ActionRemoveFounder, Peer: "f1"}},
			{"p4", 40, Action{Type: ActionRemoveFounder, Peer: "f2"}},
			{"p5", 50, Action{Type: ActionRemoveFounder, Peer: "f0"}},
			{"p6", 60, Action{Type: ActionRemoveFounder, Peer: "zz"}},
		}, func(t *testing.T, s PolicyState) {
			if !reflect.DeepEqual(s.Founders, []peer.ID{"f0"}) {
				t.Errorf("founders %v", s.Founders)
			}
		}, []string{"proposal p2: peer " + str("f1") + " is a founder already", "proposal p5: peer " + str("f0") + " is the last founder", "proposal p6: peer " + str("zz") + " is not a founder"}},
		{"charter and certification", []Passed{
			{"p1", 10, Action{Type: ActionAdoptCharter, Target: "bafy-charter-1"}},
			{"p2", 20, Action{Type: ActionAdoptCharter, Target: "bafy-charter-2"}},
			{"p3", 30, Action{Type: ActionCertify, Subject: "agent-a"}},
			{"p4", 40, Action{Type: ActionCertify, Subject: "agent-b"}},
			{"p5", 50, Action{Type: ActionDecertify, Subject: "agent-a"}},
			{"p6", 60, Action{Type: ActionDecertify, Subject: "agent-b"}},
			{"p7", 70, Action{Type: ActionCertify, Subject: "agent-b"}},
			{"p8", 80, Action{Type: "dissolve"}},
		}, func(t *testing.T, s PolicyState) {
			if s.Charter != "bafy-charter-2" || s.CharterBy != "p2" {
				t.Errorf("charter %q by %q", s.Charter, s.CharterBy)
			}
			if !reflect.DeepEqual(s.Certified, map[string]string{"agent-b": "p7"}) || !reflect.DeepEqual(s.Decertified, map[string]string{"agent-a": "p5"}) {
				t.Errorf("certified %v decertified %v", s.Certified, s.Decertified)
			}
		}, []string{`proposal p8: unknown action type "dissolve"`}},
		{"a proposal applies once", []Passed{
			{"p1", 10, Action{Type: ActionBan, Peer: "m"}},
			{"p1", 10, Action{Type: ActionBan, Peer: "m"}},
		}, func(t *testing.T, s PolicyState) {
			if len(s.Banned) != 1 {
				t.Errorf("banned %v", s.Banned)
			}
		}, []string{"proposal p1: applied already"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, skipped := Derive(genesis, founders, tt.passed, validVoteKeys)
			tt.check(t, s)
			if !reflect.DeepEqual(skipped, tt.skipped) {
				t.Errorf("skipped %q, want %q", skipped, tt.skipped)
			}
			if !reflect.DeepEqual(founders, []peer.ID{"f2", "f1"}) || len(genesis) != 2 || genesis["vote_quorum"] != 200 {
				t.Error("Derive modified its arguments")
			}
		})
	}
}

func TestDeriveFounderLimit(t *testing.T) {
	var founders []peer.ID
	for i := range MaxFounders {
		founders = append(founders, peer.ID(fmt.Sprintf("f%02d", i)))
	}
	s, skipped := Derive(nil, founders, []Passed{{"p1", 1, Action{Type: ActionAddFounder, Peer: "new"}}}, nil)
	if len(s.Founders) != MaxFounders || len(skipped) != 1 {
		t.Errorf("%d founders, skipped %q", len(s.Founders), skipped)
	}
}

func TestDeriveOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	types := []string{ActionSetPolicy, ActionBan, ActionUnban, ActionAddFounder, ActionRemoveFounder, ActionAdoptCharter, ActionCertify, ActionDecertify, "?"}
	var passed []Passed
	for range 300 {
		passed = append(passed, Passed{
			Proposal: fmt.Sprintf("p%d", rng.IntN(250)), End: rng.Int64N(50),
			Action: Action{
				Type: types[rng.IntN(len(types))], Key: []string{"vote_quorum", "vote_threshold", "x"}[rng.IntN(3)], Value: rng.Int64N(1100),
				Peer: peer.ID(fmt.Sprintf("f%d", rng.IntN(4))), Target: fmt.Sprint(rng.IntN(3)), Subject: fmt.Sprint(rng.IntN(3)),
			},
		})
	}
	s1, k1 := Derive(nil, []peer.ID{"f0"}, passed, validVoteKeys)
	for range 20 {
		rng.Shuffle(len(passed), func(i, j int) { passed[i], passed[j] = passed[j], passed[i] })
		s2, k2 := Derive(nil, []peer.ID{"f0"}, passed, validVoteKeys)
		if !reflect.DeepEqual(s1, s2) || !reflect.DeepEqual(k1, k2) {
			t.Fatal("the order of the passed proposals changed the state")
		}
	}
}
