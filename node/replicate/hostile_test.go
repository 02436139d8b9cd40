package replicate

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/agora-p2p/agora/protocol/canon"
	wire "github.com/agora-p2p/agora/protocol/recon"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/agora-p2p/agora/registry/recon"
)

// rawSync is one side of a sync stream driven frame by frame by a test,
// as a hostile peer would.
type rawSync struct {
	st     network.Stream
	br     *bufio.Reader
	frames []wire.Frame // every frame read
}

func newRawSync(st network.Stream) *rawSync { return &rawSync{st: st, br: bufio.NewReader(st)} }

func (r *rawSync) send(f wire.Frame) error { return wire.WriteFrame(r.st, f) }

func (r *rawSync) sendRaw(b []byte) error {
	_, err := r.st.Write(b)
	return err
}

func (r *rawSync) recv() (wire.Frame, error) {
	f, err := wire.ReadFrame(r.br, wire.MaxRecordsFrame)
	if err == nil {
		r.frames = append(r.frames, f)
	}
	return f, err
}

// drain reads until the stream ends and returns how it ended.
func (r *rawSync) drain() error {
	for {
		if _, err := r.recv(); err != nil {
			return err
		}
	}
}

func isCode(f wire.Frame, code string) bool {
	e, ok := f.(*wire.Error)
	return ok && e.Code == code
}

// attack opens a sync stream from x to target, runs script on it, closes
// its side for writing and reads what is left. It starts again while the
// target answers busy: its previous session with x may still be closing.
func attack(t *testing.T, ctx context.Context, x host.Host, target peer.ID, script func(r *rawSync) error) (*rawSync, error) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		st, err := x.NewStream(ctx, target, wire.ProtocolID)
		if err != nil {
			return nil, err
		}
		stop := context.AfterFunc(ctx, func() { st.Reset() }) // mocknet has no deadlines
		r := newRawSync(st)
		err = script(r)
		st.CloseWrite()
		end := r.drain()
		stop()
		st.Reset()
		if len(r.frames) > 0 && isCode(r.frames[0], wire.CodeBusy) && attempt < 100 {
			time.Sleep(10 * time.Millisecond) // busy means retry later
			continue
		}
		if err == nil {
			err = end
		}
		return r, err
	}
}

// hostileResponder serves /agora/sync/1.0.0 on a raw host with whatever
// script is current, and reports whether each script ran as planned.
type hostileResponder struct {
	mu     sync.Mutex
	script func(r *rawSync) error
	done   chan error
}

func newHostileResponder(h host.Host) *hostileResponder {
	x := &hostileResponder{done: make(chan error, 16)}
	h.SetStreamHandler(wire.ProtocolID, func(st network.Stream) {
		x.mu.Lock()
		script := x.script
		x.mu.Unlock()
		r := newRawSync(st)
		err := script(r)
		if err == nil {
			r.drain() // until the node ends the session
		}
		st.Reset()
		x.done <- err
	})
	return x
}

func (x *hostileResponder) set(script func(r *rawSync) error) {
	x.mu.Lock()
	x.script = script
	x.mu.Unlock()
}

// expect reads frames and checks their types.
func expect(r *rawSync, types ...wire.Type) error {
	for _, want := range types {
		f, err := r.recv()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", want, err)
		}
		if f.Type() != want {
			return fmt.Errorf("got a %s frame, want %s", f.Type(), want)
		}
	}
	return nil
}

// offer answers an Open with an ID list naming one record, then answers
// the Fetch for it with send.
func offer(id cid.Cid, send [][]byte) func(r *rawSync) error {
	return func(r *rawSync) error {
		if err := expect(r, wire.TypeOpen); err != nil {
			return err
		}
		digest, _ := wire.IDFromCID(id.Bytes())
		if err := r.send(&wire.Reconcile{Ranges: []wire.Range{{Upper: wire.Infinity, Mode: wire.ModeIDList, IDs: [][]byte{digest}}}}); err != nil {
			return err
		}
		if err := expect(r, wire.TypeDone, wire.TypeFetch); err != nil {
			return err
		}
		return r.send(&wire.Records{Records: send})
	}
}

