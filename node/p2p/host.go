// Package p2p builds the libp2p host of a home node: transports, the NAT
// stack, resource and connection limits, discovery (mDNS, the /agora DHT,
// remembered peers) and the reachability facts `agora netcheck` explains.
// It carries no Agora protocol; communities and streams live elsewhere.
package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	basichost "github.com/libp2p/go-libp2p/p2p/host/basic"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agora-p2p/agora/node/config"
	"github.com/agora-p2p/agora/protocol/task"
)

// ProtocolPrefix namespaces Agora's DHT away from the public IPFS DHT.
const ProtocolPrefix = "/agora"

// UserAgent is announced through identify.
const UserAgent = "agora/0.1"

// Options is what the host needs beyond the config.
type Options struct {
	Key        crypto.PrivKey
	Config     config.Config
	DB         *badger.DB // remembered peers
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Host is a running libp2p host with its discovery services.
type Host struct {
	host.Host
	DHT   *dht.IpfsDHT // nil when p2p.dht = off
	book  *PeerBook
	gater gater
	nat   *natWatch
	log   *slog.Logger
	mdns  interface{ Close() error }
	stop  context.CancelFunc
	wg    sync.WaitGroup
	start time.Time
}

// profileLimits returns connection manager marks and the resource manager's
// memory budget for a profile.
func profileLimits(c config.Config) (low, high int, mem int64) {
	switch c.Profile {
	case config.ProfileLowPower:
		low, high, mem = 16, 48, 128<<20 // 128 MiB is libp2p's scaling floor
	case config.ProfileServer:
		low, high, mem = 256, 1024, 0 // 0: libp2p's AutoScale (1/8 of RAM)
	default:
		low, high, mem = 64, 128, 256<<20
	}
	if c.P2P.ConnLow > 0 {
		low = c.P2P.ConnLow
	}
	if c.P2P.ConnHigh > 0 {
		high = c.P2P.ConnHigh
	}
	if c.P2P.MaxMemoryMB > 0 {
		mem = int64(c.P2P.MaxMemoryMB) << 20
	}
	return low, high, mem
}

// connMarks are the connection manager's marks, kept under the resource
// manager's connection cap: trimming must start before the cap refuses.
func connMarks(c config.Config) (low, high int, err error) {
	low, high, _ = profileLimits(c)
	if cap := int(ResourceLimits(c).ToPartialLimitConfig().System.Conns); cap > 0 && high > cap*4/5 {
		if c.P2P.ConnHigh > 0 {
			return 0, 0, fmt.Errorf("p2p.conn_high (%d) is above what the resource manager allows with this memory budget (%d); lower it or raise p2p.max_memory_mb", high, cap*4/5)
		}
		high = cap * 4 / 5
	}
	if low >= high {
		if c.P2P.ConnLow > 0 {
			return 0, 0, fmt.Errorf("p2p.conn_low (%d) must be below the connection high mark (%d)", low, high)
		}
		low = high / 2
	}
	return low, high, nil
}

// ResourceLimits are the resource manager's limits for a config, with
// libp2p's own service limits included.
func ResourceLimits(c config.Config) rcmgr.ConcreteLimitConfig {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	// A new inbound stream counts against the transient scope, shared by
	// all peers, until its protocol is negotiated. libp2p's defaults let one
	// peer hold more such streams (its own limit, 256 + 128 a GiB) than the
	// transient scope has (128 + 128 a GiB): a member that opens streams as
	// fast as it can (the hostile member of testbed/netns) made other
	// members' new streams fail with "resource limit exceeded". The
	// transient scope now holds four peers' worth.
	limits.TransientBaseLimit.StreamsInbound = max(limits.TransientBaseLimit.StreamsInbound, 4*limits.PeerBaseLimit.StreamsInbound)
	limits.TransientBaseLimit.Streams = max(limits.TransientBaseLimit.Streams, 4*limits.PeerBaseLimit.Streams)
	limits.TransientLimitIncrease.StreamsInbound = max(limits.TransientLimitIncrease.StreamsInbound, 4*limits.PeerLimitIncrease.StreamsInbound)
	limits.TransientLimitIncrease.Streams = max(limits.TransientLimitIncrease.Streams, 4*limits.PeerLimitIncrease.Streams)
	// Delegation gets its own stream budget: a requester may run many
	// tasks at once on one executor, whose admission control answers
	// "busy" long before the transport would reset a stream.
	limits.AddProtocolLimit(task.ProtocolID,
		rcmgr.BaseLimit{StreamsInbound: 1024, StreamsOutbound: 1024, Streams: 2048, Memory: 128 << 20},
		rcmgr.BaseLimitIncrease{StreamsInbound: 256, StreamsOutbound: 256, Streams: 512, Memory: 32 << 20})
	limits.AddProtocolPeerLimit(task.ProtocolID,
		rcmgr.BaseLimit{StreamsInbound: 512, StreamsOutbound: 512, Streams: 1024, Memory: 64 << 20},
		rcmgr.BaseLimitIncrease{StreamsInbound: 64, StreamsOutbound: 64, Streams: 128, Memory: 16 << 20})
	_, _, mem := profileLimits(c)
	if mem == 0 {
		return limits.AutoScale()
	}
	fds := 512
	if c.Profile == config.ProfileLowPower {
		fds = 128
	}
	return limits.Scale(mem, fds)
}

// New builds and starts the host. Close stops it.
func New(o Options) (*Host, error) {
	c := o.Config
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	low, high, err := connMarks(c)
	if err != nil {
		return nil, err
	}
	cm, err := connmgr.NewConnManager(low, high, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(ResourceLimits(c)))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	h := &Host{log: log, start: time.Now(), book: NewPeerBook(o.DB, log.With("subsystem", "peerbook"))}
	var kad *dht.IpfsDHT
	opts := []libp2p.Option{
		libp2p.Identity(o.Key),
		libp2p.ListenAddrStrings(c.P2P.Listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.DefaultSecurity, // Noise and TLS
		libp2p.DefaultMuxers,   // yamux
		libp2p.ConnectionManager(cm),
		libp2p.ConnectionGater(&h.gater),
		libp2p.ResourceManager(rm),
		libp2p.UserAgent(UserAgent),
		libp2p.EnableAutoNATv2(),
		libp2p.NATManager(func(n network.Network) basichost.NATManager {
			h.nat = newNATWatch(basichost.NewNATManager(n))
			return h.nat
		}),
	}
	if !c.P2P.NATPortMap {
		opts = opts[:len(opts)-1]
	}
	if o.Registerer != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(o.Registerer))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	if len(c.P2P.Announce) > 0 {
		announce := make([]ma.Multiaddr, 0, len(c.P2P.Announce))
		for _, s := range c.P2P.Announce {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				return nil, fmt.Errorf("p2p.announce: %w", err)
			}
			announce = append(announce, a)
		}
		opts = append(opts, libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return announce }))
	}
	if c.P2P.RelayClient {
		opts = append(opts, libp2p.EnableRelay(), libp2p.EnableHolePunching(),
			libp2p.EnableAutoRelayWithPeerSource(h.relayCandidates))
	} else {
		opts = append(opts, libp2p.DisableRelay())
	}
	if c.P2P.RelayServe {
		// libp2p runs the relay service only while AutoNAT says we are public.
		opts = append(opts, libp2p.EnableRelayService())
	}
	if c.P2P.DHT != "off" {
		mode := dht.ModeAuto
		switch {
		case c.P2P.DHT == "client" || (c.P2P.DHT == "auto" && c.Profile == config.ProfileLowPower):
			mode = dht.ModeClient
		case c.P2P.DHT == "server":
			mode = dht.ModeServer
		}
		opts = append(opts, libp2p.Routing(func(hh host.Host) (routing.PeerRouting, error) {
			var err error
			kad, err = dht.New(hh, dht.ProtocolPrefix(ProtocolPrefix), dht.Mode(mode),
				dht.BootstrapPeersFunc(func() []peer.AddrInfo { return h.book.Known(32) }))
			return kad, err
		}))
	}
	lh, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("start libp2p host: %w", explainListenError(err, c.P2P.Listen))
	}
	h.Host = lh
	h.DHT = kad
	if got := len(lh.Network().ListenAddresses()); got < len(c.P2P.Listen) {
		log.Warn("some listen addresses could not be used; see p2p.listen", "configured", c.P2P.Listen, "listening", lh.Network().ListenAddresses())
	}
	runCtx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	h.book.Attach(lh)
	if h.nat == nil {
		h.nat = newNATWatch(nil)
	}
	if err := h.nat.watch(runCtx, lh); err != nil {
		lh.Close()
		cancel()
		return nil, err
	}
	h.wg.Add(1)
	go func() { defer h.wg.Done(); h.book.Run(runCtx) }()
	if c.P2P.MDNS {
		m, err := startMDNS(lh, log.With("subsystem", "mdns"))
		if err != nil {
			log.Warn("mDNS discovery is off", "err", err)
		} else {
			h.mdns = m
		}
	}
	for _, s := range c.P2P.Bootstrap {
		if ai, err := peer.AddrInfoFromString(s); err == nil {
			h.book.Remember(*ai)
		}
	}
	h.wg.Add(1)
	go func() { defer h.wg.Done(); h.book.Reconnect(runCtx) }()
	if kad != nil {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			if err := kad.Bootstrap(runCtx); err != nil {
				log.Debug("dht bootstrap", "err", err)
			}
		}()
	}
	return h, nil
}

