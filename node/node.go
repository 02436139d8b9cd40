// Package node assembles a running Agora node from its parts: the repo and
// datastore, the libp2p host, gossipsub, the communities, the event hub and
// the local HTTP API. It owns start-up order and clean shutdown; the parts
// own their logic.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/time/rate"

	"github.com/agora-p2p/agora/node/agents"
	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/capindex"
	"github.com/agora-p2p/agora/node/communities"
	"github.com/agora-p2p/agora/node/events"
	"github.com/agora-p2p/agora/node/governance"
	"github.com/agora-p2p/agora/node/mcpserve"
	"github.com/agora-p2p/agora/node/p2p"
	"github.com/agora-p2p/agora/node/replicate"
	"github.com/agora-p2p/agora/node/repo"
	"github.com/agora-p2p/agora/node/tasks"
	"github.com/agora-p2p/agora/node/trust"
	"github.com/agora-p2p/agora/node/ui"
	"github.com/agora-p2p/agora/registry"
)

// Version is the node's version string.
var Version = "0.1.0-dev"

// Node is a running Agora node.
type Node struct {
	Repo  *repo.Repo
	DB    *repo.Datastore
	Host  *p2p.Host
	PS    *pubsub.PubSub
	Comms *communities.Service
	Store *registry.Store
	Repl  *replicate.Service
	Hub   *events.Hub
	API   *api.Server
	// Agents, Index, Advertiser and Tasks are the node's work: its
	// agents, who offers what, its adverts, and delegation.
	Agents     *agents.Manager
	Index      *capindex.Index
	Advertiser *capindex.Advertiser
	Tasks      *tasks.Service
	// Trust is reputation, certification and feedback.
	Trust *trust.Service
	// Gov is proposals, votes, tallies and the derived policy.
	Gov *governance.Service
	// APIAddr is where the local API listens.
	APIAddr net.Addr

	log      *slog.Logger
	registry *prometheus.Registry
	comms    atomic.Pointer[communities.Service] // n.Comms, for early readers
	trust    atomic.Pointer[trust.Service]       // n.Trust, for gossipsub's score
	gov      atomic.Pointer[governance.Service]  // n.Gov, for early readers
	audits   *rate.Limiter                       // the auditor's budget
	pulls    *puller                             // advert exchanges with joining members
	started  time.Time
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	apiLn    net.Listener
}

// Start opens the repo's datastore and brings up every part of the node. The
// repo must already be open (and so locked). On error everything started so
// far is stopped again.
func Start(ctx context.Context, r *repo.Repo, log *slog.Logger) (*Node, error) {
	return StartWith(ctx, r, log, StartOptions{})
}

// StartOptions change how StartWith builds a node. The zero value is the
// daemon's node, as Start builds it.
type StartOptions struct {
	// Host, when set, is the libp2p host the node runs on instead of one
	// built from the repo's p2p config (see p2p.Wrap): an in-process
	// simulation gives each node a mocknet peer. It must carry the repo's
	// identity. The node owns it from then on: Close closes it, and so does
	// a failed start.
	Host host.Host
}

