package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/agora-p2p/agora/node"
	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/config"
	"github.com/agora-p2p/agora/node/repo"
)

// Config is one simulation. Zero fields take the defaults in withDefaults.
type Config struct {
	Nodes   int           // community size (default 50)
	Latency time.Duration // one-way latency of every link (default 20 ms)
	Degree  int           // connections each node opens at start, about (default 6)

	Delegations int // text.stats tasks, spread over the requesters (default 1,000)
	InFlight    int // delegations running at once (default 32)

	Records    int     // attestations published in the records phase (default 10,000)
	Publishers int     // nodes publishing them (default: min(Nodes, 50), at least Records/500)
	RecordRate float64 // records per second over all publishers (0: as fast as they go)

	ChurnShare   float64 // share of nodes closed and restarted (default 0.1)
	ChurnRecords int     // records published while they are away (default Records/10)

	// Dir holds the nodes' repos (required; a test's t.TempDir()).
	Dir string
	// Seed makes the topology and choices repeatable (0: random).
	Seed uint64
	// PhaseTimeout bounds each phase (default 5 minutes).
	PhaseTimeout time.Duration
	// Logf receives progress lines (default: none).
	Logf func(format string, args ...any)
}

// maxPerAuthor keeps each publisher under the registry's per-author burst
// (600 fresh records) over both record phases, so they measure gossip and
// sync, not the rate limit.
const maxPerAuthor = 560

