// Package apitest runs the real local API over an in-memory Backend, for
// tests of the API and of its clients (the CLI) without a node.
//
// It owns only test doubles; nothing outside _test.go files may import it.
package apitest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/client"
	"github.com/agora-p2p/agora/node/events"
)

// InvitePrefix starts every invite the fake Backend makes and accepts.
const InvitePrefix = "agora-test-invite:"

// Backend is an in-memory api.Backend: communities can be created, joined,
// read and left; peers are whatever SetPeers said. It counts calls so tests
// can assert that a rejected request never reached it.
type Backend struct {
	mu          sync.Mutex
	ident       api.Identity
	peers       []api.Peer
	communities []api.CommunityDetail
	records     []api.RecordView
	err         error
	calls       int
	now         func() time.Time
}

var _ api.Backend = (*Backend)(nil)

// NewBackend returns a Backend for the peer "12D3KooWTestNode".
func NewBackend() *Backend {
	return &Backend{
		ident: api.Identity{PeerID: "12D3KooWTestNode", Addrs: []string{"/ip4/127.0.0.1/tcp/4242"}},
		now:   time.Now,
	}
}

// Fail makes every method that can fail return err (nil: succeed again).
func (b *Backend) Fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.err = err
}

// SetPeers sets what Peers answers.
func (b *Backend) SetPeers(ps []api.Peer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.peers = slices.Clone(ps)
}

// Calls is the number of Backend method calls so far.
func (b *Backend) Calls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls
}

func (b *Backend) enter() func() {
	b.mu.Lock()
	b.calls++
	return b.mu.Unlock
}

func (b *Backend) Identity() api.Identity {
	defer b.enter()()
	return b.ident
}

func (b *Backend) Status(ctx context.Context) api.Status {
	defer b.enter()()
	return api.Status{
		PeerID:       b.ident.PeerID,
		Reachability: "private",
		Addrs:        b.ident.Addrs,
		Peers:        len(b.peers),
		Communities:  b.list(),
		Version:      "test",
	}
}

func (b *Backend) Peers(ctx context.Context) []api.Peer {
	defer b.enter()()
	return slices.Clone(b.peers)
}

func (b *Backend) Netcheck(ctx context.Context) api.Netcheck {
	defer b.enter()()
	return api.Netcheck{Reachability: "private", NATDeviceType: "cone", Peers: len(b.peers), Hint: "test backend"}
}

func (b *Backend) Communities(ctx context.Context) []api.Community {
	defer b.enter()()
	return b.list()
}

func (b *Backend) list() []api.Community {
	var out []api.Community
	for _, c := range b.communities {
		out = append(out, api.Community{ID: c.ID, Name: c.Name, Members: len(c.Members)})
	}
	return out
}

func (b *Backend) find(id string) (int, error) {
	if b.err != nil {
		return -1, b.err
	}
	i := slices.IndexFunc(b.communities, func(c api.CommunityDetail) bool { return c.ID == id })
	if i < 0 {
		return -1, &api.Error{Code: 404, Message: fmt.Sprintf("this node is not a member of community %q.", id)}
	}
	return i, nil
}

func (b *Backend) Community(ctx context.Context, id string) (api.CommunityDetail, error) {
	defer b.enter()()
	i, err := b.find(id)
	if err != nil {
		return api.CommunityDetail{}, err
	}
	return b.communities[i], nil
}

func (b *Backend) CreateCommunity(ctx context.Context, req api.CreateCommunityRequest) (api.CreatedCommunity, error) {
	defer b.enter()()
	if b.err != nil {
		return api.CreatedCommunity{}, b.err
	}
	id := fmt.Sprintf("bafytest%d", len(b.communities)+1)
	b.communities = append(b.communities, api.CommunityDetail{
		ID: id, Name: req.Name, Description: req.Description,
		Founders: []string{b.ident.PeerID}, Members: []string{b.ident.PeerID},
		Joined: b.now().UnixMilli(),
	})
	return api.CreatedCommunity{ID: id, Name: req.Name, Invite: InvitePrefix + id + ":" + req.Name}, nil
}

