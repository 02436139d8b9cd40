package communities

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/protocol/community"
	"github.com/agora-p2p/agora/protocol/record"
)

type nopPublisher struct{}

func (nopPublisher) Publish(typ string, data any) api.Event { return api.Event{Type: typ, Data: data} }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type member struct {
	h   host.Host
	db  *badger.DB
	svc *Service
	key crypto.PrivKey
	ps  *pubsub.PubSub
}

func openDB(t *testing.T, dir string) *badger.DB {
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithNumCompactors(0))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func newMember(t *testing.T, ctx context.Context, mn mocknet.Mocknet, dir string) *member {
	t.Helper()
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	// mocknet addresses are never dialled for real; loopback keeps it so.
	addr, _ := ma.NewMultiaddr(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 10000+len(mn.Peers())))
	h, err := mn.AddPeer(key, addr)
	if err != nil {
		t.Fatal(err)
	}
	m := &member{h: h, key: key, db: openDB(t, dir)}
	m.start(t, ctx)
	return m
}

func (m *member) start(t *testing.T, ctx context.Context) {
	t.Helper()
	params, thresholds := ScoreParams(nil)
	ps, err := pubsub.NewGossipSub(ctx, m.h, pubsub.WithPeerScore(params, thresholds))
	if err != nil {
		t.Fatal(err)
	}
	m.ps = ps
	m.svc, err = New(ctx, Config{Host: m.h, PubSub: ps, DB: m.db, Key: m.key, Publisher: nopPublisher{}, Logger: quiet,
		Connect: func(ctx context.Context, ai peer.AddrInfo) { m.h.Connect(ctx, ai) }})
	if err != nil {
		t.Fatal(err)
	}
}

// waitMembers waits for the community's records topic to list n members,
// driven by the topic's own peer events.
func waitMembers(t *testing.T, m *member, id string, n int) {
	t.Helper()
	c, err := m.svc.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := c.records.EventHandler()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Each topic event re-checks; the peer list can trail its event by a
	// moment, so a short poll backs the events up.
	events := make(chan struct{}, 1)
	go func() {
		for {
			if _, err := ev.NextPeerEvent(ctx); err != nil {
				return
			}
			select {
			case events <- struct{}{}:
			default:
			}
		}
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for len(m.svc.Members(c)) < n {
		select {
		case <-events:
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("members of %s: %d, want %d", id, len(m.svc.Members(c)), n)
		}
	}
}

func TestCreateJoinLeaveAndPersist(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()
	a := newMember(t, ctx, mn, t.TempDir())
	bdir := t.TempDir()
	b := newMember(t, ctx, mn, bdir)
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	created, err := a.svc.Create(ctx, "garden", "allotment agents")
	if err != nil {
		t.Fatal(err)
	}
	joined, err := b.svc.Join(ctx, created.Invite)
	if err != nil {
		t.Fatal(err)
	}
	if joined.ID != created.ID || joined.Name != "garden" {
		t.Fatalf("joined %+v, created %+v", joined, created)
	}
	again, err := b.svc.Join(ctx, created.Invite)
	if err != nil || again != joined {
		t.Fatalf("joining twice: %+v, %v", again, err)
	}
	waitMembers(t, a, created.ID, 2)
	waitMembers(t, b, created.ID, 2)
	det, err := b.svc.Detail(created.ID)
	if err != nil || len(det.Founders) != 1 || det.Founders[0] != a.h.ID().String() || len(det.Members) != 2 {
		t.Fatalf("detail %+v, %v", det, err)
	}
	if inv, err := b.svc.Invite(ctx, created.ID); err != nil || inv.Invite == "" {
		t.Fatalf("b cannot invite: %v", err)
	}

	// B restarts on the same datastore: the membership is still there.
	b.svc.Close()
	b.start(t, ctx)
	if l := b.svc.List(); len(l) != 1 || l[0].ID != created.ID {
		t.Fatalf("after restart: %+v", l)
	}
	if err := b.svc.Leave(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	b.svc.Close()
	b.start(t, ctx)
	if l := b.svc.List(); len(l) != 0 {
		t.Fatalf("left community came back: %+v", l)
	}
	if err := b.svc.Leave(ctx, created.ID); err == nil {
		t.Fatal("leaving a community twice succeeded")
	}
}

func TestJoinRejectsBadInvitesAndStoresNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()
	a := newMember(t, ctx, mn, t.TempDir())
	created, err := a.svc.Create(ctx, "garden", "")
	if err != nil {
		t.Fatal(err)
	}
	b := newMember(t, ctx, mn, t.TempDir())
	bad := []byte(created.Invite)
	bad[len(bad)-5] ^= 1
	for _, inv := range []string{"", "nonsense", string(bad)} {
		if _, err := b.svc.Join(ctx, inv); err == nil {
			t.Fatalf("invite %q accepted", inv)
		}
	}
	if l := b.svc.List(); len(l) != 0 {
		t.Fatalf("a bad invite left a membership: %+v", l)
	}
	if _, err := a.svc.Create(ctx, "  ", ""); err == nil {
		t.Fatal("empty community name accepted")
	}
}

func TestValidator(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()
	a := newMember(t, ctx, mn, t.TempDir())
	created, err := a.svc.Create(ctx, "garden", "")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := cid.Decode(created.ID)
	other, _ := cid.Decode("bafyreiblaicbx6fnmx5ukfnohlyko4h4l7submbk3wlv3bopa4m5fywshu")
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	sender, _ := peer.IDFromPrivateKey(key)
	now := time.Now()
	sign := func(kind record.Kind, comm cid.Cid, at time.Time) []byte {
		r, err := record.Sign(key, kind, comm, map[string]string{"k": "v"}, at)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := r.Encode()
		return raw
	}
	forged := sign(record.KindAttestation, id, now)
	forged[len(forged)-1] ^= 1
	genesis, _ := community.NewGenesis(key, community.Genesis{Name: "x", Founders: []peer.ID{sender}, Policy: community.DefaultPolicy()}, now)
	graw, _ := genesis.Encode()

	for _, tc := range []struct {
		name string
		kind record.Kind // topic: "" = records, advert = adverts
		data []byte
		want pubsub.ValidationResult
	}{
		{"attestation on records", "", sign(record.KindAttestation, id, now), pubsub.ValidationAccept},
		{"advert on adverts", record.KindAdvert, sign(record.KindAdvert, id, now), pubsub.ValidationAccept},
		{"advert on records", "", sign(record.KindAdvert, id, now), pubsub.ValidationReject},
		{"attestation on adverts", record.KindAdvert, sign(record.KindAttestation, id, now), pubsub.ValidationReject},
		{"wrong community", "", sign(record.KindAttestation, other, now), pubsub.ValidationReject},
		{"genesis gossiped", "", graw, pubsub.ValidationReject},
		{"forged signature", "", forged, pubsub.ValidationReject},
		{"garbage", "", []byte{0xa1, 0x01}, pubsub.ValidationReject},
		{"oversized", "", make([]byte, record.MaxSize+1), pubsub.ValidationReject},
		{"from the future", "", sign(record.KindAttestation, id, now.Add(time.Hour)), pubsub.ValidationIgnore},
	} {
		v := a.svc.validator(id, tc.kind)
		msg := &pubsub.Message{Message: &pb.Message{Data: tc.data, From: []byte(sender)}}
		if got := v(ctx, sender, msg); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
