package communities

import (
	"net"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ScoreParams are gossipsub's peer-scoring parameters for an Agora node.
// appScore is the application-specific score; reputation feeds it once
// trust exists, until then it is zero for everyone.
func ScoreParams(appScore func(peer.ID) float64) (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	if appScore == nil {
		appScore = func(peer.ID) float64 { return 0 }
	}
	_, lo4, _ := net.ParseCIDR("127.0.0.0/8")
	_, lo6, _ := net.ParseCIDR("::1/128")
	params := &pubsub.PeerScoreParams{
		Topics:            map[string]*pubsub.TopicScoreParams{},
		TopicScoreCap:     100,
		AppSpecificScore:  appScore,
		AppSpecificWeight: 1,
		// Members behind one home NAT share an address; penalise only
		// crowds of identities on one IP, and never loopback (the demo).
		IPColocationFactorWeight:    -10,
		IPColocationFactorThreshold: 8,
		IPColocationFactorWhitelist: []*net.IPNet{lo4, lo6},
		BehaviourPenaltyWeight:      -10,
		BehaviourPenaltyThreshold:   6,
		BehaviourPenaltyDecay:       pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval:               time.Second,
		DecayToZero:                 0.01,
		RetainScore:                 time.Hour,
	}
	thresholds := &pubsub.PeerScoreThresholds{
		GossipThreshold:             -100,
		PublishThreshold:            -500,
		GraylistThreshold:           -1000,
		AcceptPXThreshold:           10,
		OpportunisticGraftThreshold: 3,
	}
	return params, thresholds
}

// TopicScore scores behaviour on one community topic: first deliveries
// earn a little, invalid messages (a provably faulty sender) cost a lot.
func TopicScore() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		TopicWeight:                    1,
		TimeInMeshWeight:               0.01,
		TimeInMeshQuantum:              time.Second,
		TimeInMeshCap:                  300,
		FirstMessageDeliveriesWeight:   1,
		FirstMessageDeliveriesDecay:    pubsub.ScoreParameterDecay(10 * time.Minute),
		FirstMessageDeliveriesCap:      50,
		InvalidMessageDeliveriesWeight: -100,
		InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(time.Hour),
		// Mesh delivery rates are off: a quiet community is normal.
		MeshMessageDeliveriesDecay: pubsub.ScoreParameterDecay(time.Minute),
		MeshFailurePenaltyDecay:    pubsub.ScoreParameterDecay(time.Minute),
	}
}
