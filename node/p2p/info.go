package p2p

import (
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// PeerInfo describes one connected peer.
type PeerInfo struct {
	ID      peer.ID
	Addrs   []ma.Multiaddr // remote addresses of our connections
	Relayed bool           // every connection goes through a relay
	Latency time.Duration  // EWMA from identify/ping; 0 when unknown
}

// ConnectedPeers lists the peers with at least one open connection, sorted
// by peer ID.
func (h *Host) ConnectedPeers() []PeerInfo {
	var out []PeerInfo
	for _, p := range h.Network().Peers() {
		conns := h.Network().ConnsToPeer(p)
		if len(conns) == 0 {
			continue
		}
		pi := PeerInfo{ID: p, Relayed: true, Latency: h.Peerstore().LatencyEWMA(p)}
		for _, c := range conns {
			pi.Addrs = append(pi.Addrs, c.RemoteMultiaddr())
			if !IsRelayed(c.RemoteMultiaddr()) && !c.Stat().Limited {
				pi.Relayed = false
			}
		}
		out = append(out, pi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// IsRelayed reports whether a is a circuit-relay address.
func IsRelayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// NetInfo is what `agora netcheck` explains.
type NetInfo struct {
	Reachability      string
	NATDeviceType     string
	ListenAddrs       []ma.Multiaddr
	AnnouncedAddrs    []ma.Multiaddr
	ObservedAddrs     []ma.Multiaddr
	RelayReservations []ma.Multiaddr
	PortMapping       bool
	Mapped            []ma.Multiaddr
	Peers             int
	Port              string // the first TCP listen port, for the hints
}

// NetInfo gathers the facts about this node's reachability.
func (h *Host) NetInfo() NetInfo {
	ni := NetInfo{
		Reachability:  h.nat.reachability(),
		NATDeviceType: h.nat.deviceType(),
		ListenAddrs:   h.Network().ListenAddresses(),
		Peers:         len(h.Network().Peers()),
		PortMapping:   h.nat.NATManager != nil,
	}
	ni.Port = "4242"
	for _, a := range ni.ListenAddrs {
		if p, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			ni.Port = p
			break
		}
	}
	if ifaces, err := h.Network().InterfaceListenAddresses(); err == nil {
		ni.ListenAddrs = ifaces
	}
	for _, a := range h.Addrs() {
		if IsRelayed(a) {
			ni.RelayReservations = append(ni.RelayReservations, a)
		} else {
			ni.AnnouncedAddrs = append(ni.AnnouncedAddrs, a)
		}
	}
	h.nat.mu.Lock()
	ni.ObservedAddrs = append(ni.ObservedAddrs, h.nat.observed...)
	h.nat.mu.Unlock()
	if ni.PortMapping {
		for _, a := range h.Network().ListenAddresses() {
			if m := h.nat.GetMapping(a); m != nil {
				ni.Mapped = append(ni.Mapped, m)
			}
		}
	}
	return ni
}

// Hint says in plain words what the user can do about reachability.
func (ni NetInfo) Hint() string {
	switch {
	case ni.Peers == 0:
		return "No peers are connected. Join a community with an invite (`agora community join`), or check that this machine can reach the internet."
	case ni.Reachability == "public":
		return "This node is reachable from the internet; other members can connect to it directly."
	case len(ni.RelayReservations) > 0:
		return "This node is behind NAT and reachable through a relay; direct connections are attempted by hole punching. Forwarding port " + ni.Port + " (TCP and UDP) on your router, or enabling UPnP, makes it directly reachable."
	case ni.Reachability == "private" && ni.NATDeviceType == "symmetric":
		return "This node is behind a symmetric NAT, where hole punching rarely works: it depends on relays. Forward port " + ni.Port + " (TCP and UDP) on your router, or enable UPnP/NAT-PMP, to be reachable directly."
	case ni.Reachability == "private":
		return "This node is behind NAT and not yet reachable from outside. Enable UPnP or NAT-PMP on your router, or forward port " + ni.Port + " (TCP and UDP) to this machine; until then it reaches members through relays."
	}
	return "Reachability is not known yet: AutoNAT needs a few connected peers to test it. Check again in a minute."
}

// LoopbackOnly reports whether every address in addrs is loopback.
func LoopbackOnly(addrs []ma.Multiaddr) bool {
	for _, a := range addrs {
		if !manet.IsIPLoopback(a) {
			return false
		}
	}
	return true
}
