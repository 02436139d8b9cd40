package replicate

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// BenchmarkCatchUp measures a member's sync from a peer that holds 100,000
// attestations of one community, on a mocknet link (no latency, no
// bandwidth limit): a new member's catch-up, and a member that lacks 1,000
// of them (spread out, or the newest) catching up by reconciliation. The
// source and the members' starting stores are built once, outside the
// timer; each iteration syncs a fresh copy.
//
//	go test -run '^$' -bench CatchUp -benchtime 1x ./node/replicate/
//
// records/s counts the records fetched. session/raw is the bytes both ways
// on the member's sync stream (its Result) over the bytes of the records
// fetched. wire/raw is the same from the member's Stats: it adds the
// sessions that its sync set off and that ended by then (the source, having
// seen the sets differ, syncs back, and the member answering that sees them
// differ too), so it varies from run to run when the sets differ.
func BenchmarkCatchUp(b *testing.B) {
	const total, missing = 100_000, 1_000
	mn := mocknet.New()
	base := b.TempDir()
	defer mn.Close()

	c := testCommunity(b, "bench")
	start := time.Now().Add(-48 * time.Hour) // catch-up age: not rate limited
	raws := signMany(b, keys(b, 64), c, total, func(i int) time.Time {
		return start.Add(time.Duration(i) * 1500 * time.Millisecond)
	})
	src := newBareNode(b, mn, filepath.Join(base, "source"), c)
	src.repl.Start()
	defer src.close()
	ingestAll(b, src.store, raws)

	// Starting stores of the members that lack some records, kept closed
	// and copied for each iteration.
	spread, newest := make([][]byte, 0, total-missing), raws[:total-missing]
	var spreadMissing [][]byte
	for i, r := range raws {
		if i%(total/missing) == total/missing/2 {
			spreadMissing = append(spreadMissing, r)
		} else {
			spread = append(spread, r)
		}
	}
	templates := map[string][][]byte{"spread": spread, "newest": newest}
	for name, held := range templates {
		dir := filepath.Join(base, "template-"+name)
		n := newBareNode(b, mn, dir, c)
		ingestAll(b, n.store, held)
		n.close()
	}

	for _, bc := range []struct {
		name    string
		from    string // template, or "" for an empty store
		fetched [][]byte
	}{
		{"new-member", "", raws},
		{"missing-1000-spread", "spread", spreadMissing},
		{"missing-1000-newest", "newest", raws[total-missing:]},
	} {
		b.Run(bc.name, func(b *testing.B) {
			raw := rawBytes(bc.fetched)
			var wire, session int64
			for range b.N {
				b.StopTimer()
				dir, err := os.MkdirTemp(base, bc.name)
				if err != nil {
					b.Fatal(err)
				}
				if bc.from != "" {
					copyDir(b, filepath.Join(base, "template-"+bc.from), dir)
				}
				m := newBareNode(b, mn, dir, c)
				m.repl.Start()
				if _, err := mn.LinkPeers(m.h.ID(), src.h.ID()); err != nil {
					b.Fatal(err)
				}
				if _, err := mn.ConnectPeers(m.h.ID(), src.h.ID()); err != nil {
					b.Fatal(err)
				}
				before := m.repl.Stats()
				b.StartTimer()
				res, err := m.repl.SyncWith(context.Background(), src.h.ID(), c)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				if res.Fetched != len(bc.fetched) || m.store.Count(c) != total {
					b.Fatalf("fetched %d (want %d), holds %d of %d: %+v", res.Fetched, len(bc.fetched), m.store.Count(c), total, res)
				}
				after := m.repl.Stats()
				wire += after.BytesSent + after.BytesReceived - before.BytesSent - before.BytesReceived
				session += res.BytesSent + res.BytesRecv
				b.Logf("%s: %+v; stats %+v", bc.name, res, after)
				m.close()
				os.RemoveAll(dir)
			}
			b.ReportMetric(float64(len(bc.fetched)*b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(wire)/float64(raw*int64(b.N)), "wire/raw")
			b.ReportMetric(float64(session)/float64(raw*int64(b.N)), "session/raw")
		})
	}
}

func copyDir(b *testing.B, from, to string) {
	b.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		b.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range ents {
		src, err := os.Open(filepath.Join(from, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		dst, err := os.Create(filepath.Join(to, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			b.Fatal(err)
		}
		src.Close()
		if err := dst.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
