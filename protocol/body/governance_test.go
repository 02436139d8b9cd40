package body

import (
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agora-p2p/agora/protocol/canon"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

const proposalStart = 1767225600000

// rsaPeer is a valid peer ID that does not inline an Ed25519 key.
const rsaPeer = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"

func testPeerID(t testing.TB) peer.ID {
	t.Helper()
	id, err := peer.Decode(testPeer)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func validProposal(t testing.TB) Proposal {
	return Proposal{
		Title:     "Raise the quorum",
		Body:      "# Why\n\nToo few people decide.\n\t- more votes",
		Choices:   []string{"yes", "no"},
		Method:    MethodSingle,
		Weighting: WeightMember,
		Quorum:    200,
		Threshold: 500,
		Start:     proposalStart,
		End:       proposalStart + 7*24*3600*1000,
		Action:    &Action{Type: ActionSetPolicy, Key: "vote.quorum", Value: 300},
	}
}

func validVote(t testing.TB) Vote {
	return Vote{Proposal: recordID(t, "proposal"), Choices: []uint64{0}, Reason: "more voices\nare better"}
}

func validTally(t testing.TB) Tally {
	return Tally{
		Proposal:    recordID(t, "proposal"),
		Status:      StatusPassed,
		Winner:      0,
		Counts:      []uint64{3000, 1000},
		Voters:      4,
		Weight:      4000,
		Eligible:    10000,
		Fingerprint: digest(t, "votes"),
		Late:        []cid.Cid{recordID(t, "late1"), recordID(t, "late2")},
	}
}

// actions returns one valid action of every type.
func actions(t testing.TB) []Action {
	return []Action{
		{Type: ActionSetPolicy, Key: "vote.quorum", Value: 300},
		{Type: ActionSetPolicy, Key: "delegate.min_trust"}, // value 0
		{Type: ActionSetPolicy, Key: "propose.min_trust", Value: 1000},
		{Type: ActionBan, Peer: testPeerID(t)},
		{Type: ActionUnban, Peer: testPeerID(t)},
		{Type: ActionAddFounder, Peer: testPeerID(t)},
		{Type: ActionRemoveFounder, Peer: testPeerID(t)},
		{Type: ActionAdoptCharter, Target: recordID(t, "charter")},
		{Type: ActionCertify, Subject: "skill:text.summarize"},
		{Type: ActionDecertify, Subject: "peer:" + testPeer},
		{Type: ActionCertify, Subject: "record:" + recordID(t, "r").String()},
	}
}

// checkBody asserts that err matches want for Validate and, through the
// wire, for decode, with the classification rules of the package.
func checkBody(t *testing.T, b Body, want error, decode func([]byte) error) {
	t.Helper()
	err := b.Validate(0)
	if !errors.Is(err, want) {
		t.Fatalf("Validate = %v, want %v", err, want)
	}
	if raw, merr := canon.Marshal(b); merr == nil {
		if derr := decode(raw); !errors.Is(derr, want) {
			t.Fatalf("decode = %v, want %v", derr, want)
		}
	}
	if want == ErrUnknownField && errors.Is(err, record.ErrMalformed) {
		t.Fatalf("an unknown value must not count as malformed: %v", err)
	}
	if want == ErrInvalid && !record.IsSenderFault(err) {
		t.Fatalf("an invalid body must be the sender's fault: %v", err)
	}
}

func TestProposalRoundTrip(t *testing.T) {
	variants := map[string]func(*Proposal){
		"no action": func(p *Proposal) { p.Action = nil; p.Body = "" },
		"approval":  func(p *Proposal) { p.Method, p.Choices = MethodApproval, []string{"a", "b", "c"} },
		"ranked":    func(p *Proposal) { p.Method, p.Weighting = MethodRanked, WeightTrust },
		"quadratic": func(p *Proposal) { p.Method, p.Quorum = MethodQuadratic, 0 },
	}
	for _, a := range actions(t) {
		variants["action "+a.String()] = func(p *Proposal) { p.Action = &a }
	}
	for name, change := range variants {
		t.Run(name, func(t *testing.T) {
			p := validProposal(t)
			change(&p)
			raw := mustMarshal(t, p)
			got, err := Decode(record.KindProposal, raw)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, p) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, p)
			}
			var viaCanon Proposal
			if err := canon.Unmarshal(raw, &viaCanon); err != nil || !reflect.DeepEqual(viaCanon, p) {
				t.Fatalf("canon.Unmarshal = %v, %#v", err, viaCanon)
			}
		})
	}
}

