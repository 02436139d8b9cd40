// Package mcpagent is the "mcp" agent backend: it connects to one MCP
// server, over stdio (a command it starts) or streamable HTTP, with the
// official Go SDK, and offers each of the server's tools as a skill, schemas
// included. It follows the server's tool list as it changes (agents.Watcher)
// and maps tool calls, results and progress notifications to Run.
//
// It owns the session and, for stdio, the server process and its process
// group: nothing it started outlives Close. It does not validate input or
// output (the Manager does) and uses no other MCP feature (resources,
// prompts, sampling).
package mcpagent
