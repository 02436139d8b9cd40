// Package community defines what a community is on the wire: its genesis
// record (name, founders, bootstrap addresses, initial policy), the invite
// string that carries the genesis to a new member, and the pubsub topic
// names derived from the community ID (the genesis CID).
//
// It validates what a genesis or invite says about itself. It must not join
// networks, store records or apply governance: the policy that is in force
// is derived by the registry from the genesis and passed proposals.
package community
