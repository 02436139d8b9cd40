package recon

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	wire "github.com/agora-p2p/agora/protocol/recon"
)

var testCommunity = mustCID(bytes.Repeat([]byte{0xc0}, wire.IDSize))

func mustCID(id []byte) []byte {
	c, err := wire.CIDFromID(id)
	if err != nil {
		panic(err)
	}
	return c
}

const baseTime = 1767225600000 // 2026-01-01

// genItems returns n distinct random items created within span ms of
// baseTime; a small span forces many equal times, so bounds need prefixes.
func genItems(rng *rand.Rand, n int, span uint64) []Item {
	out := make([]Item, n)
	for i := range out {
		id := make([]byte, wire.IDSize)
		for j := 0; j < wire.IDSize; j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				id[j+k] = byte(v >> (8 * k))
			}
		}
		out[i] = Item{Created: baseTime + rng.Uint64N(span), ID: mustCID(id)}
	}
	return out
}

func mustVector(tb testing.TB, items []Item) *Vector {
	tb.Helper()
	v, err := NewVector(items)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// pair builds two sets sharing common items, each with its own extras.
type pair struct {
	a, b         *Vector
	onlyA, onlyB []Item
}

func makePair(tb testing.TB, seed uint64, common, onlyA, onlyB int, span uint64) pair {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	all := genItems(rng, common+onlyA+onlyB, span)
	c, ea, eb := all[:common], all[common:common+onlyA], all[common+onlyA:]
	return pair{
		a:     mustVector(tb, slices.Concat(c, ea)),
		b:     mustVector(tb, slices.Concat(c, eb)),
		onlyA: ea,
		onlyB: eb,
	}
}

type result struct {
	have, need [][]byte
	rounds     int
	up, down   int // bytes on the wire, initiator to responder and back
	frames     int
	complete   bool
	differed   bool // the responder's view
}

// transmit puts f through the real framing, checking the size limit.
func transmit(tb testing.TB, f wire.Frame, limit int, counter *int) wire.Frame {
	tb.Helper()
	var buf bytes.Buffer
	if err := wire.WriteFrame(&buf, f); err != nil {
		tb.Fatalf("write %s: %v", f.Type(), err)
	}
	n := buf.Len()
	*counter += n
	got, err := wire.ReadFrame(&buf, wire.MaxFrameSize)
	if err != nil {
		tb.Fatalf("read %s: %v", f.Type(), err)
	}
	if lim := limit + 3; n > lim { // + the length prefix
		tb.Fatalf("%s frame of %d bytes exceeds limit %d", f.Type(), n, limit)
	}
	return got
}

// syncOnce runs a session between initiator store a and responder store b.
// tamper, if set, may rewrite the responder's frames.
func syncOnce(tb testing.TB, a, b Store, cfgA, cfgB Config, tamper func(*wire.Reconcile)) result {
	tb.Helper()
	ini, err := NewSession(a, cfgA)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := NewSession(b, cfgB)
	if err != nil {
		tb.Fatal(err)
	}
	limA, limB := ini.cfg.FrameSizeLimit, resp.cfg.FrameSizeLimit
	var r result
	f, err := ini.Initiate()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		f = transmit(tb, f, limA, &r.up)
		r.frames++
		out, h, n, done, err := resp.Reconcile(f)
		if err != nil {
			tb.Fatalf("responder: %v", err)
		}
		if h != nil || n != nil {
			tb.Fatal("responder reported have or need")
		}
		if done {
			if _, ok := f.(*wire.Done); !ok {
				tb.Fatal("responder done without Done")
			}
			break
		}
		if tamper != nil {
			tamper(out.(*wire.Reconcile))
		}
		f = transmit(tb, out, limB, &r.down)
		r.frames++
		f, h, n, done, err = ini.Reconcile(f)
		if err != nil {
			tb.Fatalf("initiator: %v", err)
		}
		r.have = append(r.have, h...)
		r.need = append(r.need, n...)
		if done && f.Type() != wire.TypeDone {
			tb.Fatalf("initiator done with a %s frame", f.Type())
		}
	}
	r.rounds, r.complete, r.differed = ini.Rounds(), ini.Complete(), resp.Differed()
	return r
}

func cfg() Config { return Config{Community: testCommunity} }

// checkExact fails unless got holds exactly the IDs of want, once each.
func checkExact(tb testing.TB, what string, got [][]byte, want []Item) {
	tb.Helper()
	seen := make(map[string]bool, len(got))
	for _, g := range got {
		if seen[string(g)] {
			tb.Fatalf("%s: %x reported twice", what, g)
		}
		seen[string(g)] = true
	}
	for _, w := range want {
		if !seen[string(w.ID)] {
			tb.Fatalf("%s: %x missing (got %d, want %d)", what, w.ID, len(got), len(want))
		}
	}
	if len(got) != len(want) {
		tb.Fatalf("%s: got %d IDs, want %d", what, len(got), len(want))
	}
}

func (r result) String() string {
	return fmt.Sprintf("rounds=%d up=%dB down=%dB have=%d need=%d", r.rounds, r.up, r.down, len(r.have), len(r.need))
}
