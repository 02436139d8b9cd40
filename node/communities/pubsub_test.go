package communities_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/agora-p2p/agora/node/communities"
)

// TestPubSubOptions: members exchange unsigned messages whose ID is their
// content, so a replayed message is a duplicate; a peer that signs its
// messages (another policy) is not heard.
func TestPubSubOptions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()
	var hs []host.Host
	for i := range 3 {
		key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
		addr, _ := ma.NewMultiaddr(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 11000+i))
		h, err := mn.AddPeer(key, addr)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	var topics []*pubsub.Topic
	for i, h := range hs {
		opts := append(communities.PubSubOptions(), pubsub.WithFloodPublish(true))
		if i == 2 {
			opts = []pubsub.Option{pubsub.WithFloodPublish(true)} // signed messages with author and seqno
		}
		ps, err := pubsub.NewGossipSub(ctx, h, opts...)
		if err != nil {
			t.Fatal(err)
		}
		tp, err := ps.Join("agora/test/records/1")
		if err != nil {
			t.Fatal(err)
		}
		topics = append(topics, tp)
	}
	sub, err := topics[1].Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range []*pubsub.Topic{topics[0], topics[2]} {
		if _, err := tp.Subscribe(); err != nil {
			t.Fatal(err)
		}
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	for len(topics[0].ListPeers()) < 2 || len(topics[1].ListPeers()) < 2 || len(topics[2].ListPeers()) < 2 {
		select {
		case <-ctx.Done():
			t.Fatal("the topic's peers never met")
		case <-time.After(10 * time.Millisecond):
		}
	}

	// The signing peer publishes first; then the member publishes the same
	// bytes twice and other bytes once.
	if err := topics[2].Publish(ctx, []byte("signed")); err != nil {
		t.Fatal(err)
	}
	for _, data := range []string{"record-a", "record-a", "record-b"} {
		if err := topics[0].Publish(ctx, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for len(got) < 2 {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		if m.GetFrom() != "" || len(m.GetSignature()) != 0 || len(m.GetSeqno()) != 0 {
			t.Errorf("message %q carries an author, signature or seqno", m.Data)
		}
		if m.ID != communities.MessageID(m.Message) {
			t.Errorf("message %q has ID %x, not its content's", m.Data, m.ID)
		}
		got = append(got, string(m.Data))
	}
	if got[0] != "record-a" || got[1] != "record-b" {
		t.Errorf("received %q, want the member's two distinct messages once each, and nothing signed", got)
	}
	// Nothing else arrives: not the replay, not the signed message.
	c, cancel2 := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel2()
	if m, err := sub.Next(c); err == nil {
		t.Errorf("also received %q", m.Data)
	}
}