func TestProposalMinimal(t *testing.T) {
	p := validProposal(t)
	p.Body, p.Action, p.Quorum = "", nil, 0
	raw := mustMarshal(t, p)
	var m map[string]canon.RawMessage
	if err := canon.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	want := []string{"end", "start", "title", "method", "quorum", "choices", "threshold", "weighting"}
	if len(m) != len(want) {
		t.Fatalf("minimal proposal has keys %v, want %v", m, want)
	}
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Fatalf("minimal proposal lacks %q", k)
		}
	}
	// An action has only its type and the keys its type needs.
	p.Action = &Action{Type: ActionSetPolicy, Key: "vote.quorum"}
	var wire struct {
		Action map[string]canon.RawMessage `cbor:"action"`
	}
	if err := canon.Unmarshal(mustMarshal(t, p.toWire().Action), &wire.Action); err != nil {
		t.Fatal(err)
	}
	if len(wire.Action) != 2 {
		t.Fatalf("set-policy to 0 has keys %v, want type and key", wire.Action)
	}
}

func TestProposalInvalid(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	choices := func(n int) []string {
		c := make([]string, n)
		for i := range c {
			c[i] = "c" + strings.Repeat("x", i)
		}
		return c
	}
	rawCID, _ := cid.V1Builder{Codec: cid.Raw, MhType: mh.SHA2_256}.Sum([]byte("x"))
	rsa, _ := peer.Decode(rsaPeer)
	tests := []struct {
		name   string
		change func(*Proposal)
		want   error
	}{
		{"no title", func(p *Proposal) { p.Title = "" }, ErrInvalid},
		{"title too long", func(p *Proposal) { p.Title = long(MaxTitleLen + 1) }, ErrInvalid},
		{"title leading space", func(p *Proposal) { p.Title = " x" }, ErrInvalid},
		{"title newline", func(p *Proposal) { p.Title = "a\nb" }, ErrInvalid},
		{"title bidi", func(p *Proposal) { p.Title = "a\u202eb" }, ErrInvalid},
		{"body too long", func(p *Proposal) { p.Body = long(MaxProposalBodyBytes + 1) }, ErrInvalid},
		{"body multibyte too long", func(p *Proposal) { p.Body = strings.Repeat("é", MaxProposalBodyBytes/2+1) }, ErrInvalid},
		{"body escape", func(p *Proposal) { p.Body = "\x1b[2J" }, ErrInvalid},
		{"body invalid UTF-8", func(p *Proposal) { p.Body = "\xff" }, ErrInvalid},
		{"no choices", func(p *Proposal) { p.Choices = nil }, ErrInvalid},
		{"one choice", func(p *Proposal) { p.Choices = []string{"yes"} }, ErrInvalid},
		{"too many choices", func(p *Proposal) { p.Choices = choices(MaxChoices + 1) }, ErrInvalid},
		{"empty choice", func(p *Proposal) { p.Choices = []string{"yes", ""} }, ErrInvalid},
		{"choice too long", func(p *Proposal) { p.Choices = []string{"yes", long(MaxChoiceLen + 1)} }, ErrInvalid},
		{"choice trailing space", func(p *Proposal) { p.Choices = []string{"yes", "no "} }, ErrInvalid},
		{"choice tab", func(p *Proposal) { p.Choices = []string{"yes", "n\to"} }, ErrInvalid},
		{"duplicate choice", func(p *Proposal) { p.Choices = []string{"yes", "no", "yes"} }, ErrInvalid},
		{"no method", func(p *Proposal) { p.Method = "" }, ErrInvalid},
		{"unknown method", func(p *Proposal) { p.Method = "borda" }, ErrUnknownField},
		{"no weighting", func(p *Proposal) { p.Weighting = "" }, ErrInvalid},
		{"unknown weighting", func(p *Proposal) { p.Weighting = "stake" }, ErrUnknownField},
		{"quorum negative", func(p *Proposal) { p.Quorum = -1 }, ErrInvalid},
		{"quorum over", func(p *Proposal) { p.Quorum = 1001 }, ErrInvalid},
		{"threshold 0", func(p *Proposal) { p.Threshold = 0 }, ErrInvalid},
		{"threshold over", func(p *Proposal) { p.Threshold = 1001 }, ErrInvalid},
		{"start 0", func(p *Proposal) { p.Start = 0 }, ErrInvalid},
		{"start negative", func(p *Proposal) { p.Start, p.End = -3600_000, 0 }, ErrInvalid},
		{"end = start", func(p *Proposal) { p.End = p.Start }, ErrInvalid},
		{"end before start", func(p *Proposal) { p.End = p.Start - 1 }, ErrInvalid},
		{"end far before start", func(p *Proposal) { p.End = -1 << 63 }, ErrInvalid},
		{"period too short", func(p *Proposal) { p.End = p.Start + MinVotingPeriod.Milliseconds() - 1 }, ErrInvalid},
		{"period too long", func(p *Proposal) { p.End = p.Start + MaxVotingPeriod.Milliseconds() + 1 }, ErrInvalid},
		{"end max int", func(p *Proposal) { p.End = 1<<63 - 1 }, ErrInvalid},
		{"action without type", func(p *Proposal) { p.Action = &Action{Key: "vote.quorum", Value: 1} }, ErrInvalid},
		{"unknown action type", func(p *Proposal) { p.Action = &Action{Type: "dissolve"} }, ErrUnknownField},
		{"set-policy no key", func(p *Proposal) { p.Action = &Action{Type: ActionSetPolicy, Value: 3} }, ErrInvalid},
		{"set-policy unknown key", func(p *Proposal) { p.Action = &Action{Type: ActionSetPolicy, Key: "vote.weight", Value: 3} }, ErrUnknownField},
		{"set-policy wire key", func(p *Proposal) { p.Action = &Action{Type: ActionSetPolicy, Key: "vote_quorum", Value: 3} }, ErrInvalid},
		{"set-policy out of range", func(p *Proposal) { p.Action = &Action{Type: ActionSetPolicy, Key: "vote.quorum", Value: 1001} }, ErrInvalid},
		{"set-policy below range", func(p *Proposal) { p.Action = &Action{Type: ActionSetPolicy, Key: "vote.threshold"} }, ErrInvalid},
		{"set-policy with peer", func(p *Proposal) { p.Action.Peer = testPeerID(t) }, ErrInvalid},
		{"set-policy with subject", func(p *Proposal) { p.Action.Subject = "skill:x" }, ErrInvalid},
		{"ban no peer", func(p *Proposal) { p.Action = &Action{Type: ActionBan} }, ErrInvalid},
		{"ban not Ed25519", func(p *Proposal) { p.Action = &Action{Type: ActionBan, Peer: rsa} }, ErrInvalid},
		{"ban garbage peer", func(p *Proposal) { p.Action = &Action{Type: ActionBan, Peer: "x"} }, ErrInvalid},
		{"ban with value", func(p *Proposal) { p.Action = &Action{Type: ActionBan, Peer: testPeerID(t), Value: 1} }, ErrInvalid},
		{"ban with key", func(p *Proposal) { p.Action = &Action{Type: ActionBan, Peer: testPeerID(t), Key: "vote.quorum"} }, ErrInvalid},
		{"unban with target", func(p *Proposal) {
			p.Action = &Action{Type: ActionUnban, Peer: testPeerID(t), Target: recordID(t, "x")}
		}, ErrInvalid},
		{"add-founder no peer", func(p *Proposal) { p.Action = &Action{Type: ActionAddFounder} }, ErrInvalid},
		{"remove-founder with subject", func(p *Proposal) {
			p.Action = &Action{Type: ActionRemoveFounder, Peer: testPeerID(t), Subject: "peer:" + testPeer}
		}, ErrInvalid},
		{"adopt-charter no target", func(p *Proposal) { p.Action = &Action{Type: ActionAdoptCharter} }, ErrInvalid},
		{"adopt-charter raw CID", func(p *Proposal) { p.Action = &Action{Type: ActionAdoptCharter, Target: rawCID} }, ErrInvalid},
		{"adopt-charter with peer", func(p *Proposal) {
			p.Action = &Action{Type: ActionAdoptCharter, Target: recordID(t, "c"), Peer: testPeerID(t)}
		}, ErrInvalid},
		{"certify no subject", func(p *Proposal) { p.Action = &Action{Type: ActionCertify} }, ErrInvalid},
		{"certify subject without type", func(p *Proposal) { p.Action = &Action{Type: ActionCertify, Subject: "text.summarize"} }, ErrInvalid},
		{"certify empty type", func(p *Proposal) { p.Action = &Action{Type: ActionCertify, Subject: ":x"} }, ErrInvalid},
		{"certify empty ID", func(p *Proposal) { p.Action = &Action{Type: ActionCertify, Subject: "skill:"} }, ErrInvalid},
		{"certify unknown subject type", func(p *Proposal) { p.Action = &Action{Type: ActionCertify, Subject: "dataset:x"} }, ErrUnknownField},
		{"certify bad peer", func(p *Proposal) { p.Action = &Action{Type: ActionCertify, Subject: "peer:alice"} }, ErrInvalid},
		{"decertify bad record", func(p *Proposal) { p.Action = &Action{Type: ActionDecertify, Subject: "record:" + rawCID.String()} }, ErrInvalid},
		{"decertify with key", func(p *Proposal) {
			p.Action = &Action{Type: ActionDecertify, Subject: "skill:x", Key: "vote.quorum"}
		}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validProposal(t)
			tt.change(&p)
			checkBody(t, p, tt.want, func(raw []byte) error { _, err := DecodeProposal(raw); return err })
		})
	}
}

