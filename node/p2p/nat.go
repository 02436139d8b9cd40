package p2p

import (
	"context"
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	basichost "github.com/libp2p/go-libp2p/p2p/host/basic"
	ma "github.com/multiformats/go-multiaddr"
)

// natWatch wraps libp2p's NAT manager so netcheck can report the port
// mappings it obtained, and follows the reachability and NAT-type events.
type natWatch struct {
	basichost.NATManager // nil when port mapping is off

	mu        sync.Mutex
	v1        network.Reachability
	reachable []ma.Multiaddr
	unreach   []ma.Multiaddr
	natTCP    network.NATDeviceType
	natUDP    network.NATDeviceType
	observed  []ma.Multiaddr // what peers saw us as, newest first, distinct
}

const maxObserved = 8

func newNATWatch(m basichost.NATManager) *natWatch { return &natWatch{NATManager: m} }

// GetMapping and HasDiscoveredNAT satisfy basichost.NATManager; Close is
// called by the host.
func (n *natWatch) GetMapping(a ma.Multiaddr) ma.Multiaddr {
	if n.NATManager == nil {
		return nil
	}
	return n.NATManager.GetMapping(a)
}

func (n *natWatch) HasDiscoveredNAT() bool {
	return n.NATManager != nil && n.NATManager.HasDiscoveredNAT()
}

func (n *natWatch) Close() error {
	if n.NATManager == nil {
		return nil
	}
	return n.NATManager.Close()
}

func (n *natWatch) watch(ctx context.Context, h host.Host) error {
	sub, err := h.EventBus().Subscribe([]any{
		new(event.EvtLocalReachabilityChanged),
		new(event.EvtHostReachableAddrsChanged),
		new(event.EvtNATDeviceTypeChanged),
		new(event.EvtPeerIdentificationCompleted),
	})
	if err != nil {
		return fmt.Errorf("subscribe to reachability events: %w", err)
	}
	go func() {
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				n.mu.Lock()
				switch e := e.(type) {
				case event.EvtLocalReachabilityChanged:
					n.v1 = e.Reachability
				case event.EvtHostReachableAddrsChanged:
					n.reachable, n.unreach = e.Reachable, e.Unreachable
				case event.EvtPeerIdentificationCompleted:
					if e.ObservedAddr != nil {
						n.observe(e.ObservedAddr)
					}
				case event.EvtNATDeviceTypeChanged:
					if e.TransportProtocol == network.NATTransportUDP {
						n.natUDP = e.NatDeviceType
					} else {
						n.natTCP = e.NatDeviceType
					}
				}
				n.mu.Unlock()
			}
		}
	}()
	return nil
}

// reachability folds AutoNAT v1's verdict and v2's per-address results into
// one word: v2 confirming any address makes us public.
func (n *natWatch) reachability() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case len(n.reachable) > 0 || n.v1 == network.ReachabilityPublic:
		return "public"
	case n.v1 == network.ReachabilityPrivate || len(n.unreach) > 0:
		return "private"
	}
	return "unknown"
}

// deviceType is "cone" (endpoint-independent mapping: hole punching works),
// "symmetric" (endpoint-dependent: needs a relay), or "unknown".
func (n *natWatch) deviceType() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	worst := network.NATDeviceTypeUnknown
	for _, t := range []network.NATDeviceType{n.natTCP, n.natUDP} {
		if t == network.NATDeviceTypeEndpointDependent {
			return "symmetric"
		}
		if t == network.NATDeviceTypeEndpointIndependent {
			worst = t
		}
	}
	if worst == network.NATDeviceTypeEndpointIndependent {
		return "cone"
	}
	return "unknown"
}

func (n *natWatch) observe(a ma.Multiaddr) {
	out := []ma.Multiaddr{a}
	for _, o := range n.observed {
		if !o.Equal(a) && len(out) < maxObserved {
			out = append(out, o)
		}
	}
	n.observed = out
}
