package p2p

import (
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// gater refuses connections to and from peers the node has dropped for
// misbehaving (the replicator's penalties), until their penalty decays.
// Until Refuse is called it lets everyone through.
type gater struct {
	refuse atomic.Pointer[func(peer.ID) bool]
}

func (g *gater) refused(p peer.ID) bool {
	f := g.refuse.Load()
	return f != nil && (*f)(p)
}

func (g *gater) InterceptPeerDial(p peer.ID) bool                 { return !g.refused(p) }
func (g *gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return !g.refused(p) }
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (g *gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !g.refused(p)
}
func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// Refuse makes the host refuse connections with every peer for which fn
// returns true (checked on each dial and on each inbound connection once
// the peer is known).
func (h *Host) Refuse(fn func(peer.ID) bool) { h.gater.refuse.Store(&fn) }
