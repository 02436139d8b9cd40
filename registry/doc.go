// Package registry is the node's replicated store of records: badger
// storage and indexes, the ingest pipeline that decides which records are
// kept, reads and queries over them, change notification, and the item
// lists that reconciliation needs.
//
// Every record, whether it comes from gossip, from sync or from this node,
// enters through Ingest (or Sign, for this node's own). Ingest answers only
// once the record is durable; concurrent calls share one commit and one
// disk sync (group commit).
//
// registry must not do networking: gossip push, anti-entropy pull and the
// HTTP API call into it. It does not own the badger database either: the
// caller opens it, passes it to Open, and closes it after Store.Close.
// Sub-packages hold the pure functions computed over records.
package registry
