package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrWrongIdentity is returned by Wrap for a host whose peer ID is not the
// one of the node's key: everything the node signed would name another
// author than the peer that sends it.
var ErrWrongIdentity = errors.New("the host's peer ID does not match the node's identity key")

// Wrap makes a Host of a libp2p host built elsewhere, such as a mocknet
// peer in an in-process simulation. The host must already run with
// o.Key's identity. Wrap adds what the node needs of a Host and nothing
// of the home stack: no DHT, no NAT port mapping or reachability watch, no
// mDNS, no resource or connection manager beyond the host's own, no
// listening (the host listens, or not, as it was built). The peer book
// runs on o.DB as in New, so a restarted node redials the peers it
// remembers. o.Config and o.Registerer are not used. Close closes h.
func Wrap(h host.Host, o Options) (*Host, error) {
	if h == nil {
		return nil, errors.New("p2p: Wrap needs a host")
	}
	if o.Key == nil {
		return nil, errors.New("p2p: Wrap needs the node's identity key")
	}
	want, err := peer.IDFromPrivateKey(o.Key)
	if err != nil {
		return nil, fmt.Errorf("p2p: the identity key: %w", err)
	}
	if h.ID() != want {
		return nil, fmt.Errorf("%w: the host is %s, the key is %s's", ErrWrongIdentity, h.ID(), want)
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	w := &Host{Host: h, log: log, start: time.Now(), book: NewPeerBook(o.DB, log.With("subsystem", "peerbook")),
		nat: newNATWatch(nil)}
	runCtx, cancel := context.WithCancel(context.Background())
	w.stop = cancel
	w.book.Attach(h)
	w.wg.Add(2)
	go func() { defer w.wg.Done(); w.book.Run(runCtx) }()
	go func() { defer w.wg.Done(); w.book.Reconnect(runCtx) }()
	return w, nil
}