func (b *Backend) JoinCommunity(ctx context.Context, invite string) (api.Joined, error) {
	defer b.enter()()
	if b.err != nil {
		return api.Joined{}, b.err
	}
	rest, ok := strings.CutPrefix(invite, InvitePrefix)
	id, name, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || id == "" {
		return api.Joined{}, &api.Error{Code: 400, Message: "the invite is not valid; ask the member who gave it to you for a new one."}
	}
	if slices.ContainsFunc(b.communities, func(c api.CommunityDetail) bool { return c.ID == id }) {
		return api.Joined{}, &api.Error{Code: 409, Message: fmt.Sprintf("this node is already a member of community %q.", name)}
	}
	b.communities = append(b.communities, api.CommunityDetail{
		ID: id, Name: name, Members: []string{b.ident.PeerID}, Joined: b.now().UnixMilli(),
	})
	return api.Joined{ID: id, Name: name}, nil
}

func (b *Backend) LeaveCommunity(ctx context.Context, id string) error {
	defer b.enter()()
	i, err := b.find(id)
	if err != nil {
		return err
	}
	b.communities = slices.Delete(b.communities, i, i+1)
	return nil
}

func (b *Backend) Invite(ctx context.Context, id string) (api.Invite, error) {
	defer b.enter()()
	i, err := b.find(id)
	if err != nil {
		return api.Invite{}, err
	}
	return api.Invite{ID: id, Invite: InvitePrefix + id + ":" + b.communities[i].Name}, nil
}

// Server is the real api.Server on a loopback port.
type Server struct {
	URL      string // "http://127.0.0.1:port"
	Addr     string // "127.0.0.1:port"
	Token    string
	Backend  *Backend
	Hub      *events.Hub // the default event source; a configure func may replace it
	Registry *prometheus.Registry
	API      *api.Server
}

// Token is the API token of every Server.
const Token = "apitest-token-0123456789abcdef"

// Start serves the API on 127.0.0.1:0 until the test ends. configure funcs
// may change the config (Heartbeat, MetricsNoAuth, Hub, Mount...) first.
func Start(t testing.TB, configure ...func(*api.ServerConfig)) *Server {
	t.Helper()
	s := &Server{
		Token:    Token,
		Backend:  NewBackend(),
		Hub:      events.New(events.DefaultCapacity),
		Registry: prometheus.NewRegistry(),
	}
	up := prometheus.NewGauge(prometheus.GaugeOpts{Name: "agora_apitest_up", Help: "1 while the test server runs."})
	up.Set(1)
	s.Registry.MustRegister(up)
	cfg := api.ServerConfig{
		Backend:  s.Backend,
		Hub:      s.Hub,
		Token:    s.Token,
		Gatherer: s.Registry,
		Logger:   testLogger(t),
	}
	for _, f := range configure {
		f(&cfg)
	}
	srv, err := api.NewServer(cfg)
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("apitest: listen: %v", err)
	}
	s.API, s.Addr, s.URL = srv, l.Addr().String(), "http://"+l.Addr().String()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("apitest: shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("apitest: serve: %v", err)
		}
	})
	return s
}

// Client returns a client of s with its token.
func (s *Server) Client(opts ...client.Option) *client.Client {
	return client.New(s.URL, s.Token, opts...)
}

// WriteRepo writes the api and api.token files of a repo in dir, as a
// running daemon would, so that client.FromRepo(dir) finds s.
func (s *Server) WriteRepo(t testing.TB, dir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "api.token"), []byte(s.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "api"), []byte(s.URL+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Publish records the request and answers a fixed CID.
func (b *Backend) Publish(ctx context.Context, req api.PublishRequest) (api.Published, error) {
	defer b.enter()()
	if b.err != nil {
		return api.Published{}, b.err
	}
	b.records = append(b.records, api.RecordView{CID: fmt.Sprintf("bafytest%d", len(b.records)), Kind: req.Kind,
		Community: req.Community, Author: b.ident.PeerID, Created: b.now().UnixMilli(), Body: req.Body, Verified: true})
	return api.Published{CID: b.records[len(b.records)-1].CID}, nil
}

// Records lists what Publish recorded, filtered by kind.
func (b *Backend) Records(ctx context.Context, q api.RecordQuery) ([]api.RecordView, error) {
	defer b.enter()()
	var out []api.RecordView
	for _, r := range b.records {
		if q.Kind == "" || r.Kind == q.Kind {
			out = append(out, r)
		}
	}
	return out, b.err
}

// Record finds a published record.
func (b *Backend) Record(ctx context.Context, cid string) (api.RecordView, error) {
	defer b.enter()()
	for _, r := range b.records {
		if r.CID == cid {
			return r, nil
		}
	}
	return api.RecordView{}, &api.Error{Code: 404, Message: "no such record."}
}