func TestProposalLimitsInclusive(t *testing.T) {
	p := validProposal(t)
	p.Title = strings.Repeat("ü", MaxTitleLen)
	p.Body = strings.Repeat("b", MaxProposalBodyBytes)
	p.Choices = make([]string, MaxChoices)
	for i := range p.Choices {
		p.Choices[i] = strings.Repeat("ü", MaxChoiceLen-1) + string(rune('A'+i))
	}
	p.Quorum, p.Threshold = 1000, 1000
	for _, period := range []time.Duration{MinVotingPeriod, MaxVotingPeriod} {
		p.End = p.Start + period.Milliseconds()
		if err := p.Validate(p.Start); err != nil {
			t.Fatalf("a proposal at every limit must be valid: %v", err)
		}
		if _, err := DecodeProposal(mustMarshal(t, p)); err != nil {
			t.Fatalf("DecodeProposal at limits: %v", err)
		}
	}
	p.Quorum, p.Threshold = 0, 1
	if err := p.Validate(0); err != nil {
		t.Fatalf("quorum 0 and threshold 1: %v", err)
	}
}

func TestProposalStartAfterCreation(t *testing.T) {
	p := validProposal(t)
	skew := record.MaxClockSkew.Milliseconds()
	for _, tc := range []struct {
		created int64
		ok      bool
	}{
		{0, true},
		{p.Start - 3600_000, true},
		{p.Start, true},
		{p.Start + skew, true},
		{p.Start + skew + 1, false},
		{p.End, false},
	} {
		err := p.Validate(tc.created)
		if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("created %d: %v, want ok=%v", tc.created, err, tc.ok)
		}
	}
	// DecodeRecord applies the rule with the record's creation time.
	key := newKey(t)
	for _, tc := range []struct {
		created int64
		ok      bool
	}{{p.Start, true}, {p.Start + skew + 1, false}} {
		rec, err := record.Sign(key, record.KindProposal, recordID(t, "community"), p, time.UnixMilli(tc.created))
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeRecord(rec)
		if tc.ok != (err == nil) {
			t.Fatalf("DecodeRecord created %d: %v, want ok=%v", tc.created, err, tc.ok)
		}
		if err == nil && !reflect.DeepEqual(got, p) {
			t.Fatalf("DecodeRecord = %#v", got)
		}
	}
}

