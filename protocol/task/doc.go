// Package task is the wire format of delegation, /agora/task/1.0.0
// (docs/protocol.md §11): the frames a requester and an executor exchange on
// one libp2p stream per task, and the receipt the executor signs.
//
// A stream carries, from the requester, one Request and then at most one
// Cancel; from the executor, Accepted or Rejected, then (after Accepted) any
// number of Progress frames and exactly one Result or Failed. Each frame is
// an unsigned varint length followed by a canonical CBOR map (the encoding
// of protocol/canon), at most MaxFrame bytes.
package task
