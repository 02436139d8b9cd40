package recon

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	wire "github.com/agora-p2p/agora/protocol/recon"
)

// A responder that lies about fingerprints only causes extra splitting: the
// ID lists settle every range, so the result is still exact.
func TestLyingFingerprints(t *testing.T) {
	p := makePair(t, 400, 10_000, 20, 20, 86_400_000)
	honest := syncOnce(t, p.a, p.b, cfg(), cfg(), nil)
	rng := rand.New(rand.NewPCG(4, 0))
	lie := func(f *wire.Reconcile) {
		for i := range f.Ranges {
			if f.Ranges[i].Mode == wire.ModeFingerprint && rng.IntN(2) == 0 {
				for j := range f.Ranges[i].Fingerprint {
					f.Ranges[i].Fingerprint[j] = byte(rng.Uint32())
				}
			}
		}
	}
	r := syncOnce(t, p.a, p.b, cfg(), cfg(), lie)
	checkExact(t, "have", r.have, p.onlyA)
	checkExact(t, "need", r.need, p.onlyB)
	if !r.complete || r.rounds > 8 {
		t.Fatalf("lying: %v complete=%v; honest: %v", r, r.complete, honest)
	}
	t.Logf("honest %v; lying %v", honest, r)
}

// A responder that answers every round with a wrong fingerprint of
// everything makes no progress; the initiator stops at MaxRounds with frames
// of bounded size and reports nothing.
func TestEndlessLiarStopsAtMaxRounds(t *testing.T) {
	p := makePair(t, 401, 10_000, 0, 0, 86_400_000)
	c := cfg()
	c.MaxRounds = 20
	garbage := func(f *wire.Reconcile) {
		f.Ranges = []wire.Range{{Upper: wire.Infinity, Mode: wire.ModeFingerprint, Fingerprint: wire.Fingerprint{1}}}
	}
	r := syncOnce(t, p.a, p.b, c, cfg(), garbage)
	if r.complete || r.rounds != 20 || len(r.have)+len(r.need) != 0 {
		t.Fatalf("%v complete=%v; want 20 rounds, incomplete, nothing reported", r, r.complete)
	}
}

// A peer that keeps listing no IDs for a range we settled makes us scan
// our items again each round; that stops after a few multiples of the
// store, and each item is reported once.
func TestReopeningLiarIsCutOff(t *testing.T) {
	v := mustVector(t, genItems(rand.New(rand.NewPCG(5, 0)), 50_000, 86_400_000))
	s, err := NewSession(v, cfg())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Initiate(); err != nil {
		t.Fatal(err)
	}
	liar := &wire.Reconcile{Ranges: []wire.Range{
		{Upper: wire.Bound{Created: math.MaxUint64 - 1}, Mode: wire.ModeIDList, IDs: [][]byte{}},
		{Upper: wire.Infinity, Mode: wire.ModeFingerprint, Fingerprint: wire.Fingerprint{1}},
	}}
	reported := 0
	for round := 1; ; round++ {
		_, have, need, done, err := s.Reconcile(liar)
		reported += len(have) + len(need)
		if err != nil {
			if !IsPeerFault(err) {
				t.Fatalf("round %d: %v is not the peer's fault", round, err)
			}
			if ef := ErrorFrame(err); ef.Code != wire.CodeBadFrame {
				t.Fatalf("error frame %+v", ef)
			}
			if round > 40 {
				t.Fatalf("cut off only after %d rounds", round)
			}
			break
		}
		if done {
			t.Fatalf("round %d: done", round)
		}
	}
	if reported != v.Len() {
		t.Fatalf("reported %d IDs, want each of %d once", reported, v.Len())
	}
}

func TestResponderRoundLimit(t *testing.T) {
	p := makePair(t, 402, 0, 20_000, 0, 86_400_000)
	small := Config{Community: testCommunity, FrameSizeLimit: MinFrameSizeLimit, MaxRounds: 3}
	// The responder has everything, the initiator nothing: many rounds.
	ini, _ := NewSession(p.b, cfg())
	resp, _ := NewSession(p.a, small)
	f, _ := ini.Initiate()
	for round := 1; ; round++ {
		out, _, _, _, err := resp.Reconcile(f)
		if err != nil {
			if !errors.Is(err, ErrTooManyRounds) || IsPeerFault(err) || round != 4 {
				t.Fatalf("round %d: %v", round, err)
			}
			if ef := ErrorFrame(err); ef.Code != wire.CodeTooManyRounds {
				t.Fatalf("error frame %+v", ef)
			}
			break
		}
		var done bool
		if f, _, _, done, err = ini.Reconcile(out); err != nil || done {
			t.Fatalf("initiator: done=%v err=%v", done, err)
		}
	}
}