func TestProposalWireErrors(t *testing.T) {
	good := validProposal(t).toWire()
	asMap := func(change func(m, action map[string]any)) []byte {
		action := map[string]any{"type": good.Action.Type, "key": good.Action.Key, "value": good.Action.Value}
		m := map[string]any{
			"title": good.Title, "body": good.Body, "choices": good.Choices, "method": good.Method,
			"weighting": good.Weighting, "quorum": good.Quorum, "threshold": good.Threshold,
			"start": good.Start, "end": good.End, "action": action,
		}
		change(m, action)
		return mustMarshal(t, m)
	}
	if _, err := DecodeProposal(asMap(func(m, a map[string]any) {})); err != nil {
		t.Fatalf("the map form of a valid proposal: %v", err)
	}
	target := recordID(t, "charter")
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"not a map", mustMarshal(t, []int{1}), record.ErrMalformed},
		{"unknown key", asMap(func(m, a map[string]any) { m["deposit"] = 5 }), ErrUnknownField},
		{"unknown action key", asMap(func(m, a map[string]any) { a["memo"] = "x" }), ErrUnknownField},
		{"explicit empty body", asMap(func(m, a map[string]any) { m["body"] = "" }), record.ErrNotCanonical},
		{"explicit null action", asMap(func(m, a map[string]any) { m["action"] = nil }), record.ErrNotCanonical},
		{"empty action", asMap(func(m, a map[string]any) { m["action"] = map[string]any{} }), ErrInvalid},
		{"explicit zero value", asMap(func(m, a map[string]any) { a["key"] = "vote.grace_s"; a["value"] = 0 }), record.ErrNotCanonical},
		{"explicit empty peer", asMap(func(m, a map[string]any) { a["peer"] = []byte{} }), record.ErrNotCanonical},
		{"missing quorum", asMap(func(m, a map[string]any) { delete(m, "quorum") }), record.ErrNotCanonical},
		{"missing title", asMap(func(m, a map[string]any) { delete(m, "title") }), ErrInvalid},
		{"missing start", asMap(func(m, a map[string]any) { delete(m, "start") }), ErrInvalid},
		{"start as text", asMap(func(m, a map[string]any) { m["start"] = "tomorrow" }), record.ErrMalformed},
		{"choices not text", asMap(func(m, a map[string]any) { m["choices"] = []int{1, 2} }), record.ErrMalformed},
		{"value as text", asMap(func(m, a map[string]any) { a["value"] = "300" }), record.ErrMalformed},
		{"target not a CID", asMap(func(m, a map[string]any) {
			m["action"] = map[string]any{"type": ActionAdoptCharter, "target": []byte{1, 2, 3}}
		}), ErrInvalid},
		{"target with trailing bytes", asMap(func(m, a map[string]any) {
			m["action"] = map[string]any{"type": ActionAdoptCharter, "target": append(target.Bytes(), 0)}
		}), ErrInvalid},
		{"target as text", asMap(func(m, a map[string]any) {
			m["action"] = map[string]any{"type": ActionAdoptCharter, "target": target.String()}
		}), record.ErrMalformed},
		{"peer as text", asMap(func(m, a map[string]any) {
			m["action"] = map[string]any{"type": ActionBan, "peer": testPeer}
		}), record.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeProposal(tt.raw); !errors.Is(err, tt.want) {
				t.Fatalf("DecodeProposal = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseAction(t *testing.T) {
	charter := recordID(t, "charter")
	for _, s := range []string{
		"set-policy vote.quorum=300",
		"set-policy certify.min_attestations=1",
		"set-policy vote.grace_s=0",
		"set-policy vote.member_floor=1000",
		"ban " + testPeer,
		"unban " + testPeer,
		"add-founder " + testPeer,
		"remove-founder " + testPeer,
		"adopt-charter " + charter.String(),
		"certify skill:text.summarize",
		"decertify peer:" + testPeer,
		"certify agent:" + testPeer + "/summarizer",
	} {
		a, err := ParseAction(s)
		if err != nil {
			t.Errorf("ParseAction(%q): %v", s, err)
			continue
		}
		if got := a.String(); got != s {
			t.Errorf("ParseAction(%q).String() = %q", s, got)
		}
		if err := a.Validate(); err != nil {
			t.Errorf("ParseAction(%q) is invalid: %v", s, err)
		}
	}
	// Every valid action prints in a form that parses back to it.
	for _, a := range actions(t) {
		got, err := ParseAction(a.String())
		if err != nil || !reflect.DeepEqual(*got, a) {
			t.Errorf("ParseAction(%q) = %+v, %v; want %+v", a.String(), got, err, a)
		}
	}
	// Wire keys and extra spaces are accepted; the key is stored dotted.
	a, err := ParseAction("  set-policy   vote_quorum=250 ")
	if err != nil || a.Key != "vote.quorum" || a.Value != 250 {
		t.Fatalf("wire key: %+v, %v", a, err)
	}

	for _, tc := range []struct{ in, says string }{
		{"", "set-policy KEY=VALUE"},
		{"   ", "set-policy KEY=VALUE"},
		{"dissolve now", "unknown action"},
		{"Ban " + testPeer, "unknown action"},
		{"ban", `"ban PEER"`},
		{"ban " + testPeer + " " + testPeer, `"ban PEER"`},
		{"set-policy vote.quorum", "KEY=VALUE"},
		{"set-policy vote.quorum 300", "KEY=VALUE"},
		{"set-policy vote.weight=3", "vote.threshold"},
		{"set-policy vote.quorum=abc", "whole number"},
		{"set-policy vote.quorum=3.5", "whole number"},
		{"set-policy vote.quorum=1001", "between 0 and 1000"},
		{"set-policy vote.threshold=0", "between 1 and 1000"},
		{"ban alice", "not a peer ID"},
		{"ban " + rsaPeer, "Ed25519"},
		{"adopt-charter nope", "not a record ID"},
		{"adopt-charter bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "not a record ID"},
		{"certify text.summarize", "TYPE:ID"},
		{"certify dataset:x", "dataset"},
		{"decertify peer:alice", "not a peer ID"},
	} {
		a, err := ParseAction(tc.in)
		if err == nil {
			t.Errorf("ParseAction(%q) = %+v, want an error", tc.in, a)
			continue
		}
		if a != nil {
			t.Errorf("ParseAction(%q) returned an action and an error", tc.in)
		}
		if msg := err.Error(); !strings.Contains(msg, tc.says) || strings.Contains(msg, "compatible Agora node") {
			t.Errorf("ParseAction(%q) = %q, want a message about %q", tc.in, msg, tc.says)
		}
	}
}

func TestVoteRoundTrip(t *testing.T) {
	variants := map[string]Vote{
		"single":    validVote(t),
		"approval":  {Proposal: recordID(t, "p"), Choices: []uint64{2, 0, 31}},
		"quadratic": {Proposal: recordID(t, "p"), Choices: []uint64{1, 0}, Credits: []uint64{999, 1}, Reason: "r"},
	}
	for name, v := range variants {
		t.Run(name, func(t *testing.T) {
			raw := mustMarshal(t, v)
			got, err := Decode(record.KindVote, raw)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, v) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, v)
			}
			var viaCanon Vote
			if err := canon.Unmarshal(raw, &viaCanon); err != nil || !reflect.DeepEqual(viaCanon, v) {
				t.Fatalf("canon.Unmarshal = %v, %#v", err, viaCanon)
			}
		})
	}
}

