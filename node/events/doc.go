// Package events is the node's in-memory hub of live events for the local
// API's Server-Sent Events stream.
//
// It owns event numbering and a bounded ring of recent events so that a
// client that reconnects with Last-Event-ID receives exactly what it missed,
// or is told (a gap) that some of it is gone. It must not block a publisher on
// a slow reader, persist anything, or know about HTTP: event IDs are
// process-local and start again at 1 when the node restarts, which is why
// every Hub also has a random Epoch that a client can present to detect it.
package events
