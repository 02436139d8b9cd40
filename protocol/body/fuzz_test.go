package body

import (
	"bytes"
	"errors"
	"testing"

	"github.com/agora-p2p/agora/protocol/canon"
	"github.com/agora-p2p/agora/protocol/record"
)

// FuzzDecode checks that no input panics, that every error is classified,
// and that whatever decodes is valid and re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	a := validAttestation(f)
	f.Add(uint8(3), mustMarshal(f, a))
	a.Subject = Subject{Type: SubjectPeer, ID: testPeer}
	a.Claims = nil
	f.Add(uint8(3), mustMarshal(f, a))
	f.Add(uint8(4), mustMarshal(f, Revocation{Target: recordID(f, "t"), Reason: "r"}))
	f.Add(uint8(4), mustMarshal(f, map[string]any{"target": []byte{1}}))
	f.Add(uint8(2), []byte{0xa0})
	f.Add(uint8(1), mustMarshal(f, validAdvert()))
	f.Add(uint8(3), []byte{0xa1, 0x61, 'x', 0x01})
	kinds := append(record.Kinds(), "bogus")
	for i, k := range kinds {
		if k == record.KindFeedback {
			exec, req := newKey(f), newKey(f)
			rc := signedReceipt(f, exec, peerOf(f, req), recordID(f, "c"))
			f.Add(uint8(i), mustMarshal(f, Feedback{Receipt: rc, Score: 900, Comment: "ok"}))
			f.Add(uint8(i), mustMarshal(f, feedbackWire{Score: 2000, Receipt: rc.Raw()}))
		}
		switch k {
		case record.KindProposal:
			for _, a := range actions(f) {
				p := validProposal(f)
				p.Action = &a
				f.Add(uint8(i), mustMarshal(f, p))
			}
			p := validProposal(f)
			p.Action, p.Body, p.Method, p.Choices = nil, "", MethodRanked, []string{"a", "b", "c"}
			f.Add(uint8(i), mustMarshal(f, p))
		case record.KindVote:
			f.Add(uint8(i), mustMarshal(f, validVote(f)))
			f.Add(uint8(i), mustMarshal(f, Vote{Proposal: recordID(f, "p"), Choices: []uint64{2, 0}, Credits: []uint64{700, 300}}))
			f.Add(uint8(i), mustMarshal(f, map[string]any{"proposal": recordID(f, "p").Bytes(), "choices": []int{0}, "credits": []int{}}))
		case record.KindTally:
			f.Add(uint8(i), mustMarshal(f, validTally(f)))
			tl := validTally(f)
			tl.Status, tl.Winner, tl.Late = StatusNoQuorum, -1, nil
			f.Add(uint8(i), mustMarshal(f, tl))
		}
	}
	f.Fuzz(func(t *testing.T, k uint8, raw []byte) {
		kind := kinds[int(k)%len(kinds)]
		b, err := Decode(kind, raw)
		if err != nil {
			if b != nil {
				t.Fatalf("a body and an error: %v", err)
			}
			classified := false
			for _, s := range []error{ErrInvalid, ErrUnknownField, ErrNotSupported, record.ErrMalformed, record.ErrNotCanonical, record.ErrUnknownKind} {
				classified = classified || errors.Is(err, s)
			}
			if !classified {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if b.Kind() != kind {
			t.Fatalf("decoded a %s body for kind %s", b.Kind(), kind)
		}
		if err := b.Validate(0); err != nil {
			t.Fatalf("decoded body is invalid: %v", err)
		}
		re, err := canon.Marshal(b)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(re, raw) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", raw, re)
		}
	})
}

// FuzzParseAction checks the CLI syntax of governance actions (agora
// propose, the dashboard's proposal form): no input panics, and whatever
// parses is valid and prints in a form that parses back to it.
func FuzzParseAction(f *testing.F) {
	for _, a := range actions(f) {
		f.Add(a.String())
	}
	for _, s := range []string{"", "ban", "set-policy vote.quorum", "set-policy =1", "set-policy vote.quorum=-1",
		"certify peer:", "certify :x", "adopt-charter bafy", "ban x y", "unban \x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAction(s)
		if err != nil {
			if a != nil {
				t.Fatalf("ParseAction(%q) returned an action with its error", s)
			}
			return
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("ParseAction(%q) = %+v, which is invalid: %v", s, a, err)
		}
		again, err := ParseAction(a.String())
		if err != nil || again.String() != a.String() {
			t.Fatalf("ParseAction(%q).String() = %q parses to %+v, %v", s, a.String(), again, err)
		}
	})
}
