package communities

import (
	"crypto/sha256"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
)

// PubSubOptions are the gossipsub options every member must share for the
// community topics (docs/protocol.md §6): messages carry no pubsub-level
// author, sequence number or signature, and a message's ID is the SHA-256
// of its data. Every message is one signed record, so the record's own
// signature authenticates it; a pubsub signature on top would cost a
// second Ed25519 verification per message and hop (the scale simulation
// measured signature checks at 16% of its CPU), and content IDs let
// gossipsub drop a replayed record as a duplicate before validation.
func PubSubOptions() []pubsub.Option {
	return []pubsub.Option{
		// Neither sign nor accept signatures (a signed message is
		// rejected), and send no author or sequence number either.
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(MessageID),
	}
}

// MessageID is a message's gossipsub ID: the SHA-256 of its data.
func MessageID(m *pb.Message) string {
	sum := sha256.Sum256(m.GetData())
	return string(sum[:])
}