// TestVoteGolden pins the vote's wire form.
func TestVoteGolden(t *testing.T) {
	v := Vote{Proposal: recordID(t, "proposal"), Choices: []uint64{1}, Reason: "ok"}
	want := "a3" +
		"66726561736f6e" + "626f6b" + // reason: "ok"
		"6763686f69636573" + "8101" + // choices: [1]
		"6870726f706f73616c" + "5824" + hex.EncodeToString(v.Proposal.Bytes()) // proposal
	if got := hex.EncodeToString(mustMarshal(t, v)); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
}

func TestVoteInvalid(t *testing.T) {
	rawCID, _ := cid.V1Builder{Codec: cid.Raw, MhType: mh.SHA2_256}.Sum([]byte("x"))
	many := make([]uint64, MaxChoices+1)
	for i := range many {
		many[i] = uint64(i)
	}
	tests := []struct {
		name   string
		change func(*Vote)
		want   error
	}{
		{"no proposal", func(v *Vote) { v.Proposal = cid.Undef }, ErrInvalid},
		{"proposal not a record ID", func(v *Vote) { v.Proposal = rawCID }, ErrInvalid},
		{"no choices", func(v *Vote) { v.Choices = nil }, ErrInvalid},
		{"too many choices", func(v *Vote) { v.Choices = many }, ErrInvalid},
		{"index past any proposal", func(v *Vote) { v.Choices = []uint64{MaxChoices} }, ErrInvalid},
		{"huge index", func(v *Vote) { v.Choices = []uint64{1<<64 - 1} }, ErrInvalid},
		{"duplicate choice", func(v *Vote) { v.Choices = []uint64{1, 0, 1} }, ErrInvalid},
		{"fewer credits", func(v *Vote) { v.Choices, v.Credits = []uint64{0, 1}, []uint64{5} }, ErrInvalid},
		{"more credits", func(v *Vote) { v.Credits = []uint64{5, 5} }, ErrInvalid},
		{"zero credit", func(v *Vote) { v.Choices, v.Credits = []uint64{0, 1}, []uint64{5, 0} }, ErrInvalid},
		{"credit over budget", func(v *Vote) { v.Credits = []uint64{MaxCredits + 1} }, ErrInvalid},
		{"huge credit", func(v *Vote) { v.Choices, v.Credits = []uint64{0, 1}, []uint64{1<<64 - 1, 2} }, ErrInvalid},
		{"credits sum over budget", func(v *Vote) { v.Choices, v.Credits = []uint64{0, 1}, []uint64{500, 501} }, ErrInvalid},
		{"reason too long", func(v *Vote) { v.Reason = strings.Repeat("r", MaxVoteReasonBytes+1) }, ErrInvalid},
		{"reason escape", func(v *Vote) { v.Reason = "\x1b]0;owned\x07" }, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := validVote(t)
			tt.change(&v)
			checkBody(t, v, tt.want, func(raw []byte) error { _, err := DecodeVote(raw); return err })
		})
	}
	// Limits are inclusive.
	v := Vote{Proposal: recordID(t, "p"), Choices: many[:MaxChoices], Credits: make([]uint64, MaxChoices), Reason: strings.Repeat("r", MaxVoteReasonBytes)}
	for i := range v.Credits {
		v.Credits[i] = 1
	}
	v.Credits[0] = MaxCredits - (MaxChoices - 1)
	if _, err := DecodeVote(mustMarshal(t, v)); err != nil {
		t.Fatalf("a vote at every limit: %v", err)
	}
}

