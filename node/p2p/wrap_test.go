package p2p

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
)

func ed25519Key(t *testing.T) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestWrapRefusesWhatItCannotRun(t *testing.T) {
	mn := mocknet.New()
	defer mn.Close()
	k := ed25519Key(t)
	h, err := mn.AddPeer(k, ma.StringCast("/ip4/10.0.0.1/tcp/4242"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Wrap(nil, Options{Key: k, Logger: quiet}); err == nil {
		t.Error("Wrap took a nil host")
	}
	if _, err := Wrap(h, Options{Logger: quiet}); err == nil {
		t.Error("Wrap took no key")
	}
	if _, err := Wrap(h, Options{Key: ed25519Key(t), Logger: quiet}); !errors.Is(err, ErrWrongIdentity) {
		t.Errorf("Wrap with another peer's key: %v, want ErrWrongIdentity", err)
	}
	// A refused host is still the caller's, and still works.
	o, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := mn.ConnectPeers(h.ID(), o.ID()); err != nil {
		t.Fatalf("the refused host no longer dials: %v", err)
	}
}

// TestWrapRedialsRememberedPeersAfterRestart: a wrapped host keeps the peer
// book on the node's datastore, so the same identity on a new host (a
// restarted node) dials the peers it met before, and Close closes the host.
func TestWrapRedialsRememberedPeersAfterRestart(t *testing.T) {
	db, err := badger.Open(badger.DefaultOptions(t.TempDir()).WithLogger(nil).WithNumCompactors(0))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mn := mocknet.New()
	defer mn.Close()
	k := ed25519Key(t)
	addr := ma.StringCast("/ip4/10.0.0.1/tcp/4242")
	h, err := mn.AddPeer(k, addr)
	if err != nil {
		t.Fatal(err)
	}
	other, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mn.LinkPeers(h.ID(), other.ID()); err != nil {
		t.Fatal(err)
	}
	w, err := Wrap(h, Options{Key: k, DB: db, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if w.DHT != nil || w.Reachability() != "unknown" {
		t.Errorf("a wrapped host runs a DHT (%v) or knows its reachability (%s)", w.DHT, w.Reachability())
	}
	w.Book().Remember(peer.AddrInfo{ID: other.ID(), Addrs: other.Addrs()})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.NewStream(context.Background(), other.ID(), "/x"); err == nil {
		t.Fatal("the host still opens streams after Close")
	}

	// Restart: the old links point at the old host's network.
	if err := mn.UnlinkPeers(h.ID(), other.ID()); err != nil {
		t.Fatal(err)
	}
	h2, err := mn.AddPeer(k, addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mn.LinkPeers(h2.ID(), other.ID()); err != nil {
		t.Fatal(err)
	}
	sub, err := h2.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	w2, err := Wrap(h2, Options{Key: k, DB: db, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	timeout := time.After(10 * time.Second)
	for h2.Network().Connectedness(other.ID()) != network.Connected {
		select {
		case <-sub.Out():
		case <-timeout:
			t.Fatal("the restarted host did not redial the remembered peer")
		}
	}
}
