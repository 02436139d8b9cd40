package p2p

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/agora-p2p/agora/node/config"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestPeerBookRemembersAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithNumCompactors(0))
	if err != nil {
		t.Fatal(err)
	}
	mn := mocknet.New()
	defer mn.Close()
	h, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	b := NewPeerBook(db, quiet)
	b.Attach(h)
	var want []peer.ID
	for i := 0; i < 5; i++ {
		o, _ := mn.GenPeer()
		a, _ := ma.NewMultiaddr(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 20000+i))
		b.Remember(peer.AddrInfo{ID: o.ID(), Addrs: []ma.Multiaddr{a}})
		want = append(want, o.ID())
	}
	b.Remember(peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}) // never itself
	b.Flush()
	db.Close()

	db, err = badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithNumCompactors(0))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	again := NewPeerBook(db, quiet)
	known := again.Known(100)
	if len(known) != len(want) {
		t.Fatalf("remembered %d peers, want %d", len(known), len(want))
	}
	got := map[peer.ID]bool{}
	for _, ai := range known {
		if len(ai.Addrs) != 1 {
			t.Fatalf("%s: addrs %v", ai.ID, ai.Addrs)
		}
		got[ai.ID] = true
	}
	for _, id := range want {
		if !got[id] {
			t.Fatalf("%s forgotten", id)
		}
	}
	if n := len(again.Known(2)); n != 2 {
		t.Fatalf("Known(2) gave %d", n)
	}
}

func TestConnMarksStayUnderResourceCap(t *testing.T) {
	for _, profile := range []string{config.ProfileDefault, config.ProfileLowPower, config.ProfileServer} {
		c := config.Default()
		c.Profile = profile
		low, high, err := connMarks(c)
		if err != nil {
			t.Fatal(err)
		}
		cap := int(ResourceLimits(c).ToPartialLimitConfig().System.Conns)
		if low >= high || (cap > 0 && high > cap) {
			t.Errorf("%s: low %d high %d cap %d", profile, low, high, cap)
		}
	}
	c := config.Default()
	c.P2P.ConnHigh = 100000
	if _, _, err := connMarks(c); err == nil {
		t.Fatal("conn_high above the resource cap accepted")
	}
}

// TestOnePeerCannotFillTheTransientScope: streams wait in the transient
// scope, shared by every peer, until they negotiate a protocol; one peer's
// own limit must leave room there for the others, in every profile.
func TestOnePeerCannotFillTheTransientScope(t *testing.T) {
	for _, profile := range []string{config.ProfileDefault, config.ProfileLowPower, config.ProfileServer} {
		c := config.Default()
		c.Profile = profile
		l := ResourceLimits(c).ToPartialLimitConfig()
		if l.Transient.StreamsInbound < 2*l.PeerDefault.StreamsInbound || l.Transient.Streams < 2*l.PeerDefault.Streams {
			t.Errorf("%s: transient streams %v inbound, %v in all; one peer %v and %v",
				profile, l.Transient.StreamsInbound, l.Transient.Streams, l.PeerDefault.StreamsInbound, l.PeerDefault.Streams)
		}
	}
}

func TestHints(t *testing.T) {
	for _, tc := range []struct {
		ni   NetInfo
		want string
	}{
		{NetInfo{Peers: 0}, "No peers"},
		{NetInfo{Peers: 3, Reachability: "public"}, "reachable from the internet"},
		{NetInfo{Peers: 3, Reachability: "private", NATDeviceType: "symmetric", Port: "4242"}, "symmetric NAT"},
		{NetInfo{Peers: 3, Reachability: "private", Port: "5000"}, "port 5000"},
		{NetInfo{Peers: 3, Reachability: "unknown"}, "not known yet"},
	} {
		if h := tc.ni.Hint(); !strings.Contains(h, tc.want) {
			t.Errorf("%+v: hint %q lacks %q", tc.ni, h, tc.want)
		}
	}
}
