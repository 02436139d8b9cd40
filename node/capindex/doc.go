// Package capindex is a node's capability index: which member offers which
// skill in which community, learned from signed adverts, together with what
// this node observed when it delegated to them (latency, success rate). It
// also ranks providers for the requester (Rank, a pure function) and builds
// and republishes this node's own adverts (Advertiser).
package capindex