// TestHostileSyncPeer has raw libp2p hosts break the sync protocol against
// an honest node, as responder and as initiator. The node stores nothing of
// it, scores them down, drops them after enough faults, and goes on
// serving honest members.
func TestHostileSyncPeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tn := newTestNet(t, 3, nodeOptions{})
	honest, member, fresh := tn.nodes[0], tn.nodes[1], tn.nodes[2]
	created, err := honest.comms.Create(ctx, "garden", "")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := cid.Decode(created.ID)
	const held = 40
	authors := keys(t, 4)
	ingestAll(t, honest.store, signMany(t, authors, c, held, func(i int) time.Time {
		return time.Now().Add(-time.Hour + time.Duration(i)*time.Second)
	}))

	// What the hostile peers serve: valid records the node lacks, one of
	// another community, and one with a bad signature.
	elsewhere := testCommunity(t, "elsewhere")
	now := time.Now()
	subject, _ := peer.IDFromPrivateKey(authors[0])
	asked, askedRaw := signed(t, authors[0], c, record.KindAttestation, attestation(subject, 1001), now)
	unaskedRec, unasked := signed(t, authors[0], c, record.KindAttestation, attestation(subject, 1002), now)
	foreign, foreignRaw := signed(t, authors[0], elsewhere, record.KindAttestation, attestation(subject, 1003), now)
	forgedRaw := forge(t, askedRaw)
	forged, _ := record.Decode(forgedRaw)
	hostileIDs := []cid.Cid{asked.CID(), unaskedRec.CID(), foreign.CID(), forged.CID()}
	storedNothing := func(t *testing.T, n *testNode, comm cid.Cid, want int) {
		t.Helper()
		if got := n.store.Count(comm); got != want {
			t.Errorf("%d records stored, want %d", got, want)
		}
		for _, id := range hostileIDs {
			if n.store.Has(id) {
				t.Errorf("stored %s, which came from a hostile peer", id)
			}
		}
	}

	newHostile := func() host.Host {
		h := addHost(t, tn.mn, newKey(t))
		for _, n := range tn.nodes {
			if _, err := tn.mn.LinkPeers(h.ID(), n.id); err != nil {
				t.Fatal(err)
			}
		}
		return h
	}
	// score checks the node's score of x after one more attack: one fault
	// more, or no change.
	score := func(t *testing.T, pen *Penalties, x peer.ID, prev *float64, fault bool) {
		t.Helper()
		s := pen.Score(x)
		switch {
		case fault && !(s < *prev-faultCost/2):
			t.Errorf("score %.1f after %.1f: the fault was not counted", s, *prev)
		case !fault && s != *prev:
			t.Errorf("score %.1f after %.1f: scored down for something that is not a fault", s, *prev)
		}
		*prev = s
	}

	conns, err := honest.h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		t.Fatal(err)
	}
	defer conns.Close()
	disconnected := func(t *testing.T, x peer.ID) {
		t.Helper()
		if err := waitDisconnected(ctx, honest.h, conns, x); err != nil {
			t.Errorf("the node is still connected to the peer it dropped: %v", err)
		}
	}

	t.Run("hostile initiator", func(t *testing.T) {
		x := newHostile()
		var prev float64
		for _, tc := range []struct {
			name   string
			script func(r *rawSync) error
			fault  bool
			answer string // the Error code the node answers with, if any
		}{
			{"open for a community the node is not in", func(r *rawSync) error {
				return r.send(&wire.Open{Community: elsewhere.Bytes(), Ranges: []wire.Range{}})
			}, false, wire.CodeUnknownCommunity},
			{"endless reconcile", func(r *rawSync) error {
				fp := func() wire.Range {
					rg := wire.Range{Upper: wire.Infinity, Mode: wire.ModeFingerprint}
					rand.Read(rg.Fingerprint[:])
					return rg
				}
				if err := r.send(&wire.Open{Community: c.Bytes(), Ranges: []wire.Range{fp()}}); err != nil {
					return err
				}
				for rounds := 1; ; rounds++ {
					f, err := r.recv()
					if err != nil || f.Type() != wire.TypeReconcile {
						if rounds != recon.DefaultMaxRounds+1 {
							return fmt.Errorf("the node answered %d rounds, its limit is %d", rounds-1, recon.DefaultMaxRounds)
						}
						return nil // the Error frame
					}
					if err := r.send(&wire.Reconcile{Ranges: []wire.Range{fp()}}); err != nil {
						return err
					}
				}
			}, false, wire.CodeTooManyRounds},
			{"garbage", func(r *rawSync) error {
				junk := make([]byte, 33)
				junk[0] = 32
				for i := 1; i < len(junk); i++ {
					junk[i] = 0xde
				}
				return r.sendRaw(junk)
			}, true, ""},
			{"length prefix over the limit", func(r *rawSync) error {
				return r.sendRaw(binary.AppendUvarint(nil, 1<<40))
			}, true, ""},
			{"reconcile before open", func(r *rawSync) error {
				return r.send(&wire.Reconcile{Ranges: []wire.Range{}})
			}, true, ""},
			{"fetch of 257 records", func(r *rawSync) error {
				if err := r.send(&wire.Open{Community: c.Bytes(), Ranges: []wire.Range{}}); err != nil {
					return err
				}
				if err := expect(r, wire.TypeReconcile); err != nil {
					return err
				}
				if err := r.send(&wire.Done{}); err != nil {
					return err
				}
				cids := make([][]byte, wire.MaxFetchBatch+1)
				for i := range cids {
					cids[i] = append([]byte{0x01, 0x71, 0x12, 0x20}, make([]byte, 32)...)
					rand.Read(cids[i][4:])
				}
				b, err := canon.Marshal(map[string]any{"type": uint64(wire.TypeFetch), "cids": cids})
				if err != nil {
					return err
				}
				return r.sendRaw(append(binary.AppendUvarint(nil, uint64(len(b))), b...))
			}, true, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r, err := attack(t, ctx, x, honest.id, tc.script)
				t.Logf("the node sent %d frames; the stream ended with %v", len(r.frames), err)
				if tc.answer != "" && (len(r.frames) == 0 || !isCode(r.frames[len(r.frames)-1], tc.answer)) {
					t.Errorf("the node's last frame is not an Error %q", tc.answer)
				}
				if tc.answer != "" && !errors.Is(err, io.EOF) {
					t.Errorf("the node did not close the stream cleanly after its Error: %v", err)
				}
				score(t, honest.repl.Penalties(), x.ID(), &prev, tc.fault)
				storedNothing(t, honest, c, held)
			})
		}
		// Four faults: dropped, disconnected, and refused from now on.
		if !honest.repl.Penalties().Dropped(x.ID()) {
			t.Fatalf("after four faults the hostile peer is not dropped (score %.1f)", honest.repl.Penalties().Score(x.ID()))
		}
		disconnected(t, x.ID())
		r, err := attack(t, ctx, x, honest.id, func(r *rawSync) error {
			return r.send(&wire.Open{Community: c.Bytes(), Ranges: []wire.Range{}})
		})
		if err == nil || len(r.frames) != 0 {
			t.Errorf("the node served a dropped peer: %v, %v", r.frames, err)
		}
	})

	t.Run("hostile responder", func(t *testing.T) {
		h := newHostile()
		x := newHostileResponder(h)
		var prev float64
		for _, tc := range []struct {
			name   string
			script func(r *rawSync) error
		}{
			{"records not asked for", offer(asked.CID(), [][]byte{unasked})},
			{"records of another community", offer(foreign.CID(), [][]byte{foreignRaw})},
			{"records with a bad signature", offer(forged.CID(), [][]byte{forgedRaw})},
			{"records where reconcile is due", func(r *rawSync) error {
				if err := expect(r, wire.TypeOpen); err != nil {
					return err
				}
				return r.send(&wire.Records{Records: [][]byte{askedRaw}})
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				x.set(tc.script)
				res, err := honest.repl.SyncWith(ctx, h.ID(), c)
				if !errors.Is(err, errPeerFault) {
					t.Errorf("sync ended with %v, want a fault of the peer", err)
				}
				if res.Fetched != 0 {
					t.Errorf("fetched %d records", res.Fetched)
				}
				if err := <-x.done; err != nil {
					t.Errorf("the hostile script went wrong: %v", err)
				}
				score(t, honest.repl.Penalties(), h.ID(), &prev, true)
				storedNothing(t, honest, c, held)
			})
		}
		if !honest.repl.Penalties().Dropped(h.ID()) {
			t.Fatalf("after four faults the hostile peer is not dropped (score %.1f)", honest.repl.Penalties().Score(h.ID()))
		}
		disconnected(t, h.ID())
		// Nor does the node dial it again to sync (as a new member on the
		// topic, or the periodic sync, would have it do). A session, if one
		// started, would wait for release.
		release := make(chan struct{})
		x.set(func(r *rawSync) error {
			<-release
			return errors.New("the node synced with a dropped peer")
		})
		honest.repl.goSync(c, h.ID())
		honest.repl.mu.Lock()
		started := honest.repl.outgoing[h.ID()]
		honest.repl.mu.Unlock()
		close(release)
		if started {
			t.Errorf("the node started a sync with the peer it dropped")
		}

		// A member with nothing asks to catch up, and gets junk.
		c3, err := fresh.comms.Create(ctx, "orchard", "")
		if err != nil {
			t.Fatal(err)
		}
		other, _ := cid.Decode(c3.ID)
		_, forgedOther := signed(t, authors[0], other, record.KindAttestation, attestation(subject, 1004), now)
		forgedOther = forge(t, forgedOther)
		for _, junk := range [][]byte{askedRaw, forgedOther} {
			x.set(func(r *rawSync) error {
				if err := expect(r, wire.TypeCatchUp); err != nil {
					return err
				}
				return r.send(&wire.Records{Records: [][]byte{junk}})
			})
			if _, err := fresh.repl.SyncWith(ctx, h.ID(), other); !errors.Is(err, errPeerFault) {
				t.Errorf("catch-up ended with %v, want a fault of the peer", err)
			}
			if err := <-x.done; err != nil {
				t.Errorf("the hostile script went wrong: %v", err)
			}
		}
		if n := fresh.store.Count(other); n != 0 || fresh.store.Has(asked.CID()) {
			t.Errorf("the fresh member stored %d records from a hostile catch-up", n)
		}
		if s := fresh.repl.Penalties().Score(h.ID()); s > -1.5*faultCost {
			t.Errorf("two faults scored %.1f", s)
		}
	})

	// The node still serves an honest member.
	if _, err := member.comms.Join(ctx, created.Invite); err != nil {
		t.Fatal(err)
	}
	if err := member.waitCount(ctx, c, held); err != nil {
		t.Fatal(err)
	}
	wantFP, wantN := honest.fingerprint(t, c)
	if fp, n := member.fingerprint(t, c); fp != wantFP || n != wantN {
		t.Fatalf("the member holds %d items with fingerprint %s, the node %d with %s", n, fp, wantN, wantFP)
	}
	storedNothing(t, honest, c, held)
}