func TestVoteWireErrors(t *testing.T) {
	p := recordID(t, "proposal")
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"empty", mustMarshal(t, map[string]any{}), ErrInvalid},
		{"unknown key", mustMarshal(t, map[string]any{"proposal": p.Bytes(), "choices": []int{0}, "weight": 3}), ErrUnknownField},
		{"explicit empty credits", mustMarshal(t, map[string]any{"proposal": p.Bytes(), "choices": []int{0}, "credits": []int{}}), record.ErrNotCanonical},
		{"explicit empty reason", mustMarshal(t, map[string]any{"proposal": p.Bytes(), "choices": []int{0}, "reason": ""}), record.ErrNotCanonical},
		{"negative choice", mustMarshal(t, map[string]any{"proposal": p.Bytes(), "choices": []int{-1}}), record.ErrMalformed},
		{"choice as text", mustMarshal(t, map[string]any{"proposal": p.Bytes(), "choices": []string{"yes"}}), record.ErrMalformed},
		{"proposal as text", mustMarshal(t, map[string]any{"proposal": p.String(), "choices": []int{0}}), record.ErrMalformed},
		{"proposal with trailing bytes", mustMarshal(t, map[string]any{"proposal": append(p.Bytes(), 1), "choices": []int{0}}), ErrInvalid},
		{"proposal not a CID", mustMarshal(t, map[string]any{"proposal": []byte{0x01}, "choices": []int{0}}), ErrInvalid},
		{"no choices key", mustMarshal(t, map[string]any{"proposal": p.Bytes()}), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeVote(tt.raw); !errors.Is(err, tt.want) {
				t.Fatalf("DecodeVote = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVoteCheckAgainst(t *testing.T) {
	proposal := func(method string, n int) Proposal {
		p := validProposal(t)
		p.Method, p.Action = method, nil
		p.Choices = []string{"a", "b", "c", "d"}[:n]
		return p
	}
	vote := func(choices []uint64, credits []uint64) Vote {
		return Vote{Proposal: recordID(t, "p"), Choices: choices, Credits: credits}
	}
	tests := []struct {
		name string
		p    Proposal
		v    Vote
		want error // nil: accepted
	}{
		{"single", proposal(MethodSingle, 2), vote([]uint64{1}, nil), nil},
		{"single two choices", proposal(MethodSingle, 3), vote([]uint64{0, 1}, nil), ErrInvalid},
		{"single index out of range", proposal(MethodSingle, 2), vote([]uint64{2}, nil), ErrInvalid},
		{"single with credits", proposal(MethodSingle, 2), vote([]uint64{0}, []uint64{10}), ErrInvalid},
		{"approval one", proposal(MethodApproval, 3), vote([]uint64{2}, nil), nil},
		{"approval all", proposal(MethodApproval, 3), vote([]uint64{2, 0, 1}, nil), nil},
		{"approval out of range", proposal(MethodApproval, 3), vote([]uint64{0, 3}, nil), ErrInvalid},
		{"approval with credits", proposal(MethodApproval, 3), vote([]uint64{0, 1}, []uint64{1, 1}), ErrInvalid},
		{"ranked full", proposal(MethodRanked, 4), vote([]uint64{3, 1, 0, 2}, nil), nil},
		{"ranked partial", proposal(MethodRanked, 4), vote([]uint64{2}, nil), nil},
		{"ranked out of range", proposal(MethodRanked, 2), vote([]uint64{1, 2}, nil), ErrInvalid},
		{"ranked with credits", proposal(MethodRanked, 2), vote([]uint64{0}, []uint64{1}), ErrInvalid},
		{"quadratic", proposal(MethodQuadratic, 3), vote([]uint64{0, 2}, []uint64{600, 400}), nil},
		{"quadratic one", proposal(MethodQuadratic, 3), vote([]uint64{1}, []uint64{1}), nil},
		{"quadratic without credits", proposal(MethodQuadratic, 3), vote([]uint64{0}, nil), ErrInvalid},
		{"quadratic out of range", proposal(MethodQuadratic, 2), vote([]uint64{5}, []uint64{1}), ErrInvalid},
		{"unknown method", proposal("borda", 2), vote([]uint64{0}, nil), ErrUnknownField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.v.Validate(0); err != nil {
				t.Fatalf("the vote is invalid on its own: %v", err)
			}
			err := tt.v.CheckAgainst(tt.p)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("CheckAgainst = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestTallyRoundTrip(t *testing.T) {
	noLate := validTally(t)
	noLate.Late = nil
	noQuorum := validTally(t)
	noQuorum.Status, noQuorum.Winner, noQuorum.Counts, noQuorum.Voters, noQuorum.Weight = StatusNoQuorum, -1, []uint64{0, 0, 0}, 0, 0
	rejected := validTally(t)
	rejected.Status, rejected.Winner = StatusRejected, -1
	late := validTally(t)
	late.Late = make([]cid.Cid, MaxLate)
	for i := range late.Late {
		late.Late[i] = recordID(t, "late"+string(rune(i)))
	}
	for name, tl := range map[string]Tally{"passed": validTally(t), "no late": noLate, "no quorum": noQuorum, "rejected": rejected, "max late": late} {
		t.Run(name, func(t *testing.T) {
			raw := mustMarshal(t, tl)
			got, err := Decode(record.KindTally, raw)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tl) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, tl)
			}
			var viaCanon Tally
			if err := canon.Unmarshal(raw, &viaCanon); err != nil || !reflect.DeepEqual(viaCanon, tl) {
				t.Fatalf("canon.Unmarshal = %v, %#v", err, viaCanon)
			}
		})
	}
}

func TestTallyInvalid(t *testing.T) {
	rawCID, _ := cid.V1Builder{Codec: cid.Raw, MhType: mh.SHA2_256}.Sum([]byte("x"))
	sha512, _ := mh.Sum([]byte("x"), mh.SHA2_512, -1)
	identity, _ := mh.Sum(make([]byte, 32), mh.IDENTITY, -1)
	tooMany := make([]cid.Cid, MaxLate+1)
	for i := range tooMany {
		tooMany[i] = recordID(t, "late"+string(rune(i)))
	}
	tests := []struct {
		name   string
		change func(*Tally)
		want   error
	}{
		{"no proposal", func(tl *Tally) { tl.Proposal = cid.Undef }, ErrInvalid},
		{"proposal not a record ID", func(tl *Tally) { tl.Proposal = rawCID }, ErrInvalid},
		{"no status", func(tl *Tally) { tl.Status = "" }, ErrInvalid},
		{"unknown status", func(tl *Tally) { tl.Status = "vetoed" }, ErrUnknownField},
		{"no counts", func(tl *Tally) { tl.Counts = nil }, ErrInvalid},
		{"one count", func(tl *Tally) { tl.Counts = []uint64{1} }, ErrInvalid},
		{"too many counts", func(tl *Tally) { tl.Counts = make([]uint64, MaxChoices+1) }, ErrInvalid},
		{"winner below -1", func(tl *Tally) { tl.Winner = -2 }, ErrInvalid},
		{"winner past counts", func(tl *Tally) { tl.Winner = 2 }, ErrInvalid},
		{"passed without winner", func(tl *Tally) { tl.Winner = -1 }, ErrInvalid},
		{"no quorum with winner", func(tl *Tally) { tl.Status = StatusNoQuorum }, ErrInvalid},
		{"rejected with winner", func(tl *Tally) { tl.Status = StatusRejected }, ErrInvalid},
		{"no fingerprint", func(tl *Tally) { tl.Fingerprint = nil }, ErrInvalid},
		{"fingerprint not a multihash", func(tl *Tally) { tl.Fingerprint = []byte{1, 2, 3} }, ErrInvalid},
		{"fingerprint sha2-512", func(tl *Tally) { tl.Fingerprint = sha512 }, ErrInvalid},
		{"fingerprint identity", func(tl *Tally) { tl.Fingerprint = identity }, ErrInvalid},
		{"fingerprint trailing byte", func(tl *Tally) { tl.Fingerprint = append(digest(t, "v"), 0) }, ErrInvalid},
		{"too many late", func(tl *Tally) { tl.Late = tooMany }, ErrInvalid},
		{"late not a record ID", func(tl *Tally) { tl.Late = []cid.Cid{rawCID} }, ErrInvalid},
		{"late twice", func(tl *Tally) { tl.Late = []cid.Cid{recordID(t, "a"), recordID(t, "b"), recordID(t, "a")} }, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := validTally(t)
			tt.change(&tl)
			checkBody(t, tl, tt.want, func(raw []byte) error { _, err := DecodeTally(raw); return err })
		})
	}
	for _, ok := range []func(*Tally){
		func(tl *Tally) { tl.Status, tl.Winner = StatusRejected, -1 },
		func(tl *Tally) { tl.Status, tl.Winner, tl.Voters, tl.Weight = StatusNoQuorum, -1, 0, 0 },
		func(tl *Tally) { tl.Winner = 1 },
		func(tl *Tally) { tl.Counts = make([]uint64, MaxChoices); tl.Winner = MaxChoices - 1 },
	} {
		tl := validTally(t)
		ok(&tl)
		if _, err := DecodeTally(mustMarshal(t, tl)); err != nil {
			t.Errorf("%+v: %v", tl, err)
		}
	}
}

func TestTallyWireErrors(t *testing.T) {
	good := validTally(t).toWire()
	asMap := func(change func(m map[string]any)) []byte {
		m := map[string]any{
			"proposal": good.Proposal, "status": good.Status, "winner": good.Winner, "counts": good.Counts,
			"voters": good.Voters, "weight": good.Weight, "eligible": good.Eligible, "fingerprint": good.Fingerprint,
		}
		change(m)
		return mustMarshal(t, m)
	}
	if _, err := DecodeTally(asMap(func(map[string]any) {})); err != nil {
		t.Fatalf("the map form of a valid tally: %v", err)
	}
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"unknown key", asMap(func(m map[string]any) { m["rounds"] = 3 }), ErrUnknownField},
		{"explicit empty late", asMap(func(m map[string]any) { m["late"] = [][]byte{} }), record.ErrNotCanonical},
		{"missing voters", asMap(func(m map[string]any) { delete(m, "voters") }), record.ErrNotCanonical},
		{"missing winner", asMap(func(m map[string]any) { delete(m, "winner") }), record.ErrNotCanonical},
		{"empty late entry", asMap(func(m map[string]any) { m["late"] = [][]byte{{}} }), ErrInvalid},
		{"late entry not a CID", asMap(func(m map[string]any) { m["late"] = [][]byte{{0x01, 0x02}} }), ErrInvalid},
		{"late as text", asMap(func(m map[string]any) { m["late"] = []string{"bafy"} }), record.ErrMalformed},
		{"winner too large", asMap(func(m map[string]any) { m["winner"] = uint64(1 << 63) }), record.ErrMalformed},
		{"negative count", asMap(func(m map[string]any) { m["counts"] = []int{1, -1} }), record.ErrMalformed},
		{"negative voters", asMap(func(m map[string]any) { m["voters"] = -1 }), record.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeTally(tt.raw); !errors.Is(err, tt.want) {
				t.Fatalf("DecodeTally = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestProposalSubject(t *testing.T) {
	p := recordID(t, "proposal")
	if got, want := ProposalSubject(p), "proposal:"+p.String(); got != want {
		t.Fatalf("ProposalSubject = %q, want %q", got, want)
	}
}
