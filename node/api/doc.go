// Package api is the node's local HTTP API (/api/v1, /healthz, /metrics and
// the Server-Sent Events stream) and its JSON contract (types.go).
//
// It owns transport concerns only: routing, the DNS-rebinding and Origin
// guards, bearer-token auth, request decoding and limits, error mapping and
// event streaming. It must not hold node logic or state: every answer comes
// from the Backend, every event from the EventSource. The JSON shapes in
// types.go are also the CLI's --json output, so fields are only ever added.
package api