func TestBadFrames(t *testing.T) {
	v := mustVector(t, genItems(rand.New(rand.NewPCG(6, 0)), 1000, 86_400_000))
	id := bytes.Repeat([]byte{7}, wire.IDSize)
	open := func(rs ...wire.Range) *wire.Open { return &wire.Open{Community: testCommunity, Ranges: rs} }
	rec := func(rs ...wire.Range) *wire.Reconcile { return &wire.Reconcile{Ranges: rs} }
	tooMany := make([]wire.Range, wire.MaxRanges+1)
	for i := range tooMany {
		tooMany[i] = wire.Range{Upper: wire.Bound{Created: uint64(i + 1)}}
	}
	type step struct {
		in   wire.Frame
		want error // nil: accepted
	}
	tests := []struct {
		name      string
		initiator bool
		steps     []step
	}{
		{"responder: reconcile first", false, []step{{rec(), wire.ErrBadFrame}}},
		{"responder: done first", false, []step{{&wire.Done{}, wire.ErrBadFrame}}},
		{"responder: fetch first", false, []step{{&wire.Fetch{}, wire.ErrBadFrame}}},
		{"responder: nil", false, []step{{nil, wire.ErrBadFrame}}},
		{"responder: other community", false, []step{{&wire.Open{Community: mustCID(id)}, ErrUnknownCommunity}}},
		{"responder: open twice", false, []step{{open(), nil}, {open(), wire.ErrBadFrame}}},
		{"responder: fetch before done", false, []step{{open(), nil}, {&wire.Fetch{}, wire.ErrBadFrame}}},
		{"responder: records", false, []step{{open(), nil}, {&wire.Records{}, wire.ErrBadFrame}}},
		{"responder: out of order", false, []step{{open(wire.Range{Upper: wire.Bound{Created: 9}}, wire.Range{Upper: wire.Bound{Created: 8}}), wire.ErrBadFrame}}},
		{"responder: too many ranges", false, []step{{open(tooMany...), wire.ErrBadFrame}}},
		{"responder: repeated ID", false, []step{{open(wire.Range{Upper: wire.Infinity, Mode: wire.ModeIDList, IDs: [][]byte{id, id}}), wire.ErrBadFrame}}},
		{"responder: short ID", false, []step{{open(wire.Range{Upper: wire.Infinity, Mode: wire.ModeIDList, IDs: [][]byte{id[:5]}}), wire.ErrBadFrame}}},
		{"responder: prefix ends in zero", false, []step{{open(wire.Range{Upper: wire.Bound{Created: 1, Prefix: []byte{1, 0}}}), wire.ErrBadFrame}}},
		{"responder: after done", false, []step{{open(), nil}, {&wire.Done{}, nil}, {rec(), ErrSessionOver}}},
		{"responder: after error", false, []step{{rec(), wire.ErrBadFrame}, {open(), ErrSessionOver}}},
		{"initiator: open", true, []step{{open(), wire.ErrBadFrame}}},
		{"initiator: done", true, []step{{&wire.Done{}, wire.ErrBadFrame}}},
		{"initiator: repeated ID", true, []step{{rec(wire.Range{Upper: wire.Infinity, Mode: wire.ModeIDList, IDs: [][]byte{id, id}}), wire.ErrBadFrame}}},
		{"initiator: infinity not last", true, []step{{rec(wire.Range{Upper: wire.Infinity}, wire.Range{Upper: wire.Infinity}), wire.ErrBadFrame}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSession(v, cfg())
			if err != nil {
				t.Fatal(err)
			}
			if tt.initiator {
				if _, err := s.Initiate(); err != nil {
					t.Fatal(err)
				}
			}
			for i, st := range tt.steps {
				out, have, need, _, err := s.Reconcile(st.in)
				if st.want == nil {
					if err != nil {
						t.Fatalf("step %d: %v", i, err)
					}
					continue
				}
				if !errors.Is(err, st.want) {
					t.Fatalf("step %d: err = %v, want %v", i, err, st.want)
				}
				if out != nil || have != nil || need != nil {
					t.Fatalf("step %d: output alongside an error", i)
				}
				if errors.Is(err, wire.ErrBadFrame) != IsPeerFault(err) {
					t.Fatalf("step %d: IsPeerFault wrong", i)
				}
			}
		})
	}
}