// relayCandidates feeds autorelay with connected peers that speak the relay
// hop protocol; in a community, a publicly reachable member is the relay.
func (h *Host) relayCandidates(ctx context.Context, num int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, num)
	go func() {
		defer close(out)
		if h.Host == nil {
			return
		}
		n := 0
		for _, p := range h.Network().Peers() {
			if n >= num {
				return
			}
			if ok, _ := h.Peerstore().SupportsProtocols(p, "/libp2p/circuit/relay/0.2.0/hop"); len(ok) == 0 {
				continue
			}
			select {
			case out <- h.Peerstore().PeerInfo(p):
				n++
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// Book is the remembered-peers store.
func (h *Host) Book() *PeerBook { return h.book }

// Reachability is "public", "private" or "unknown".
func (h *Host) Reachability() string { return h.nat.reachability() }

// Close stops discovery and the host.
func (h *Host) Close() error {
	h.stop()
	if h.mdns != nil {
		h.mdns.Close()
	}
	var errs []error
	if h.DHT != nil {
		errs = append(errs, h.DHT.Close())
	}
	errs = append(errs, h.Host.Close())
	h.wg.Wait()
	h.book.Flush()
	return errors.Join(errs...)
}

func explainListenError(err error, listen []string) error {
	if errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use") {
		return fmt.Errorf("a listen address is already in use (%v); stop the program using it, or set p2p.listen to another port (port 0 picks a free one): %w", listen, err)
	}
	return err
}
