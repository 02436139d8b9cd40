package p2p

import (
	"context"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
)

// MDNSService is the mDNS service name Agora nodes announce on the LAN.
const MDNSService = "agora"

type mdnsNotifee struct {
	h   host.Host
	log *slog.Logger
}

func (n mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == n.h.ID() {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.h.Connect(ctx, ai); err != nil {
			n.log.Debug("lan peer unreachable", "peer", ai.ID, "err", err)
		}
	}()
}

func startMDNS(h host.Host, log *slog.Logger) (interface{ Close() error }, error) {
	s := mdns.NewMdnsService(h, MDNSService, mdnsNotifee{h, log})
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}
