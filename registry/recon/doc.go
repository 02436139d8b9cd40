// Package recon reconciles two nodes' sets of records, the pull half of
// registry replication: given a Store of (created, CID) items, a Session
// produces and answers the frames of /agora/sync/1.0.0 (protocol/recon)
// until the initiator knows exactly which CIDs it lacks and which the peer
// lacks. The algorithm is Negentropy's: fingerprints of ranges, split into
// 16 buckets where they differ, ID lists below 32 items, and a frame size
// budget that defers what does not fit to the next round.
//
// Sync is pull-only: the initiator learns both differences and fetches what
// it needs; a responder catches up by initiating its own session. Sessions
// keep no state across rounds beyond counters, so an interrupted sync is
// simply run again.
//
// recon is pure logic over the Store interface. It must not open streams,
// read or write frames, fetch or ingest records, or keep anything between
// sessions: the stream handler and the fetch loop belong to the node, the
// storage and the (created, CID) index behind Store to the registry.
package recon