// StartWith is Start with options.
func StartWith(ctx context.Context, r *repo.Repo, log *slog.Logger, o StartOptions) (_ *Node, err error) {
	if log == nil {
		log = slog.Default()
	}
	runCtx, cancel := context.WithCancel(context.Background())
	n := &Node{Repo: r, log: log, started: time.Now(), cancel: cancel}
	defer func() {
		if err != nil {
			if n.Host == nil && o.Host != nil {
				o.Host.Close()
			}
			n.Close()
		}
	}()
	if n.DB, err = r.OpenDatastore(); err != nil {
		return nil, err
	}

	reg := prometheus.NewRegistry()
	n.registry = reg
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n.Hub = events.New(4096)

	hostOpts := p2p.Options{Key: r.Key, Config: r.Config, DB: n.DB.DB, Registerer: reg, Logger: log.With("subsystem", "p2p")}
	if o.Host != nil {
		n.Host, err = p2p.Wrap(o.Host, hostOpts)
	} else {
		n.Host, err = p2p.New(hostOpts)
	}
	if err != nil {
		return nil, err
	}
	if n.Store, err = registry.Open(n.DB.DB, registry.Options{
		// Gossip validators may ask before Start has assigned n.Comms.
		Member: func(c cid.Cid) bool { cs := n.comms.Load(); return cs != nil && cs.IsMember(c) },
		Logger: log.With("subsystem", "registry"),
	}); err != nil {
		return nil, err
	}
	n.Repl = replicate.New(replicate.Config{Host: n.Host, Store: n.Store, Logger: log.With("subsystem", "replicate")})
	n.Host.Refuse(n.Repl.Penalties().Dropped)
	reg.MustRegister(registryCollector{n})
	params, thresholds := communities.ScoreParams(n.appScore)
	psOpts := []pubsub.Option{
		pubsub.WithPeerScore(params, thresholds),
		pubsub.WithMaxMessageSize(128 << 10),
		pubsub.WithPeerExchange(true),
		// Our own records go to every member on the topic at once, not only
		// to the mesh: a mesh forms only at the next heartbeat, and records
		// are few enough that flooding them costs nothing.
		pubsub.WithFloodPublish(true),
		// pubsub warns about routine things (an empty DHT at start); keep its
		// messages for debugging.
		pubsub.WithLogger(slog.New(atLeast{log.Handler(), slog.LevelDebug}).With("subsystem", "pubsub")),
	}
	psOpts = append(psOpts, communities.PubSubOptions()...)
	// Bursts of records (a member catching up its own backlog, many
	// members publishing at once) overflowed gossipsub's default queues of
	// 32 (validation, and each peer's outbound), which drop what does not
	// fit: those records then waited for the periodic sync.
	psOpts = append(psOpts, pubsub.WithValidateQueueSize(256), pubsub.WithPeerOutboundQueueSize(128))
	if n.Host.DHT != nil {
		psOpts = append(psOpts, pubsub.WithDiscovery(drouting.NewRoutingDiscovery(n.Host.DHT)))
	}
	if n.PS, err = pubsub.NewGossipSub(runCtx, n.Host, psOpts...); err != nil {
		return nil, fmt.Errorf("start gossipsub: %w", err)
	}
	if n.Comms, err = communities.New(runCtx, communities.Config{
		Host: n.Host, PubSub: n.PS, DB: n.DB.DB, Key: r.Key, Publisher: n.Hub, Replicator: banFilter{n},
		Adverts: advertSink{n},
		Fault:   n.Repl.Penalties().Fault,
		Logger:  log.With("subsystem", "communities"),
		Connect: func(ctx context.Context, ai peer.AddrInfo) {
			n.Host.Book().Remember(ai)
			if err := n.Host.Connect(ctx, ai); err != nil {
				log.Warn("cannot reach a peer named in the invite", "peer", ai.ID, "err", err)
			}
		},
	}); err != nil {
		return nil, err
	}
	n.comms.Store(n.Comms)
	n.Repl.Attach(n.Comms)
	n.Repl.Start()
	if err := n.followPeers(runCtx); err != nil {
		return nil, err
	}
	n.followRecords(runCtx)
	if err := n.startWork(runCtx); err != nil {
		return nil, err
	}

	mcpSrv := mcpserve.New(mcpSource{n}, mcpserve.Options{Version: Version, Logger: log.With("subsystem", "mcp")})
	n.wg.Add(1)
	go func() { defer n.wg.Done(); mcpSrv.Watch(runCtx) }()
	dash, err := ui.New(ui.Config{Backend: n, Work: workAPI{n}, Trust: trustAPI{n}, Gov: govAPI{n}, Hub: n.Hub,
		Version: Version, Log: log.With("subsystem", "ui"),
		Settings:  func() []ui.Setting { return ui.ConfigSettings(&n.Repo.Config) },
		Datastore: r.Path(repo.DatastoreDir)})
	if err != nil {
		return nil, err
	}
	if n.API, err = api.NewServer(api.ServerConfig{
		UI:      dash,
		MCP:     mcpSrv.Handler(),
		Backend: n, Work: workAPI{n}, Trust: trustAPI{n}, Governance: govAPI{n}, Hub: n.Hub, Token: r.Token, Gatherer: reg,
		MetricsNoAuth: r.Config.API.MetricsNoAuth, Logger: log.With("subsystem", "api"),
	}); err != nil {
		return nil, err
	}
	if n.apiLn, err = net.Listen("tcp", r.Config.API.Listen); err != nil {
		return nil, fmt.Errorf("the local API cannot listen on %s (is another program using it? set api.listen to another port): %w", r.Config.API.Listen, err)
	}
	n.APIAddr = n.apiLn.Addr()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.API.Serve(n.apiLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("local API stopped", "err", err)
		}
	}()
	if err = r.WriteAPIAddr(n.APIAddr.String()); err != nil {
		return nil, err
	}
	return n, nil
}

// followPeers turns connection events into API events.
func (n *Node) followPeers(ctx context.Context) error {
	sub, err := n.Host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return fmt.Errorf("follow peers: %w", err)
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				ev := e.(event.EvtPeerConnectednessChanged)
				typ := "peer.disconnected"
				if ev.Connectedness == network.Connected {
					typ = "peer.connected"
				}
				n.Hub.Publish(typ, map[string]string{"peer_id": ev.Peer.String()})
			}
		}
	}()
	return nil
}

// atLeast demotes everything a chatty library logs to one level.
type atLeast struct {
	slog.Handler
	level slog.Level
}

func (h atLeast) Enabled(ctx context.Context, _ slog.Level) bool {
	return h.Handler.Enabled(ctx, h.level)
}

func (h atLeast) Handle(ctx context.Context, r slog.Record) error {
	r.Level = h.level
	return h.Handler.Handle(ctx, r)
}