func (c Config) withDefaults() (Config, error) {
	if c.Nodes == 0 {
		c.Nodes = 50
	}
	if c.Latency == 0 {
		c.Latency = 20 * time.Millisecond
	}
	if c.Degree == 0 {
		c.Degree = 6
	}
	if c.Delegations == 0 {
		c.Delegations = 1000
	}
	if c.InFlight == 0 {
		c.InFlight = 32
	}
	if c.Records == 0 {
		c.Records = 10_000
	}
	if c.ChurnShare == 0 {
		c.ChurnShare = 0.1
	}
	if c.ChurnRecords == 0 {
		c.ChurnRecords = c.Records / 10
	}
	if c.Publishers == 0 {
		c.Publishers = max(min(c.Nodes-churned(c), 50), ceilDiv(c.Records+c.ChurnRecords, maxPerAuthor))
	}
	if c.PhaseTimeout == 0 {
		c.PhaseTimeout = 5 * time.Minute
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	switch {
	case c.Nodes < 3:
		return c, fmt.Errorf("a simulation needs at least 3 nodes, not %d", c.Nodes)
	case c.Dir == "":
		return c, errors.New("a simulation needs a directory for the repos (Config.Dir)")
	case c.Degree < 2 || c.Degree >= c.Nodes:
		return c, fmt.Errorf("the degree must be between 2 and the node count less one, not %d", c.Degree)
	case c.Latency < 0 || c.Delegations < 0 || c.InFlight < 0 || c.Records < 0 || c.ChurnRecords < 0 || c.RecordRate < 0:
		return c, errors.New("latency, counts and rates must not be negative")
	case c.ChurnShare < 0 || c.ChurnShare > 0.5:
		return c, fmt.Errorf("the churn share must be between 0 and 0.5, not %g", c.ChurnShare)
	case c.Publishers < 1 || c.Publishers > c.Nodes-churned(c):
		return c, fmt.Errorf("the publishers (%d) must be between 1 and the nodes that stay up (%d)", c.Publishers, c.Nodes-churned(c))
	case ceilDiv(c.Records, c.Publishers)+ceilDiv(c.ChurnRecords, c.Publishers) > maxPerAuthor:
		return c, fmt.Errorf("%d records from %d publishers (and %d more while nodes are away) is over the %d a node may publish at once (the registry's per-author burst); add publishers or nodes", c.Records, c.Publishers, c.ChurnRecords, maxPerAuthor)
	}
	return c, nil
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// churned is how many nodes the churn phase restarts.
func churned(c Config) int {
	if c.ChurnShare == 0 {
		return 0
	}
	return max(1, int(float64(c.Nodes)*c.ChurnShare+0.5))
}

// member is one simulated node, up or down. Its repo dir, key and address
// outlive its restarts.
type member struct {
	i          int
	dir        string
	id         peer.ID
	key        crypto.PrivKey
	addr       ma.Multiaddr
	neighbours []int // the nodes it connects to at start

	// n and r are set while the node is up.
	n *node.Node
	r *repo.Repo
}

// cluster is the simulated community.
type cluster struct {
	cfg   Config
	mn    mocknet.Mocknet
	rng   *rand.Rand
	nodes []*member
	comm  cid.Cid
	log   *slog.Logger
	warns *warnCounter

	// linkMu makes a node's arrival on mocknet and its links one step, so
	// two nodes restarting at once link to each other exactly once.
	linkMu sync.Mutex
	up     map[int]bool

	seed       uint64
	authoredMu sync.Mutex
	authored   map[int]int // records published by node
}

// nodeConfig is a node that runs on an injected host: no mDNS, NAT, relay
// or DHT to set up, the API on a free loopback port, and the lowpower
// profile (small badger memtables and caches) so hundreds fit in memory.
func nodeConfig() config.Config {
	c := config.Default()
	c.Profile = config.ProfileLowPower
	c.P2P.MDNS = false
	c.P2P.NATPortMap = false
	c.P2P.DHT = "off"
	c.P2P.RelayClient = false
	c.P2P.RelayServe = false
	c.API.Listen = "127.0.0.1:0"
	c.Log.Level = "warn"
	return c
}

func newCluster(cfg Config) (*cluster, error) {
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	cfg.Logf("seed %d", seed)
	warns := newWarnCounter()
	c := &cluster{cfg: cfg, mn: mocknet.New(), rng: rand.New(rand.NewPCG(seed, seed^0x5eed)),
		log: slog.New(warns), warns: warns, up: map[int]bool{}, seed: seed, authored: map[int]int{}}
	for i := range cfg.Nodes {
		dir := filepath.Join(cfg.Dir, fmt.Sprintf("node%03d", i))
		key, err := repo.Init(dir, nodeConfig())
		if err != nil {
			return nil, err
		}
		id, err := peer.IDFromPrivateKey(key)
		if err != nil {
			return nil, err
		}
		// A fixed address per node, so a restarted node is where its peers
		// remember it.
		addr, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/10.%d.%d.%d/tcp/4242", (i+1)>>16, ((i+1)>>8)&255, (i+1)&255))
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, &member{i: i, dir: dir, id: id, key: key, addr: addr})
	}
	c.pickNeighbours()
	return c, nil
}

// pickNeighbours draws the start topology: a ring (so the overlay is
// connected) plus random chords, Degree connections a node on average.
func (c *cluster) pickNeighbours() {
	n := len(c.nodes)
	has := func(a, b int) bool {
		for _, x := range c.nodes[a].neighbours {
			if x == b {
				return true
			}
		}
		return false
	}
	for i := range c.nodes {
		c.nodes[i].neighbours = append(c.nodes[i].neighbours, (i+1)%n)
	}
	chords := (c.cfg.Degree - 2) / 2
	for i := range c.nodes {
		for range chords {
			for {
				j := c.rng.IntN(n)
				if j != i && !has(i, j) && !has(j, i) {
					c.nodes[i].neighbours = append(c.nodes[i].neighbours, j)
					break
				}
			}
		}
	}
}

// start brings node m up on a fresh mocknet host linked to every node that
// is up, as the daemon would start on the repo.
func (c *cluster) start(ctx context.Context, m *member) error {
	r, err := repo.Open(m.dir)
	if err != nil {
		return err
	}
	c.linkMu.Lock()
	h, err := c.mn.AddPeer(r.Key, m.addr)
	if err == nil {
		for j := range c.up {
			if _, err = c.mn.LinkPeers(m.id, c.nodes[j].id); err != nil {
				break
			}
		}
	}
	if err == nil {
		c.up[m.i] = true
	}
	c.linkMu.Unlock()
	if err != nil {
		r.Close()
		return fmt.Errorf("node %d on mocknet: %w", m.i, err)
	}
	n, err := node.StartWith(ctx, r, c.log.With("node", m.i), node.StartOptions{Host: withLatency(h, c.cfg.Latency)})
	if err != nil {
		c.unlink(m)
		r.Close()
		return fmt.Errorf("start node %d: %w", m.i, err)
	}
	m.n, m.r = n, r
	return nil
}

// unlink takes m off mocknet: nobody can dial it any more (its links point
// at its host, which a restart replaces).
func (c *cluster) unlink(m *member) {
	c.linkMu.Lock()
	defer c.linkMu.Unlock()
	delete(c.up, m.i)
	for j := range c.up {
		c.mn.UnlinkPeers(m.id, c.nodes[j].id)
	}
}

// stop closes node m as the daemon does on SIGTERM.
func (c *cluster) stop(m *member) error {
	if m.n == nil {
		return nil
	}
	c.unlink(m)
	err := errors.Join(m.n.Close(), m.r.Close())
	m.n, m.r = nil, nil
	return err
}

// connect dials m's start neighbours that are up.
func (c *cluster) connect(ctx context.Context, m *member) error {
	var errs []error
	for _, j := range m.neighbours {
		o := c.nodes[j]
		if o.n == nil {
			continue
		}
		if err := m.n.Host.Connect(ctx, peer.AddrInfo{ID: o.id, Addrs: []ma.Multiaddr{o.addr}}); err != nil {
			errs = append(errs, fmt.Errorf("node %d to %d: %w", m.i, j, err))
		}
	}
	return errors.Join(errs...)
}

// forEach runs fn on the nodes in parallel, workers at a time, and joins
// the errors.
func forEach(ctx context.Context, ms []*member, workers int, fn func(ctx context.Context, m *member) error) error {
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for _, m := range ms {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(ctx, m); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) == 0 && ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.Join(errs...)
}

// up returns the nodes that are running.
func (c *cluster) running() []*member {
	var out []*member
	for _, m := range c.nodes {
		if m.n != nil {
			out = append(out, m)
		}
	}
	return out
}

// form starts every node, connects the start topology, and has node 0
// found the community that every other joins with its invite.
func (c *cluster) form(ctx context.Context) error {
	if err := forEach(ctx, c.nodes, 4, c.start); err != nil {
		return err
	}
	c.cfg.Logf("%d nodes started", len(c.nodes))
	if err := forEach(ctx, c.nodes, 8, c.connect); err != nil {
		return err
	}
	created, err := c.nodes[0].n.CreateCommunity(ctx, api.CreateCommunityRequest{Name: "sim", Description: "in-process scale simulation"})
	if err != nil {
		return fmt.Errorf("node 0 cannot create the community: %w", err)
	}
	if c.comm, err = cid.Decode(created.ID); err != nil {
		return err
	}
	return forEach(ctx, c.nodes[1:], 8, func(ctx context.Context, m *member) error {
		if _, err := m.n.JoinCommunity(ctx, created.Invite); err != nil {
			return fmt.Errorf("node %d cannot join: %w", m.i, err)
		}
		return nil
	})
}

// close stops every node that is up and the mocknet.
func (c *cluster) close() error {
	err := forEach(context.Background(), c.running(), 8, func(_ context.Context, m *member) error {
		if err := c.stop(m); err != nil {
			return fmt.Errorf("node %d: %w", m.i, err)
		}
		return nil
	})
	return errors.Join(err, c.mn.Close())
}

// connections is the average number of peers a running node is connected
// to.
func (c *cluster) connections() float64 {
	ms := c.running()
	total := 0
	for _, m := range ms {
		total += len(m.n.Host.Network().Peers())
	}
	return float64(total) / float64(max(len(ms), 1))
}
