package replicate

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	wire "github.com/agora-p2p/agora/protocol/recon"
)

// TestCloseStopsStalledSync: a peer that stops answering in the middle of
// a session must not hold up Close until the session deadline (mocknet
// streams have no deadlines at all, so without more it would hang forever).
func TestCloseStopsStalledSync(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()
	c := testCommunity(t, "garden")
	n := newBareNode(t, mn, filepath.Join(t.TempDir(), "node"), c)
	defer n.close()
	n.repl.Start()

	staller := addHost(t, mn, newKey(t))
	opened := make(chan struct{})
	staller.SetStreamHandler(wire.ProtocolID, func(st network.Stream) {
		r := newRawSync(st)
		r.recv() // the CatchUp
		close(opened)
		r.drain() // until the node gives up
		st.Reset()
	})
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	n.repl.goSync(c, staller.ID())
	select {
	case <-opened:
	case <-ctx.Done():
		t.Fatal("the node never opened its sync stream")
	}
	closed := make(chan struct{})
	go func() { n.repl.Close(); close(closed) }()
	select {
	case <-closed:
	case <-ctx.Done():
		staller.Close() // lets Close, and the test, end
		t.Fatal("Close waits for a sync with a peer that stopped answering")
	}
}

// TestStaleSnapshotIsRebuilt: the service caches each community's
// reconciliation snapshot and drops it when the store reports a new record.
// Those reports can be missed: the store drops notifications when a
// subscriber's buffer is full, and one that arrives while a snapshot is
// being built removes nothing and is followed by the stale snapshot being
// cached. A stale snapshot must not be used: as responder it hides records
// from the peers that pull from this node.
func TestStaleSnapshotIsRebuilt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()
	c := testCommunity(t, "garden")
	dir := t.TempDir()
	holder := newBareNode(t, mn, filepath.Join(dir, "holder"), c)
	defer holder.close()
	puller := newBareNode(t, mn, filepath.Join(dir, "puller"), c)
	defer puller.close()
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}

	raws := signMany(t, keys(t, 2), c, 10, func(i int) time.Time { return time.Now().Add(time.Duration(i-20) * time.Minute) })
	ingestAll(t, holder.store, raws[:5])
	ingestAll(t, puller.store, raws[:5])
	// The holder's snapshot is cached with five records, then five more
	// are stored without the service hearing of it (it has not started, so
	// it is not subscribed yet).
	if v, err := holder.repl.snapshot(c); err != nil || v.Len() != 5 {
		t.Fatalf("snapshot of %v items, %v", v, err)
	}
	ingestAll(t, holder.store, raws[5:])
	holder.repl.Start()
	puller.repl.Start()

	res, err := puller.repl.SyncWith(ctx, holder.h.ID(), c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Fetched != 5 || puller.store.Count(c) != 10 {
		t.Errorf("the puller fetched %d records and holds %d; the holder has 10: %+v", res.Fetched, puller.store.Count(c), res)
	}
}
