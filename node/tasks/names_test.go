package tasks

import (
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// TestNamesSpellIDsAsStringDoes: the cache gives what String gives, for
// more IDs than it keeps.
func TestNamesSpellIDsAsStringDoes(t *testing.T) {
	var n names
	if n.peer("") != "" {
		t.Fatal("the empty peer ID has a name")
	}
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got := n.peer(p); got != p.String() {
			t.Fatalf("peer: %q, want %q", got, p.String())
		}
	}
	for i := range maxNames + 10 {
		sum, err := mh.Sum([]byte(fmt.Sprint(i)), mh.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		c := cid.NewCidV1(cid.DagCBOR, sum)
		if got := n.community(c); got != c.String() {
			t.Fatalf("community %d: %q, want %q", i, got, c.String())
		}
		if got := n.peer(peer.ID(c.Bytes())); got != peer.ID(c.Bytes()).String() {
			t.Fatalf("peer %d: %q", i, got)
		}
	}
	if len(n.comms) > maxNames || len(n.peers) > maxNames {
		t.Fatalf("the cache holds %d communities and %d peers, over %d", len(n.comms), len(n.peers), maxNames)
	}
}