func TestPeerErrorFrame(t *testing.T) {
	s, _ := NewSession(mustVector(t, nil), cfg())
	if _, err := s.Initiate(); err != nil {
		t.Fatal(err)
	}
	pe := &wire.Error{Code: wire.CodeBusy, Reason: "later"}
	_, _, _, _, err := s.Reconcile(pe)
	var got *wire.Error
	if !errors.As(err, &got) || got.Code != wire.CodeBusy {
		t.Fatalf("err = %v, want the peer's error", err)
	}
	if ErrorFrame(err) != nil {
		t.Fatal("answering an error frame with another")
	}
	if IsPeerFault(err) {
		t.Fatal("a peer's error frame is not a fault")
	}
	ef := ErrorFrame(errors.New(string(bytes.Repeat([]byte("é"), 300))))
	if ef.Code != wire.CodeInternal || len(ef.Reason) > wire.MaxReasonLength {
		t.Fatalf("error frame %q %d bytes", ef.Code, len(ef.Reason))
	}
	if err := wire.WriteFrame(&bytes.Buffer{}, ef); err != nil {
		t.Fatalf("ErrorFrame made an unsendable frame: %v", err)
	}
}

// Whatever frames a peer sends, a session neither panics nor answers with a
// frame that breaks the protocol or the size limit.
func FuzzSession(f *testing.F) {
	items := genItems(rand.New(rand.NewPCG(7, 0)), 3000, 5000)
	v := mustVector(f, items)
	mine := mustVector(f, items[:2500])
	seed := func(fr ...wire.Frame) []byte {
		var buf bytes.Buffer
		for _, x := range fr {
			if err := wire.WriteFrame(&buf, x); err != nil {
				f.Fatal(err)
			}
		}
		return buf.Bytes()
	}
	// Real frames of a sync as seeds.
	ini, _ := NewSession(mine, Config{Community: testCommunity, FrameSizeLimit: MinFrameSizeLimit})
	resp, _ := NewSession(v, Config{Community: testCommunity, FrameSizeLimit: MinFrameSizeLimit})
	var toResp, toIni []wire.Frame
	fr, _ := ini.Initiate()
	for range 4 {
		toResp = append(toResp, fr)
		out, _, _, _, err := resp.Reconcile(fr)
		if err != nil {
			break
		}
		toIni = append(toIni, out)
		var done bool
		if fr, _, _, done, err = ini.Reconcile(out); err != nil || done {
			break
		}
	}
	f.Add(false, seed(toResp...))
	f.Add(true, seed(toIni...))
	f.Fuzz(func(t *testing.T, initiator bool, data []byte) {
		store := Store(v)
		if initiator {
			store = mine
		}
		s, err := NewSession(store, Config{Community: testCommunity, FrameSizeLimit: MinFrameSizeLimit, MaxRounds: 8})
		if err != nil {
			t.Fatal(err)
		}
		if initiator {
			if _, err := s.Initiate(); err != nil {
				t.Fatal(err)
			}
		}
		r := bytes.NewReader(data)
		for {
			in, err := wire.ReadFrame(r, wire.MaxFrameSize)
			if err != nil {
				return
			}
			out, _, _, done, err := s.Reconcile(in)
			if err != nil {
				if ErrorFrame(err) != nil {
					if err := wire.WriteFrame(&bytes.Buffer{}, ErrorFrame(err)); err != nil {
						t.Fatalf("unsendable error frame: %v", err)
					}
				}
				return
			}
			if out != nil {
				b, err := wire.EncodeFrame(out)
				if err != nil {
					t.Fatalf("session produced a bad frame: %v", err)
				}
				if len(b) > MinFrameSizeLimit {
					t.Fatalf("session produced a %d-byte frame", len(b))
				}
			}
			if done {
				return
			}
		}
	})
}
