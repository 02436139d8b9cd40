package record

// Kind names what a record's body means. Kinds are an append-only list: a
// kind is never removed or renamed, because old records keep their kind
// forever. Body schemas live with the packages that define each kind.
type Kind string

const (
	KindCommunity   Kind = "community"   // a community genesis
	KindAdvert      Kind = "advert"      // capabilities a node offers; ephemeral
	KindFeedback    Kind = "feedback"    // a requester's rating of a receipt
	KindAttestation Kind = "attestation" // an auditor's statement about a subject
	KindRevocation  Kind = "revocation"  // withdraws one of the author's records
	KindProposal    Kind = "proposal"    // a governance proposal
	KindVote        Kind = "vote"        // a vote on a proposal
	KindTally       Kind = "tally"       // a node's count of a proposal's votes
)

// Kinds returns every known kind in the order they were added.
func Kinds() []Kind {
	return []Kind{
		KindCommunity, KindAdvert, KindFeedback, KindAttestation,
		KindRevocation, KindProposal, KindVote, KindTally,
	}
}

// Valid reports whether k is a kind this version of Agora knows.
func (k Kind) Valid() bool {
	switch k {
	case KindCommunity, KindAdvert, KindFeedback, KindAttestation,
		KindRevocation, KindProposal, KindVote, KindTally:
		return true
	}
	return false
}
