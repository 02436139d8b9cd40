// Package mcpserve serves the skills a node can run as MCP tools, with the
// official Go SDK: over stdio for `agora mcp`, and over streamable HTTP for
// /mcp on the local API. The tools are this node's enabled agents' skills
// and those its communities advertise, one tool per skill ID.
//
// A tool call is a task submitted through a Source (the daemon's API, or
// the node itself), so it is ranked, delegated, retried, journaled and
// receipted like any other, and obeys the node's data-exit policy. The
// arguments are checked against the skill's input schema first: bad ones
// get a tool error and submit nothing.
//
// It runs no skill itself and holds no state beyond the current tool list.
package mcpserve
