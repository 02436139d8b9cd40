package communities_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/agora-p2p/agora/node/communities"
	"github.com/agora-p2p/agora/node/trust"
)

// TestScoreParamsAppScore: the application-specific score reputation
// gives (node/trust.AppScore) reaches gossipsub's peer score, so a
// distrusted peer falls below the gossip threshold on every router while
// a trusted and a neutral one stay above it.
func TestScoreParamsAppScore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()

	const size = 3
	ids := make([]peer.ID, size)
	for i := range ids {
		key, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		h, err := mn.AddPeer(key, ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 4001+i)))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = h.ID()
	}
	trusted, neutral, distrusted := ids[0], ids[1], ids[2]
	appScore := func(p peer.ID) float64 {
		switch p {
		case distrusted:
			return trust.DistrustedScore
		case trusted:
			return trust.MaxTrustedScore
		}
		return 0
	}

	// Each router reports the scores it holds on its own channel.
	seen := make([]chan map[peer.ID]float64, size)
	var thresholds *pubsub.PeerScoreThresholds
	for i, id := range ids {
		params, th := communities.ScoreParams(appScore)
		thresholds = th
		ch := make(chan map[peer.ID]float64, 1)
		seen[i] = ch
		inspect := func(scores map[peer.ID]float64) {
			select {
			case ch <- scores:
			default: // the test has not read the last one yet
			}
		}
		if _, err := pubsub.NewGossipSub(ctx, mn.Host(id),
			pubsub.WithPeerScore(params, th),
			pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(inspect), 10*time.Millisecond),
			pubsub.WithLogger(slog.New(slog.DiscardHandler))); err != nil {
			t.Fatal(err)
		}
	}
	if thresholds.GossipThreshold >= 0 || trust.DistrustedScore >= thresholds.GossipThreshold {
		t.Fatalf("gossip threshold %v, distrusted score %v", thresholds.GossipThreshold, trust.DistrustedScore)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}

	for i, self := range ids {
		// Wait for a sample that scores both other routers.
		var scores map[peer.ID]float64
		for complete := false; !complete; {
			select {
			case scores = <-seen[i]:
			case <-ctx.Done():
				t.Fatalf("router %d: no score of every peer in time; last %v", i, scores)
			}
			complete = len(scores) == size-1
			for _, p := range ids {
				if _, ok := scores[p]; p != self && !ok {
					complete = false
				}
			}
		}
		for _, p := range ids {
			if p == self {
				continue
			}
			s := scores[p]
			switch below := s < thresholds.GossipThreshold; {
			case p == distrusted && !below:
				t.Errorf("router %d scores the distrusted peer %v, not below the gossip threshold %v", i, s, thresholds.GossipThreshold)
			case p != distrusted && below:
				t.Errorf("router %d scores %s %v, below the gossip threshold %v", i, p, s, thresholds.GossipThreshold)
			case p == trusted && s <= scores[neutral] && self != neutral:
				t.Errorf("router %d scores the trusted peer %v, no more than the neutral one %v", i, s, scores[neutral])
			}
		}
	}
}
