// Package recon defines the wire format of /agora/sync/1.0.0, the stream
// protocol by which a node pulls the records it lacks from a peer: range
// based set reconciliation in the manner of Negentropy (items ordered by
// (created, ID), range fingerprints, recursive splitting), followed by fetches
// of the missing records by CID. docs/protocol.md §8 is the normative text.
//
// recon owns the frames, their canonical CBOR encoding and length-prefixed
// framing, the bound and range encoding, the fingerprint definition and every
// limit. It checks each frame on its own: types, sizes, field shapes, bound
// order. It must not reconcile (registry/recon does that over a store), hold
// session state, open streams or look records up.
package recon