func (h atLeast) WithAttrs(as []slog.Attr) slog.Handler {
	return atLeast{h.Handler.WithAttrs(as), h.level}
}
func (h atLeast) WithGroup(g string) slog.Handler { return atLeast{h.Handler.WithGroup(g), h.level} }

// followRecords turns newly stored records into API events.
func (n *Node) followRecords(ctx context.Context) {
	notes, cancel := n.Store.Subscribe(256)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer cancel()
		for {
			select {
			case <-ctx.Done():
				return
			case st, ok := <-notes:
				if !ok {
					return
				}
				n.Hub.Publish("record.new", recordView(st))
			}
		}
	}()
}

// Close stops the node in reverse order of start and flushes the datastore.
func (n *Node) Close() error {
	var errs []error
	if n.API != nil {
		// A client that keeps a request open past the grace period is cut
		// off (Shutdown then closes every connection); that is no reason to
		// fail the node's shutdown.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := n.API.Shutdown(ctx); err != nil {
			n.log.Warn("the local API did not drain in time; its connections were closed", "err", err)
		}
		cancel()
	}
	if n.Tasks != nil {
		n.Tasks.Close()
	}
	if n.Gov != nil {
		n.Gov.Close()
	}
	if n.Trust != nil {
		n.Trust.Close()
	}
	if n.Agents != nil {
		errs = append(errs, n.Agents.Close())
	}
	if n.Repl != nil {
		n.Repl.Close()
	}
	if n.Comms != nil {
		n.Comms.Close()
	}
	if n.Store != nil {
		errs = append(errs, n.Store.Close())
	}
	n.cancel()
	if n.Host != nil {
		errs = append(errs, n.Host.Close())
	}
	n.wg.Wait()
	if n.DB != nil {
		errs = append(errs, n.DB.Close())
	}
	return errors.Join(errs...)
}

// Uptime is how long the node has run.
func (n *Node) Uptime() time.Duration { return time.Since(n.started) }

func addrStrings(as []ma.Multiaddr) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// Identity implements api.Backend.
func (n *Node) Identity() api.Identity {
	return api.Identity{PeerID: n.Host.ID().String(), Addrs: addrStrings(n.Host.Addrs())}
}

// Status implements api.Backend.
func (n *Node) Status(context.Context) api.Status {
	return api.Status{
		PeerID: n.Host.ID().String(), Reachability: n.Host.Reachability(),
		Addrs: addrStrings(n.Host.Addrs()), Peers: len(n.Host.Network().Peers()),
		Communities: n.Comms.List(), Version: Version, UptimeS: int64(n.Uptime().Seconds()),
	}
}

// Peers implements api.Backend.
func (n *Node) Peers(context.Context) []api.Peer {
	out := []api.Peer{}
	for _, p := range n.Host.ConnectedPeers() {
		path := "direct"
		if p.Relayed {
			path = "relayed"
		}
		out = append(out, api.Peer{PeerID: p.ID.String(), Addrs: addrStrings(p.Addrs), Path: path,
			LatencyMS: float64(p.Latency.Microseconds()) / 1000})
	}
	return out
}

// Netcheck implements api.Backend.
func (n *Node) Netcheck(context.Context) api.Netcheck {
	ni := n.Host.NetInfo()
	return api.Netcheck{
		Reachability: ni.Reachability, NATDeviceType: ni.NATDeviceType,
		ListenAddrs: addrStrings(ni.ListenAddrs), ObservedAddrs: addrStrings(ni.ObservedAddrs),
		RelayReservations: addrStrings(ni.RelayReservations),
		PortMapping:       api.PortMapping{Enabled: ni.PortMapping, Mapped: addrStrings(ni.Mapped)},
		Peers:             ni.Peers, Hint: ni.Hint(),
	}
}

// Communities implements api.Backend.
func (n *Node) Communities(context.Context) []api.Community { return n.Comms.List() }

// Community implements api.Backend.
func (n *Node) Community(_ context.Context, id string) (api.CommunityDetail, error) {
	d, err := n.Comms.Detail(id)
	if err != nil {
		return d, err
	}
	c, err := cid.Decode(d.ID)
	if err != nil {
		return d, err
	}
	d.Records, d.Fingerprint, err = n.Repl.Fingerprint(c)
	return d, err
}

// CreateCommunity implements api.Backend.
func (n *Node) CreateCommunity(ctx context.Context, req api.CreateCommunityRequest) (api.CreatedCommunity, error) {
	return n.Comms.CreateWith(ctx, req.Name, req.Description, req.Policy)
}

// JoinCommunity implements api.Backend.
func (n *Node) JoinCommunity(ctx context.Context, invite string) (api.Joined, error) {
	return n.Comms.Join(ctx, invite)
}

// LeaveCommunity implements api.Backend.
func (n *Node) LeaveCommunity(ctx context.Context, id string) error { return n.Comms.Leave(ctx, id) }

// Invite implements api.Backend.
func (n *Node) Invite(ctx context.Context, id string) (api.Invite, error) {
	return n.Comms.Invite(ctx, id)
}

var _ api.Backend = (*Node)(nil)
